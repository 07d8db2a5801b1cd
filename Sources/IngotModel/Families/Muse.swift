import IngotCore

/// Muse (`model_type: muse_glimmer`, transformers `MuseGlimmerForConditionalGeneration`, read as its text decoder
/// `text_config` / `model.language_model.*`): sliding-window and full-attention layers, each with rotary or none
/// (`layer_rope_theta` 0), gated attention (`self_attn.gate_proj`), scaleless QK-norm with q times
/// `qk_scale_factor`, centered `(1 + w)` sandwich norms (the post-attention and post-FFN ones with `post_norm_eps`),
/// a weightless norm on the embeddings, logits times `output_multiplier` then soft-capped.
extension ModelConfig {
    mutating func readMuse(_ j: JSON) throws {
        func number(_ k: String, default d: Double) throws -> Float {
            guard let v = j[k], !v.isNull else { return Float(d) }
            guard let x = v.doubleValue, x.isFinite else { throw Failure.invalid(field: k, reason: "must be a finite number") }
            return Float(x)
        }
        func positive(_ k: String, default d: Double) throws -> Float {
            let x = try number(k, default: d)
            guard x > 0 else { throw Failure.invalid(field: k, reason: "must be a positive number") }
            return x
        }
        // MuseGlimmerTextConfig's defaults where the generic reader's differ.
        if j["num_key_value_heads"] == nil {
            kvHeads = 2
            guard heads % kvHeads == 0 else { throw Failure.invalid(field: "num_key_value_heads", reason: "must divide num_attention_heads") }
        }
        if j["head_dim"] == nil { headDim = 128 }
        if j["rms_norm_eps"] == nil { rmsNormEps = 1e-5 }
        if let a = j["attention_bias"], !a.isNull {
            guard let b = a.boolValue else { throw Failure.invalid(field: "attention_bias", reason: "must be true or false") }
            attentionBias = b
        }
        try readActivation(j, key: "hidden_activation", default: .silu)
        sandwichNorms = true
        normWeightOffset = 1
        plainFinalNorm = true
        postNormEps = try positive("post_norm_eps", default: 1e-8)
        embeddingNorm = true
        scalelessQKNorm = true
        queryScale = try number("qk_scale_factor", default: 3.87)
        attentionGate = true
        outputMultiplier = try number("output_multiplier", default: 0.19611613513818404)
        // transformers divides by it unconditionally: null or 0 is not a model it can run.
        if let v = j["final_logit_softcapping"], v.isNull { throw Failure.invalid(field: "final_logit_softcapping", reason: "must be a positive number") }
        finalLogitSoftcap = try positive("final_logit_softcapping", default: 20)
        let n = layers
        try readLayerTypes(j, allowed: [.fullAttention, .slidingAttention], defaultWindow: 2048) { (n - 1 - $0) % 4 == 0 ? .fullAttention : .slidingAttention }
        // transformers passes the one global rotary table to every layer whose theta is nonzero: a per-layer theta
        // other than 0 or the global one would be silently ignored there, so it is refused here.
        let rope = defaultRotaryMarker
        if let v = j["layer_rope_theta"], !v.isNull {
            guard let a = v.arrayValue, a.count == layers else {
                throw Failure.invalid(field: "layer_rope_theta", reason: "must list one theta for each of the \(layers) layers")
            }
            rotaries = try a.map { t in
                guard let x = t.doubleValue, x.isFinite else { throw Failure.invalid(field: "layer_rope_theta", reason: "must hold numbers") }
                if x == 0 { return nil }
                guard Float(x) == ropeTheta else {
                    throw Failure.unsupported(field: "layer_rope_theta", value: "\(x) (transformers rotates every non-zero layer with rope_theta \(ropeTheta))")
                }
                return rope
            }
        } else {
            rotaries = (0..<layers).map { (n - 1 - $0) % 4 == 0 ? nil : rope }
        }
    }

    /// Stands for "this layer uses the model's default rotary" in `rotaries` (resolved by the forward pass, which
    /// owns the rope math): dim 0 and no frequencies.
    public var defaultRotaryMarker: Rotary { Rotary(dim: 0, inverseFrequencies: []) }

    /// `hidden_act` / `hidden_activation`: one of the activations the forward pass computes.
    mutating func readActivation(_ j: JSON, key: String, default d: Activation) throws {
        guard let v = j[key], !v.isNull else { activation = d; return }
        guard let s = v.stringValue, let a = Activation(rawValue: s) else { throw Failure.unsupported(field: key, value: v.serialized()) }
        activation = a
    }
}
