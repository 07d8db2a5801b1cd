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

    public var layer: Int
    public var inputNorm: String, postNorm: String
    public var q: String, k: String, v: String, o: String
    public var qNorm: String?, kNorm: String?
    /// MLA layers: these replace q/k/v (which are then empty).
    public var latent: Latent?
    /// Dense MLP (nil in MoE layers).
    public var gate: String?, up: String?, down: String?
    /// MoE router and experts (empty in dense layers).
    public var router: String?
    /// DeepSeek-V3's `e_score_correction_bias`.
    public var routerBias: String?
    public var experts: [Expert] = []
    /// Shared experts (one MLP over every token).
    public var shared: (gate: String, up: String, down: String)?

    public static func == (a: LayerNames, b: LayerNames) -> Bool {
        a.layer == b.layer && a.q == b.q && a.latent == b.latent && a.router == b.router && a.experts == b.experts
            && a.gate == b.gate && a.shared?.gate == b.shared?.gate && a.shared?.down == b.shared?.down
    }

    /// Names for `layer`, choosing among the layouts the checkpoint may use; `has` answers whether a tensor exists.
    public init(config c: ModelConfig, layer l: Int, has: (String) -> Bool) {
        let p = "model.layers.\(l)."
        layer = l
        inputNorm = p + "input_layernorm.weight"
        postNorm = p + "post_attention_layernorm.weight"
        q = p + "self_attn.q_proj.weight"; k = p + "self_attn.k_proj.weight"
        v = p + "self_attn.v_proj.weight"; o = p + "self_attn.o_proj.weight"
        if c.qkNorm { qNorm = p + "self_attn.q_norm.weight"; kNorm = p + "self_attn.k_norm.weight" }
        if let la = c.latentAttention {
            let a = p + "self_attn."
            latent = la.qLoraRank == nil
                ? Latent(q: a + "q_proj.weight", kvA: a + "kv_a_proj_with_mqa.weight", kvANorm: a + "kv_a_layernorm.weight", kvB: a + "kv_b_proj.weight")
                : Latent(qA: a + "q_a_proj.weight", qANorm: a + "q_a_layernorm.weight", qB: a + "q_b_proj.weight",
                         kvA: a + "kv_a_proj_with_mqa.weight", kvANorm: a + "kv_a_layernorm.weight", kvB: a + "kv_b_proj.weight")
            q = ""; k = ""; v = ""
        }
        guard c.isMoE && !c.denseLayers.contains(l) else {
            gate = p + "mlp.gate_proj.weight"; up = p + "mlp.up_proj.weight"; down = p + "mlp.down_proj.weight"
            return
        }
        let mixtral = c.family == .mixtral
        router = mixtral && has(p + "block_sparse_moe.gate.weight") ? p + "block_sparse_moe.gate.weight" : p + "mlp.gate.weight"
        if case .sigmoidGroupLimited = c.routing { routerBias = p + "mlp.gate.e_score_correction_bias" }
        if c.sharedExperts > 0 {
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
