import IngotCore

/// The architecture facts the reference forward pass needs, parsed from a Hugging Face `config.json`.
///
/// Supported `model_type`s: `llama`, `mistral`, `mixtral`, `qwen3_moe`. Anything else, and any option this
/// implementation does not handle (rope scaling types other than `default`, sliding windows, attention bias),
/// is a clear error naming it.
public struct ModelConfig: Sendable, Equatable {
    public enum Family: String, Sendable { case llama, mistral, mixtral, qwen3MoE = "qwen3_moe" }

    public var family: Family
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var intermediateSize: Int
    public var vocabSize: Int
    public var rmsNormEps: Float
    public var ropeTheta: Float
    public var tieWordEmbeddings: Bool
    /// MoE: routed experts, experts per token, expert intermediate size, renormalise the top-k weights.
    public var experts: Int = 0
    public var expertsPerToken: Int = 0
    public var expertIntermediateSize: Int = 0
    public var normalizeTopK = true
    /// Qwen3: RMSNorm over each head of q and k before RoPE.
    public var qkNorm = false
    /// Qwen3-MoE: layers that use a dense MLP instead of experts.
    public var denseLayers: Set<Int> = []

    public var isMoE: Bool { experts > 0 }

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case unsupported(field: String, value: String)
        case missing(field: String)
        case invalid(field: String, reason: String)

        public var description: String {
            switch self {
            case let .unsupported(f, v): "config.json: \(f) = \(v) is not supported"
            case let .missing(f): "config.json: required field '\(f)' is missing"
            case let .invalid(f, r): "config.json: \(f) \(r)"
            }
        }
    }

    public static func load(directory: String) throws -> ModelConfig {
        let json: JSON
        do { json = try JSON.parse(FileSystem.read(directory + "/config.json"), rejectDuplicateKeys: false) } catch let e as JSONError {
            throw Failure.invalid(field: "config.json", reason: "is not valid JSON (\(e))")
        }
        return try ModelConfig(json: json)
    }

    public init(json j: JSON) throws {
        func int(_ k: String) throws -> Int {
            guard let v = j[k] else { throw Failure.missing(field: k) }
            guard let i = v.intValue, i > 0 else { throw Failure.invalid(field: k, reason: "must be a positive integer") }
            return i
        }
        guard let type = j["model_type"]?.stringValue else { throw Failure.missing(field: "model_type") }
        guard let fam = Family(rawValue: type) else { throw Failure.unsupported(field: "model_type", value: type) }
        family = fam
        hiddenSize = try int("hidden_size")
        layers = try int("num_hidden_layers")
        heads = try int("num_attention_heads")
        kvHeads = j["num_key_value_heads"]?.intValue ?? heads
        guard kvHeads > 0, heads % kvHeads == 0 else { throw Failure.invalid(field: "num_key_value_heads", reason: "must divide num_attention_heads") }
        headDim = j["head_dim"]?.intValue ?? hiddenSize / heads
        guard headDim > 0, headDim % 2 == 0 else { throw Failure.invalid(field: "head_dim", reason: "must be a positive even number") }
        intermediateSize = try int("intermediate_size")
        vocabSize = try int("vocab_size")
        rmsNormEps = Float(j["rms_norm_eps"]?.doubleValue ?? 1e-6)
        let rope = j["rope_parameters"] ?? j["rope_scaling"]
        if let rope, !rope.isNull, let t = rope["rope_type"]?.stringValue ?? rope["type"]?.stringValue, t != "default" {
            throw Failure.unsupported(field: "rope_type", value: t)
        }
        ropeTheta = Float(rope?["rope_theta"]?.doubleValue ?? j["rope_theta"]?.doubleValue ?? 10000)
        tieWordEmbeddings = j["tie_word_embeddings"]?.boolValue ?? false
        if j["attention_bias"]?.boolValue == true { throw Failure.unsupported(field: "attention_bias", value: "true") }
        if let sw = j["sliding_window"], !sw.isNull, j["use_sliding_window"]?.boolValue != false {
            throw Failure.unsupported(field: "sliding_window", value: sw.serialized())
        }
        switch fam {
        case .llama, .mistral: break
        case .mixtral:
            experts = try int("num_local_experts")
            expertsPerToken = try int("num_experts_per_tok")
            expertIntermediateSize = intermediateSize
        case .qwen3MoE:
            experts = try j["num_experts"]?.intValue ?? int("num_local_experts")
            expertsPerToken = try int("num_experts_per_tok")
            expertIntermediateSize = try int("moe_intermediate_size")
            normalizeTopK = j["norm_topk_prob"]?.boolValue ?? false
            qkNorm = true
            let step = j["decoder_sparse_step"]?.intValue ?? 1
            let mlpOnly = Set(j["mlp_only_layers"]?.arrayValue?.compactMap(\.intValue) ?? [])
            denseLayers = Set((0..<layers).filter { mlpOnly.contains($0) || step <= 0 || ($0 + 1) % step != 0 })
            if j["shared_expert_intermediate_size"]?.intValue ?? 0 > 0 {
                throw Failure.unsupported(field: "shared_expert_intermediate_size", value: "> 0")
            }
        }
        guard expertsPerToken <= experts else { throw Failure.invalid(field: "num_experts_per_tok", reason: "exceeds the number of experts") }
    }
}
