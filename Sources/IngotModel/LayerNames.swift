/// Checkpoint tensor names of one decoder layer, by role. Resolved against the checkpoint's own names because
/// the same architecture is saved several ways (Mixtral `w1/w3/w2`, llm-compressor's renamed Mixtral experts,
/// transformers 5's fused 3-D expert tensors).
public struct LayerNames: Sendable, Equatable {
    /// Where one expert's gate, up and down weights live.
    public enum Expert: Sendable, Equatable {
        /// Three 2-D tensors `[I, H]`, `[I, H]`, `[H, I]`.
        case separate(gate: String, up: String, down: String)
        /// Slice `index` of `gate_up_proj [E, 2I, H]` (gate rows first) and `down_proj [E, H, I]`.
        case fused(gateUp: String, down: String, index: Int)
        /// gpt-oss: slice `index` of `gate_up_proj [E, H, 2I]` (inputs first; gate and up interleaved, gate at even
        /// columns) and `down_proj [E, I, H]`.
        case fusedTransposed(gateUp: String, down: String, index: Int)

        /// The 2-D weight names, when the expert has its own tensors.
        public var separateNames: (gate: String, up: String, down: String)? {
            if case let .separate(g, u, d) = self { return (g, u, d) }
            return nil
        }
    }

    /// DeepSeek multi-head latent attention.
    public struct Latent: Sendable, Equatable {
        /// `q_a_proj`, `q_a_layernorm`, `q_b_proj` with a q LoRA rank; else only `q_proj`.
        public var qA: String?, qANorm: String?, qB: String?, q: String?
        public var kvA: String, kvANorm: String, kvB: String
    }

    /// Where one expert's biases live (gpt-oss).
    public enum ExpertBias: Sendable, Equatable {
        /// Three 1-D tensors `[I]`, `[I]`, `[H]`.
        case separate(gate: String, up: String, down: String)
        /// Row `index` of `gate_up_proj_bias [E, 2I]` (gate and up interleaved) and `down_proj_bias [E, H]`.
        case fusedInterleaved(gateUp: String, down: String, index: Int)
    }

    /// Gated DeltaNet linear attention (`linear_attn.*`).
    public struct LinearAttention: Sendable, Equatable {
        public enum Projections: Sendable, Equatable {
            /// Qwen3-Next: `in_proj_qkvz`, `in_proj_ba` (grouped per key head).
            case fused(qkvz: String, ba: String)
            /// Qwen3.5: `in_proj_qkv`, `in_proj_z`, `in_proj_b`, `in_proj_a`.
            case split(qkv: String, z: String, b: String, a: String)
        }
        public var projections: Projections
        /// Depthwise causal conv `[conv_dim, 1, kernel]`, state parameters `A_log` and `dt_bias` `[value heads]`,
        /// the gated RMSNorm `[value head dim]`, out_proj.
        public var conv: String, aLog: String, dtBias: String, norm: String, out: String

        /// The linears reading the input norm's output: the large ones (q, k, v, z) and the small per-head
        /// decay / write-strength ones (b, a).
        public var inputLinears: (large: [String], small: [String]) {
            switch projections {
            case let .fused(qkvz, ba): ([qkvz], [ba])
            case let .split(qkv, z, b, a): ([qkv, z], [b, a])
            }
        }
    }

    /// Gemma 4's extras.
    public struct Gemma4: Sendable, Equatable {
        /// Per-layer input: `per_layer_input_gate`, `per_layer_projection`, `post_per_layer_input_norm`.
        public var perLayerGate: String?, perLayerProjection: String?, perLayerNorm: String?
        /// `layer_scalar` `[1]`.
        public var layerScalar: String
        /// MoE beside the MLP: `router.scale`, `router.per_expert_scale`, `pre_feedforward_layernorm_2` (experts'
        /// input), `post_feedforward_layernorm_1` (MLP output), `post_feedforward_layernorm_2` (experts' output).
        public var routerScale: String?, routerExpertScale: String?
        public var preExpertNorm: String?, postMLPNorm: String?, postExpertNorm: String?
    }

    public var layer: Int
    /// `postNorm` is the norm whose output feeds the MLP (`post_attention_layernorm`, or with sandwich norms
    /// `pre_feedforward_layernorm`).
    public var inputNorm: String, postNorm: String
    /// Sandwich norms on the attention and MLP outputs.
    public var attentionOutputNorm: String?, mlpOutputNorm: String?
    /// Muse's attention output gate `self_attn.gate_proj`.
    public var attentionGate: String?
    public var gemma4: Gemma4?
    public var q: String, k: String, v: String, o: String
    /// Attention biases (`attention_bias`).
    public var qBias: String?, kBias: String?, vBias: String?, oBias: String?
    /// gpt-oss: one sink logit per head (`self_attn.sinks [heads]`).
    public var sinks: String?
    public var qNorm: String?, kNorm: String?
    /// MLA layers: these replace q/k/v (which are then empty).
    public var latent: Latent?
    /// Linear-attention layers: these replace q/k/v/o and the q/k norms (which are then empty / nil).
    public var linearAttention: LinearAttention?
    /// Dense MLP (nil in MoE layers).
    public var gate: String?, up: String?, down: String?
    /// MoE router and experts (empty in dense layers).
    public var router: String?
    /// DeepSeek-V3's `e_score_correction_bias`.
    public var routerBias: String?
    public var experts: [Expert] = []
    /// Per-expert biases (empty unless the config has expert biases).
    public var expertBiases: [ExpertBias] = []
    /// Shared experts (one MLP over every token).
    public var shared: (gate: String, up: String, down: String)?
    /// Qwen3-Next's `shared_expert_gate` `[1, hidden]`: the shared expert's output × sigmoid(gate·x).
    public var sharedGate: String?

    public static func == (a: LayerNames, b: LayerNames) -> Bool {
        a.layer == b.layer && a.q == b.q && a.latent == b.latent && a.linearAttention == b.linearAttention && a.router == b.router
            && a.experts == b.experts && a.gate == b.gate && a.shared?.gate == b.shared?.gate && a.shared?.down == b.shared?.down
            && a.sharedGate == b.sharedGate
    }

    /// Names for `layer`, choosing among the layouts the checkpoint may use; `has` answers whether a tensor exists.
    public init(config c: ModelConfig, layer l: Int, has: (String) -> Bool) {
        let p = c.weightPrefix + "layers.\(l)."
        layer = l
        inputNorm = p + "input_layernorm.weight"
        postNorm = p + "post_attention_layernorm.weight"
        q = p + "self_attn.q_proj.weight"; k = p + "self_attn.k_proj.weight"
        v = p + "self_attn.v_proj.weight"; o = p + "self_attn.o_proj.weight"
        if c.qkNorm { qNorm = p + "self_attn.q_norm.weight"; kNorm = p + "self_attn.k_norm.weight" }
        if c.attentionBias {
            qBias = p + "self_attn.q_proj.bias"; kBias = p + "self_attn.k_proj.bias"
            vBias = p + "self_attn.v_proj.bias"; oBias = p + "self_attn.o_proj.bias"
        }
        if c.sandwichNorms {
            postNorm = p + "pre_feedforward_layernorm.weight"
            attentionOutputNorm = p + "post_attention_layernorm.weight"
            mlpOutputNorm = p + "post_feedforward_layernorm.weight"
        }
        if c.attentionGate { attentionGate = p + "self_attn.gate_proj.weight" }
        if let g = c.gemma4 {
            qNorm = p + "self_attn.q_norm.weight"; kNorm = p + "self_attn.k_norm.weight"
            if g.kvSource[l] != nil {  // k and v come from an earlier layer
                k = ""; v = ""; kNorm = nil; kBias = nil; vBias = nil
            } else if g.keyIsValue && c.layerType(l) == .fullAttention {
                v = ""; vBias = nil
            }
            var e = Gemma4(layerScalar: p + "layer_scalar")
            if g.perLayerInputSize > 0 {
                e.perLayerGate = p + "per_layer_input_gate.weight"; e.perLayerProjection = p + "per_layer_projection.weight"
                e.perLayerNorm = p + "post_per_layer_input_norm.weight"
            }
            gate = p + "mlp.gate_proj.weight"; up = p + "mlp.up_proj.weight"; down = p + "mlp.down_proj.weight"
            if c.isMoE {
                router = p + "router.proj.weight"
                e.routerScale = p + "router.scale"; e.routerExpertScale = p + "router.per_expert_scale"
                e.preExpertNorm = p + "pre_feedforward_layernorm_2.weight"; e.postMLPNorm = p + "post_feedforward_layernorm_1.weight"
                e.postExpertNorm = p + "post_feedforward_layernorm_2.weight"
                experts = (0..<c.experts).map { x in
                    let q = p + "experts.\(x)."
                    if has(q + "gate_proj.weight") {
                        return .separate(gate: q + "gate_proj.weight", up: q + "up_proj.weight", down: q + "down_proj.weight")
                    }
                    return .fused(gateUp: p + "experts.gate_up_proj", down: p + "experts.down_proj", index: x)
                }
            }
            gemma4 = e
            return
        }
        if c.attentionSinks { sinks = p + "self_attn.sinks" }
        if let la = c.latentAttention {
            let a = p + "self_attn."
            latent = la.qLoraRank == nil
                ? Latent(q: a + "q_proj.weight", kvA: a + "kv_a_proj_with_mqa.weight", kvANorm: a + "kv_a_layernorm.weight", kvB: a + "kv_b_proj.weight")
                : Latent(qA: a + "q_a_proj.weight", qANorm: a + "q_a_layernorm.weight", qB: a + "q_b_proj.weight",
                         kvA: a + "kv_a_proj_with_mqa.weight", kvANorm: a + "kv_a_layernorm.weight", kvB: a + "kv_b_proj.weight")
            q = ""; k = ""; v = ""
        }
        if c.layerType(l) == .linearAttention, let la = c.linearAttention {
            let a = p + "linear_attn."
            linearAttention = LinearAttention(
                projections: la.projections == .fused
                    ? .fused(qkvz: a + "in_proj_qkvz.weight", ba: a + "in_proj_ba.weight")
                    : .split(qkv: a + "in_proj_qkv.weight", z: a + "in_proj_z.weight", b: a + "in_proj_b.weight", a: a + "in_proj_a.weight"),
                conv: a + "conv1d.weight", aLog: a + "A_log", dtBias: a + "dt_bias", norm: a + "norm.weight", out: a + "out_proj.weight")
            q = ""; k = ""; v = ""; o = ""; qNorm = nil; kNorm = nil
        }
        guard c.isMoE && !c.denseLayers.contains(l) else {
            gate = p + "mlp.gate_proj.weight"; up = p + "mlp.up_proj.weight"; down = p + "mlp.down_proj.weight"
            return
        }
        if c.family == .gptOss {
            router = p + "mlp.router.weight"
            routerBias = p + "mlp.router.bias"
            let m = p + "mlp.experts."
            for e in 0..<c.experts {
                let x = m + "\(e)."
                if has(x + "gate_proj.weight") {  // llm-compressor's linearized experts (and Ingot's exports)
                    experts.append(.separate(gate: x + "gate_proj.weight", up: x + "up_proj.weight", down: x + "down_proj.weight"))
                    expertBiases.append(.separate(gate: x + "gate_proj.bias", up: x + "up_proj.bias", down: x + "down_proj.bias"))
                } else {
                    experts.append(.fusedTransposed(gateUp: m + "gate_up_proj", down: m + "down_proj", index: e))
                    expertBiases.append(.fusedInterleaved(gateUp: m + "gate_up_proj_bias", down: m + "down_proj_bias", index: e))
                }
            }
            return
        }
        let mixtral = c.family == .mixtral
        router = mixtral && has(p + "block_sparse_moe.gate.weight") ? p + "block_sparse_moe.gate.weight" : p + "mlp.gate.weight"
        if case .sigmoidGroupLimited = c.routing { routerBias = p + "mlp.gate.e_score_correction_bias" }
        if c.sharedExpertGate {
            shared = (p + "mlp.shared_expert.gate_proj.weight", p + "mlp.shared_expert.up_proj.weight", p + "mlp.shared_expert.down_proj.weight")
            sharedGate = p + "mlp.shared_expert_gate.weight"
        } else if c.sharedExperts > 0 {
            shared = (p + "mlp.shared_experts.gate_proj.weight", p + "mlp.shared_experts.up_proj.weight", p + "mlp.shared_experts.down_proj.weight")
        }
        experts = (0..<c.experts).map { e in
            let m = p + "block_sparse_moe.experts.\(e)."
            if mixtral, has(m + "w1.weight") {
                return .separate(gate: m + "w1.weight", up: m + "w3.weight", down: m + "w2.weight")
            }
            if mixtral, has(m + "gate_proj.weight") {  // llm-compressor's renamed Mixtral experts
                return .separate(gate: m + "gate_proj.weight", up: m + "up_proj.weight", down: m + "down_proj.weight")
            }
            let q = p + "mlp.experts.\(e)."
            if has(q + "gate_proj.weight") {
                return .separate(gate: q + "gate_proj.weight", up: q + "up_proj.weight", down: q + "down_proj.weight")
            }
            return .fused(gateUp: p + "mlp.experts.gate_up_proj", down: p + "mlp.experts.down_proj", index: e)
        }
    }

    public var isMoE: Bool { !experts.isEmpty }
}

extension ModelConfig {
    /// The token embedding, final norm and output head of the text decoder.
    public var embedTokensName: String { weightPrefix + "embed_tokens.weight" }
    public var finalNormName: String { weightPrefix + "norm.weight" }
    public var lmHeadName: String { "lm_head.weight" }
}

/// Where a module's weight lives in the checkpoint: a whole tensor, or (fused 3-D experts) a contiguous run of it.
public struct TensorRef: Sendable, Hashable {
    public var name: String
    /// First element and element count of the slice; nil for the whole tensor.
    public var slice: Range<Int>?
    public init(name: String, slice: Range<Int>? = nil) {
        self.name = name
        self.slice = slice
    }
}

extension LayerNames {
    /// The bias of linear `module` (attention biases, gpt-oss's per-expert biases), nil when it has none.
    /// `addressable` is false when the bias exists but is not a contiguous run of one tensor (gpt-oss's interleaved
    /// `gate_up_proj_bias`), so no per-row transform can be applied to it in place.
    public func bias(module: String, expert: Int? = nil, config c: ModelConfig) -> (ref: TensorRef?, addressable: Bool) {
        func named(_ n: String?) -> (TensorRef?, Bool) { (n.map { TensorRef(name: $0) }, true) }
        if module.hasPrefix("mlp.experts.*.") {
            guard let e = expert, e >= 0, e < expertBiases.count else { return (nil, true) }
            let part = module.dropFirst("mlp.experts.*.".count)
            switch expertBiases[e] {
            case let .separate(g, u, d):
                switch part {
                case "gate_proj": return named(g)
                case "up_proj": return named(u)
                case "down_proj": return named(d)
                default: return (nil, true)
                }
            case let .fusedInterleaved(_, d, x):
                switch part {
                case "gate_proj", "up_proj": return (nil, false)
                case "down_proj": return (TensorRef(name: d, slice: (x * c.hiddenSize)..<((x + 1) * c.hiddenSize)), true)
                default: return (nil, true)
                }
            }
        }
        switch module {
        case "self_attn.q_proj": return named(qBias)
        case "self_attn.k_proj": return named(kBias)
        case "self_attn.v_proj": return named(vBias)
        case "self_attn.o_proj": return named(oBias)
        default: return (nil, true)
        }
    }

    /// The tensor holding the weight of `module` (a path under the decoder layer in transformers' naming, e.g.
    /// `self_attn.q_proj`, `mlp.gate`, `mlp.experts.*.up_proj` with `expert` given), or nil when this layer has no
    /// such module. `config` gives the fused slices' sizes.
    public func tensor(module: String, expert: Int? = nil, config c: ModelConfig) -> TensorRef? {
        func whole(_ n: String?) -> TensorRef? { n.flatMap { $0.isEmpty ? nil : TensorRef(name: $0) } }
        if module.hasPrefix("mlp.experts.*.") {
            guard let e = expert, e >= 0, e < experts.count else { return nil }
            let part = module.dropFirst("mlp.experts.*.".count)
            switch experts[e] {
            case let .separate(g, u, d):
                switch part {
                case "gate_proj": return TensorRef(name: g)
                case "up_proj": return TensorRef(name: u)
                case "down_proj": return TensorRef(name: d)
                default: return nil
                }
            case let .fused(gu, d, x):
                let i = c.expertIntermediateSize, h = c.hiddenSize, base = x * 2 * i * h
                switch part {
                case "gate_proj": return TensorRef(name: gu, slice: base..<(base + i * h))
                case "up_proj": return TensorRef(name: gu, slice: (base + i * h)..<(base + 2 * i * h))
                case "down_proj": return TensorRef(name: d, slice: (x * h * i)..<((x + 1) * h * i))
                default: return nil
                }
            case .fusedTransposed:
                return nil  // interleaved columns: no expert's weight is a contiguous run of the tensor
            }
        }
        switch module {
        case "input_layernorm": return whole(inputNorm)
        case "post_attention_layernorm": return whole(attentionOutputNorm ?? postNorm)
        case "pre_feedforward_layernorm": return attentionOutputNorm == nil ? nil : whole(postNorm)
        case "self_attn.gate_proj": return whole(attentionGate)
        case "self_attn.q_proj": return whole(latent.map { $0.q } ?? q)
        case "self_attn.k_proj": return whole(k)
        case "self_attn.v_proj": return whole(v)
        case "self_attn.o_proj": return whole(o)
        case "self_attn.q_a_proj": return whole(latent?.qA)
        case "self_attn.q_a_layernorm": return whole(latent?.qANorm)
        case "self_attn.q_b_proj": return whole(latent?.qB)
        case "self_attn.kv_a_proj_with_mqa": return whole(latent?.kvA)
        case "self_attn.kv_a_layernorm": return whole(latent?.kvANorm)
        case "self_attn.kv_b_proj": return whole(latent?.kvB)
        case "mlp.gate_proj": return whole(gate)
        case "mlp.up_proj": return whole(up)
        case "mlp.down_proj": return whole(down)
        case "mlp.gate", "mlp.router": return whole(router)
        case "mlp.shared_experts.gate_proj": return whole(shared?.gate)
        case "mlp.shared_experts.up_proj": return whole(shared?.up)
        case "mlp.shared_experts.down_proj": return whole(shared?.down)
        case "mlp.shared_expert.gate_proj": return whole(shared?.gate)
        case "mlp.shared_expert.up_proj": return whole(shared?.up)
        case "mlp.shared_expert.down_proj": return whole(shared?.down)
        case "mlp.shared_expert_gate": return whole(sharedGate)
        case "pre_feedforward_layernorm_2": return whole(gemma4?.preExpertNorm)
        case "per_layer_input_gate": return whole(gemma4?.perLayerGate)
        case "per_layer_projection": return whole(gemma4?.perLayerProjection)
        default: break
        }
        guard let la = linearAttention else { return nil }
        switch (module, la.projections) {
        case let ("linear_attn.in_proj_qkvz", .fused(qkvz, _)): return whole(qkvz)
        case let ("linear_attn.in_proj_ba", .fused(_, ba)): return whole(ba)
        case let ("linear_attn.in_proj_qkv", .split(qkv, _, _, _)): return whole(qkv)
        case let ("linear_attn.in_proj_z", .split(_, z, _, _)): return whole(z)
        case let ("linear_attn.in_proj_b", .split(_, _, b, _)): return whole(b)
        case let ("linear_attn.in_proj_a", .split(_, _, _, a)): return whole(a)
        case ("linear_attn.out_proj", _): return whole(la.out)
        default: return nil
        }
    }
}
