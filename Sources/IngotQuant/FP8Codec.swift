import IngotCore

/// FP8 encoding (saturating, round to nearest even) for E4M3FN and E5M2, on f32 bit patterns.
///
/// E4M3FN: bias 7, no infinities, NaN only at 0x7F/0xFF, largest finite 448 (0x7E), smallest subnormal 2⁻⁹.
/// E5M2: bias 15, largest finite 57344 (0x7B). Values beyond the largest finite saturate to it (as
/// compressed-tensors and DeepSeek clamp before casting); NaN encodes as 0x7F (sign kept).
/// `encodeReference` defines the result by exhaustive search in Double; the fast path is tested against it.
public enum FP8Codec {
    @inlinable
    public static func encode(_ x: Float, _ format: FP8.Format) -> UInt8 {
        format == .e4m3 ? encodeE4M3(x) : encodeE5M2(x)
    }

    /// Branch-free (selects only, so loops over it vectorize).
    @inlinable @inline(__always)
    public static func encodeE4M3(_ x: Float) -> UInt8 {
        let bits = x.bitPattern
        let sign = (bits >> 24) & 0x80
        let a = bits & 0x7FFF_FFFF
        // below 2⁻⁶: subnormal steps of 2⁻⁹ (the magic add rounds to an integer, ties to even)
        let sub = (Float(bitPattern: a) * 512 + 12_582_912).bitPattern & 0xFF
        let r = (a &+ 0x7FFFF &+ ((a >> 20) & 1)) >> 20               // keep 3 mantissa bits, ties to even
        var code = min(r &- 960, 0x7E)                                // rebias 127 → 7
        code = a < 0x3C80_0000 ? sub : code
        code = a >= 0x43E0_0000 ? 0x7E : code                         // ≥ 448 saturates
        code = a > 0x7F80_0000 ? 0x7F : code                          // NaN
        return UInt8(truncatingIfNeeded: sign | code)
    }

    /// Branch-free (selects only, so loops over it vectorize).
    @inlinable @inline(__always)
    public static func encodeE5M2(_ x: Float) -> UInt8 {
        let bits = x.bitPattern
        let sign = (bits >> 24) & 0x80
        let a = bits & 0x7FFF_FFFF
        let sub = (Float(bitPattern: a) * 65536 + 12_582_912).bitPattern & 0xFF   // below 2⁻¹⁴: steps of 2⁻¹⁶
        let r = (a &+ 0xFFFFF &+ ((a >> 21) & 1)) >> 21
        var code = min(r &- 448, 0x7B)                                // rebias 127 → 15
        code = a < 0x3880_0000 ? sub : code
        code = a >= 0x4760_0000 ? 0x7B : code                         // ≥ 57344 saturates
        code = a > 0x7F80_0000 ? 0x7F : code
        return UInt8(truncatingIfNeeded: sign | code)
    }

    @inlinable
    public static func decode(_ c: UInt8, _ format: FP8.Format) -> Float {
        format == .e4m3 ? FP8.e4m3Table[Int(c)] : FP8.e5m2Table[Int(c)]
    }

    /// Reference: the nearest finite code by exhaustive search (ties to the even code), saturating.
    public static func encodeReference(_ x: Float, _ format: FP8.Format) -> UInt8 {
        if x.isNaN { return (x.sign == .minus ? 0x80 : 0) | 0x7F }
        let maxCode: UInt8 = format == .e4m3 ? 0x7E : 0x7B
        let v = Double(x.magnitude)
        var best: UInt8 = 0
        var bestDist = Double.infinity
        for c in 0...maxCode {
            let d = abs(Double(decode(c, format)) - v)
            if d < bestDist || (d == bestDist && c & 1 == 0) { best = c; bestDist = d }
        }
        return (x.sign == .minus ? 0x80 : 0) | best
    }
}
