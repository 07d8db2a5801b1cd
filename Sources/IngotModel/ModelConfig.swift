import IngotCore

/// The architecture facts the reference forward pass needs, parsed from a Hugging Face `config.json`.
///
/// Supported `model_type`s: `llama`, `mistral`, `mixtral`, `qwen3_moe`, `deepseek_v3` (MLA, sigmoid group-limited
/// routing, shared experts, YaRN), and the families in `Families/` (`gpt_oss`, `qwen3_next`, `qwen3_5_moe`,
/// `muse_glimmer`, `gemma4` / `gemma4_text`). Anything else, and any option this implementation does not handle
/// (other rope scaling types, sliding windows, attention bias where the family has none), is a clear error naming it.
public struct ModelConfig: Sendable, Equatable {
    public enum Family: String, Sendable {
        case llama, mistral, mixtral, qwen3MoE = "qwen3_moe", deepseekV3 = "deepseek_v3", gptOss = "gpt_oss"
        case qwen3Next = "qwen3_next", qwen3_5MoE = "qwen3_5_moe"
        case museGlimmer = "muse_glimmer", gemma4
    }

    /// The rotary embedding of one layer: rotate-half over `dim` dims with `inverseFrequencies` (`dim / 2` of them;
    /// zeros leave their pair unrotated, as Gemma 4's "proportional" rope does), cos/sin times `attentionFactor`.
    public struct Rotary: Sendable, Hashable {
        public var dim: Int
        public var inverseFrequencies: [Float]
        public var attentionFactor: Float = 1
        public init(dim: Int, inverseFrequencies: [Float], attentionFactor: Float = 1) {
            self.dim = dim
            self.inverseFrequencies = inverseFrequencies
            self.attentionFactor = attentionFactor
        }
    }

    /// The MLP's (and experts') gate activation.
    public enum Activation: String, Sendable, Equatable {
        case silu
        /// tanh-approximated GELU (`gelu_pytorch_tanh`).
        case geluTanh = "gelu_pytorch_tanh"
    }

    /// What a decoder layer's token mixer is (transformers' `layer_types`).
    public enum LayerType: String, Sendable, Equatable {
        /// Causal attention over every earlier position.
        case fullAttention = "full_attention"
        /// Causal attention over the last `slidingWindow` positions (the current one included).
        case slidingAttention = "sliding_attention"
        /// Gated DeltaNet linear attention (Qwen3-Next, Qwen3.5).
        case linearAttention = "linear_attention"
    }

    /// A gate on the attention output, before o_proj.
    public enum AttentionOutputGate: Sendable, Equatable {
        case none
        /// Qwen3-Next / Qwen3.5: q_proj yields `[query | gate]` per head; the output is multiplied by sigmoid(gate).
        case inQueryProjection
    }

    /// Gated DeltaNet (Qwen3-Next `linear_attn`): projections, a short causal depthwise conv over q/k/v, the gated
    /// delta rule with per-value-head decay and write strength, an RMSNorm gated by silu(z), out_proj.
    public struct GatedDeltaNet: Sendable, Equatable {
        /// How the input projections are stored.
        public enum Projections: Sendable, Equatable {
            /// Qwen3-Next: `in_proj_qkvz` and `in_proj_ba`, grouped per key head (q, k, v…, z… / b…, a…).
            case fused
            /// Qwen3.5: `in_proj_qkv` (all q, all k, all v), `in_proj_z`, `in_proj_b`, `in_proj_a`.
            case split
        }
        public var keyHeads: Int, valueHeads: Int, keyHeadDim: Int, valueHeadDim: Int
        public var convKernel: Int
        public var projections: Projections
        public var keyDim: Int { keyHeads * keyHeadDim }
        public var valueDim: Int { valueHeads * valueHeadDim }
        /// Channels through the conv: q, k and v.
        public var convDim: Int { 2 * keyDim + valueDim }

        public init(keyHeads: Int, valueHeads: Int, keyHeadDim: Int, valueHeadDim: Int, convKernel: Int, projections: Projections) {
            (self.keyHeads, self.valueHeads, self.keyHeadDim, self.valueHeadDim) = (keyHeads, valueHeads, keyHeadDim, valueHeadDim)
            (self.convKernel, self.projections) = (convKernel, projections)
        }
    }

    /// How the router turns logits into expert weights.
    public enum Routing: Sendable, Equatable {
        /// softmax over experts, top-k (Mixtral, Qwen3-MoE).
        case softmax
        /// DeepSeek-V3: sigmoid scores plus `e_score_correction_bias` for choosing; experts only from the
        /// `topkGroup` groups (of `groups`) with the largest sum of their two best scores; weights are the
        /// unbiased scores, renormalised if `normalizeTopK`, times `routedScalingFactor`.
        case sigmoidGroupLimited(groups: Int, topkGroup: Int, routedScalingFactor: Float)
        /// gpt-oss: logits (+ router bias), top-k of the logits, softmax over those k.
        case softmaxOfTopK
        /// Gemma 4: logits of `router.proj` on the weightless-normed residual times `router.scale` and 1/√hidden;
        /// softmax, top-k renormalised, each weight times its expert's `router.per_expert_scale`.
        case gemma4
    }

    /// The experts' activation between gate/up and down.
    public enum ExpertActivation: Sendable, Equatable {
        /// `silu(gate) · up`.
        case swiglu
        /// gpt-oss: gate clamped to ≤ limit, up to [−limit, limit]; `gate · σ(alpha · gate) · (up + 1)`.
        case clampedSwiGLU(alpha: Float, limit: Float)
    }

    /// DeepSeek's multi-head latent attention: low-rank q (optional) and a compressed kv with a shared rope key.
    public struct LatentAttention: Sendable, Equatable {
        public var qLoraRank: Int?
        public var kvLoraRank: Int
        public var qkNopeHeadDim: Int, qkRopeHeadDim: Int, vHeadDim: Int
        /// Rope dims stored interleaved (pairs), de-interleaved before rotate-half RoPE.
        public var ropeInterleave: Bool
        public var qkHeadDim: Int { qkNopeHeadDim + qkRopeHeadDim }
    }

    /// YaRN rope scaling (DeepSeek-V3's long-context configs).
    public struct YaRN: Sendable, Equatable {
        public var factor: Double
        public var originalMaxPositions: Int
        public var betaFast: Double, betaSlow: Double
        public var mscale: Double?, mscaleAllDim: Double?
        public var attentionFactor: Double?
        public var truncate: Bool
    }

    public var family: Family
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var intermediateSize: Int
    public var vocabSize: Int
    public var rmsNormEps: Float
    public var ropeTheta: Float
    public var tieWordEmbeddings: Bool
    /// MoE: routed experts, experts per token, expert intermediate size, renormalise the top-k weights.
    public var experts: Int = 0
    public var expertsPerToken: Int = 0
    public var expertIntermediateSize: Int = 0
    public var normalizeTopK = true
    /// Qwen3: RMSNorm over each head of q and k before RoPE.
    public var qkNorm = false
    /// Qwen3-MoE / DeepSeek-V3: layers that use a dense MLP instead of experts.
    public var denseLayers: Set<Int> = []
    public var routing: Routing = .softmax
    /// DeepSeek-V3: shared experts run on every token (their MLP width is `expertIntermediateSize × sharedExperts`).
    public var sharedExperts = 0
    public var latentAttention: LatentAttention?
    public var yarn: YaRN?
    /// Positions the checkpoint was configured for (YaRN's factor derivation).
    public var maxPositions = 0
    /// One entry per layer (all full attention unless the family says otherwise).
    public var layerTypes: [LayerType] = []
    /// Positions a sliding-attention layer sees (the current one included).
    public var slidingWindow = 0
    /// q/k/v/o carry biases.
    public var attentionBias = false
    /// gpt-oss: one learned sink logit per head joins every softmax (and takes its share of the probability).
    public var attentionSinks = false
    /// Experts carry biases on gate, up and down.
    public var expertBias = false
    public var expertActivation: ExpertActivation = .swiglu
    /// Where the text decoder's tensors live: `model.`, or `model.language_model.` in multimodal checkpoints.
    public var weightPrefix = "model."
    /// RMSNorm scales by `normWeightOffset + w`: 1 for zero-centred norms (Qwen3-Next's `(1 + weight)`, Muse's
    /// decoder-layer norms).
    public var normWeightOffset: Float = 0
    /// Muse: the final norm scales by `w` even though the layers' norms are zero-centred.
    public var plainFinalNorm = false
    /// Rotated dims at the start of each head (`partial_rotary_factor × head_dim`); the rest pass through.
    public var rotaryDim = 0
    public var attentionOutputGate = AttentionOutputGate.none
    /// Linear-attention layers' shape (when any layer is `.linearAttention`).
    public var linearAttention: GatedDeltaNet?
    /// Width of the shared experts' MLP (DeepSeek: `moe_intermediate_size × n_shared_experts`).
    public var sharedExpertIntermediateSize = 0
    /// Qwen3-Next / Qwen3.5: the shared expert's output is scaled per token by sigmoid(`shared_expert_gate`·x).
    public var sharedExpertGate = false
    /// The dense MLP's and SwiGLU experts' gate activation (`hidden_act` / `hidden_activation`).
    public var activation: Activation = .silu
    /// Per-layer rotary embeddings (nil = NoPE layer); empty = every layer the default rope of `ropeTheta`/`yarn`
    /// over `rotaryDim` (`ReferenceModel.rotary(layer:)` resolves it).
    public var rotaries: [Rotary?] = []
    /// Per-layer head dim and kv heads where they differ from `headDim`/`kvHeads` (Gemma 4's full-attention layers).
    public var layerHeadDims: [Int: Int] = [:], layerKVHeads: [Int: Int] = [:]
    /// Sandwich norms: `post_attention_layernorm` normalizes the attention output, `pre_feedforward_layernorm` the
    /// MLP input and `post_feedforward_layernorm` its output (Muse, Gemma 4).
    public var sandwichNorms = false
    /// Epsilon of the post-attention and post-FFN norms (Muse's `post_norm_eps`); nil = `rmsNormEps`.
    public var postNormEps: Float?
    /// Muse: a weightless RMSNorm on the embeddings.
    public var embeddingNorm = false
    /// Gemma: embeddings times this (√hidden).
    public var embeddingScale: Float = 1
    /// Muse: q and k normed per head without weights; q then times `queryScale`.
    public var scalelessQKNorm = false
    public var queryScale: Float = 1
    /// Gemma 4: v normed per head without weights.
    public var valueNorm = false
    /// Softmax scale of q·k (nil = 1/√head_dim).
    public var attentionScale: Float?
    /// Muse: the attention output times `sigmoid(self_attn.gate_proj(x))` before o_proj.
    public var attentionGate = false
    /// Logits times `outputMultiplier`, then `cap · tanh(logits / cap)` with `finalLogitSoftcap`.
    public var outputMultiplier: Float = 1
    public var finalLogitSoftcap: Float?
    /// Gemma 4 extras (nil for other families).
    public var gemma4: Gemma4Options?

    public var isMoE: Bool { experts > 0 }

    /// Head dim and kv heads of layer `l`.
    public func headDim(layer l: Int) -> Int { layerHeadDims[l] ?? headDim }
    public func kvHeads(layer l: Int) -> Int { layerKVHeads[l] ?? kvHeads }
    /// Epsilon of the norms on the attention and MLP outputs.
    public var outputNormEps: Float { postNormEps ?? rmsNormEps }

    /// The layer type of layer `l`.
    public func layerType(_ l: Int) -> LayerType { l < layerTypes.count ? layerTypes[l] : .fullAttention }

    /// The attention window of layer `l`: nil for full attention.
    public func attentionWindow(_ l: Int) -> Int? { layerType(l) == .slidingAttention ? slidingWindow : nil }

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case unsupported(field: String, value: String)
        case missing(field: String)
        case invalid(field: String, reason: String)

        /// The same failure with its field named inside `parent` (`text_config.layer_types`).
        func nested(in parent: String) -> Failure {
            switch self {
            case let .unsupported(f, v): .unsupported(field: parent + "." + f, value: v)
            case let .missing(f): .missing(field: parent + "." + f)
            case let .invalid(f, r): .invalid(field: parent + "." + f, reason: r)
            }
        }

        public var description: String { "config.json: " + reason }

        /// The message without the file name (callers that know the file's path prefix it).
        public var reason: String {
            switch self {
            case let .unsupported(f, v): "\(f) = \(v) is not supported"
            case let .missing(f): "required field '\(f)' is missing"
            case let .invalid(f, r): "\(f) \(r)"
            }
        }
    }

    public static func load(directory: String) throws -> ModelConfig {
        let path = directory + "/config.json"
        let json = try JSON.parseFile(path, rejectDuplicateKeys: false)
        do { return try ModelConfig(json: json) } catch let e as Failure { throw FileContentError(path: path, reason: e.reason) }
    }

    /// Multimodal `model_type`s whose text decoder is read: its fields are in `text_config`, its tensors under
    /// `model.language_model.`, `lm_head` at the top.
    static let multimodal: [String: Family] = ["qwen3_5_moe": .qwen3_5MoE, "muse_glimmer": .museGlimmer, "gemma4": .gemma4]
    /// Text-only `model_type`s of a multimodal family's decoder (tensors under `model.`).
    static let textOnly: [String: Family] = ["qwen3_5_moe_text": .qwen3_5MoE, "gemma4_text": .gemma4]

    public init(json top: JSON) throws {
        guard let type = top["model_type"]?.stringValue else { throw Failure.missing(field: "model_type") }
        if let fam = Self.multimodal[type] {
            guard let text = top["text_config"], text.objectValue != nil else { throw Failure.missing(field: "text_config") }
            do { try self.init(family: fam, json: text) } catch let e as Failure { throw e.nested(in: "text_config") }
            weightPrefix = "model.language_model."
            // transformers ties by the outer config's flag (Gemma4Config's defaults to true, Qwen3.5's to false;
            // MuseGlimmerConfig has none and the text config's counts).
            tieWordEmbeddings = top["tie_word_embeddings"]?.boolValue ?? (fam == .gemma4 ? true : fam == .museGlimmer ? tieWordEmbeddings : false)
            return
        }
        guard let fam = Self.textOnly[type] ?? Family(rawValue: type) else { throw Failure.unsupported(field: "model_type", value: type) }
        try self.init(family: fam, json: top)
    }

    init(family fam: Family, json j: JSON) throws {
        // Every field the forward pass depends on is read here (or by the family's reader) and validated.
        let f = ConfigFields(j)
        func int(_ k: String) throws -> Int { try f.int(k) }
        family = fam
        hiddenSize = try int("hidden_size")
        layers = try int("num_hidden_layers")
        guard layers <= 1 << 20 else { throw Failure.invalid(field: "num_hidden_layers", reason: "must be at most \(1 << 20)") }
        heads = try int("num_attention_heads")
        kvHeads = try f.int("num_key_value_heads", default: heads)!
        guard heads % kvHeads == 0 else { throw Failure.invalid(field: "num_key_value_heads", reason: "must divide num_attention_heads") }
        headDim = try f.int("head_dim", default: hiddenSize / heads)!  // transformers: hidden_size // num_attention_heads
        guard headDim % 2 == 0 else { throw Failure.invalid(field: "head_dim", reason: "must be a positive even number") }
        // Qwen3.5-MoE has no dense MLP (and no intermediate_size); Qwen3-Next reads its own below.
        intermediateSize = fam == .qwen3_5MoE || fam == .qwen3Next ? 0 : try int("intermediate_size")
        vocabSize = try int("vocab_size")
        rmsNormEps = Float(try f.positive("rms_norm_eps", default: 1e-6))
        guard rmsNormEps > 0, rmsNormEps < 1 else { throw Failure.invalid(field: "rms_norm_eps", reason: "must be in (0, 1) as a float32, got \(rmsNormEps)") }
        let rope = j["rope_parameters"] ?? j["rope_scaling"]
        if let r = rope, !r.isNull, r.objectValue == nil { throw Failure.invalid(field: "rope_scaling", reason: "must be an object or null") }
        maxPositions = try f.int("max_position_embeddings", default: 0)!
        if let rope, !rope.isNull, let t = rope["rope_type"]?.stringValue ?? rope["type"]?.stringValue, t != "default" {
            guard t == "yarn" else { throw Failure.unsupported(field: "rope_type", value: t) }
            guard let f = rope["factor"]?.doubleValue, f >= 1 else { throw Failure.invalid(field: "rope_parameters.factor", reason: "must be a number ≥ 1") }
            let orig = rope["original_max_position_embeddings"]?.intValue ?? maxPositions
            guard orig > 0 else { throw Failure.missing(field: "rope_parameters.original_max_position_embeddings") }
            yarn = YaRN(factor: f, originalMaxPositions: orig, betaFast: rope["beta_fast"]?.doubleValue ?? 32,
                        betaSlow: rope["beta_slow"]?.doubleValue ?? 1, mscale: rope["mscale"]?.doubleValue,
                        mscaleAllDim: rope["mscale_all_dim"]?.doubleValue, attentionFactor: rope["attention_factor"]?.doubleValue,
                        truncate: rope["truncate"]?.boolValue ?? true)
        }
        let ropeFields = rope.flatMap { $0.isNull ? nil : ConfigFields($0) }
        ropeTheta = Float(try ropeFields?.value("rope_theta") != nil ? ropeFields!.positive("rope_theta", default: 0) : f.positive("rope_theta", default: 10000))
        guard ropeTheta.isFinite, ropeTheta > 0 else { throw Failure.invalid(field: "rope_theta", reason: "must be a finite number > 0 as a float32") }
        tieWordEmbeddings = try f.bool("tie_word_embeddings", default: false)
        layerTypes = Array(repeating: .fullAttention, count: layers)
        if fam != .gptOss && fam != .museGlimmer && fam != .gemma4 {  // these read attention_bias and sliding_window themselves
            if try f.bool("attention_bias", default: false) { throw Failure.unsupported(field: "attention_bias", value: "true") }
            if try f.bool("mlp_bias", default: false) { throw Failure.unsupported(field: "mlp_bias", value: "true") }
            if let sw = j["sliding_window"], !sw.isNull, j["use_sliding_window"]?.boolValue != false {
                throw Failure.unsupported(field: "sliding_window", value: sw.serialized())
            }
        }
        switch fam {
        case .llama, .mistral: break
        case .mixtral:
            experts = try int("num_local_experts")
            expertsPerToken = try int("num_experts_per_tok")
            expertIntermediateSize = intermediateSize
        case .qwen3MoE:
            experts = try j["num_experts"]?.intValue ?? int("num_local_experts")
            expertsPerToken = try int("num_experts_per_tok")
            expertIntermediateSize = try int("moe_intermediate_size")
            normalizeTopK = j["norm_topk_prob"]?.boolValue ?? false
            qkNorm = true
            let step = j["decoder_sparse_step"]?.intValue ?? 1
            let mlpOnly = Set(j["mlp_only_layers"]?.arrayValue?.compactMap(\.intValue) ?? [])
            denseLayers = Set((0..<layers).filter { mlpOnly.contains($0) || step <= 0 || ($0 + 1) % step != 0 })
            if j["shared_expert_intermediate_size"]?.intValue ?? 0 > 0 {
                throw Failure.unsupported(field: "shared_expert_intermediate_size", value: "> 0")
            }
        case .deepseekV3:
            experts = try int("n_routed_experts")
            expertsPerToken = try int("num_experts_per_tok")
            expertIntermediateSize = try int("moe_intermediate_size")
            normalizeTopK = j["norm_topk_prob"]?.boolValue ?? true
            sharedExperts = j["n_shared_experts"]?.intValue ?? 0
            let groups = j["n_group"]?.intValue ?? 1, topkGroup = j["topk_group"]?.intValue ?? 1
            guard groups > 0, experts % groups == 0, experts / groups >= 2 || groups == 1, topkGroup >= 1, topkGroup <= groups else {
                throw Failure.invalid(field: "n_group", reason: "must divide n_routed_experts into groups of at least 2, with 1 ≤ topk_group ≤ n_group")
            }
            sharedExpertIntermediateSize = expertIntermediateSize * sharedExperts
            try f.require("scoring_func", absentOr: .string("sigmoid"))
            routing = .sigmoidGroupLimited(groups: groups, topkGroup: topkGroup,
                                           routedScalingFactor: Float(try f.positive("routed_scaling_factor", default: 1)))
            let firstDense = j["first_k_dense_replace"]?.intValue ?? 0, freq = max(1, j["moe_layer_freq"]?.intValue ?? 1)
            denseLayers = Set((0..<layers).filter { $0 < firstDense || $0 % freq != 0 })
            let qLora = j["q_lora_rank"].flatMap { $0.isNull ? nil : $0.intValue }
            latentAttention = LatentAttention(qLoraRank: qLora, kvLoraRank: try int("kv_lora_rank"), qkNopeHeadDim: try int("qk_nope_head_dim"),
                                              qkRopeHeadDim: try int("qk_rope_head_dim"), vHeadDim: try int("v_head_dim"),
                                              ropeInterleave: j["rope_interleave"]?.boolValue ?? true)
            headDim = latentAttention!.qkRopeHeadDim
            guard headDim % 2 == 0 else { throw Failure.invalid(field: "qk_rope_head_dim", reason: "must be even") }
            // Multi-token-prediction layers (num_nextn_predict_layers) sit beyond num_hidden_layers and are not part
            // of the next-token forward pass; their tensors are carried through unchanged.
        case .gptOss: try readGptOss(j)
        case .qwen3Next, .qwen3_5MoE: try readQwen3Next(j)
        case .museGlimmer: try readMuse(j)
        case .gemma4: try readGemma4(j)
        }
        // Muse and Gemma 4 read `hidden_activation` themselves.
        if fam != .museGlimmer && fam != .gemma4 { try readActivation(j, key: "hidden_act", default: .silu) }
        if rotaryDim == 0 {
            // Families that rotate part of each head set rotaryDim; for the others only a full rotation is faithful.
            for p in [ropeFields?.value("partial_rotary_factor"), f.value("partial_rotary_factor")].compactMap({ $0 }) where p.doubleValue != 1 {
                throw Failure.unsupported(field: "partial_rotary_factor", value: p.serialized())
            }
            rotaryDim = headDim
        }
        guard expertsPerToken <= experts else { throw Failure.invalid(field: "num_experts_per_tok", reason: "exceeds the number of experts") }
    }

    /// `layer_types` (or the family's pattern `make` when absent): one type per layer among the family's `allowed`
    /// ones (transformers' legacy names remapped); a sliding type needs a positive `sliding_window`
    /// (`defaultWindow` when the field is absent).
    mutating func readLayerTypes(_ j: JSON, allowed: Set<LayerType>, defaultWindow: Int? = nil, default make: (Int) -> LayerType) throws {
        if let v = j["layer_types"], !v.isNull {
            guard let a = v.arrayValue, a.count == layers else {
                throw Failure.invalid(field: "layer_types", reason: "must list one type for each of the \(layers) layers")
            }
            // transformers' remap_legacy_layer_types
            let legacy = ["attention": "full_attention", "mamba": "linear_attention", "conv": "linear_attention"]
            layerTypes = try a.enumerated().map { i, t in
                guard let s = t.stringValue, let lt = LayerType(rawValue: legacy[s] ?? s), allowed.contains(lt) else {
                    throw Failure.unsupported(field: "layer_types[\(i)]", value: t.serialized())
                }
                return lt
            }
        } else {
            layerTypes = (0..<layers).map(make)
        }
        if layerTypes.contains(.slidingAttention) {
            guard let w = j["sliding_window"] == nil ? defaultWindow : j["sliding_window"]!.intValue, w > 0 else {
                throw Failure.invalid(field: "sliding_window", reason: "must be a positive integer when layer_types has sliding_attention")
            }
            slidingWindow = w
        }
    }
}
