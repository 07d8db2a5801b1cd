/// AWQ's smoothing mappings of a decoder layer, as data (AutoAWQ `awq/models/*.py`, llm-compressor
/// `AWQ_MAPPING_REGISTRY` / `_moe_default_mappings` / `_deepseek_mappings`). The search engine
/// (`IngotQuant/AWQ`) runs whatever a family declares here and names no family itself.
///
/// A mapping divides the smoothing op's output channels by a scale `s` and multiplies the balance layers' input
/// columns by `s`: the function is unchanged, and the balance weights become easier to quantize.
///
/// Modules are named by their path under the decoder layer in transformers' naming (`input_layernorm`,
/// `self_attn.q_proj`, `mlp.experts.*.up_proj`); `*` stands for each routed expert. `LayerNames.tensor(module:expert:)`
/// turns a path into the checkpoint's tensor, whatever layout the checkpoint uses (Mixtral `w1/w3/w2`, fused 3-D
/// experts). A block path (`self_attn`, `mlp`) names a whole block, evaluated by the forward pass.
public struct AWQMapping: Sendable, Equatable {
    /// The op whose output channels absorb `1/s`: a norm (`(w + normOffset) / s − normOffset`) or a linear (its last
    /// `s.count` output rows, which covers fused qkv).
    public var smooth: String
    /// The norm computes `x·(w + normOffset)`: 0 for Llama-style RMSNorm, 1 for Gemma-style.
    public var normOffset: Float = 0
    /// Linears whose input columns absorb `s` and are quantized with it.
    public var balance: [String]
    /// Linears whose input columns absorb `s` but stay in full precision, so their outputs are unchanged (MoE
    /// routers, shared-expert gates; llm-compressor PR #2451).
    public var scaledOnly: [String] = []
    /// Where the search loss (MSE against full precision) is measured: a block of the layer (`self_attn`, `mlp`,
    /// routing included) or the balance linear itself. A path with `*` makes the mapping per expert: searched once
    /// for each routed expert on that expert's own tokens.
    public var inspect: String
    /// Applies only when the smoothing op's output width equals the balance layers' input width (v → o without
    /// GQA; llm-awq PR #67). A mapping whose widths differ without this flag is a declaration error, reported.
    public var requiresMatchingShapes = false

    public init(smooth: String, normOffset: Float = 0, balance: [String], scaledOnly: [String] = [], inspect: String,
                requiresMatchingShapes: Bool = false) {
        self.smooth = smooth
        self.normOffset = normOffset
        self.balance = balance
        self.scaledOnly = scaledOnly
        self.inspect = inspect
        self.requiresMatchingShapes = requiresMatchingShapes
    }

    /// Searched once per routed expert.
    public var perExpert: Bool { inspect.contains("*") }

    /// Name as llm-compressor logs it: `smooth → balance,…`.
    public var label: String { smooth + " → " + (scaledOnly + balance).joined(separator: ",") }

    /// Module paths that are expert-wise (`*`) templates.
    public static func isExpertTemplate(_ module: String) -> Bool { module.contains("*") }
}

/// What AWQ does to one decoder layer: its mappings in search order, and every linear that is quantized (each
/// gets the clip search unless `clipSkipped`).
public struct AWQLayerRecipe: Sendable, Equatable {
    public var mappings: [AWQMapping]
    public var linears: [String]

    public init(mappings: [AWQMapping], linears: [String]) {
        self.mappings = mappings
        self.linears = linears
    }

    /// AutoAWQ's clip search skips query and key projections (their error is amplified by the softmax): names
    /// whose last component starts with `q_` or `k_`.
    public static func clipSkipped(_ module: String) -> Bool {
        let last = module.split(separator: ".").last.map(String.init) ?? module
        return last.hasPrefix("q_") || last.hasPrefix("k_")
    }
}

extension ModelConfig {
    /// The AWQ recipe of `layer`; empty mappings when this family declares none (AWQ then refuses it by name).
    public func awqRecipe(layer: Int) -> AWQLayerRecipe {
        if family == .qwen3Next || family == .qwen3_5MoE { return qwen3NextAWQRecipe(layer: layer) }
        if family == .gptOss { return gptOssAWQRecipe(layer: layer) }
        if gemma4 != nil { return gemma4AWQRecipe(layer: layer) }
        var m: [AWQMapping] = []
        var linears: [String] = []
        if attentionGate {
            // Muse (llm-compressor's default mappings with the gate and sandwich norms): the centred (1 + w) input
            // norm feeds q, k, v and the output gate; v → o holds through the gate (it scales channels, as
            // sigmoid(gate) multiplies them); pre_feedforward_layernorm feeds the MLP. The norms on the attention
            // and MLP outputs come after the inspected blocks and are not smoothing ops.
            m = [AWQMapping(smooth: "input_layernorm", normOffset: normWeightOffset,
                            balance: ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.gate_proj"], inspect: "self_attn"),
                 AWQMapping(smooth: "self_attn.v_proj", balance: ["self_attn.o_proj"], inspect: "self_attn.o_proj", requiresMatchingShapes: true),
                 AWQMapping(smooth: "pre_feedforward_layernorm", normOffset: normWeightOffset, balance: ["mlp.gate_proj", "mlp.up_proj"], inspect: "mlp"),
                 AWQMapping(smooth: "mlp.up_proj", balance: ["mlp.down_proj"], inspect: "mlp.down_proj")]
            linears = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.gate_proj", "self_attn.o_proj",
                       "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
            return AWQLayerRecipe(mappings: m, linears: linears)
        }
        if let la = latentAttention {
            // DeepSeek MLA (AutoAWQ deepseek_v3.py, llm-compressor _deepseek_mappings): no v → o mapping.
            let first = la.qLoraRank == nil ? "self_attn.q_proj" : "self_attn.q_a_proj"
            m.append(AWQMapping(smooth: "input_layernorm", balance: [first, "self_attn.kv_a_proj_with_mqa"], inspect: "self_attn"))
            if la.qLoraRank != nil {
                m.append(AWQMapping(smooth: "self_attn.q_a_layernorm", balance: ["self_attn.q_b_proj"], inspect: "self_attn.q_b_proj"))
            }
            m.append(AWQMapping(smooth: "self_attn.kv_a_layernorm", balance: ["self_attn.kv_b_proj"], inspect: "self_attn.kv_b_proj"))
            linears = [first, "self_attn.kv_a_proj_with_mqa"] + (la.qLoraRank != nil ? ["self_attn.q_b_proj"] : [])
                + ["self_attn.kv_b_proj", "self_attn.o_proj"]
        } else {
            m.append(AWQMapping(smooth: "input_layernorm", balance: ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], inspect: "self_attn"))
            m.append(AWQMapping(smooth: "self_attn.v_proj", balance: ["self_attn.o_proj"], inspect: "self_attn.o_proj", requiresMatchingShapes: true))
            linears = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"]
        }
        if isMoE && !denseLayers.contains(layer) {
            let shared = sharedExperts > 0 ? ["mlp.shared_experts.gate_proj", "mlp.shared_experts.up_proj"] : []
            // One gate/up scale for every expert (and the shared expert), searched at the MoE output with routing;
            // the router's columns take it too, so it sees the same logits.
            m.append(AWQMapping(smooth: "post_attention_layernorm", balance: ["mlp.experts.*.gate_proj", "mlp.experts.*.up_proj"] + shared,
                                scaledOnly: ["mlp.gate"], inspect: "mlp"))
            m.append(AWQMapping(smooth: "mlp.experts.*.up_proj", balance: ["mlp.experts.*.down_proj"], inspect: "mlp.experts.*.down_proj"))
            linears += ["mlp.experts.*.gate_proj", "mlp.experts.*.up_proj", "mlp.experts.*.down_proj"]
            if sharedExperts > 0 {
                m.append(AWQMapping(smooth: "mlp.shared_experts.up_proj", balance: ["mlp.shared_experts.down_proj"],
                                    inspect: "mlp.shared_experts.down_proj"))
                linears += shared + ["mlp.shared_experts.down_proj"]
            }
        } else {
            m.append(AWQMapping(smooth: "post_attention_layernorm", balance: ["mlp.gate_proj", "mlp.up_proj"], inspect: "mlp"))
            m.append(AWQMapping(smooth: "mlp.up_proj", balance: ["mlp.down_proj"], inspect: "mlp.down_proj"))
            linears += ["mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
        }
        return AWQLayerRecipe(mappings: m, linears: linears)
    }
}
