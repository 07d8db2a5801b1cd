import Foundation
import Testing
import IngotCore
import IngotFormats
@testable import IngotQuant

/// FP4 E2M1 and E8M0 codecs and MXFP4's scale rule against scalar references, over every code.
@Suite struct FP4Tests {
    /// E2M1 by its definition: sign, 2-bit exponent (bias 1, 0 = subnormal), 1-bit mantissa.
    static func e2m1Reference(_ c: UInt8) -> Float {
        let sign: Float = c & 8 != 0 ? -1 : 1, e = Int((c >> 1) & 3), m = Float(c & 1)
        return sign * (e == 0 ? m * 0.5 : (1 + m / 2) * Float(1 << (e - 1)))
    }

    /// compressed-tensors' `cast_to_fp4` bucket by bucket, then its packing (sign bit of the rounded product).
    static func encodeReference(_ x: Float) -> UInt8 {
        let c = min(max(x, -6), 6)
        let sign: Float = c > 0 ? 1 : c < 0 ? -1 : 0
        var a = abs(c)
        if a >= 0 && a <= 0.25 { a = 0 } else if a > 0.25 && a < 0.75 { a = 0.5 } else if a >= 0.75 && a <= 1.25 { a = 1 }
        else if a > 1.25 && a < 1.75 { a = 1.5 } else if a >= 1.75 && a <= 2.5 { a = 2 } else if a > 2.5 && a < 3.5 { a = 3 }
        else if a >= 3.5 && a <= 5 { a = 4 } else if a > 5 { a = 6 }
        let r = a * sign
        let index = [0, 0.5, 1, 1.5, 2, 3, 4, 6].firstIndex(of: abs(r))!
        return UInt8(index) | (r.sign == .minus ? 8 : 0)
    }

    /// MXFP4's E8M0 code from bf16 bits as compressed-tensors computes it: `round_to_power_2` (add 2^5 to the bf16
    /// bits, keep sign and exponent), `127 + ⌊log2⌋ − 2`, clamped to a byte.
    static func scaleCodeReference(bf16 bits: UInt16) -> UInt8 {
        let p = Float(bitPattern: UInt32((UInt32(bits) + 32) & 0xFF80) << 16)
        let e = 127 + log2(Double(p)).rounded(.down) - 2
        return UInt8(max(0, min(255, e.isNaN ? 0 : e)))
    }

    @Test func everyE2M1CodeDecodesAndRoundTrips() {
        for c in UInt8(0)..<16 {
            #expect(FP4.e2m1[Int(c)].bitPattern == Self.e2m1Reference(c).bitPattern, "code \(c)")
            #expect(FP4.encode(FP4.e2m1[Int(c)]) == (c == 8 ? 0 : c), "code \(c) round trip (−0 encodes as +0, as torch.sign(−0) = 0)")
        }
    }

    @Test func encodingMatchesTheReferenceOnEveryBF16Value() {
        // Mismatches are collected (one expectation per value is slow in debug builds).
        let bad = (0...UInt16.max).map { Float(bitPattern: UInt32($0) << 16) }.filter { !$0.isNaN && FP4.encode($0) != Self.encodeReference($0) }
        #expect(bad.isEmpty, "first mismatches: \(bad.prefix(5))")
    }

    @Test func everyE8M0CodeDecodes() {
        for e in 0...255 {
            let want = e == 255 ? Float.infinity : Float(pow(2.0, Double(e - 127)))
            #expect(FP4.e8m0(UInt8(e)) == want, "E8M0 \(e)")
        }
    }

    @Test func scaleCodeMatchesTheReferenceOnEveryFiniteBF16Magnitude() {
        let bad = (UInt16(0)..<0x7F80).filter { MXFP4Quantizer.scaleCode(Float(bitPattern: UInt32($0) << 16)) != Self.scaleCodeReference(bf16: $0) }
        #expect(bad.isEmpty, "first mismatches (bf16 bits): \(bad.prefix(5))")
        #expect(MXFP4Quantizer.scaleCode(.infinity) == 255 && MXFP4Quantizer.scaleCode(.nan) == 255)
    }

    @Test func quantizedGroupsDequantizeWithinHalfAStep() {
        let cols = 64, rows = 3
        let w: [Float] = (0..<(rows * cols)).map { Float(sin(Double($0) * 0.37)) * (1 + Float($0 % 7)) }
        let q = w.withUnsafeBufferPointer { MXFP4Quantizer().quantize($0, rows: rows, columns: cols, precision: .bf16) }
        let d = q.dequantized()
        for r in 0..<rows {
            for g in 0..<2 {
                let s = q.scales[r * 2 + g]
                let m = (0..<32).map { abs(w[r * cols + g * 32 + $0]) }.max()!
                #expect(m / s <= 8 && m / s >= 2, "the group's max lands in E2M1's top range")
                for i in 0..<32 {
                    let k = r * cols + g * 32 + i
                    // Below 4·s the grid step is ≤ s; above, values beyond 6·s clamp.
                    #expect(abs(d[k] - w[k]) <= max(s, abs(w[k]) - 6 * s) + 1e-6, "\(w[k]) → \(d[k]) (scale \(s))")
                }
            }
        }
    }
}
