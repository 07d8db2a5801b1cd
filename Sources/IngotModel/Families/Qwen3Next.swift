import IngotCore

extension ModelConfig {
    /// Qwen3-Next (`qwen3_next`) and the Qwen3.5-MoE text decoder (`qwen3_5_moe` / `qwen3_5_moe_text`), as
    /// transformers 5.17 computes them: layers of Gated DeltaNet linear attention or gated full attention
    /// (`layer_types`, else every `full_attention_interval`-th layer is full), zero-centred `(1 + w)` RMSNorms
    /// (input, post-attention, q/k and final norms; the DeltaNet's gated norm is plain `w`), partial rotary
    /// embeddings, and MoE with one shared expert scaled by sigmoid(`shared_expert_gate`). Qwen3-Next may have
    /// dense layers (`decoder_sparse_step`, `mlp_only_layers`, `num_experts` 0); Qwen3.5-MoE is MoE in every layer
    /// with renormalised top-k. Defaults are transformers' for absent fields; values it would compute differently
    /// from this implementation are refused by name.
    mutating func readQwen3Next(_ j: JSON) throws {
        /// A dimension: absent → transformers' default; present → an integer in 1…2^24.
        func dim(_ k: String, default d: Int, allowZero: Bool = false) throws -> Int {
            guard let v = j[k] else { return d }
            guard let i = v.intValue, i >= (allowZero ? 0 : 1), i <= 1 << 24 else {
                throw Failure.invalid(field: k, reason: "must be an integer in \(allowZero ? 0 : 1)…\(1 << 24)")
            }
            return i
        }
        let next = family == .qwen3Next
        if let act = j["hidden_act"], act.stringValue != "silu" {
            // Also the conv activation of the linear-attention layers.
            throw Failure.unsupported(field: "hidden_act", value: act.serialized())
        }
        headDim = try dim("head_dim", default: 256)
        guard headDim % 2 == 0 else { throw Failure.invalid(field: "head_dim", reason: "must be even") }
        kvHeads = try dim("num_key_value_heads", default: 2)
        guard heads % kvHeads == 0 else { throw Failure.invalid(field: "num_key_value_heads", reason: "must divide num_attention_heads") }
        if let g = j["attn_output_gate"], g.boolValue != true {
            // transformers always gates; vLLM honours false. Refuse rather than pick one.
            throw Failure.unsupported(field: "attn_output_gate", value: g.serialized())
        }
        attentionOutputGate = .inQueryProjection
        qkNorm = true
        normWeightOffset = 1

        // Rotary: default rope on the first partial_rotary_factor × head_dim dims (rope_parameters wins over the
        // top-level field, default 0.25); mrope sections (Qwen3.5) rotate text positions identically.
        if yarn != nil { throw Failure.unsupported(field: "rope_parameters.rope_type", value: "\"yarn\"") }
        let rope = j["rope_parameters"].flatMap { $0.isNull ? nil : $0 } ?? j["rope_scaling"].flatMap { $0.isNull ? nil : $0 }
        var known: Set<String> = ["rope_type", "type", "rope_theta", "partial_rotary_factor"]
        if !next { known.formUnion(["mrope_section", "mrope_interleaved"]) }
        if let rope {
            guard let entries = rope.objectValue else { throw Failure.invalid(field: "rope_parameters", reason: "must be an object") }
            for (k, v) in entries where !known.contains(k) { throw Failure.unsupported(field: "rope_parameters." + k, value: v.serialized()) }
            if let s = rope["mrope_section"], s.arrayValue?.allSatisfy({ ($0.intValue ?? -1) >= 0 }) != true {
                throw Failure.invalid(field: "rope_parameters.mrope_section", reason: "must be a list of non-negative integers")
            }
        }
        let factorJSON = rope?["partial_rotary_factor"] ?? j["partial_rotary_factor"]
        let factor = factorJSON.map { $0.doubleValue } ?? 0.25
        guard let factor, factor > 0, factor <= 1 else {
            throw Failure.invalid(field: "partial_rotary_factor", reason: "must be a number in (0, 1]")
        }
        rotaryDim = Int(Double(headDim) * factor)  // Python's int() truncation
        guard rotaryDim >= 2, rotaryDim % 2 == 0 else {
            throw Failure.invalid(field: "partial_rotary_factor", reason: "gives \(rotaryDim) rotary dims of head_dim \(headDim); must be even and ≥ 2")
        }

        // Layer types: layer_types, else every full_attention_interval-th layer is full attention.
        let interval = try dim("full_attention_interval", default: 4)
        try readLayerTypes(j, allowed: [.fullAttention, .linearAttention]) { ($0 + 1) % interval == 0 ? .fullAttention : .linearAttention }
        linearAttention = GatedDeltaNet(keyHeads: try dim("linear_num_key_heads", default: 16), valueHeads: try dim("linear_num_value_heads", default: 32),
                                        keyHeadDim: try dim("linear_key_head_dim", default: 128), valueHeadDim: try dim("linear_value_head_dim", default: 128),
                                        convKernel: try dim("linear_conv_kernel_dim", default: 4), projections: next ? .fused : .split)
        if let la = linearAttention, la.valueHeads % la.keyHeads != 0 {
            throw Failure.invalid(field: "linear_num_value_heads", reason: "must be a multiple of linear_num_key_heads")
        }

        // Mixture of experts with one gated shared expert.
        experts = try dim("num_experts", default: next ? 512 : 256, allowZero: next)
        if experts > 0 {
            expertsPerToken = try dim("num_experts_per_tok", default: next ? 10 : 8)
            expertIntermediateSize = try dim("moe_intermediate_size", default: 512)
            sharedExpertIntermediateSize = try dim("shared_expert_intermediate_size", default: 512, allowZero: true)
            sharedExpertGate = sharedExpertIntermediateSize > 0
            sharedExperts = sharedExpertIntermediateSize > 0 ? 1 : 0
        }
        if next {
            // Qwen3NextDecoderLayer: MoE where the layer is not in mlp_only_layers and (i + 1) % decoder_sparse_step == 0.
            intermediateSize = try dim("intermediate_size", default: 5632)
            if let v = j["norm_topk_prob"], !v.isNull {
                guard let b = v.boolValue else { throw Failure.invalid(field: "norm_topk_prob", reason: "must be true or false") }
                normalizeTopK = b
            } else {
                normalizeTopK = true
            }
            let step = try dim("decoder_sparse_step", default: 1)
            var mlpOnly = Set<Int>()
            if let m = j["mlp_only_layers"], !m.isNull {
                guard let list = m.arrayValue else { throw Failure.invalid(field: "mlp_only_layers", reason: "must be a list of layer indices") }
                for v in list {
                    guard let i = v.intValue else { throw Failure.invalid(field: "mlp_only_layers", reason: "must be a list of layer indices") }
                    mlpOnly.insert(i)
                }
            }
            denseLayers = experts == 0 ? Set(0..<layers) : Set((0..<layers).filter { mlpOnly.contains($0) || ($0 + 1) % step != 0 })
        } else {
            // Qwen3.5-MoE: every layer MoE, top-k always renormalised (its config has no such options).
            normalizeTopK = true
        }
    }
}

extension ModelConfig {
    /// AWQ for Qwen3-Next / Qwen3.5-MoE, by layer type; the zero-centred norms fold a scale as `(1 + w)/s − 1`.
    /// - Linear attention: input_layernorm → in_proj_qkvz (Qwen3.5: in_proj_qkv, in_proj_z), with the decay
    ///   projections in_proj_ba (in_proj_b, in_proj_a) scaled but kept in full precision; loss at the block output.
    ///   Absent: a mapping into out_proj. Its input is RMSNorm(o)·w ⊙ silu(z) per value head: the gated norm's
    ///   weight is one value per head dim shared by every head, and silu(z) is not linear, so no op can absorb a
    ///   per-column scale of out_proj.
    /// - Gated full attention: input_layernorm → q_proj (query and gate rows), k_proj, v_proj; v → o without GQA
    ///   holds, the sigmoid gate multiplying each channel after attention (`attn(v/s)·σ(g) = attn(v)·σ(g)/s`).
    /// - MoE: post_attention_layernorm → every expert's and the shared expert's gate/up, with the router and
    ///   shared_expert_gate scaled only (routing and the shared expert's weight unchanged); expert up → down per
    ///   expert on its own tokens; shared up → down. Dense layers (Qwen3-Next): post norm → gate/up; up → down.
    func qwen3NextAWQRecipe(layer l: Int) -> AWQLayerRecipe {
        let off = normWeightOffset
        var m: [AWQMapping] = [], linears: [String] = []
        if layerType(l) == .linearAttention, let la = linearAttention {
            let (large, small) = la.projections == .fused
                ? (["linear_attn.in_proj_qkvz"], ["linear_attn.in_proj_ba"])
                : (["linear_attn.in_proj_qkv", "linear_attn.in_proj_z"], ["linear_attn.in_proj_b", "linear_attn.in_proj_a"])
            m.append(AWQMapping(smooth: "input_layernorm", normOffset: off, balance: large, scaledOnly: small, inspect: "linear_attn"))
            linears = large + ["linear_attn.out_proj"]
        } else {
            m.append(AWQMapping(smooth: "input_layernorm", normOffset: off, balance: ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
                                inspect: "self_attn"))
            m.append(AWQMapping(smooth: "self_attn.v_proj", balance: ["self_attn.o_proj"], inspect: "self_attn.o_proj", requiresMatchingShapes: true))
            linears = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"]
        }
        if isMoE && !denseLayers.contains(l) {
            let shared = sharedExpertGate ? ["mlp.shared_expert.gate_proj", "mlp.shared_expert.up_proj"] : []
            m.append(AWQMapping(smooth: "post_attention_layernorm", normOffset: off, balance: ["mlp.experts.*.gate_proj", "mlp.experts.*.up_proj"] + shared,
                                scaledOnly: ["mlp.gate"] + (sharedExpertGate ? ["mlp.shared_expert_gate"] : []), inspect: "mlp"))
            m.append(AWQMapping(smooth: "mlp.experts.*.up_proj", balance: ["mlp.experts.*.down_proj"], inspect: "mlp.experts.*.down_proj"))
            linears += ["mlp.experts.*.gate_proj", "mlp.experts.*.up_proj", "mlp.experts.*.down_proj"]
            if sharedExpertGate {
                m.append(AWQMapping(smooth: "mlp.shared_expert.up_proj", balance: ["mlp.shared_expert.down_proj"], inspect: "mlp.shared_expert.down_proj"))
                linears += shared + ["mlp.shared_expert.down_proj"]
            }
        } else {
            m.append(AWQMapping(smooth: "post_attention_layernorm", normOffset: off, balance: ["mlp.gate_proj", "mlp.up_proj"], inspect: "mlp"))
            m.append(AWQMapping(smooth: "mlp.up_proj", balance: ["mlp.down_proj"], inspect: "mlp.down_proj"))
            linears += ["mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
        }
        return AWQLayerRecipe(mappings: m, linears: linears)
    }
}
