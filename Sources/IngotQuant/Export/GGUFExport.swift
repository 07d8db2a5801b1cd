import IngotCore
import IngotFormats
import IngotModel

/// Writes a Hugging Face checkpoint as a llama.cpp GGUF file (`export --to gguf --type T`): tensors named, ordered
/// and permuted as `convert_hf_to_gguf.py` writes them (Q/K rows interleaved for llama-style RoPE, MoE experts
/// stacked per layer, DeepSeek's `kv_b_proj` split into per-head `attn_k_b` / `attn_v_b`), the architecture, RoPE,
/// norm, expert and tokenizer metadata llama.cpp reads, and each weight
/// quantized with ggml's reference algorithms (byte-identical to `llama-quantize` on the same F32 GGUF), or with
/// their importance-matrix variants when `importance` is given. Streams: one tensor (one expert of a stacked
/// tensor) is decoded and encoded at a time, and written as it is produced.
public struct GGUFExportJob {
    public var source: TensorSource
    /// Holds config.json, tokenizer.json, tokenizer_config.json (and chat_template.jinja).
    public var modelDirectory: String
    /// Companion files carried by the source (`.ingot`), used before the directory's.
    public var storedCompanions: [(name: String, bytes: [UInt8])] = []
    public var fileType: GGUFFileType
    public var destination: String
    public var overwrite = false
    public var progress: ProgressReporter = SilentProgress()
    /// Per-column importance (llama.cpp's imatrix: mean x² of the linear's input) of a GGUF tensor, per expert for
    /// stacked expert tensors (expert index, nil otherwise); nil when there is none for it.
    public var importance: ((_ gguf: String, _ expert: Int?) throws -> [Float]?)? = nil
    /// `general.name`; the model directory's name when nil.
    public var name: String? = nil

    public init(source: TensorSource, modelDirectory: String, fileType: GGUFFileType, destination: String) {
        self.source = source
        self.modelDirectory = modelDirectory
        self.fileType = fileType
        self.destination = destination
    }

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case unsupported(String)
        public var description: String { switch self { case let .unsupported(r): "GGUF export: \(r)" } }
    }

    /// One GGUF tensor and the Hugging Face tensors it is made of (one, or one per expert, stacked).
    struct Item {
        let name: String
        /// ggml order.
        let dims: [Int]
        let sources: [String]
        let transform: Transform
        /// Experts stacked from one Hugging Face tensor each (importance per expert).
        var stacked: Bool { sources.count > 1 }
    }

    /// How a Hugging Face tensor's values become the GGUF tensor's rows.
    enum Transform: Equatable {
        case none
        /// convert_hf_to_gguf.py's Q/K row interleave for llama-style RoPE (attn_q: heads, attn_k: kv heads).
        case interleaveRoPE(heads: Int)
        /// MLA's `kv_b_proj` `[heads·(nope + v), rank]` split as convert_hf_to_gguf.py does: per head, `attn_k_b` is
        /// its first `nope` rows transposed (`[rank, nope]`), `attn_v_b` its last `v` rows (`[v, rank]`).
        case latentKey(heads: Int, nope: Int, v: Int), latentValue(heads: Int, nope: Int, v: Int)

        var isLatent: Bool {
            switch self { case .latentKey, .latentValue: true; default: false }
        }
    }

    func companion(_ name: String) throws -> [UInt8]? {
        if let s = storedCompanions.first(where: { $0.name == name }) { return s.bytes }
        let p = modelDirectory + "/" + name
        return FileSystem.exists(p) ? try FileSystem.read(p) : nil
    }

    /// The GGUF architecture of a model family, or a refusal naming it.
    static func architecture(_ c: ModelConfig) throws -> String {
        switch c.family {
        case .llama, .mistral, .mixtral: return "llama"
        case .qwen3MoE: return "qwen3moe"
        case .deepseekV3: return "deepseek2"
        default: throw Failure.unsupported("\(c.family.rawValue) export to GGUF is not implemented")
        }
    }

    /// The tensors as convert_hf_to_gguf.py makes them (experts of a layer stacked in the converter's projection
    /// order), in llama.cpp's loader order.
    func items(_ c: ModelConfig, arch: String) throws -> [Item] {
        let files = Array(Set(source.tensors.map(\.file))).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        let infos = source.tensors.sorted { a, b in
            let fa = files.firstIndex(of: a.file)!, fb = files.firstIndex(of: b.file)!
            return fa != fb ? fa < fb : Array(a.name.utf8).lexicographicallyPrecedes(Array(b.name.utf8))
        }
        var out: [Item] = []
        var pending: [Int: [String: String]] = [:]   // layer → "proj.expert" → HF name
        for t in infos {
            if t.name.hasSuffix(".rotary_emb.inv_freq") { continue }
            if t.shape.count == 3, t.name.contains(".experts.") {
                throw Failure.unsupported("'\(t.name)': fused 3-D expert tensors are not exported; convert the checkpoint to per-expert tensors first")
            }
            if let (l, e, proj) = GGUFNames.expert(t.name) {
                guard c.isMoE, l < c.layers, e < c.experts else { throw Failure.unsupported("'\(t.name)' does not fit config.json's experts") }
                pending[l, default: [:]]["\(proj.rawValue).\(e)"] = t.name
                if pending[l]!.count == 3 * c.experts {
                    let order: [GGUFNames.Projection] = arch == "llama" ? [.gate, .down, .up] : [.down, .gate, .up]
                    for p in order {
                        let names = (0..<c.experts).map { pending[l]!["\(p.rawValue).\($0)"]! }
                        guard let first = source.info(names[0]), first.shape.count == 2 else { throw Failure.unsupported("'\(names[0])' is not 2-D") }
                        for n in names where source.info(n)?.shape != first.shape {
                            throw Failure.unsupported("expert weights of layer \(l) differ in shape ('\(n)')")
                        }
                        out.append(Item(name: "blk.\(l).\(p.gguf)", dims: [first.shape[1], first.shape[0], c.experts], sources: names, transform: .none))
                    }
                    pending[l] = nil
                }
                continue
            }
            guard let g = GGUFNames.gguf(t.name) else { throw Failure.unsupported("'\(t.name)' has no llama.cpp tensor name") }
            guard t.shape.count == 1 || t.shape.count == 2 else { throw Failure.unsupported("'\(t.name)' has \(t.shape.count) dimensions") }
            let layer = GGUFNames.split(g).layer
            // convert_hf_to_gguf.py drops DeepSeek's multi-token-prediction layers (beyond num_hidden_layers).
            if arch == "deepseek2", let l = layer, l >= c.layers { continue }
            if arch == "deepseek2", g.hasSuffix(".attn_kv_b.weight"), let a = c.latentAttention, let l = layer {
                guard t.shape == [c.heads * (a.qkNopeHeadDim + a.vHeadDim), a.kvLoraRank] else {
                    throw Failure.unsupported("'\(t.name)' is \(t.shape), not [heads·(qk_nope_head_dim + v_head_dim), kv_lora_rank]")
                }
                let (h, n, v) = (c.heads, a.qkNopeHeadDim, a.vHeadDim)
                out.append(Item(name: "blk.\(l).attn_k_b.weight", dims: [n, a.kvLoraRank, h], sources: [t.name], transform: .latentKey(heads: h, nope: n, v: v)))
                out.append(Item(name: "blk.\(l).attn_v_b.weight", dims: [a.kvLoraRank, v, h], sources: [t.name], transform: .latentValue(heads: h, nope: n, v: v)))
                continue
            }
            var transform = Transform.none
            if arch == "llama", g.hasSuffix(".attn_q.weight") { transform = .interleaveRoPE(heads: c.heads) }
            if arch == "llama", g.hasSuffix(".attn_k.weight") { transform = .interleaveRoPE(heads: c.kvHeads) }
            if case let .interleaveRoPE(h) = transform, t.shape[0] % (2 * h) != 0 {
                throw Failure.unsupported("'\(t.name)' rows do not split into \(h) heads of pairs")
            }
            out.append(Item(name: g, dims: Array(t.shape.reversed()), sources: [t.name], transform: transform))
        }
        if let (l, _) = pending.first { throw Failure.unsupported("layer \(l) is missing expert weights") }
        if c.tieWordEmbeddings, let i = out.firstIndex(where: { $0.name == "output.weight" }) { out.remove(at: i) }
        if !c.tieWordEmbeddings, !out.contains(where: { $0.name == "output.weight" }) {
            throw Failure.unsupported("config.json says tie_word_embeddings is false but there is no lm_head.weight")
        }
        // llama.cpp's loader order (layer, then name; whole-model tensors first), which llama-quantize's type
        // counters and output file follow.
        return out.sorted { a, b in
            let la = GGUFNames.split(a.name).layer ?? -1, lb = GGUFNames.split(b.name).layer ?? -1
            return la != lb ? la < lb : Array(a.name.utf8).lexicographicallyPrecedes(Array(b.name.utf8))
        }
    }

    /// The architecture and tokenizer metadata.
    func metadata(_ c: ModelConfig, json j: JSON, arch: String) throws -> [(key: String, value: GGUFValue)] {
        if c.yarn != nil, arch != "deepseek2" { throw Failure.unsupported("YaRN rope scaling is not exported for \(c.family.rawValue)") }
        if c.family == .qwen3MoE, !c.normalizeTopK {
            throw Failure.unsupported("norm_topk_prob = false: llama.cpp's qwen3moe always renormalises the top-k expert weights")
        }
        if c.family == .qwen3MoE, !c.denseLayers.isEmpty { throw Failure.unsupported("qwen3_moe with dense layers (mlp_only_layers / decoder_sparse_step) is not exported") }
        let u32 = { (v: Int) in GGUFValue.u32(UInt32(v)) }
        var kv: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string(arch)), ("general.type", .string("model")),
            ("general.name", .string(name ?? FileSystem.baseName(modelDirectory))),
            ("\(arch).block_count", u32(c.layers)),
        ]
        if c.maxPositions > 0 { kv.append(("\(arch).context_length", u32(c.maxPositions))) }
        kv.append(("\(arch).embedding_length", u32(c.hiddenSize)))
        kv.append(("\(arch).feed_forward_length", u32(c.intermediateSize)))
        kv.append(("\(arch).attention.head_count", u32(c.heads)))
        // MLA runs in llama.cpp as multi-query attention over the latent (one kv head).
        kv.append(("\(arch).attention.head_count_kv", u32(arch == "deepseek2" ? 1 : c.kvHeads)))
        kv.append(("\(arch).rope.freq_base", .f32(c.ropeTheta)))
        kv.append(("\(arch).attention.layer_norm_rms_epsilon", .f32(c.rmsNormEps)))
        if c.isMoE {
            kv.append(("\(arch).expert_count", u32(c.experts)))
            kv.append(("\(arch).expert_used_count", u32(c.expertsPerToken)))
        }
        if j["head_dim"]?.intValue != nil, arch != "deepseek2" {
            kv.append(("\(arch).attention.key_length", u32(c.headDim)))
            kv.append(("\(arch).attention.value_length", u32(c.headDim)))
        }
        kv.append(("general.file_type", .u32(fileType.llamaFileType)))
        if arch == "llama" {
            kv.append(("\(arch).vocab_size", u32(c.vocabSize)))
            kv.append(("\(arch).rope.dimension_count", u32(c.headDim)))
        }
        if arch == "qwen3moe" { kv.append(("\(arch).expert_feed_forward_length", u32(c.expertIntermediateSize))) }
        if arch == "deepseek2" { kv += try deepseek2Metadata(c, json: j) }
        kv.append(("general.quantization_version", .u32(2)))
        guard let tok = try companion("tokenizer.json") else {
            throw Failure.unsupported("no tokenizer.json in \(modelDirectory): llama.cpp needs the vocabulary in the GGUF file")
        }
        let tc = try companion("tokenizer_config.json").map { try JSON.parse($0, rejectDuplicateKeys: false) }
        let template = try companion("chat_template.jinja").map { String(decoding: $0, as: UTF8.self) }
        kv += try GGUFVocabulary.metadata(tokenizer: JSON.parse(tok, rejectDuplicateKeys: false), tokenizerConfig: tc, config: j,
                                          chatTemplate: template)
        return kv
    }

    /// DeepSeek-V3 as convert_hf_to_gguf.py's `DeepseekV2Model` writes it: MLA lengths and ranks, leading dense
    /// layers, shared experts, routing scale / renormalisation / groups, YaRN. The sigmoid gating function is always
    /// written: the converter writes it only when config.json has `scoring_func`, and llama.cpp's deepseek2 falls back
    /// to softmax without it.
    func deepseek2Metadata(_ c: ModelConfig, json j: JSON) throws -> [(key: String, value: GGUFValue)] {
        let a = "deepseek2", u32 = { (v: Int) in GGUFValue.u32(UInt32(v)) }
        guard let m = c.latentAttention, case let .sigmoidGroupLimited(groups, topkGroup, scale) = c.routing else {
            throw Failure.unsupported("deepseek_v3 without latent attention or sigmoid routing")
        }
        guard m.ropeInterleave else {
            throw Failure.unsupported("rope_interleave = false: llama.cpp's deepseek2 rotates interleaved pairs, and the rope dims are not reordered")
        }
        let leading = (0..<c.layers).prefix { c.denseLayers.contains($0) }.count
        guard c.denseLayers == Set(0..<leading) else {
            throw Failure.unsupported("dense layers \(c.denseLayers.sorted()) are not all leading (moe_layer_freq): llama.cpp's deepseek2 has only leading_dense_block_count")
        }
        var kv: [(key: String, value: GGUFValue)] = [
            ("\(a).leading_dense_block_count", u32(leading)), ("\(a).vocab_size", u32(c.vocabSize)),
            // 0 when q is one projection: llama.cpp reads the key for every deepseek2 but DeepSeek-V2-Lite's sizes.
            ("\(a).attention.q_lora_rank", u32(m.qLoraRank ?? 0)), ("\(a).attention.kv_lora_rank", u32(m.kvLoraRank)),
            ("\(a).attention.key_length", u32(m.kvLoraRank + m.qkRopeHeadDim)), ("\(a).attention.value_length", u32(m.kvLoraRank)),
            ("\(a).attention.key_length_mla", u32(m.qkHeadDim)), ("\(a).attention.value_length_mla", u32(m.vHeadDim)),
            ("\(a).expert_feed_forward_length", u32(c.expertIntermediateSize)), ("\(a).expert_shared_count", u32(c.sharedExperts)),
            ("\(a).expert_weights_scale", .f32(scale)),
        ]
        if c.normalizeTopK { kv.append(("\(a).expert_weights_norm", .bool(true))) }
        kv.append(("\(a).expert_gating_func", .u32(2)))  // LLAMA_EXPERT_GATING_FUNC_TYPE_SIGMOID
        // topk_group = n_group limits nothing (and llama.cpp asserts fewer used groups than groups).
        if groups > 1, topkGroup < groups {
            kv.append(("\(a).expert_group_count", u32(groups))); kv.append(("\(a).expert_group_used_count", u32(topkGroup)))
        }
        kv.append(("\(a).rope.dimension_count", u32(m.qkRopeHeadDim)))
        if let y = c.yarn {
            // llama.cpp's deepseek2 YaRN (llama-context.cpp) takes mscale = mscale_all_dim when that is not 1, else 1,
            // and has no attention_factor: other combinations are not what it computes.
            guard let all = y.mscaleAllDim, all > 0 else { throw Failure.unsupported("YaRN without mscale_all_dim is not what llama.cpp's deepseek2 computes") }
            let llamaMscale = all != 1 ? all : 1
            guard (y.mscale ?? 1) == llamaMscale, y.attentionFactor == nil, y.truncate else {
                throw Failure.unsupported("YaRN with mscale \(y.mscale ?? 1), mscale_all_dim \(all)\(y.attentionFactor.map { ", attention_factor \($0)" } ?? "")\(y.truncate ? "" : ", truncate false"): llama.cpp's deepseek2 computes mscale \(llamaMscale) and no attention_factor")
            }
            kv += [("\(a).rope.scaling.type", .string("yarn")), ("\(a).rope.scaling.factor", .f32(Float(y.factor))),
                   ("\(a).rope.scaling.original_context_length", u32(y.originalMaxPositions)),
                   ("\(a).rope.scaling.yarn_beta_fast", .f32(Float(y.betaFast))), ("\(a).rope.scaling.yarn_beta_slow", .f32(Float(y.betaSlow))),
                   // convert_hf_to_gguf.py stores 0.1 · mscale_all_dim, and llama.cpp divides it back.
                   ("\(a).rope.scaling.yarn_log_multiplier", .f32(Float(0.1 * all)))]
        }
        return kv
    }

    /// Writes the file; returns what became what.
    @discardableResult
    public func run() throws -> [ExportRecord] {
        guard let cfgBytes = try companion("config.json") else { throw Failure.unsupported("no config.json in \(modelDirectory)") }
        let json = try JSON.parse(cfgBytes, rejectDuplicateKeys: false)
        let config = try ModelConfig(json: json)
        let arch = try Self.architecture(config)
        let items = try items(config, arch: arch)
        let meta = try metadata(config, json: json, arch: arch)
        var planner = GGUFTypePlanner(fileType: fileType, architecture: arch, layers: config.layers, experts: config.experts,
                                      heads: config.heads, kvHeads: config.kvHeads, names: items.map(\.name))
        let types = items.map { planner.type(for: $0.name, dims: $0.dims) }
        let writer = try GGUFWriter(path: destination, overwrite: overwrite, metadata: meta,
                                    tensors: zip(items, types).map { GGUFWriter.Entry(name: $0.name, type: $1, dims: $0.dims) })
        let total = zip(items, types).reduce(0) { $0 + $1.0.dims.reduce(1, *) * 4 }
        progress.begin("gguf", total: total, unit: .bytes)
        var done = 0, records: [ExportRecord] = []
        for (item, type) in zip(items, types) {
            let columns = item.dims[0]
            for (e, src) in item.sources.enumerated() {
                let x = try source.tensor(named: src).floats()
                let expected = switch item.transform {
                case let .latentKey(h, n, v): h * (n + v) * item.dims[1]
                case let .latentValue(h, n, v): h * (n + v) * columns
                default: item.stacked ? item.dims[0] * item.dims[1] : item.dims.reduce(1, *)
                }
                guard x.count == expected else { throw Failure.unsupported("'\(src)' has \(x.count) values, \(expected) expected") }
                // The GGUF rows, in file order (one part, or one per head of a split latent projection).
                let parts: [[Float]]
                switch item.transform {
                case .none: parts = [x]
                case let .interleaveRoPE(h): parts = [Self.interleaveRoPE(x, rows: x.count / columns, columns: columns, heads: h)]
                case let .latentKey(h, n, v): parts = Self.splitLatent(x, heads: h, nope: n, v: v, rank: item.dims[1], key: true)
                case let .latentValue(h, n, v): parts = Self.splitLatent(x, heads: h, nope: n, v: v, rank: columns, key: false)
                }
                // llama-imatrix's values for attn_k_b / attn_v_b are per head, over inputs calibration does not observe.
                let imp = item.transform.isLatent ? nil : try importance?(item.name, item.stacked ? e : nil)
                if let imp, imp.count != columns { throw Failure.unsupported("importance for '\(item.name)' has \(imp.count) values, not \(columns)") }
                for part in parts {
                    let rows = part.count / columns, bytes = rows * type.rowBytes(columns: columns)!
                    let out = TensorBuffer(uninitializedByteCount: bytes)
                    part.withUnsafeBufferPointer { xs in
                        let o = UnsafeMutableRawBufferPointer(out.storage)
                        if let imp, type.isQuantized {
                            imp.withUnsafeBufferPointer { GGUFBlocks.quantize(type, xs, rows: rows, columns: columns, importance: $0, into: o) }
                        } else {
                            GGUFBlocks.quantize(type, xs, rows: rows, columns: columns, into: o)
                        }
                    }
                    try writer.append(item.name, UnsafeRawBufferPointer(rebasing: out.storage[0..<bytes]))
                }
                done += x.count * 4
                progress.update(done)
            }
            records.append(ExportRecord(name: item.name, shape: Array(item.dims.reversed()), from: source.info(item.sources[0])?.dtype.rawValue ?? "?",
                                        to: type.name))
        }
        try writer.commit()
        progress.finish()
        return records
    }

    /// `kv_b_proj` (`[heads·(nope + v), rank]`) cut per head: the key part transposed to `[rank, nope]`, or the value
    /// part `[v, rank]` as it is.
    static func splitLatent(_ x: [Float], heads: Int, nope: Int, v: Int, rank: Int, key: Bool) -> [[Float]] {
        (0..<heads).map { h in
            let base = h * (nope + v) * rank
            if key {
                var out = [Float](repeating: 0, count: rank * nope)
                for j in 0..<nope { for r in 0..<rank { out[r * nope + j] = x[base + j * rank + r] } }
                return out
            }
            return Array(x[(base + nope * rank)..<(base + (nope + v) * rank)])
        }
    }

    /// convert_hf_to_gguf.py's permutation for llama-style RoPE: within each head, row a·(d/2)+b moves to 2b+a.
    static func interleaveRoPE(_ x: [Float], rows: Int, columns: Int, heads: Int) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        let d = rows / heads, half = d / 2
        x.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { dst in
            for h in 0..<heads { for a in 0..<2 { for b in 0..<half {
                let from = (h * d + a * half + b) * columns, to = (h * d + 2 * b + a) * columns
                (dst.baseAddress! + to).update(from: src.baseAddress! + from, count: columns)
            } } }
        } }
        return out
    }
}
