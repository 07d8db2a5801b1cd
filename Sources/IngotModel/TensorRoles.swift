/// What a checkpoint tensor is, from its name and shape: the built-in rule for what quantizers leave in full
/// precision and what exports list as unquantized modules. Only `.linear` weights are quantized by default.
public enum TensorRole: String, Sendable, Equatable, CaseIterable {
    /// A 2-D `.weight` of a linear layer.
    case linear
    case embedding
    case outputHead = "output head"
    case norm
    /// MoE routers (`mlp.gate`, `block_sparse_moe.gate`, gpt-oss `mlp.router`, Gemma 4 `router.proj`).
    case router
    /// Qwen's `shared_expert_gate` `[1, hidden]`: one logit per token scaling the shared expert.
    case sharedExpertGate = "shared expert gate"
    /// Gated DeltaNet's per-head decay and write-strength projections (`in_proj_ba`, Qwen3.5's `in_proj_a` /
    /// `in_proj_b`).
    case decayProjection = "decay projection"
    /// Gated DeltaNet's state parameters `A_log` and `dt_bias`.
    case stateParameter = "state parameter"
    /// Depthwise causal convolution `[channels, 1, kernel]`.
    case convolution
    /// Gemma 4's per-layer embedding path: `per_layer_model_projection` (`embed_tokens_per_layer` is an embedding).
    case perLayerInputProjection = "per-layer input projection"
    /// The vision (or audio) tower and projectors of a multimodal checkpoint (`model.visual.*`; Muse's
    /// `model.vision_tower.*`, `vision_adapter`, `vision_projection`; Gemma 4's `vision_tower`, `audio_tower`,
    /// `embed_vision`, `embed_audio`).
    case visionTower = "vision tower"
    /// Anything else (biases, sinks, 1-D or higher-rank tensors).
    case other

    public init(name: String, shape: [Int]) {
        let module = name.hasSuffix(".weight") ? String(name.dropLast(7)) : name
        let last = module.split(separator: ".").last.map(String.init) ?? module
        if module.hasPrefix("model.visual.") || module.hasPrefix("visual.") || Self.towerPrefixes.contains(where: module.hasPrefix) {
            self = .visionTower; return
        }
        if last == "A_log" || last == "dt_bias" { self = .stateParameter; return }
        if last == "conv1d" { self = .convolution; return }
        guard name.hasSuffix(".weight") else { self = .other; return }
        if last.contains("norm") { self = .norm; return }
        if last == "embed_tokens" || last == "embed_tokens_per_layer" || last == "wte" { self = .embedding; return }
        if last == "per_layer_model_projection" { self = .perLayerInputProjection; return }
        if last == "lm_head" { self = .outputHead; return }
        if last == "shared_expert_gate" { self = .sharedExpertGate; return }
        if module.hasSuffix("mlp.gate") || module.hasSuffix("block_sparse_moe.gate") || module.hasSuffix("mlp.router")
            || module.hasSuffix(".router.proj") {
            self = .router; return
        }
        if module.contains("linear_attn."), ["in_proj_ba", "in_proj_a", "in_proj_b"].contains(last) { self = .decayProjection; return }
        self = shape.count == 2 ? .linear : .other
    }

    /// Why this role stays in full precision by default (nil for `.linear`).
    public var keptBecause: String? {
        switch self {
        case .linear: nil
        case .embedding, .outputHead: "embeddings and the output head are kept, as llm-compressor and AutoAWQ keep them"
        case .norm: "norm weights are per-channel scales, not matrices"
        case .router, .sharedExpertGate: "routing and the shared expert's gate decide which weights run; tiny, error-sensitive"
        case .decayProjection: "its outputs go through exp/softplus into the recurrent state's decay; vLLM's official FP8 checkpoints keep it"
        case .stateParameter, .convolution: "state parameters and the short conv are not matrices; vLLM reads them in full precision"
        case .perLayerInputProjection: "Gemma 4's per-layer embedding path is kept with the embeddings it is added to"
        case .visionTower: "the vision tower is not part of the text decoder (llm-compressor ignores re:.*visual.* / vision_tower)"
        case .other: "not a linear weight"
        }
    }

    /// Linear modules a runtime would otherwise expect quantized: listed in an export's `ignore` when kept.
    public var isUnquantizedLinear: Bool { [.router, .sharedExpertGate, .decayProjection, .perLayerInputProjection, .visionTower].contains(self) }

    /// Module prefixes of the non-text towers of Muse and Gemma 4 checkpoints.
    static let towerPrefixes = ["model.vision_tower.", "model.vision_adapter.", "model.vision_projection", "model.audio_tower.",
                                "model.embed_vision.", "model.embed_audio."]
}
