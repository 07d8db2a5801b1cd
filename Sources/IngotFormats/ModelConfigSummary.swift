import IngotCore

/// The headline facts of a `config.json`, read tolerantly (any field may be missing) for display.
public struct ModelConfigSummary: Sendable, Equatable {
    public var modelType: String?
    public var architectures: [String] = []
    public var layers: Int?
    public var hiddenSize: Int?
    public var intermediateSize: Int?
    public var heads: Int?
    public var kvHeads: Int?
    public var vocabSize: Int?
    public var experts: Int?
    public var expertsPerToken: Int?
    public var sharedExperts: Int?
    public var torchDtype: String?
    public var quantMethod: String?

    /// Reads `config.json` from `directory`; nil when there is none.
    public static func load(directory: String) throws -> ModelConfigSummary? {
        let p = directory + "/config.json"
        guard FileSystem.exists(p) else { return nil }
        return ModelConfigSummary(json: try JSON.parseFile(p, rejectDuplicateKeys: false))
    }

    public init(json: JSON) {
        // Multimodal configs (Qwen3.5-MoE, Muse) keep the text decoder's fields in `text_config`.
        let text = json["text_config"].flatMap { $0.objectValue != nil ? $0 : nil }
        func int(_ keys: String...) -> Int? {
            keys.lazy.compactMap { json[$0]?.intValue }.first ?? keys.lazy.compactMap { text?[$0]?.intValue }.first
        }
        modelType = json["model_type"]?.stringValue
        architectures = json["architectures"]?.arrayValue?.compactMap(\.stringValue) ?? []
        layers = int("num_hidden_layers", "n_layer")
        hiddenSize = int("hidden_size", "n_embd")
        intermediateSize = int("intermediate_size")
        heads = int("num_attention_heads", "n_head")
        kvHeads = int("num_key_value_heads")
        vocabSize = int("vocab_size")
        experts = int("num_local_experts", "num_experts", "n_routed_experts")
        expertsPerToken = int("num_experts_per_tok")
        sharedExperts = int("n_shared_experts")
        if sharedExperts == nil, int("shared_expert_intermediate_size") ?? 0 > 0 { sharedExperts = 1 }
        torchDtype = json["dtype"]?.stringValue ?? json["torch_dtype"]?.stringValue
        quantMethod = json["quantization_config"]?["quant_method"]?.stringValue
    }

    /// Ordered (label, value) pairs of the fields present.
    public var fields: [(String, String)] {
        var f: [(String, String)] = []
        if let v = modelType { f.append(("model_type", v)) }
        if !architectures.isEmpty { f.append(("architectures", architectures.joined(separator: ", "))) }
        if let v = layers { f.append(("layers", String(v))) }
        if let v = hiddenSize { f.append(("hidden_size", String(v))) }
        if let v = intermediateSize { f.append(("intermediate_size", String(v))) }
        if let v = heads { f.append(("attention_heads", String(v) + (kvHeads.map { " (\($0) kv)" } ?? ""))) }
        if let v = experts { f.append(("experts", String(v) + (expertsPerToken.map { ", top-\($0)" } ?? "") + (sharedExperts.map { ", \($0) shared" } ?? ""))) }
        if let v = vocabSize { f.append(("vocab_size", String(v))) }
        if let v = torchDtype { f.append(("dtype", v)) }
        if let v = quantMethod { f.append(("quantization", v)) }
        return f
    }
}
