import IngotCore
import IngotFormats

/// MXFP4 weight quantization (OCP microscaling, as compressed-tensors' `MXFP4A16` preset computes it): groups of 32
/// input columns share a power-of-two scale stored as an E8M0 exponent; each value becomes an FP4 E2M1 code.
///
/// Per group: `m = max|x|`; `m` is rounded to a power of two `p` (up when its mantissa is ≥ 0.75, else down:
/// `round_to_power_2`); the E8M0 code is `clamp(127 + log2 p − 2, 0, 255)` (2 = ⌊log2 6⌋, so the group's largest
/// magnitude lands near the top of E2M1's range; a power of two that overflows is infinity, code 255); `s = 2^(e − 127)`; codes are `FP4.encode(x / s)` with the
/// quotient rounded to the weight dtype. A zero group gets code 0 (`2^-127`).
public struct MXFP4Quantizer: Sendable {
    public static let groupSize = 32

    public init() {}

    /// The E8M0 code of a group whose largest magnitude is `m`.
    @inlinable
    public static func scaleCode(_ m: Float) -> UInt8 {
        guard m.isFinite else { return 255 }
        guard m.isNormal else {
            // Zero, or subnormal: the power of two is 0 or the smallest normal; both clamp to code 0.
            return 0
        }
        let roundsUp = m.significandBitPattern >= 3 << (Float.significandBitCount - 2)
        let e = Int(m.exponent) + (roundsUp ? 1 : 0)
        // Rounding up past the largest binade overflows to infinity, whose code is 255.
        if e > Int(Float.greatestFiniteMagnitude.exponent) { return 255 }
        return UInt8(clamping: max(0, min(255, 127 + e - 2)))
    }

    public func quantize(_ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int, precision R: ComputePrecision) -> QuantizedWeight {
        let g = Self.groupSize
        let (codes, scales) = FP4Groups.quantize(weights, rows: rows, columns: columns, groupSize: g,
                                                 scale: { FP4.e8m0(Self.scaleCode($0)) }, code: { x, s in FP4.encode(R.round(x / s)) })
        return QuantizedWeight(scheme: .fp4E2M1, bits: 4, granularity: .group, groupSize: g, block: nil, rows: rows, columns: columns,
                               codes: codes, scales: scales, scaleDType: .u8, zeros: nil, codeOffset: 0)
    }
}
