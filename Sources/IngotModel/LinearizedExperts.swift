import IngotCore
import IngotFormats

/// gpt-oss's and Gemma 4's fused experts as per-expert linears, the way llm-compressor linearizes them for
/// quantization (`GptOssLinearExperts`, its Gemma 4 conversion mapping): `mlp.experts.E.{gate,up,down}_proj.{weight,bias}`
/// (gpt-oss, gate and up de-interleaved) or `experts.E.{gate,up,down}_proj.weight` (Gemma 4: slices of
/// `gate_up_proj [E, 2I, H]`, gate rows first, and `down_proj [E, H, I]`), `[out, in]`. Quantizers and exports then see ordinary 2-D weights (and the exported checkpoint carries the
/// names vLLM and llm-compressor use); every other tensor passes through.
///
/// Fused tensors `gate_up_proj [E, H, 2I]` / `down_proj [E, I, H]` (bf16/f16/f32) are sliced in their own dtype;
/// MXFP4 ones (`*_blocks`, `*_scales`) are decoded row by row into BF16, which holds every MXFP4 value exactly.
/// Nothing is decoded beyond the one expert asked for.
public final class LinearizedExperts: TensorSource, @unchecked Sendable {
    public let base: TensorSource
    public let tensors: [TensorInfo]
    public var path: String { base.path }
    public var metadata: [(key: String, value: String)] { base.metadata }
    private let recipes: [String: Slice]

    /// One per-expert tensor: which fused tensor, which expert, which part.
    struct Slice {
        enum Part { case gate, up, down }
        var fused: String
        var expert: Int
        var part: Part
        var bias: Bool
        var mxfp4: Bool
        /// Gemma 4's `[E, 2I, H]` / `[E, H, I]` layout: each part is one contiguous block.
        var rowMajor = false
    }

    /// `base` wrapped when `config` is gpt-oss with fused experts, else `base` itself.
    public static func wrap(_ base: TensorSource, config: ModelConfig) throws -> TensorSource {
        guard config.family == .gptOss || config.gemma4 != nil else { return base }
        let s = try LinearizedExperts(base, config: config)
        return s.recipes.isEmpty ? base : s
    }

    public init(_ base: TensorSource, config c: ModelConfig) throws {
        self.base = base
        let names = Set(base.tensors.map(\.name))
        let h = c.hiddenSize, i = c.expertIntermediateSize, E = c.experts
        var recipes: [String: Slice] = [:], replaced: [String: [TensorInfo]] = [:], hidden = Set<String>()
        for l in 0..<c.layers {
            let n = LayerNames(config: c, layer: l) { names.contains($0) || names.contains($0 + "_blocks") }
            if case let .fused(gu, dn, _)? = n.experts.first, names.contains(gu) {
                guard let g = base.info(gu), g.shape == [E, 2 * i, h] else { throw Failure.shape(gu, base.info(gu)?.shape ?? [], expected: [E, 2 * i, h]) }
                guard let d = base.info(dn), d.shape == [E, h, i] else { throw Failure.shape(dn, base.info(dn)?.shape ?? [], expected: [E, h, i]) }
                guard FloatCodecs.convertible.contains(g.dtype), d.dtype == g.dtype else { throw Failure.dtype(gu, g.dtype) }
                hidden.formUnion([gu, dn])
                let p = String(gu.dropLast("gate_up_proj".count))
                var infos: [TensorInfo] = []
                for e in 0..<E {
                    for (part, rows, cols) in [(Slice.Part.gate, i, h), (.up, i, h), (.down, h, i)] {
                        let m = p + "\(e).\(part)_proj.weight"
                        recipes[m] = Slice(fused: part == .down ? dn : gu, expert: e, part: part, bias: false, mxfp4: false, rowMajor: true)
                        infos.append(TensorInfo(name: m, dtype: g.dtype, shape: [rows, cols], byteCount: rows * cols * (g.dtype.byteWidth ?? 4),
                                                file: g.file, fileOffset: nil))
                    }
                }
                replaced[gu] = infos
                continue
            }
            guard case let .fusedTransposed(gu, dn, _)? = n.experts.first,
                  case let .fusedInterleaved(gub, dnb, _)? = n.expertBiases.first,
                  names.contains(gu) || names.contains(gu + "_blocks") else { continue }  // already per expert
            let mx = names.contains(gu + "_blocks")
            func check(_ name: String, _ shape: [Int]) throws -> TensorInfo {
                guard let t = base.info(name) else { throw Failure.missing(name) }
                guard t.shape == shape else { throw Failure.shape(name, t.shape, expected: shape) }
                return t
            }
            let guInfo: TensorInfo, dtype: DType
            if mx {
                guInfo = try check(gu + "_blocks", [E, 2 * i, h / 32, 16])
                _ = try check(gu + "_scales", [E, 2 * i, h / 32]); _ = try check(dn + "_blocks", [E, h, i / 32, 16])
                _ = try check(dn + "_scales", [E, h, i / 32])
                guard h % 32 == 0, i % 32 == 0 else { throw Failure.shape(gu + "_blocks", guInfo.shape, expected: []) }
                dtype = .bf16
                hidden.formUnion([gu + "_blocks", gu + "_scales", dn + "_blocks", dn + "_scales"])
            } else {
                guInfo = try check(gu, [E, h, 2 * i])
                let dnInfo = try check(dn, [E, i, h])
                guard FloatCodecs.convertible.contains(guInfo.dtype), dnInfo.dtype == guInfo.dtype else {
                    throw Failure.dtype(gu, guInfo.dtype)
                }
                dtype = guInfo.dtype
                hidden.formUnion([gu, dn])
            }
            let gubInfo = try check(gub, [E, 2 * i]), dnbInfo = try check(dnb, [E, h])
            hidden.formUnion([gub, dnb])
            let p = String(gu.dropLast("gate_up_proj".count))
            var infos: [TensorInfo] = []
            for e in 0..<E {
                for (part, rows, cols) in [(Slice.Part.gate, i, h), (.up, i, h), (.down, h, i)] {
                    let m = p + "\(e).\(part)_proj"
                    recipes[m + ".weight"] = Slice(fused: part == .down ? dn : gu, expert: e, part: part, bias: false, mxfp4: mx)
                    infos.append(TensorInfo(name: m + ".weight", dtype: dtype, shape: [rows, cols], byteCount: rows * cols * (dtype.byteWidth ?? 4),
                                            file: guInfo.file, fileOffset: nil))
                    let bt = part == .down ? dnbInfo : gubInfo
                    recipes[m + ".bias"] = Slice(fused: part == .down ? dnb : gub, expert: e, part: part, bias: true, mxfp4: false)
                    infos.append(TensorInfo(name: m + ".bias", dtype: bt.dtype, shape: [rows], byteCount: rows * (bt.dtype.byteWidth ?? 4),
                                            file: bt.file, fileOffset: nil))
                }
            }
            replaced[gu] = infos  // listed where the fused gate_up tensor was
        }
        var out: [TensorInfo] = []
        for t in base.tensors {
            let key = t.name.hasSuffix("_blocks") ? String(t.name.dropLast(7)) : t.name
            if let r = replaced[key] { out += r; replaced[key] = nil; continue }
            if !hidden.contains(t.name) { out.append(t) }
        }
        tensors = out
        self.recipes = recipes
    }

    public func tensor(named name: String) throws -> TensorView {
        guard let r = recipes[name] else { return try base.tensor(named: name) }
        let info = self.info(name)!
        let rows = info.shape[0], cols = info.shape.count > 1 ? info.shape[1] : 1
        let buffer = TensorBuffer(byteCount: info.byteCount)
        let out = buffer.storage
        if r.rowMajor {
            // [E, 2I, H]: gate = rows 0..<I of expert e, up = rows I..<2I; [E, H, I]: down = expert e's block.
            let fused = try base.tensor(named: r.fused)
            let perExpert = fused.shape[1] * fused.shape[2] * (fused.dtype.byteWidth ?? 4)
            let offset = r.expert * perExpert + (r.part == .up ? info.byteCount : 0)
            out.baseAddress!.copyMemory(from: fused.bytes.baseAddress!.advanced(by: offset), byteCount: info.byteCount)
            withExtendedLifetime(fused) {}
        } else if r.mxfp4 {
            // Row o of the dequantized [E, out, in] tensor is one output row here: gate = rows 2r, up = 2r + 1.
            let blocks = try base.tensor(named: r.fused + "_blocks"), scales = try base.tensor(named: r.fused + "_scales")
            let groups = cols / 32, outRows = blocks.shape[1]
            var row = [Float](repeating: 0, count: cols)
            for o in 0..<rows {
                let src = r.part == .down ? o : 2 * o + (r.part == .up ? 1 : 0)
                MXFP4.decodeRow(blocks.bytes, scales.bytes, unit: (r.expert * outRows + src) * groups, groups: groups, into: &row)
                for c in 0..<cols { out.storeBytes(of: UInt16(truncatingIfNeeded: row[c].bitPattern >> 16), toByteOffset: 2 * (o * cols + c), as: UInt16.self) }
            }
            withExtendedLifetime((blocks, scales)) {}
        } else {
            let fused = try base.tensor(named: r.fused)
            let w = fused.dtype.byteWidth ?? 4
            if r.bias {
                // gate_up_proj_bias [E, 2I] interleaved; down_proj_bias [E, H]
                let width = fused.shape[1]
                for o in 0..<rows {
                    let c = r.part == .down ? o : 2 * o + (r.part == .up ? 1 : 0)
                    out.baseAddress!.advanced(by: o * w).copyMemory(from: fused.bytes.baseAddress!.advanced(by: (r.expert * width + c) * w), byteCount: w)
                }
            } else {
                // gate/up: [E, H, 2I] → row o is column 2o (+1) over the H inputs; down: [E, I, H] → transpose.
                let inner = fused.shape[1], outer = fused.shape[2]
                for o in 0..<rows {
                    for c in 0..<cols {
                        let (k, j) = r.part == .down ? (c, o) : (c, 2 * o + (r.part == .up ? 1 : 0))
                        out.baseAddress!.advanced(by: (o * cols + c) * w)
                            .copyMemory(from: fused.bytes.baseAddress!.advanced(by: ((r.expert * inner + k) * outer + j) * w), byteCount: w)
                    }
                }
            }
            withExtendedLifetime(fused) {}
        }
        return buffer.view(name: name, dtype: info.dtype, shape: info.shape, byteCount: info.byteCount)
    }

    public enum Failure: Error, CustomStringConvertible {
        case missing(String)
        case shape(String, [Int], expected: [Int])
        case dtype(String, DType)
        public var description: String {
            switch self {
            case .missing(let n): "fused experts: tensor '\(n)' is missing"
            case let .shape(n, s, e): "fused experts: tensor '\(n)' has shape \(ShapeMath.describe(s)), expected \(ShapeMath.describe(e))"
            case let .dtype(n, d): "fused experts: tensor '\(n)' has dtype \(d.rawValue), expected a float type shared by gate_up_proj and down_proj"
            }
        }
    }
}
