import IngotCore

/// Reads quantized checkpoints back to f32 weights: compressed-tensors (`pack-quantized`, `float-quantized`),
/// AutoAWQ GEMM, DeepSeek FP8, gpt-oss MXFP4 experts and `.ingot` quantized tensors, whoever wrote them.
///
/// As a `TensorSource` it lists every weight under its plain `….weight` name as F32 `[out, in]` (exact products
/// `(q − z)·s` / `fp8·s`, no rounding to the scale dtype), MXFP4 `X_blocks`/`X_scales` as `X` in transformers'
/// layout `[E, in, out]` (exact `fp4 · 2^(e − 127)`), and every other tensor unchanged.
public final class DequantizedSource: TensorSource, @unchecked Sendable {
    public let path: String
    public let base: TensorSource
    public let tensors: [TensorInfo]
    public var metadata: [(key: String, value: String)] { base.metadata }
    private let recipes: [String: Recipe]
    /// Scale blocks of block-quantized FP8 weights (128×128, as compressed-tensors and DeepSeek use).
    public static let fp8Block = 128

    enum Recipe {
        case ct(module: String, bits: Int, rows: Int, cols: Int, asym: Bool)
        case ctFP8(module: String, rows: Int, cols: Int)
        /// compressed-tensors FP4: MXFP4 (E8M0 scales per 32 columns) or NVFP4 (E4M3 per 16 and a global scale).
        case ctFP4(module: String, rows: Int, cols: Int, group: Int, nvfp4: Bool)
        case awq(module: String, rows: Int, cols: Int, groups: Int)
        case deepseek(module: String, rows: Int, cols: Int)
        case mxfp4(module: String, experts: Int, rows: Int, cols: Int)
        case ingot(name: String, info: QuantizationInfo)
    }

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case malformed(String)
        public var description: String { switch self { case .malformed(let r): "quantized checkpoint: \(r)" } }
    }

    public init(_ base: TensorSource) throws {
        self.base = base
        path = base.path
        var infos: [TensorInfo] = []
        var recipes: [String: Recipe] = [:]
        var hidden = Set<String>()
        let names = Set(base.tensors.map(\.name))
        for t in base.tensors {
            func add(_ module: String, _ rows: Int, _ cols: Int, _ r: Recipe) {
                recipes[module + ".weight"] = r
                infos.append(TensorInfo(name: module + ".weight", dtype: .f32, shape: [rows, cols], byteCount: rows * cols * 4,
                                        file: t.file, fileOffset: nil))
            }
            if t.name.hasSuffix(".weight_packed"), t.dtype == .u8, t.shape.count == 2 {
                // compressed-tensors mxfp4-/nvfp4-pack-quantized: E2M1 codes two per byte; E8M0 scales per 32 columns,
                // or E4M3 scales per 16 columns under an F32 [1] weight_global_scale.
                let m = String(t.name.dropLast(14))
                let rows = t.shape[0], cols = t.shape[1] * 2
                let sc = base.info(m + ".weight_scale"), gs = base.info(m + ".weight_global_scale")
                if let sc, sc.dtype == .u8, sc.shape == [rows, (cols + 31) / 32], gs == nil {
                    add(m, rows, cols, .ctFP4(module: m, rows: rows, cols: cols, group: 32, nvfp4: false))
                } else if let sc, sc.dtype == .f8e4m3, sc.shape == [rows, (cols + 15) / 16], let gs, gs.dtype == .f32, gs.shape == [1] {
                    add(m, rows, cols, .ctFP4(module: m, rows: rows, cols: cols, group: 16, nvfp4: true))
                } else {
                    throw Failure.malformed("\(t.name): FP4 codes without a U8 weight_scale [\(rows), \((cols + 31) / 32)] (MXFP4) or an F8_E4M3 weight_scale [\(rows), \((cols + 15) / 16)] and F32 [1] weight_global_scale (NVFP4)")
                }
                hidden.formUnion([m + ".weight_packed", m + ".weight_scale", m + ".weight_global_scale"])
            } else if t.name.hasSuffix(".weight_packed") {
                let m = String(t.name.dropLast(14))
                guard let shapeT = base.info(m + ".weight_shape"), let sc = base.info(m + ".weight_scale") else {
                    throw Failure.malformed("\(t.name) without weight_shape / weight_scale")
                }
                let raw = try base.tensor(named: shapeT.name).floats()
                // Untrusted: only exact, positive, sane integers become a shape.
                guard raw.count == 2, raw.allSatisfy({ $0 >= 1 && $0 <= 1e9 && $0 == $0.rounded() }) else {
                    throw Failure.malformed("\(m): weight_shape is not two positive integers")
                }
                let shape = raw.map { Int($0) }
                guard shape[0] == t.shape[0], sc.shape.count == 2, sc.shape[0] == shape[0] else {
                    throw Failure.malformed("\(m): inconsistent weight_shape / weight_scale")
                }
                let bits = t.shape[1] * 32 / max(shape[1], 1) <= 4 ? 4 : 8
                add(m, shape[0], shape[1], .ct(module: m, bits: bits, rows: shape[0], cols: shape[1], asym: names.contains(m + ".weight_zero_point")))
                hidden.formUnion([m + ".weight_packed", m + ".weight_shape", m + ".weight_scale", m + ".weight_zero_point"])
            } else if t.name.hasSuffix(".qweight") {
                let m = String(t.name.dropLast(8))
                guard let s = base.info(m + ".scales"), s.shape.count == 2, t.shape.count == 2 else { throw Failure.malformed("\(t.name) without scales") }
                add(m, s.shape[1], t.shape[0], .awq(module: m, rows: s.shape[1], cols: t.shape[0], groups: s.shape[0]))
                hidden.formUnion([m + ".qweight", m + ".qzeros", m + ".scales"])
            } else if t.name.hasSuffix(".weight"), t.dtype == .f8e4m3 || t.dtype == .f8e5m2, t.shape.count == 2 {
                let m = String(t.name.dropLast(7))
                if names.contains(m + ".weight_scale_inv") {
                    recipes[t.name] = .deepseek(module: m, rows: t.shape[0], cols: t.shape[1])
                    hidden.insert(m + ".weight_scale_inv")
                } else if names.contains(m + ".weight_scale") {
                    recipes[t.name] = .ctFP8(module: m, rows: t.shape[0], cols: t.shape[1])
                    hidden.insert(m + ".weight_scale")
                } else { continue }
                infos.append(TensorInfo(name: t.name, dtype: .f32, shape: t.shape, byteCount: t.shape[0] * t.shape[1] * 4, file: t.file, fileOffset: nil))
                hidden.insert(t.name)
            } else if t.name.hasSuffix("_blocks"), t.dtype == .u8, t.shape.count == 4, t.shape[3] == 16 {
                // MXFP4 (gpt-oss): blocks [E, out, G, 16] of two E2M1 codes per byte, scales [E, out, G] E8M0.
                let m = String(t.name.dropLast(7))
                guard let sc = base.info(m + "_scales"), sc.dtype == .u8, sc.shape == Array(t.shape[0..<3]) else {
                    throw Failure.malformed("\(t.name) without a u8 \(m)_scales of shape \(ShapeMath.describe(Array(t.shape[0..<3])))")
                }
                let e = t.shape[0], rows = t.shape[1], groups = t.shape[2]
                guard let count = ShapeMath.elementCount([e, rows, groups, 32]), count <= Int.max / 4 else {
                    throw Failure.malformed("\(t.name): shape too large")
                }
                let cols = groups * 32
                recipes[m] = .mxfp4(module: m, experts: e, rows: rows, cols: cols)
                infos.append(TensorInfo(name: m, dtype: .f32, shape: [e, cols, rows], byteCount: count * 4, file: t.file, fileOffset: nil))
                hidden.formUnion([t.name, m + "_scales"])
            } else if let q = base.nativeEntry(t.name)?.quantization {
                recipes[t.name] = .ingot(name: t.name, info: q)
                infos.append(TensorInfo(name: t.name, dtype: .f32, shape: q.originalShape,
                                        byteCount: q.originalShape[0] * q.originalShape[1] * 4, file: t.file, fileOffset: nil))
                hidden.formUnion([t.name, q.scale] + [q.zeroPoint, q.globalScale].compactMap { $0 })
            }
        }
        for t in base.tensors where !hidden.contains(t.name) && recipes[t.name] == nil { infos.append(t) }
        tensors = infos
        self.recipes = recipes
    }

    /// Whether `name` is a dequantized weight (vs a tensor passed through).
    public func isQuantized(_ name: String) -> Bool { recipes[name] != nil || (base as? GGUFCheckpoint)?.isQuantized(name) == true }

    public func tensor(named name: String) throws -> TensorView {
        guard let r = recipes[name] else { return try base.tensor(named: name) }
        let w = try weights(r)
        let info = self.info(name)!
        return TensorBuffer.make(name: name, dtype: .f32, shape: info.shape, values: w)
    }

    func weights(_ r: Recipe) throws -> [Float] {
        func load(_ n: String) throws -> TensorView { try base.tensor(named: n) }
        switch r {
        case let .ct(m, bits, rows, cols, asym):
            let packed = try load(m + ".weight_packed"), scales = try load(m + ".weight_scale").floats()
            let groups = scales.count / rows
            guard groups > 0, groups * rows == scales.count, groups <= cols else { throw Failure.malformed("\(m): weight_scale shape") }
            let g = (cols + groups - 1) / groups
            let per = 32 / bits, words = (cols + per - 1) / per
            guard packed.byteCount == rows * words * 4 else { throw Failure.malformed("\(m): weight_packed size") }
            var zeros = [Float](repeating: Float(1 << (bits - 1)), count: rows * groups)
            if asym {
                let zp = try load(m + ".weight_zero_point")
                let zw = (rows + per - 1) / per
                guard zp.byteCount == zw * groups * 4 else { throw Failure.malformed("\(m): weight_zero_point size") }
                zp.withBytes { z in
                    for r in 0..<rows { for gi in 0..<groups {
                        let word = UInt32(littleEndian: z.loadUnaligned(fromByteOffset: 4 * ((r / per) * groups + gi), as: UInt32.self))
                        zeros[r * groups + gi] = Float((word >> UInt32(bits * (r % per))) & UInt32((1 << bits) - 1))
                    } }
                }
            }
            var w = [Float](repeating: 0, count: rows * cols)
            packed.withBytes { p in
                for r in 0..<rows { for c in 0..<cols {
                    let word = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * (r * words + c / per), as: UInt32.self))
                    let q = Float((word >> UInt32(bits * (c % per))) & UInt32((1 << bits) - 1))
                    let k = r * groups + c / g
                    w[r * cols + c] = (q - zeros[k]) * scales[k]
                } }
            }
            return w
        case let .ctFP8(m, rows, cols), let .deepseek(m, rows, cols):
            let codes = try load(m + ".weight")
            var deepseek = false
            if case .deepseek = r { deepseek = true }
            let st = try load(m + (deepseek ? ".weight_scale_inv" : ".weight_scale"))
            let scales = try st.floats()
            let table = codes.dtype == .f8e4m3 ? FP8.e4m3Table : FP8.e5m2Table
            var w = [Float](repeating: 0, count: rows * cols)
            let B = Self.fp8Block
            let granularity: QuantizationInfo.Granularity
            if scales.count == 1 { granularity = .tensor }
            else if st.shape == [rows, 1] || st.shape == [rows] { granularity = .channel }
            else if st.shape == [(rows + B - 1) / B, (cols + B - 1) / B] { granularity = .block }
            else { throw Failure.malformed("\(m): scale shape \(ShapeMath.describe(st.shape)) fits neither tensor, channel nor 128×128 blocks") }
            let sc = (cols + B - 1) / B
            codes.withBytes { b in
                for r in 0..<rows { for c in 0..<cols {
                    let k = granularity == .tensor ? 0 : granularity == .channel ? r : (r / B) * sc + c / B
                    w[r * cols + c] = table[Int(b[r * cols + c])] * scales[k]
                } }
            }
            return w
        case let .ctFP4(m, rows, cols, group, nvfp4):
            let packed = try load(m + ".weight_packed"), scales = try load(m + ".weight_scale")
            let global = nvfp4 ? try load(m + ".weight_global_scale").floats().first : nil
            let groups = (cols + group - 1) / group
            guard packed.byteCount == rows * cols / 2, scales.byteCount == rows * groups,
                  let mult = scales.withBytes({ FP4.groupMultipliers($0, dtype: scales.dtype, globalScale: global) }) else {
                throw Failure.malformed("\(m): FP4 sizes")
            }
            var w = [Float](repeating: 0, count: rows * cols)
            packed.withBytes { p in
                for r in 0..<rows { for c in 0..<cols {
                    let byte = p[r * cols / 2 + c / 2]
                    w[r * cols + c] = FP4.e2m1[Int(c % 2 == 0 ? byte & 0xF : byte >> 4)] * mult[r * groups + c / group]
                } }
            }
            return w
        case let .awq(m, rows, cols, groups):
            let qw = try load(m + ".qweight"), qz = try load(m + ".qzeros"), s = try load(m + ".scales").floats()
            let words = rows / 8, g = cols / max(groups, 1)
            guard rows % 8 == 0, groups > 0, cols % groups == 0, qw.byteCount == cols * words * 4, qz.byteCount == groups * words * 4,
                  s.count == groups * rows, g > 0 else {
                throw Failure.malformed("\(m): AutoAWQ tensor sizes")
            }
            var w = [Float](repeating: 0, count: rows * cols)
            qw.withBytes { q in qz.withBytes { z in
                for i in 0..<cols { for k in 0..<words {
                    let word = UInt32(littleEndian: q.loadUnaligned(fromByteOffset: 4 * (i * words + k), as: UInt32.self))
                    let zw = UInt32(littleEndian: z.loadUnaligned(fromByteOffset: 4 * ((i / g) * words + k), as: UInt32.self))
                    for n in 0..<8 {
                        let o = 8 * k + Packing.awqOrder[n]
                        let qv = Float((word >> UInt32(4 * n)) & 0xF), zv = Float((zw >> UInt32(4 * n)) & 0xF)
                        w[o * cols + i] = (qv - zv) * s[(i / g) * rows + o]
                    }
                } }
            } }
            return w
        case let .mxfp4(m, e, rows, cols):
            let blocks = try load(m + "_blocks"), scales = try load(m + "_scales")
            let groups = cols / 32
            guard blocks.byteCount == e * rows * groups * 16, scales.byteCount == e * rows * groups else {
                throw Failure.malformed("\(m): MXFP4 blocks / scales sizes")
            }
            // Transposed to [E, cols, rows], as transformers' dequantization leaves it.
            var w = [Float](repeating: 0, count: e * rows * cols), row = [Float](repeating: 0, count: cols)
            blocks.withBytes { b in scales.withBytes { s in
                for x in 0..<e { for r in 0..<rows {
                    MXFP4.decodeRow(b, s, unit: (x * rows + r) * groups, groups: groups, into: &row)
                    for c in 0..<cols { w[(x * cols + c) * rows + r] = row[c] }
                } }
            } }
            return w
        case let .ingot(name, info):
            return try Dequantize.weights(name, info: info, in: base)
        }
    }
}
