/// What `export --to gguf --type T` produces, and llama.cpp's per-tensor type choice for it.
///
/// - `F32`, `F16`, `BF16`: every 2-D weight in that type (`convert_hf_to_gguf.py --outtype`).
/// - single quantized types (`Q8_0` … `Q6_K`): every quantizable weight in that type, as `llama-quantize --pure`
///   does, including llama.cpp's fallback for rows that are not a multiple of the block (Q4_K → Q5_0, Q5_K → Q5_1,
///   Q6_K → Q8_0, then F16).
/// - mixes `Q4_K_M`, `Q5_K_M`: `llama-quantize`'s choices (`llama_tensor_get_type`): Q6_K for the output (and tied
///   embeddings), for `attn_v` and `ffn_down` of the layers `use_more_bits` picks; Q8_0 for `attn_k`/`attn_v` and
///   Q5_K for `attn_output` (Q4_K_M) in 8-expert models; then the same fallback.
/// Norms, 1-D tensors and MoE routers stay F32 (the converter's rule), whatever the type.
public enum GGUFFileType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", q8_0 = "Q8_0", q4_0 = "Q4_0", q4_1 = "Q4_1", q5_0 = "Q5_0", q5_1 = "Q5_1"
    case q4_K = "Q4_K", q5_K = "Q5_K", q6_K = "Q6_K", q4_K_M = "Q4_K_M", q5_K_M = "Q5_K_M"

    public init?(name: String) {
        guard let t = GGUFFileType.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() }) else { return nil }
        self = t
    }

    /// The type of the bulk of the weights.
    public var baseType: GGMLType {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        case .q8_0: .q8_0
        case .q4_0: .q4_0
        case .q4_1: .q4_1
        case .q5_0: .q5_0
        case .q5_1: .q5_1
        case .q4_K, .q4_K_M: .q4_K
        case .q5_K, .q5_K_M: .q5_K
        case .q6_K: .q6_K
        }
    }

    public var isMix: Bool { self == .q4_K_M || self == .q5_K_M }

    /// `general.file_type` (llama.cpp's `llama_ftype`; single K types are recorded as their _S file type).
    public var llamaFileType: UInt32 {
        switch self {
        case .f32: 0
        case .f16: 1
        case .q4_0: 2
        case .q4_1: 3
        case .q8_0: 7
        case .q5_0: 8
        case .q5_1: 9
        case .q4_K: 14
        case .q4_K_M: 15
        case .q5_K: 16
        case .q5_K_M: 17
        case .q6_K: 18
        case .bf16: 32
        }
    }

    /// The llama-quantize argument reproducing this type from an F32/F16 GGUF (`--pure` for single types).
    public var llamaQuantizeArguments: [String] {
        switch self {
        case .f32, .f16, .bf16: [rawValue]
        case .q4_K: ["--pure", "Q4_K_S"]
        case .q5_K: ["--pure", "Q5_K_S"]
        case .q4_K_M, .q5_K_M: [rawValue]
        default: ["--pure", rawValue]
        }
    }
}

/// Chooses each tensor's type in file order, with llama-quantize's running counters.
public struct GGUFTypePlanner {
    public let fileType: GGUFFileType
    /// Model facts llama-quantize's choice depends on.
    public let layers: Int, experts: Int, heads: Int, kvHeads: Int
    public let architecture: String
    private let tiedEmbeddings: Bool
    private let attentionVCount: Int
    private var attentionV = 0, ffnDown = 0

    /// `names` are all the GGUF tensor names of the file (to count attn_v and see whether output.weight exists).
    public init(fileType: GGUFFileType, architecture: String, layers: Int, experts: Int, heads: Int, kvHeads: Int, names: [String]) {
        self.fileType = fileType; self.architecture = architecture
        self.layers = layers; self.experts = experts; self.heads = heads; self.kvHeads = kvHeads
        tiedEmbeddings = !names.contains("output.weight")
        attentionVCount = names.filter { Self.category($0) == .attentionV }.count
    }

    enum Category { case tokenEmbedding, attentionQ, attentionV, attentionK, attentionOutput, ffnUp, ffnGate, ffnDown, output, other }

    static func category(_ n: String) -> Category {
        if n == "output.weight" { return .output }
        if n == "token_embd.weight" { return .tokenEmbedding }
        if n.contains("attn_qkv.weight") || n.contains("attn_kv_b.weight") || n.contains("attn_v.weight") { return .attentionV }
        if n.contains("attn_k.weight") { return .attentionK }
        if n.contains("attn_q.weight") { return .attentionQ }
        if n.contains("attn_output.weight") { return .attentionOutput }
        if n.contains("ffn_up") { return .ffnUp }
        if n.contains("ffn_gate") { return .ffnGate }
        if n.contains("ffn_down") { return .ffnDown }
        return .other
    }

    /// Whether the converter keeps the tensor in F32 (1-D, norms, routers, biases).
    public static func staysF32(_ name: String, dims: Int) -> Bool {
        dims <= 1 || name.hasSuffix("_norm.weight") || name.contains("ffn_gate_inp.") || !name.hasSuffix(".weight")
    }

    /// The type of the next tensor (call in file order, once per tensor). `columns` is the row length.
    public mutating func type(for name: String, dims: [Int]) -> GGMLType {
        if Self.staysF32(name, dims: dims.count) { return .f32 }
        var t = fileType.baseType
        guard t.isQuantized else { return t }
        let cat = Self.category(name)
        if fileType.isMix { t = mix(name, cat, dims, t) }
        return fallback(t, columns: dims[0])
    }

    /// llama-quantize's `use_more_bits`.
    static func moreBits(_ i: Int, _ n: Int) -> Bool { i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2 }

    mutating func mix(_ name: String, _ cat: Category, _ dims: [Int], _ base: GGMLType) -> GGMLType {
        var t = base
        switch cat {
        case .output, .tokenEmbedding where tiedEmbeddings:
            t = dims[0] % t.block.elements != 0 ? .q8_0 : .q6_K
        case .attentionV:
            if Self.moreBits(attentionV, attentionVCount) { t = .q6_K }
            // llama.cpp's 70B rule: 80-layer llama with grouped-query attention.
            if architecture == "llama", layers == 80, heads != kvHeads, t == .q3_K || t == .q4_K { t = .q5_K }
            if experts == 8 { t = .q8_0 }
            attentionV += 1
        case .attentionK:
            if experts == 8 { t = .q8_0 }
        case .ffnDown:
            var layer = ffnDown
            if experts > 1, let l = GGUFNames.split(name).layer { layer = l }
            if Self.moreBits(layer, layers) { t = .q6_K }
            ffnDown += 1
        case .attentionOutput:
            if experts == 8, fileType == .q4_K_M { t = .q5_K }
        default: break
        }
        return t
    }

    /// llama-quantize's `tensor_type_fallback` for rows that are not a multiple of the block.
    func fallback(_ t: GGMLType, columns: Int) -> GGMLType {
        guard columns % t.block.elements != 0 else { return t }
        let f: GGMLType = switch t { case .q4_K: .q5_0; case .q5_K: .q5_1; case .q6_K: .q8_0; default: t }
        return columns % f.block.elements == 0 ? f : .f16
    }
}
