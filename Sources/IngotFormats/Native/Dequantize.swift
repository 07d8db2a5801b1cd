import IngotCore

/// Reference dequantization of the representations `QuantizationInfo` describes (formats/ingot.md §6).
public enum Dequantize {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case shape(tensor: String, reason: String)
        public var description: String {
            switch self { case let .shape(t, r): "tensor '\(t)': quantization does not fit: \(r)" }
        }
    }

    /// The stored codes of a quantized tensor, one byte per element `[out, in]`: 4-bit codes are two per byte (element
    /// 2k of a row in the low nibble, rows padded to whole bytes), 8-bit codes one per byte. The one unpacker of
    /// stored codes.
    public static func codes(_ name: String, info q: QuantizationInfo, in source: TensorSource) throws -> [UInt8] {
        let view = try source.tensor(named: name)
        let out = q.originalShape[0], inputs = q.originalShape[1]
        let rowBytes = (inputs * q.bits + 7) / 8
        return try view.withBytes { b in
            guard b.count == out * rowBytes else {
                throw Failure.shape(tensor: name, reason: "codes hold \(b.count) bytes, \(out * rowBytes) expected")
            }
            guard q.bits == 4 else { return Array(b) }
            return [UInt8](unsafeUninitializedCapacity: out * inputs) { c, n in
                for r in 0..<out {
                    for i in 0..<inputs {
                        let byte = b[r * rowBytes + i / 2]
                        c[r * inputs + i] = i % 2 == 0 ? byte & 0xF : byte >> 4
                    }
                }
                n = out * inputs
            }
        }
    }

    /// The multiplier of each group of an `fp4-e2m1` tensor: E8M0 exponents (MXFP4), or E4M3 scales over the F32 `[1]`
    /// global scale (NVFP4).
    public static func fp4GroupMultipliers(_ name: String, info q: QuantizationInfo, in source: TensorSource) throws -> [Float] {
        let sv = try source.tensor(named: q.scale)
        var global: Float? = nil
        if let g = q.globalScale {
            let gv = try source.tensor(named: g)
            guard gv.dtype == .f32, gv.byteCount == 4 else { throw Failure.shape(tensor: name, reason: "global scale '\(g)' is not F32 [1]") }
            global = try gv.floats()[0]
        }
        guard let m = sv.withBytes({ FP4.groupMultipliers($0, dtype: sv.dtype, globalScale: global) }) else {
            throw Failure.shape(tensor: name, reason: "an fp4-e2m1 scale is U8 E8M0 (MXFP4) or F8_E4M3 with an F32 global_scale (NVFP4), not \(sv.dtype.rawValue)")
        }
        return m
    }

    /// The f32 weights `[out, in]` of a quantized tensor whose codes, scales and zero points are in `source`.
    public static func weights(_ name: String, info q: QuantizationInfo, in source: TensorSource) throws -> [Float] {
        let out = q.originalShape[0], inputs = q.originalShape[1]
        let scales = q.scheme == .fp4E2M1 ? [] : try source.tensor(named: q.scale).floats()
        func bad(_ r: String) -> Failure { .shape(tensor: name, reason: r) }
        var w = [Float](repeating: 0, count: out * inputs)
        let codes = try Self.codes(name, info: q, in: source)
        switch q.scheme {
        case .intAffine, .intSymmetric:
            let groups = q.groupsPerRow
            let gs = q.granularity == .group ? q.groupSize! : inputs
            guard scales.count == out * groups else { throw bad("scale has \(scales.count) values, \(out * groups) expected") }
            var zeros = [Float](repeating: Float(1 << (q.bits - 1)), count: out * groups)
            if q.scheme == .intAffine {
                zeros = try source.tensor(named: q.zeroPoint!).floats()
                guard zeros.count == out * groups else { throw bad("zero point has \(zeros.count) values, \(out * groups) expected") }
            }
            for r in 0..<out {
                for c in 0..<inputs {
                    let g = r * groups + c / gs
                    w[r * inputs + c] = (Float(codes[r * inputs + c]) - zeros[g]) * scales[g]
                }
            }
        case .fp4E2M1:
            let groups = q.groupsPerRow, gs = q.groupSize!
            let m = try fp4GroupMultipliers(name, info: q, in: source)
            guard m.count == out * groups else { throw bad("an fp4-e2m1 scale is [out, groups] = [\(out), \(groups)]") }
            for r in 0..<out {
                for c in 0..<inputs { w[r * inputs + c] = FP4.e2m1[Int(codes[r * inputs + c] & 0xF)] * m[r * groups + c / gs] }
            }
        case .fp8E4M3, .fp8E5M2:
            let table = q.scheme == .fp8E4M3 ? FP8.e4m3Table : FP8.e5m2Table
            let expected: Int
            switch q.granularity {
            case .tensor: expected = 1
            case .channel: expected = out
            case .block: expected = ((out + q.block![0] - 1) / q.block![0]) * q.groupsPerRow
            case .group: expected = out * q.groupsPerRow
            }
            guard scales.count == expected else { throw bad("scale has \(scales.count) values, \(expected) expected") }
            for r in 0..<out {
                for c in 0..<inputs {
                    let s: Float
                    switch q.granularity {
                    case .tensor: s = scales[0]
                    case .channel: s = scales[r]
                    case .block:
                        let bc = (inputs + q.block![1] - 1) / q.block![1]
                        s = scales[(r / q.block![0]) * bc + c / q.block![1]]
                    case .group: s = scales[r * q.groupsPerRow + c / q.groupSize!]
                    }
                    w[r * inputs + c] = table[Int(codes[r * inputs + c])] * s
                }
            }
        }
        return w
    }
}
