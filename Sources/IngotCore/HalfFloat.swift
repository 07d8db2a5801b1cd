/// Scalar reference conversions between f32, f16 and bf16 on bit patterns.
///
/// Rounding is to nearest, ties to even; overflow to f16 gives ±inf; NaN stays NaN (quieted, top payload bits
/// kept, as x86 `vcvtps2ph` does). These define the results; the SIMD versions in `FloatCodecs` are tested
/// against them over every 16-bit code.
public enum HalfFloat {
    /// f16 bits → f32.
    @inlinable @inline(__always)
    public static func f16ToF32(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32(h >> 10) & 0x1F
        let mant = UInt32(h & 0x3FF)
        if exp == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
        if exp == 0 {
            if mant == 0 { return Float(bitPattern: sign) }
            // Subnormal: mant · 2^-24, exact in f32.
            let v = Float(mant) * 0x1p-24
            return Float(bitPattern: sign | v.bitPattern)
        }
        return Float(bitPattern: sign | ((exp + 112) << 23) | (mant << 13))
    }

    /// f32 → f16 bits, round to nearest even.
    @inlinable @inline(__always)
    public static func f32ToF16(_ f: Float) -> UInt16 {
        let bits = f.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let a = bits & 0x7FFF_FFFF
        if a > 0x7F80_0000 { return sign | 0x7E00 | UInt16((a >> 13) & 0x3FF) }  // NaN, quieted
        if a >= 0x4780_0000 {  // ≥ 65536: beyond the rounding range of the largest finite half
            return sign | 0x7C00
        }
        if a < 0x3880_0000 {  // below 2^-14: subnormal half or zero
            // Adding 0.5 (2^-1) aligns the mantissa so the FPU rounds to 2^-24 steps, ties to even.
            let v = Float(bitPattern: a) + 0.5
            return sign | UInt16(v.bitPattern - 0x3F00_0000)
        }
        let mantOdd = (a >> 13) & 1
        let r = a &+ 0xC800_0FFF &+ mantOdd  // rebias exponent (-112 << 23) and round
        let h = r >> 13
        return sign | UInt16(truncatingIfNeeded: min(h, 0x7C00))
    }

    /// bf16 bits → f32 (exact).
    @inlinable @inline(__always)
    public static func bf16ToF32(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

    /// f32 → bf16 bits, round to nearest even; NaN quieted.
    @inlinable @inline(__always)
    public static func f32ToBF16(_ f: Float) -> UInt16 {
        let bits = f.bitPattern
        if bits & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(bits >> 16) | 0x0040 }
        let rounding = 0x7FFF &+ ((bits >> 16) & 1)
        return UInt16((bits &+ rounding) >> 16)
    }
}
