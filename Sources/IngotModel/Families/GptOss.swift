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
