import IngotCore

/// gpt-oss (`model_type: gpt_oss`, transformers `GptOssConfig`): alternating sliding / full attention with
/// per-head attention sinks and biased q/k/v/o, and an MoE block whose router has a bias (softmax over the top-k
/// logits) and whose experts have biases and a clamped SwiGLU (`alpha` 1.702, `swiglu_limit`).
extension ModelConfig {
    /// transformers' `GptOssExperts.alpha` (a constant there; no config field sets it).
    static let gptOssAlpha: Float = 1.702

    mutating func readGptOss(_ j: JSON) throws {
        func positive(_ k: String) throws -> Int {
            guard let i = j[k]?.intValue, i > 0 else {
                throw j[k] == nil ? Failure.missing(field: k) : Failure.invalid(field: k, reason: "must be a positive integer")
            }
            return i
        }
        experts = try j["num_local_experts"] == nil ? positive("num_experts") : positive("num_local_experts")
        expertsPerToken = try positive("num_experts_per_tok")
        expertIntermediateSize = intermediateSize
        routing = .softmaxOfTopK
        normalizeTopK = false
        expertBias = true
        let limit = j["swiglu_limit"]?.doubleValue ?? 7
        guard limit > 0, limit.isFinite else { throw Failure.invalid(field: "swiglu_limit", reason: "must be a positive number") }
        expertActivation = .clampedSwiGLU(alpha: Self.gptOssAlpha, limit: Float(limit))
        attentionSinks = true
        if let b = j["attention_bias"], !b.isNull {
            guard let v = b.boolValue else { throw Failure.invalid(field: "attention_bias", reason: "must be true or false") }
            attentionBias = v
        } else {
            attentionBias = true
        }
        if j["head_dim"] == nil || j["head_dim"]!.isNull { headDim = 64 }
        rmsNormEps = Float(j["rms_norm_eps"]?.doubleValue ?? 1e-5)
        // Without rope parameters transformers uses gpt-oss's own YaRN (factor 32 over 4096 positions, theta 150000).
        let rope = j["rope_parameters"] ?? j["rope_scaling"]
        if rope == nil || rope!.isNull {
            yarn = YaRN(factor: 32, originalMaxPositions: 4096, betaFast: 32, betaSlow: 1, mscale: nil, mscaleAllDim: nil,
                        attentionFactor: nil, truncate: false)
        }
        ropeTheta = Float(rope?["rope_theta"]?.doubleValue ?? j["rope_theta"]?.doubleValue ?? 150_000)
        try readLayerTypes(j, allowed: [.fullAttention, .slidingAttention], defaultWindow: 128) { $0 % 2 == 0 ? .slidingAttention : .fullAttention }
    }
}

extension ModelConfig {
    /// gpt-oss's AWQ mappings (as llm-compressor linearizes its experts, `GptOssLinearExperts`): the input norm feeds
    /// q, k, v (their biases are not touched by input scaling); v → o where the widths match (v's bias is divided
    /// with its rows: the sink-weighted attention sum is linear per channel); the post-attention norm feeds every
    /// routed expert's gate and up, searched at the MoE output, with the router's columns scaled so its logits (and
    /// bias) are unchanged. Declared absent: up → down, because the clamped SwiGLU clamps and offsets `up`
    /// (`(clamp(up, ±limit) + 1) · glu`), so dividing up's rows does not commute with the activation.
    func gptOssAWQRecipe(layer l: Int) -> AWQLayerRecipe {
        let attention = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"]
        let experts = ["mlp.experts.*.gate_proj", "mlp.experts.*.up_proj"]
        return AWQLayerRecipe(
            mappings: [AWQMapping(smooth: "input_layernorm", balance: attention, inspect: "self_attn"),
                       AWQMapping(smooth: "self_attn.v_proj", balance: ["self_attn.o_proj"], inspect: "self_attn.o_proj", requiresMatchingShapes: true),
                       AWQMapping(smooth: "post_attention_layernorm", balance: experts, scaledOnly: ["mlp.router"], inspect: "mlp")],
            linears: attention + ["self_attn.o_proj"] + experts + ["mlp.experts.*.down_proj"])
    }
}
