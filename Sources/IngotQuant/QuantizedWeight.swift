import IngotCore
import IngotFormats

/// A quantized 2-D weight `[out, in]`: unsigned codes, per-group scales and zero points, and how to read them.
///
/// Integer schemes store `u = q + offset` (offset 8 for compressed-tensors' signed INT4, 0 for AutoAWQ's unsigned
/// codes) and zero points in the same unsigned domain, so every convention dequantizes as `(u − z) · s`.
public struct QuantizedWeight: Sendable, Equatable {
    public var scheme: QuantizationInfo.Scheme
    public var bits: Int
    public var granularity: QuantizationInfo.Granularity
    public var groupSize: Int?
    public var block: [Int]?
    public var rows: Int
    public var columns: Int
    /// One code per element, row-major.
    public var codes: [UInt8]
    /// `[rows, groups]` (or the block grid / `[1]`), values exactly as stored.
    public var scales: [Float]
    public var scaleDType: DType
    /// `[rows, groups]` unsigned zero points (integer affine schemes).
    public var zeros: [UInt8]?
    /// Offset between signed codes and stored unsigned codes (8 for signed INT4).
    public var codeOffset: Int
    /// NVFP4's per-tensor global scale: a group's scale is `scales[g] / globalScale`.
    public var globalScale: Float? = nil

    /// Scale-tensor columns per row (groups, or block columns).
    public var scaleColumns: Int {
        switch granularity {
        case .group: (columns + groupSize! - 1) / groupSize!
        case .block: (columns + block![1] - 1) / block![1]
        case .channel: 1
        case .tensor: 1
        }
    }

    /// Index of the scale for element (r, c).
    @inlinable
    public func scaleIndex(_ r: Int, _ c: Int) -> Int {
        switch granularity {
        case .group: r * scaleColumns + c / groupSize!
        case .block: (r / block![0]) * scaleColumns + c / block![1]
        case .channel: r
        case .tensor: 0
        }
    }

    /// Reference dequantization to f32 (exact products, no rounding to the storage dtype).
    public func dequantized() -> [Float] {
        if scheme == .intAffine || scheme == .intSymmetric, granularity == .group || granularity == .channel {
            return dequantizedIntegerRuns()
        }
        return referenceDequantized()
    }

    /// Element by element, every scheme and granularity: the reference the run-wise paths are tested against.
    public func referenceDequantized() -> [Float] {
        var w = [Float](repeating: 0, count: rows * columns)
        let fp8: FP8.Format? = scheme == .fp8E4M3 ? .e4m3 : scheme == .fp8E5M2 ? .e5m2 : nil
        for r in 0..<rows {
            for c in 0..<columns {
                let i = r * columns + c, s = scales[scaleIndex(r, c)]
                if scheme == .fp4E2M1 {
                    w[i] = FP4.e2m1[Int(codes[i] & 0xF)] * (globalScale.map { s / $0 } ?? s)
                } else if let f = fp8 {
                    w[i] = FP8Codec.decode(codes[i], f) * s
                } else {
                    let z = zeros.map { Float($0[scaleIndex(r, c)]) } ?? Float(codeOffset)
                    w[i] = (Float(codes[i]) - z) * s
                }
            }
        }
        return w
    }

    /// Integer groups or channels: the same `(u − z) · s` per element, with each run of a row sharing one scale and
    /// zero point read once (AWQ's searches dequantize every candidate).
    func dequantizedIntegerRuns() -> [Float] {
        let run = granularity == .group ? groupSize! : columns, sc = scaleColumns, offset = Float(codeOffset)
        return [Float](unsafeUninitializedCapacity: rows * columns) { w, n in
            codes.withUnsafeBufferPointer { q in
                for r in 0..<rows {
                    for g in 0..<sc {
                        let s = scales[r * sc + g], z = zeros.map { Float($0[r * sc + g]) } ?? offset
                        let lo = r * columns + g * run, hi = r * columns + min(columns, (g + 1) * run)
                        for i in lo..<hi { w[i] = (Float(q[i]) - z) * s }
                    }
                }
            }
            n = rows * columns
        }
    }
}
