import Testing
import IngotCore
@testable import IngotQuant

/// FP8 encode/decode over all 256 codes of both formats, and against the exhaustive-search reference.
struct FP8CodecTests {
    @Test(arguments: FP8.Format.allCases)
    func everyCodeRoundTrips(format: FP8.Format) {
        for c in 0...255 {
            let code = UInt8(c)
            let v = FP8Codec.decode(code, format)
            if v.isNaN {
                #expect(FP8Codec.encode(v, format) & 0x7F == 0x7F)
                continue
            }
            if v.isInfinite { #expect(format == .e5m2); continue }
            // −0 and +0 keep their sign bit
            #expect(FP8Codec.encode(v, format) == code, "code \(c) value \(v)")
        }
    }

    @Test(arguments: FP8.Format.allCases)
    func midpointsRoundToEvenAndLargeValuesSaturate(format: FP8.Format) {
        let maxCode: UInt8 = format == .e4m3 ? 0x7E : 0x7B
        for c in 0..<maxCode {
            let a = Double(FP8Codec.decode(c, format)), b = Double(FP8Codec.decode(c + 1, format))
            let mid = Float((a + b) / 2)
            guard Double(mid) == (a + b) / 2 else { continue }
            let even: UInt8 = c & 1 == 0 ? c : c + 1
            #expect(FP8Codec.encode(mid, format) == even, "midpoint of \(c)")
            #expect(FP8Codec.encode(-mid, format) == even | 0x80)
            #expect(FP8Codec.encode(mid.nextDown, format) == c)
            #expect(FP8Codec.encode(mid.nextUp, format) == c + 1)
        }
        let maxV = FP8Codec.decode(maxCode, format)
        for v in [maxV, maxV * 1.01, maxV * 4, Float.greatestFiniteMagnitude, .infinity] {
            #expect(FP8Codec.encode(v, format) == maxCode)
            #expect(FP8Codec.encode(-v, format) == maxCode | 0x80)
        }
        #expect(format != .e4m3 || (FP8Codec.decode(0x7F, .e4m3).isNaN && FP8Codec.decode(0xFF, .e4m3).isNaN))
        #expect(format != .e4m3 || FP8Codec.decode(0x7E, .e4m3) == 448)
        #expect(format != .e5m2 || FP8Codec.decode(0x7B, .e5m2) == 57344)
    }

    @Test(arguments: FP8.Format.allCases)
    func fastEncoderMatchesReference(format: FP8.Format) {
        var g = SystemRandomNumberGenerator()
        let limit: Float = format == .e4m3 ? 600 : 70000
        for i in 0..<40_000 {
            let x: Float = i % 4 == 0 ? Float.random(in: -1...1, using: &g) * 0.02
                : i % 4 == 1 ? Float.random(in: -limit...limit, using: &g)
                : i % 4 == 2 ? Float(sign: .plus, exponent: Int.random(in: -24...16, using: &g), significand: Float.random(in: 1..<2, using: &g))
                : -Float(sign: .plus, exponent: Int.random(in: -24...16, using: &g), significand: Float.random(in: 1..<2, using: &g))
            #expect(FP8Codec.encode(x, format) == FP8Codec.encodeReference(x, format), "\(x)")
        }
    }
}
