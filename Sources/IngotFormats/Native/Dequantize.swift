import IngotCore

/// Reference dequantization of the representations `QuantizationInfo` describes (formats/ingot.md §6).
public enum Dequantize {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case shape(tensor: String, reason: String)
        public var description: String {
            switch self { case let .shape(t, r): "tensor '\(t)': quantization does not fit: \(r)" }
        }
    }

    /// The f32 weights `[out, in]` of a quantized tensor whose codes, scales and zero points are in `source`.
    public static func weights(_ name: String, info q: QuantizationInfo, in source: TensorSource) throws -> [Float] {
        let codes = try source.tensor(named: name)
        let out = q.originalShape[0], inputs = q.originalShape[1]
        let scales = try source.tensor(named: q.scale).floats()
        func bad(_ r: String) -> Failure { .shape(tensor: name, reason: r) }
        var w = [Float](repeating: 0, count: out * inputs)
        switch q.scheme {
        case .intAffine, .intSymmetric:
            let groups = q.groupsPerRow
            let gs = q.granularity == .group ? q.groupSize! : inputs
            guard scales.count == out * groups else { throw bad("scale has \(scales.count) values, \(out * groups) expected") }
            let rowBytes = (inputs * q.bits + 7) / 8
            guard codes.bytes.count == out * rowBytes else { throw bad("codes hold \(codes.bytes.count) bytes, \(out * rowBytes) expected") }
            var zeros = [Float](repeating: Float(1 << (q.bits - 1)), count: out * groups)
            if q.scheme == .intAffine {
                zeros = try source.tensor(named: q.zeroPoint!).floats()
                guard zeros.count == out * groups else { throw bad("zero point has \(zeros.count) values, \(out * groups) expected") }
            }
            let b = codes.bytes
            for r in 0..<out {
                for c in 0..<inputs {
                    let qv: Int
                    if q.bits == 4 {
                        let byte = b[r * rowBytes + c / 2]
                        qv = Int(c % 2 == 0 ? byte & 0xF : byte >> 4)
                    } else {
                        qv = Int(b[r * rowBytes + c])
                    }
                    let g = r * groups + c / gs
                    w[r * inputs + c] = (Float(qv) - zeros[g]) * scales[g]
                }
            }
        case .fp8E4M3, .fp8E5M2:
            let table = q.scheme == .fp8E4M3 ? FP8.e4m3Table : FP8.e5m2Table
            guard codes.bytes.count == out * inputs else { throw bad("codes hold \(codes.bytes.count) bytes") }
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
                    w[r * inputs + c] = table[Int(codes.bytes[r * inputs + c])] * s
                }
            }
        }
        withExtendedLifetime(codes) {}
        return w
    }
}
