import IngotCore

/// The Hugging Face `config.json` a GGUF file's metadata describes, for the forward pass (`eval`, `verify`).
///
/// Ingot rebuilds the configuration from the GGUF metadata alone, never from a `config.json` lying beside the
/// file, so that `verify ORIGINAL X.gguf` checks what llama.cpp would run (a file whose metadata disagrees with
/// the original's configuration shows up as a failed gate, not as a silently corrected model). Keys that change
/// the computation and that Ingot cannot reproduce are refused by name.
public enum GGUFConfig {
    /// Architectures (`general.architecture`) Ingot reads.
    public static let architectures = ["llama", "qwen3moe"]

    public static func configJSON(_ f: GGUFFile) throws -> JSON {
        func bad(_ key: String, _ reason: String) -> GGUFError { .invalidMetadata(file: f.path, key: key, reason: reason) }
        guard let arch = f["general.architecture"]?.stringValue else { throw bad("general.architecture", "is missing") }
        guard architectures.contains(arch) else {
            throw bad("general.architecture", "is '\(arch)'; Ingot runs \(architectures.joined(separator: ", "))")
        }
        func int(_ k: String, required: Bool = true) throws -> Int? {
            guard let v = f["\(arch).\(k)"] else {
                if required { throw bad("\(arch).\(k)", "is missing") }
                return nil
            }
            guard let i = v.intValue, i > 0, i <= 1 << 30 else { throw bad("\(arch).\(k)", "must be a positive integer") }
            return i
        }
        func num(_ k: String) throws -> Double? {
            guard let v = f["\(arch).\(k)"] else { return nil }
            guard let d = v.doubleValue, d.isFinite, d > 0 else { throw bad("\(arch).\(k)", "must be a positive number") }
            return d
        }
        if let t = f["\(arch).rope.scaling.type"]?.stringValue, t != "none" {
            throw bad("\(arch).rope.scaling.type", "is '\(t)'; Ingot runs unscaled RoPE for \(arch)")
        }
        if f.tensor("rope_freqs.weight") != nil { throw bad("rope_freqs.weight", "(llama3 rope scaling) is not supported") }
        let hidden = try int("embedding_length")!, heads = try int("attention.head_count")!
        let kvHeads = try int("attention.head_count_kv", required: false) ?? heads
        let headDim = try int("attention.key_length", required: false) ?? hidden / heads
        if let v = try int("attention.value_length", required: false), v != headDim {
            throw bad("\(arch).attention.value_length", "(\(v)) differs from the key length (\(headDim))")
        }
        if let r = try int("rope.dimension_count", required: false), r != headDim {
            throw bad("\(arch).rope.dimension_count", "(\(r)) is not the head size (\(headDim)): partial RoPE is not supported")
        }
        let vocab: Int
        if let v = try int("vocab_size", required: false) { vocab = v }
        else if let e = f.tensor("token_embd.weight"), e.dims.count == 2 { vocab = e.dims[1] }
        else { throw bad("\(arch).vocab_size", "is missing and there is no token_embd.weight") }
        var kv: [(key: String, value: JSON)] = []
        let experts = try int("expert_count", required: false) ?? 0
        let modelType = arch == "qwen3moe" ? "qwen3_moe" : experts > 0 ? "mixtral" : "llama"
        kv.append(("model_type", .string(modelType)))
        kv.append(("hidden_size", .int(hidden)))
        kv.append(("num_hidden_layers", .int(try int("block_count")!)))
        kv.append(("num_attention_heads", .int(heads)))
        kv.append(("num_key_value_heads", .int(kvHeads)))
        kv.append(("head_dim", .int(headDim)))
        kv.append(("vocab_size", .int(vocab)))
        kv.append(("rms_norm_eps", .double(try num("attention.layer_norm_rms_epsilon") ?? 1e-5)))
        kv.append(("rope_theta", .double(try num("rope.freq_base") ?? 10000)))
        if let c = try int("context_length", required: false) { kv.append(("max_position_embeddings", .int(c))) }
        kv.append(("tie_word_embeddings", .bool(f.tensor("output.weight") == nil)))
        switch modelType {
        case "qwen3_moe":
            guard experts > 0 else { throw bad("qwen3moe.expert_count", "is missing") }
            kv.append(("intermediate_size", .int(try int("feed_forward_length", required: false) ?? int("expert_feed_forward_length")!)))
            kv.append(("num_experts", .int(experts)))
            kv.append(("num_experts_per_tok", .int(try int("expert_used_count")!)))
            kv.append(("moe_intermediate_size", .int(try int("expert_feed_forward_length")!)))
            // llama.cpp's qwen3moe graph always renormalises the top-k weights.
            kv.append(("norm_topk_prob", .bool(true)))
        case "mixtral":
            kv.append(("intermediate_size", .int(try int("feed_forward_length")!)))
            kv.append(("num_local_experts", .int(experts)))
            kv.append(("num_experts_per_tok", .int(try int("expert_used_count")!)))
        default:
            kv.append(("intermediate_size", .int(try int("feed_forward_length")!)))
        }
        return .object(kv)
    }
}
