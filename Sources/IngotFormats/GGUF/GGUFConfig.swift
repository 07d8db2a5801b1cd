import IngotCore

/// The Hugging Face `config.json` a GGUF file's metadata describes, for the forward pass (`eval`, `verify`).
///
/// Ingot rebuilds the configuration from the GGUF metadata alone, never from a `config.json` lying beside the
/// file, so that `verify ORIGINAL X.gguf` checks what llama.cpp would run (a file whose metadata disagrees with
/// the original's configuration shows up as a failed gate, not as a silently corrected model). Keys that change
/// the computation and that Ingot cannot reproduce are refused by name.
public enum GGUFConfig {
    /// Architectures (`general.architecture`) Ingot reads.
    public static let architectures = ["llama", "qwen3moe", "deepseek2"]

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
        if arch == "deepseek2" { return try deepseek2(f, int: int(_:required:), num: num) }
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

    /// DeepSeek-V3 (`deepseek_v3`) from llama.cpp's `deepseek2` keys: MLA ranks and head sizes (the key/value
    /// lengths of llama.cpp's multi-query view must be the latent's), leading dense layers, shared experts, sigmoid
    /// routing with its scale, renormalisation and groups, YaRN as llama.cpp computes it.
    static func deepseek2(_ f: GGUFFile, int: (String, Bool) throws -> Int?, num: (String) throws -> Double?) throws -> JSON {
        let a = "deepseek2"
        func bad(_ key: String, _ reason: String) -> GGUFError { .invalidMetadata(file: f.path, key: "\(a).\(key)", reason: reason) }
        func req(_ k: String) throws -> Int { try int(k, true)! }
        func opt(_ k: String) throws -> Int? { try int(k, false) }
        func count(_ k: String) throws -> Int {  // may be 0
            guard let v = f["\(a).\(k)"] else { return 0 }
            guard let i = v.intValue, i >= 0, i <= 1 << 30 else { throw bad(k, "must be a non-negative integer") }
            return i
        }
        let hidden = try req("embedding_length"), heads = try req("attention.head_count"), layers = try req("block_count")
        let kvLora = try req("attention.kv_lora_rank"), rope = try req("rope.dimension_count")
        let keyMLA = try req("attention.key_length_mla"), vMLA = try req("attention.value_length_mla")
        guard keyMLA > rope, rope % 2 == 0 else { throw bad("attention.key_length_mla", "(\(keyMLA)) must exceed an even rope.dimension_count (\(rope))") }
        if let k = try opt("attention.key_length"), k != kvLora + rope { throw bad("attention.key_length", "(\(k)) is not kv_lora_rank + rope dims (\(kvLora + rope))") }
        if let v = try opt("attention.value_length"), v != kvLora { throw bad("attention.value_length", "(\(v)) is not kv_lora_rank (\(kvLora))") }
        if let k = try opt("attention.head_count_kv"), k != 1 { throw bad("attention.head_count_kv", "is \(k); llama.cpp's MLA runs with one latent kv head") }
        guard let g = f["\(a).expert_gating_func"]?.intValue else {
            throw bad("expert_gating_func", "is missing: llama.cpp then routes deepseek2 by softmax, which Ingot's deepseek_v3 (sigmoid) does not run")
        }
        guard g == 2 else { throw bad("expert_gating_func", "is \(g); Ingot runs sigmoid routing (2)") }
        let vocab: Int
        if let v = try opt("vocab_size") { vocab = v }
        else if let e = f.tensor("token_embd.weight"), e.dims.count == 2 { vocab = e.dims[1] }
        else { throw bad("vocab_size", "is missing and there is no token_embd.weight") }
        let groups = try opt("expert_group_count") ?? 1, used = try opt("expert_group_used_count") ?? groups
        let qLora = try count("attention.q_lora_rank")
        var kv: [(key: String, value: JSON)] = [
            ("model_type", .string("deepseek_v3")), ("hidden_size", .int(hidden)), ("num_hidden_layers", .int(layers)),
            ("num_attention_heads", .int(heads)), ("num_key_value_heads", .int(heads)), ("head_dim", .int(rope)),
            ("vocab_size", .int(vocab)), ("rms_norm_eps", .double(try num("attention.layer_norm_rms_epsilon") ?? 1e-6)),
            ("tie_word_embeddings", .bool(f.tensor("output.weight") == nil)),
            ("intermediate_size", .int(try req("feed_forward_length"))), ("moe_intermediate_size", .int(try req("expert_feed_forward_length"))),
            ("n_routed_experts", .int(try req("expert_count"))), ("num_experts_per_tok", .int(try req("expert_used_count"))),
            ("n_shared_experts", .int(try count("expert_shared_count"))), ("first_k_dense_replace", .int(try count("leading_dense_block_count"))),
            ("n_group", .int(groups)), ("topk_group", .int(used)),
            ("norm_topk_prob", .bool(f["\(a).expert_weights_norm"]?.boolValue ?? false)),
            // llama.cpp skips the scaling when the key is absent (or 0).
            ("routed_scaling_factor", .double(f["\(a).expert_weights_scale"]?.doubleValue.flatMap { $0 == 0 ? nil : $0 } ?? 1)),
            ("q_lora_rank", qLora > 0 ? .int(qLora) : .null), ("kv_lora_rank", .int(kvLora)),
            ("qk_nope_head_dim", .int(keyMLA - rope)), ("qk_rope_head_dim", .int(rope)), ("v_head_dim", .int(vMLA)),
            ("rope_interleave", .bool(true)), ("scoring_func", .string("sigmoid")),
        ]
        if let c = try opt("context_length") { kv.append(("max_position_embeddings", .int(c))) }
        var ropeParams: [(key: String, value: JSON)] = [("rope_theta", .double(try num("rope.freq_base") ?? 10000))]
        switch f["\(a).rope.scaling.type"]?.stringValue {
        case nil, "none": ropeParams.append(("rope_type", .string("default")))
        case "yarn":
            guard let factor = try num("rope.scaling.factor"), let orig = try opt("rope.scaling.original_context_length") else {
                throw bad("rope.scaling.factor", "and rope.scaling.original_context_length are required for YaRN")
            }
            if f["\(a).rope.scaling.yarn_ext_factor"] != nil || f["\(a).rope.scaling.yarn_attn_factor"] != nil || f["\(a).rope.scaling.attn_factor"] != nil {
                throw bad("rope.scaling.yarn_ext_factor", "(or an attention factor) is set; Ingot runs YaRN with the computed ones")
            }
            ropeParams += [("rope_type", .string("yarn")), ("factor", .double(factor)), ("original_max_position_embeddings", .int(orig)),
                           ("beta_fast", .double(try num("rope.scaling.yarn_beta_fast") ?? 32)), ("beta_slow", .double(try num("rope.scaling.yarn_beta_slow") ?? 1))]
            // llama.cpp divides the stored 0.1·mscale_all_dim by 0.1 in float, and takes mscale = mscale_all_dim
            // when that is not 1, else 1 (llama-context.cpp).
            guard let m = f["\(a).rope.scaling.yarn_log_multiplier"]?.doubleValue, m > 0, m.isFinite else {
                throw bad("rope.scaling.yarn_log_multiplier", "must be a positive number for YaRN (Ingot runs llama.cpp's deepseek2 YaRN only with mscale_all_dim)")
            }
            let all = Double(Float(m) / Float(0.1))
            ropeParams += [("mscale_all_dim", .double(all)), ("mscale", .double(all != 1 ? all : 1))]
        case let t?: throw bad("rope.scaling.type", "is '\(t)'; Ingot runs unscaled RoPE or YaRN for deepseek2")
        }
        kv.append(("rope_parameters", .object(ropeParams)))
        return .object(kv)
    }
}
