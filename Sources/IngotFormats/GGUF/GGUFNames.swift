/// Tensor names as llama.cpp's `convert_hf_to_gguf.py` writes them, and back to Hugging Face names.
///
/// Per-layer tensors are `blk.N.<suffix>`; MoE experts of a layer are stacked into one 3-D tensor per projection
/// (`ffn_gate_exps` `[E, I, H]` in row-major order, i.e. ggml dims `{H, I, E}`).
public enum GGUFNames {
    /// Whole-model tensors: (Hugging Face, GGUF).
    public static let global: [(hf: String, gguf: String)] = [
        ("model.embed_tokens.weight", "token_embd.weight"),
        ("model.norm.weight", "output_norm.weight"),
        ("lm_head.weight", "output.weight"),
    ]

    /// Per-layer tensors: (suffix after `model.layers.N.`, suffix after `blk.N.`).
    public static let layer: [(hf: String, gguf: String)] = [
        ("input_layernorm.weight", "attn_norm.weight"),
        ("post_attention_layernorm.weight", "ffn_norm.weight"),
        ("self_attn.q_proj.weight", "attn_q.weight"),
        ("self_attn.k_proj.weight", "attn_k.weight"),
        ("self_attn.v_proj.weight", "attn_v.weight"),
        ("self_attn.o_proj.weight", "attn_output.weight"),
        ("self_attn.q_norm.weight", "attn_q_norm.weight"),
        ("self_attn.k_norm.weight", "attn_k_norm.weight"),
        ("mlp.gate_proj.weight", "ffn_gate.weight"),
        ("mlp.up_proj.weight", "ffn_up.weight"),
        ("mlp.down_proj.weight", "ffn_down.weight"),
        ("mlp.gate.weight", "ffn_gate_inp.weight"),
        ("block_sparse_moe.gate.weight", "ffn_gate_inp.weight"),
        ("mlp.shared_experts.gate_proj.weight", "ffn_gate_shexp.weight"),
        ("mlp.shared_experts.up_proj.weight", "ffn_up_shexp.weight"),
        ("mlp.shared_experts.down_proj.weight", "ffn_down_shexp.weight"),
        ("self_attn.q_a_proj.weight", "attn_q_a.weight"),
        ("self_attn.q_a_layernorm.weight", "attn_q_a_norm.weight"),
        ("self_attn.q_b_proj.weight", "attn_q_b.weight"),
        ("self_attn.kv_a_proj_with_mqa.weight", "attn_kv_a_mqa.weight"),
        ("self_attn.kv_a_layernorm.weight", "attn_kv_a_norm.weight"),
        ("self_attn.kv_b_proj.weight", "attn_kv_b.weight"),
        ("mlp.gate.e_score_correction_bias", "exp_probs_b.bias"),
    ]

    /// The expert projections: GGUF stacked name suffix, and the Hugging Face per-expert names (Qwen/DeepSeek
    /// `mlp.experts.E.gate_proj`, Mixtral `block_sparse_moe.experts.E.w1`).
    public enum Projection: String, CaseIterable, Sendable {
        case gate, up, down
        public var gguf: String { "ffn_\(rawValue)_exps.weight" }
        public var mixtral: String { switch self { case .gate: "w1"; case .up: "w3"; case .down: "w2" } }
    }

    /// An expert weight of Hugging Face naming: (layer, expert, projection); nil for any other name.
    public static func expert(_ hf: String) -> (layer: Int, expert: Int, projection: Projection)? {
        let p = hf.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        // model.layers.L.mlp.experts.E.gate_proj.weight | model.layers.L.block_sparse_moe.experts.E.w1.weight
        guard p.count == 8, p[0] == "model", p[1] == "layers", let l = Int(p[2]), p[4] == "experts", let e = Int(p[5]), p[7] == "weight"
        else { return nil }
        let proj: Projection? = switch (p[3], p[6]) {
        case ("mlp", "gate_proj"), ("block_sparse_moe", "w1"), ("block_sparse_moe", "gate_proj"): .gate
        case ("mlp", "up_proj"), ("block_sparse_moe", "w3"), ("block_sparse_moe", "up_proj"): .up
        case ("mlp", "down_proj"), ("block_sparse_moe", "w2"), ("block_sparse_moe", "down_proj"): .down
        default: nil
        }
        return proj.map { (l, e, $0) }
    }

    /// The GGUF name of a non-expert Hugging Face tensor; nil when llama.cpp has no such tensor.
    public static func gguf(_ hf: String) -> String? {
        if let g = global.first(where: { $0.hf == hf }) { return g.gguf }
        guard hf.hasPrefix("model.layers.") else { return nil }
        let rest = hf.dropFirst("model.layers.".count)
        guard let dot = rest.firstIndex(of: "."), let l = Int(rest[..<dot]) else { return nil }
        let suffix = String(rest[rest.index(after: dot)...])
        return layer.first { $0.hf == suffix }.map { "blk.\(l).\($0.gguf)" }
    }

    /// A GGUF tensor name split into layer (nil for whole-model tensors) and suffix.
    public static func split(_ gguf: String) -> (layer: Int?, suffix: String) {
        guard gguf.hasPrefix("blk.") else { return (nil, gguf) }
        let rest = gguf.dropFirst(4)
        guard let dot = rest.firstIndex(of: "."), let l = Int(rest[..<dot]) else { return (nil, gguf) }
        return (l, String(rest[rest.index(after: dot)...]))
    }
}
