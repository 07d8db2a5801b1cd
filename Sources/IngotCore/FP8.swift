/// Decoding of the 8-bit float formats (OCP FP8): E4M3FN (bias 7, no infinities, NaN at 0x7F/0xFF, max 448) and
/// E5M2 (IEEE-like, bias 15, max 57344, ±inf). Encoding (saturating, round to nearest even) lives with the
/// quantizers; decoding is a 256-entry table.
public enum FP8 {
    public enum Format: String, Sendable, CaseIterable {
        case e4m3 = "e4m3", e5m2 = "e5m2"
        /// The largest finite value.
        public var maxValue: Float { self == .e4m3 ? 448 : 57344 }
    }

    /// f32 value of an E4M3FN code (exact).
    public static func e4m3ToF32(_ c: UInt8) -> Float {
        let sign: Float = c & 0x80 != 0 ? -1 : 1
        let e = Int((c >> 3) & 0xF), m = Int(c & 7)
        if e == 0xF && m == 7 { return .nan }
        if e == 0 { return sign * Float(m) * 0x1p-9 }
        return sign * Float(8 + m) * Float(sign: .plus, exponent: e - 10, significand: 1)
    }

    /// f32 value of an E5M2 code (exact).
    public static func e5m2ToF32(_ c: UInt8) -> Float { HalfFloat.f16ToF32(UInt16(c) << 8) }

    /// The E4M3FN code of a value E4M3 represents exactly (a scale decoded from a code): sign, then the exponent and 3
    /// mantissa bits read off the f32 (subnormals in steps of 2⁻⁹). NaN gives 0x7F; other values are truncated, so
    /// only exact values round-trip (quantizers encode with `FP8Codec`).
    public static func e4m3Code(exact x: Float) -> UInt8 {
        if x.isNaN { return 0x7F }
        let sign: UInt8 = x.sign == .minus ? 0x80 : 0
        let a = x.magnitude
        if a < 0x1p-6 { return sign | UInt8(a * 512) }
        let e = Int(a.exponent) + 7, m = Int((a.significand - 1) * 8)
        return sign | UInt8(clamping: min(e, 15) << 3 | m)
    }

    public static let e4m3Table: [Float] = (0..<256).map { e4m3ToF32(UInt8($0)) }
    public static let e5m2Table: [Float] = (0..<256).map { e5m2ToF32(UInt8($0)) }

    public static func table(_ f: Format) -> [Float] { f == .e4m3 ? e4m3Table : e5m2Table }
}
