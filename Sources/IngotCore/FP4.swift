/// The 4-bit float E2M1 (OCP FP4: sign, 2 exponent bits, 1 mantissa bit; values 0, ±0.5 … ±6, no inf/NaN) and the
/// E8M0 scale of the MX formats (`2^(e − 127)`, e = 0…254; 255 is NaN in OCP MX). Decoding is exact in f32.
public enum FP4 {
    /// The values of E2M1 codes 0…15 (sign in bit 3).
    public static let e2m1: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]

    /// The largest E2M1 magnitude.
    public static let maxValue: Float = 6

    /// The E2M1 code of `x` as compressed-tensors rounds (`cast_to_fp4`, then its packing): magnitudes are clamped
    /// to 6 and rounded to the nearest value, ties at 0.25, 1.25, 2.5 and 5 going down and at 0.75, 1.75 and 3.5 going
    /// up; the sign bit is the sign of the rounded product `|r| · sign(x)`, so a negative value rounding to zero
    /// gives code 8 (−0) and ±0 give 0. NaN gives 0.
    @inlinable
    public static func encode(_ x: Float) -> UInt8 {
        let a = Swift.min(x.magnitude, maxValue)
        var i: UInt8 = 0
        if a > 0.25 { i = 1 }
        if a >= 0.75 { i = 2 }
        if a > 1.25 { i = 3 }
        if a >= 1.75 { i = 4 }
        if a > 2.5 { i = 5 }
        if a >= 3.5 { i = 6 }
        if a > 5 { i = 7 }
        return x < 0 ? i | 8 : i
    }

    /// The scale an E8M0 code stands for: `2^(e − 127)` (code 255, NaN in OCP MX, decodes as `2^128` = inf).
    @inlinable
    public static func e8m0(_ e: UInt8) -> Float { Float(sign: .plus, exponent: Int(e) - 127, significand: 1) }

    /// The multiplier of each group of FP4 codes, from the stored scale tensor: `U8` E8M0 exponents (MXFP4) are
    /// `2^(e − 127)`; `F8_E4M3` scales (NVFP4) are divided by the weight's global scale, `s / g` in f32 as
    /// compressed-tensors dequantizes. nil for any other dtype, or E4M3 scales without a global scale.
    public static func groupMultipliers(_ bytes: UnsafeRawBufferPointer, dtype: DType, globalScale: Float?) -> [Float]? {
        switch dtype {
        case .u8: return bytes.map { e8m0($0) }
        case .f8e4m3:
            guard let g = globalScale else { return nil }
            return bytes.map { FP8.e4m3ToF32($0) / g }
        default: return nil
        }
    }
}
