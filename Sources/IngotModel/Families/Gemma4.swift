import Foundation
import IngotCore

/// What Gemma 4 adds to a decoder layer beyond the shared options.
public struct Gemma4Options: Sendable, Equatable {
    /// Per-layer embeddings (`embed_tokens_per_layer`, `hidden_size_per_layer_input`; 0 = none) and their vocabulary.
    public var perLayerInputSize = 0
    public var perLayerVocabSize = 0
    /// kv-shared layers: layer → the earlier layer whose (normed, rotated) k and v it attends with.
    public var kvSource: [Int: Int] = [:]
    /// `attention_k_eq_v`: full-attention layers have no v_proj; v is k_proj's output (before k_norm), v-normed.
    public var keyIsValue = false
    /// Layers whose MLP is `2 × intermediate_size` wide (`use_double_wide_mlp` on kv-shared layers).
    public var doubleWideLayers: Set<Int> = []
}

/// Gemma 4 (`model_type: gemma4_text`, transformers `Gemma4ForCausalLM`; or `gemma4`, `Gemma4ForConditionalGeneration`
/// read as its text decoder `text_config` / `model.language_model.*`): sliding and full attention with their own rope (full: "proportional", rotating only
/// `partial_rotary_factor` of the dims), head dim and kv heads (`per_layer_config`, or `global_head_dim` /
/// `num_global_key_value_heads`); q/k norms with weights, a weightless v norm, attention scale 1; four plain
/// RMSNorms per layer; embeddings times √hidden; per-layer embeddings; kv sharing; k = v; double-wide MLPs; an MoE
/// block beside the MLP; a per-layer `layer_scalar`; final logit soft-capping.
extension ModelConfig {
    mutating func readGemma4(_ j: JSON) throws {
        func int(_ k: String, default d: Int) throws -> Int {
            guard let v = j[k], !v.isNull else { return d }
            guard let i = v.intValue, i >= 0 else { throw Failure.invalid(field: k, reason: "must be a non-negative integer") }
            return i
        }
        func bool(_ k: String) throws -> Bool {
            guard let v = j[k], !v.isNull else { return false }
            guard let b = v.boolValue else { throw Failure.invalid(field: k, reason: "must be true or false") }
            return b
        }
        // Gemma4TextConfig's defaults where the generic reader's differ.
        if j["num_key_value_heads"] == nil {
            kvHeads = 4
            guard heads % kvHeads == 0 else { throw Failure.invalid(field: "num_key_value_heads", reason: "must divide num_attention_heads") }
        }
        if j["head_dim"] == nil { headDim = 256 }
        if j["tie_word_embeddings"] == nil { tieWordEmbeddings = true }  // (the outer config's flag wins in `gemma4`)
        if let a = j["attention_bias"], !a.isNull {
            guard let b = a.boolValue else { throw Failure.invalid(field: "attention_bias", reason: "must be true or false") }
            attentionBias = b
        }
        if let b = j["use_bidirectional_attention"], !b.isNull, b.stringValue != "vision" {
            // "vision" only changes the mask between image tokens; "all" makes text attention bidirectional.
            throw Failure.unsupported(field: "use_bidirectional_attention", value: b.serialized())
        }
        try readActivation(j, key: "hidden_activation", default: .geluTanh)
        sandwichNorms = true
        embeddingScale = Float(hiddenSize).squareRoot()
        valueNorm = true
        attentionScale = 1
        if let v = j["final_logit_softcapping"], !v.isNull {
            guard let x = v.doubleValue, x > 0, x.isFinite else { throw Failure.invalid(field: "final_logit_softcapping", reason: "must be a positive number or null") }
            finalLogitSoftcap = Float(x)
        }
        guard let w = j["sliding_window"] == nil ? 512 : j["sliding_window"]!.intValue, w > 0 else {
            throw Failure.invalid(field: "sliding_window", reason: "must be a positive integer")
        }
        try readLayerTypes(j, allowed: [.fullAttention, .slidingAttention], defaultWindow: w) { ($0 + 1) % 6 == 0 ? .fullAttention : .slidingAttention }
        // transformers forces the last layer to full attention (with a warning); so does Ingot.
        layerTypes[layers - 1] = .fullAttention
        if layerTypes.contains(.slidingAttention) { slidingWindow = w }

        var g = Gemma4Options()
        g.keyIsValue = try bool("attention_k_eq_v")
        // Per-layer head dim / kv heads: saved `per_layer_config`, else derived as transformers does.
        if let p = j["per_layer_config"], !p.isNull {
            guard let o = p.objectValue else { throw Failure.invalid(field: "per_layer_config", reason: "must be an object") }
            for (key, v) in o {
                guard let l = Int(key), l >= 0, l < layers, let ov = v.objectValue else {
                    throw Failure.invalid(field: "per_layer_config", reason: "has key \"\(key)\" that is not a layer index with an object")
                }
                for (f, x) in ov {
                    guard let i = x.intValue, i > 0 else { throw Failure.invalid(field: "per_layer_config.\(key).\(f)", reason: "must be a positive integer") }
                    switch f {
                    case "head_dim": layerHeadDims[l] = i
                    case "num_key_value_heads": layerKVHeads[l] = i
                    default: throw Failure.unsupported(field: "per_layer_config.\(key).\(f)", value: x.serialized())
                    }
                }
            }
        } else {
            let global = try int("global_head_dim", default: 512)
            let globalKV = j["num_global_key_value_heads"].flatMap { $0.isNull ? nil : $0 }
            for l in 0..<layers where layerTypes[l] == .fullAttention {
                layerHeadDims[l] = global
                if g.keyIsValue, let kv = globalKV {
                    guard let i = kv.intValue, i > 0 else { throw Failure.invalid(field: "num_global_key_value_heads", reason: "must be a positive integer") }
                    layerKVHeads[l] = i
                }
            }
        }
        for l in 0..<layers {
            let d = headDim(layer: l), kv = kvHeads(layer: l)
            guard d > 0, d % 2 == 0 else { throw Failure.invalid(field: "head_dim", reason: "of layer \(l) must be a positive even number") }
            guard heads % kv == 0 else { throw Failure.invalid(field: "num_key_value_heads", reason: "of layer \(l) must divide num_attention_heads") }
        }
        // Rope per layer type: {"sliding_attention": {...}, "full_attention": {...}} (transformers' defaults if null).
        let rope = j["rope_parameters"].flatMap { $0.isNull ? nil : $0 }
        if rope != nil && rope!.objectValue == nil { throw Failure.invalid(field: "rope_parameters", reason: "must be an object keyed by layer type") }
        var byType: [LayerType: [Rotary]] = [:]
        for t in Set(layerTypes) {
            let key = "rope_parameters.\(t.rawValue)"
            let defaults: [String: Double] = t == .slidingAttention ? ["rope_theta": 10_000] : ["rope_theta": 1_000_000, "partial_rotary_factor": 0.25]
            let p: JSON? = rope == nil ? nil : rope![t.rawValue]
            if rope != nil && (p == nil || p!.isNull) { throw Failure.missing(field: key) }
            let kind = rope == nil ? (t == .slidingAttention ? "default" : "proportional") : (p!["rope_type"]?.stringValue ?? "default")
            func value(_ f: String, _ d: Double) throws -> Double {
                guard let p, let v = p[f], !v.isNull else { return rope == nil ? (defaults[f] ?? d) : d }
                guard let x = v.doubleValue, x.isFinite, x > 0 else { throw Failure.invalid(field: key + "." + f, reason: "must be a positive number") }
                return x
            }
            let known: Set<String> = kind == "proportional" ? ["rope_type", "rope_theta", "partial_rotary_factor", "factor"] : ["rope_type", "rope_theta"]
            guard kind == "default" || kind == "proportional" else { throw Failure.unsupported(field: key + ".rope_type", value: kind) }
            for f in p?.objectValue?.map(\.0) ?? [] where !known.contains(f) {
                throw Failure.unsupported(field: key + "." + f, value: p![f]!.serialized())
            }
            let theta = try value("rope_theta", 10_000), partial = try value("partial_rotary_factor", 1), factor = try value("factor", 1)
            guard partial <= 1 else { throw Failure.invalid(field: key + ".partial_rotary_factor", reason: "must be at most 1") }
            byType[t] = try (0..<layers).filter { layerTypes[$0] == t }.map { l in
                let d = headDim(layer: l)
                // transformers builds one table per layer type from the first layer of that type.
                let first = layerTypes.firstIndex(of: t)!
                guard d == headDim(layer: first) else {
                    throw Failure.unsupported(field: "per_layer_config", value: "different head_dim within \(t.rawValue) layers")
                }
                let angles = kind == "proportional" ? Int((partial * Double(d) / 2).rounded(.down)) : d / 2
                let inv = (0..<(d / 2)).map { i -> Float in
                    guard i < angles else { return 0 }
                    return 1 / powf(Float(theta), Float(2 * i) / Float(d)) / Float(factor)
                }
                return Rotary(dim: d, inverseFrequencies: inv)
            }
        }
        var next: [LayerType: Int] = [:]
        rotaries = layerTypes.map { t in
            defer { next[t, default: 0] += 1 }
            return byType[t]![next[t, default: 0]]
        }

        // Per-layer embeddings.
        g.perLayerInputSize = try int("hidden_size_per_layer_input", default: 256)
        if g.perLayerInputSize > 0 {
            g.perLayerVocabSize = try int("vocab_size_per_layer_input", default: 262_144)
            guard g.perLayerVocabSize > 0 else { throw Failure.invalid(field: "vocab_size_per_layer_input", reason: "must be a positive integer") }
        }
        // kv sharing: the last `num_kv_shared_layers` layers reuse the last earlier layer of their type.
        let shared = try int("num_kv_shared_layers", default: 0)
        guard shared < layers else { throw Failure.invalid(field: "num_kv_shared_layers", reason: "must be less than num_hidden_layers") }
        let firstShared = layers - shared
        if shared > 0 {
            for l in firstShared..<layers {
                guard let src = (0..<firstShared).last(where: { layerTypes[$0] == layerTypes[l] }) else {
                    throw Failure.invalid(field: "num_kv_shared_layers", reason: "leaves layer \(l) (\(layerTypes[l].rawValue)) no earlier layer of its type to share")
                }
                guard headDim(layer: src) == headDim(layer: l), kvHeads(layer: src) == kvHeads(layer: l) else {
                    throw Failure.unsupported(field: "num_kv_shared_layers", value: "layer \(l) sharing kv of layer \(src) with another head shape")
                }
                g.kvSource[l] = src
            }
            if try bool("use_double_wide_mlp") { g.doubleWideLayers = Set(firstShared..<layers) }
        }
        // The MoE block beside the MLP.
        if try bool("enable_moe_block") {
            func required(_ k: String) throws -> Int {
                guard let v = j[k], !v.isNull else { throw Failure.missing(field: k) }
                guard let i = v.intValue, i > 0 else { throw Failure.invalid(field: k, reason: "must be a positive integer") }
                return i
            }
            experts = try required("num_experts")
            expertsPerToken = try required("top_k_experts")
            expertIntermediateSize = try required("moe_intermediate_size")
            routing = .gemma4
        }
        gemma4 = g
    }

    /// The dense MLP's width in layer `l`.
    public func intermediateSize(layer l: Int) -> Int {
        gemma4?.doubleWideLayers.contains(l) == true ? 2 * intermediateSize : intermediateSize
    }
}

extension ModelConfig {
    /// Gemma 4's AWQ mappings. Its four layer norms are plain RMSNorms (`x·w`, no `1 + w`), so they fold a scale as
    /// `w / s`.
    /// - input_layernorm → the attention's projections the layer has: q, k, v; q and k in k = v layers; q alone in
    ///   kv-shared layers (their k/v come from an earlier layer, whose own search covers them).
    /// - pre_feedforward_layernorm → the dense MLP's gate and up, loss at the dense MLP's output (the experts beside
    ///   it read another norm); up → down.
    /// - MoE layers: pre_feedforward_layernorm_2 → every expert's gate and up, loss at the MoE block's output with
    ///   the routing fixed. The router reads the residual stream through its own weightless norm, not this norm's
    ///   output, so it needs no compensating scale. Expert up → down per expert, on its own tokens.
    /// Declared absent: v → o, because v is RMS-normed per head before attention (`v_norm`), which undoes any
    /// per-channel scale of v's rows; and the per-layer input's linears (per_layer_input_gate reads the residual
    /// stream with no norm before it; per_layer_projection reads `act(gate) ⊙ per-layer input`, after a nonlinearity).
    /// o_proj and the per-layer input's linears are still quantized (plain AWQ clip, GPTQ).
    func gemma4AWQRecipe(layer l: Int) -> AWQLayerRecipe {
        guard let g = gemma4 else { return AWQLayerRecipe(mappings: [], linears: []) }
        var attention = ["self_attn.q_proj"]
        if g.kvSource[l] == nil {
            attention.append("self_attn.k_proj")
            if !(g.keyIsValue && layerType(l) == .fullAttention) { attention.append("self_attn.v_proj") }
        }
        var m = [AWQMapping(smooth: "input_layernorm", balance: attention, inspect: "self_attn"),
                 AWQMapping(smooth: "pre_feedforward_layernorm", balance: ["mlp.gate_proj", "mlp.up_proj"], inspect: "mlp"),
                 AWQMapping(smooth: "mlp.up_proj", balance: ["mlp.down_proj"], inspect: "mlp.down_proj")]
        var linears = attention + ["self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
        if isMoE {
            m.append(AWQMapping(smooth: "pre_feedforward_layernorm_2", balance: ["mlp.experts.*.gate_proj", "mlp.experts.*.up_proj"],
                                inspect: "mlp.experts"))
            m.append(AWQMapping(smooth: "mlp.experts.*.up_proj", balance: ["mlp.experts.*.down_proj"], inspect: "mlp.experts.*.down_proj"))
            linears += ["mlp.experts.*.gate_proj", "mlp.experts.*.up_proj", "mlp.experts.*.down_proj"]
        }
        if g.perLayerInputSize > 0 { linears += ["per_layer_input_gate", "per_layer_projection"] }
        return AWQLayerRecipe(mappings: m, linears: linears)
    }
}
