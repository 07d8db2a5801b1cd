import IngotCore

/// A GGUF file seen as a Hugging Face checkpoint: llama.cpp's tensor names mapped back (`GGUFNames`), the Q/K
/// row permutation `convert_hf_to_gguf.py` applies for llama-style RoPE undone, stacked MoE experts exposed as one
/// 2-D weight per expert, DeepSeek's per-head `attn_k_b` / `attn_v_b` joined back into `kv_b_proj`, and
/// `config.json` rebuilt from the metadata (`GGUFConfig`).
///
/// F32/F16/BF16 tensors keep their dtype (zero-copy when no rows move); quantized tensors are decoded to F32 on
/// access with ggml's reference dequantization. Tensors llama.cpp names that have no Hugging Face counterpart keep
/// their GGUF name.
public final class GGUFCheckpoint: TensorSource, TensorDetailsProviding, CompanionFilesProviding, FormatNamed, @unchecked Sendable {
    public let path: String
    public let gguf: GGUFFile
    public let tensors: [TensorInfo]
    public var metadata: [(key: String, value: String)] { [] }
    public var formatName: String { "GGUF v\(gguf.version)" }
    private let recipes: [String: Recipe]

    /// Where a Hugging Face tensor's rows come from.
    struct Recipe {
        let tensor: GGUFTensor
        /// First row and row count in the GGUF tensor (an expert's slice of a stacked tensor).
        let firstRow: Int, rows: Int
        /// Heads whose rows llama.cpp permuted (q: attention heads, k: kv heads).
        let permutedHeads: Int?
        let shape: [Int]
        /// `attn_v_b` when `tensor` is `attn_k_b`: the two make `kv_b_proj`.
        var latentValue: GGUFTensor? = nil
    }

    public convenience init(path: String) throws { try self.init(GGUFFile(path: path)) }

    public init(_ f: GGUFFile) throws {
        gguf = f
        path = f.path
        let arch = f["general.architecture"]?.stringValue ?? ""
        let moeHF = arch == "llama" ? "block_sparse_moe" : "mlp"
        let heads = f["\(arch).attention.head_count"]?.intValue
        let kvHeads = f["\(arch).attention.head_count_kv"]?.intValue ?? heads
        var infos: [TensorInfo] = [], recipes: [String: Recipe] = [:]
        func add(_ name: String, _ t: GGUFTensor, firstRow: Int = 0, rows: Int? = nil, permute: Int? = nil, shape: [Int]? = nil,
                 latentValue: GGUFTensor? = nil) throws {
            guard recipes[name] == nil else { throw GGUFError.duplicateTensor(file: f.path, tensor: name) }
            let shape = shape ?? t.shape
            let dtype: DType = switch t.type { case .f16 where latentValue == nil: .f16; case .bf16 where latentValue == nil: .bf16; default: .f32 }
            let n = shape.reduce(1, *)
            recipes[name] = Recipe(tensor: t, firstRow: firstRow, rows: rows ?? t.rows, permutedHeads: permute, shape: shape, latentValue: latentValue)
            infos.append(TensorInfo(name: name, dtype: dtype, shape: shape, byteCount: n * dtype.byteWidth!, file: f.path,
                                    fileOffset: t.type.isQuantized || permute != nil || rows != nil || latentValue != nil ? nil : t.fileOffset))
        }
        for t in f.tensors {
            let (layer, suffix) = GGUFNames.split(t.name)
            // MLA: attn_k_b {nope, rank, heads} and attn_v_b {rank, v, heads} are kv_b_proj [heads·(nope + v), rank].
            if arch == "deepseek2", let l = layer, suffix == "attn_k_b.weight" || suffix == "attn_v_b.weight" {
                guard suffix == "attn_k_b.weight" else {
                    guard f.tensor("blk.\(l).attn_k_b.weight") != nil else {
                        throw GGUFError.invalidTensor(file: f.path, tensor: t.name, reason: "has no attn_k_b beside it")
                    }
                    continue
                }
                guard let v = f.tensor("blk.\(l).attn_v_b.weight") else {
                    throw GGUFError.invalidTensor(file: f.path, tensor: t.name, reason: "has no attn_v_b beside it")
                }
                guard t.dims.count == 3, v.dims.count == 3, v.dims[0] == t.dims[1], v.dims[2] == t.dims[2] else {
                    throw GGUFError.invalidTensor(file: f.path, tensor: t.name, reason: "dims \(t.dims) do not pair with attn_v_b's \(v.dims)")
                }
                let (rank, heads) = (t.dims[1], t.dims[2])
                try add("model.layers.\(l).self_attn.kv_b_proj.weight", t, shape: [heads * (t.dims[0] + v.dims[1]), rank], latentValue: v)
                continue
            }
            if let l = layer, let proj = GGUFNames.Projection.allCases.first(where: { $0.gguf == suffix }) {
                guard t.dims.count == 3 else {
                    throw GGUFError.invalidTensor(file: f.path, tensor: t.name, reason: "stacked experts must have 3 dimensions")
                }
                let per = t.dims[1]
                for e in 0..<t.dims[2] {
                    let leaf = arch == "llama" ? proj.mixtral : proj.rawValue + "_proj"
                    try add("model.layers.\(l).\(moeHF).experts.\(e).\(leaf).weight", t, firstRow: e * per, rows: per, shape: [per, t.dims[0]])
                }
                continue
            }
            var hf: String? = GGUFNames.global.first { $0.gguf == t.name }?.hf
            if let l = layer {
                let candidates = GGUFNames.layer.filter { $0.gguf == suffix }
                let pick = candidates.count > 1 ? candidates.first { $0.hf.hasPrefix(moeHF + ".") } : candidates.first
                hf = pick.map { "model.layers.\(l).\($0.hf)" }
            }
            var permute: Int? = nil
            if arch == "llama", layer != nil, suffix == "attn_q.weight" || suffix == "attn_k.weight" {
                guard let h = suffix == "attn_q.weight" ? heads : kvHeads, h > 0, t.rows % (2 * h) == 0 else {
                    throw GGUFError.invalidTensor(file: f.path, tensor: t.name, reason: "rows do not split into \(arch).attention head pairs")
                }
                permute = h
            }
            try add(hf ?? t.name, t, permute: permute)
        }
        tensors = infos
        self.recipes = recipes
    }

    public func tensor(named name: String) throws -> TensorView {
        guard let r = recipes[name] else { throw SourceError.noSuchTensor(name: name, path: path) }
        let t = r.tensor, columns = t.dims[0], rowBytes = t.type.rowBytes(columns: columns)!
        if let v = r.latentValue { return try joinLatent(name, key: t, value: v) }
        let raw = gguf.bytes(of: t)
        let info = self.info(name)!
        // The GGUF row that holds output row `i`.
        func sourceRow(_ i: Int) -> Int {
            guard let h = r.permutedHeads else { return r.firstRow + i }
            // convert_hf_to_gguf: within each head, HF row a·(hd/2)+b went to 2b+a.
            let hd = r.rows / h, head = i / hd, j = i % hd, half = hd / 2
            return r.firstRow + head * hd + 2 * (j % half) + j / half
        }
        if !t.type.isQuantized && r.permutedHeads == nil {
            let slice = UnsafeRawBufferPointer(rebasing: raw[r.firstRow * rowBytes..<(r.firstRow + r.rows) * rowBytes])
            if t.type == .f32 || t.type == .f16 || t.type == .bf16 {
                return TensorView(name: name, dtype: info.dtype, shape: r.shape, bytes: slice, owner: gguf.file)
            }
        }
        guard t.type.isSupported else { throw GGUFError.unsupportedType(file: path, tensor: t.name, type: t.type.name) }
        // Gather the rows (bytes), then decode quantized ones.
        let gathered = TensorBuffer(uninitializedByteCount: r.rows * rowBytes)
        for i in 0..<r.rows {
            (gathered.storage.baseAddress! + i * rowBytes).copyMemory(from: raw.baseAddress! + sourceRow(i) * rowBytes, byteCount: rowBytes)
        }
        withExtendedLifetime(gguf.file) {}
        if !t.type.isQuantized {
            return gathered.view(name: name, dtype: info.dtype, shape: r.shape, byteCount: r.rows * rowBytes)
        }
        let out = TensorBuffer(uninitializedByteCount: r.rows * columns * 4)
        GGUFBlocks.dequantize(t.type, UnsafeRawBufferPointer(gathered.storage), into: out.storage.bindMemory(to: Float.self),
                              rows: r.rows, columns: columns)
        return out.view(name: name, dtype: .f32, shape: r.shape, byteCount: r.rows * columns * 4)
    }

    /// `kv_b_proj` from its halves: per head, the key rows are `attn_k_b`'s `[rank, nope]` transposed, then the value
    /// rows `attn_v_b`'s `[v, rank]`.
    func joinLatent(_ name: String, key: GGUFTensor, value: GGUFTensor) throws -> TensorView {
        let k = try gguf.floats(key), v = try gguf.floats(value)
        let (nope, rank, heads, vd) = (key.dims[0], key.dims[1], key.dims[2], value.dims[1])
        let out = TensorBuffer(uninitializedByteCount: heads * (nope + vd) * rank * 4)
        let o = out.storage.bindMemory(to: Float.self)
        for h in 0..<heads {
            let base = h * (nope + vd) * rank
            for j in 0..<nope { for r in 0..<rank { o[base + j * rank + r] = k[(h * rank + r) * nope + j] } }
            for i in 0..<(vd * rank) { o[base + nope * rank + i] = v[h * vd * rank + i] }
        }
        return out.view(name: name, dtype: .f32, shape: [heads * (nope + vd), rank], byteCount: heads * (nope + vd) * rank * 4)
    }

    /// Whether the tensor is stored in a quantized ggml type (decoded on access).
    public func isQuantized(_ name: String) -> Bool {
        guard let r = recipes[name] else { return false }
        return r.tensor.type.isQuantized || (r.latentValue?.type.isQuantized ?? false)
    }

    public var detailColumns: [String] { ["gguf tensor", "ggml type"] }
    public func details(of tensor: String) -> [String] {
        guard let r = recipes[tensor] else { return ["", ""] }
        if let v = r.latentValue { return ["\(r.tensor.name) + \(v.name)", "\(r.tensor.type.name) + \(v.type.name)"] }
        return [r.tensor.name + (r.rows != r.tensor.rows ? "[\(r.firstRow / max(r.rows, 1))]" : ""), r.tensor.type.name]
    }

    /// `config.json` rebuilt from the metadata.
    public func companionFiles() throws -> [(name: String, bytes: [UInt8])] {
        [("config.json", Array(try GGUFConfig.configJSON(gguf).serialized(pretty: true).utf8))]
    }
}
