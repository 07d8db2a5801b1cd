import Testing
@testable import IngotCore

/// Exhaustive checks of the f16 / bf16 codecs over every 16-bit code, and of the SIMD kernels against the
/// scalar references.
struct HalfFloatTests {
    static let allCodes: [UInt16] = (0...0xFFFF).map { UInt16($0) }

    @Test func f16DecodeMatchesSwiftFloat16() {
        for h in Self.allCodes {
            let ours = HalfFloat.f16ToF32(h)
            let swift = Float(Float16(bitPattern: h))
            if swift.isNaN { #expect(ours.isNaN); continue }
            #expect(ours.bitPattern == swift.bitPattern, "code \(h)")
        }
    }

    @Test func f16RoundTripIsIdentityExceptNaNQuieting() {
        for h in Self.allCodes {
            let back = HalfFloat.f32ToF16(HalfFloat.f16ToF32(h))
            if h & 0x7C00 == 0x7C00 && h & 0x3FF != 0 { #expect(back == h | 0x0200); continue }
            #expect(back == h)
        }
    }

    @Test func f32ToF16MatchesSwiftConversionAroundEveryHalfCode() {
        // Every f16 value, the exact midpoints between neighbours (ties), and points just either side.
        for h in Self.allCodes where h & 0x7C00 != 0x7C00 {
            let x = HalfFloat.f16ToF32(h)
            for probe in [x, x.nextUp, x.nextDown, x + (x.ulp * 0.5)] {
                let p = Float(bitPattern: probe.bitPattern)
                #expect(HalfFloat.f32ToF16(p) == Float16(p).bitPattern, "x=\(p)")
            }
            let next = HalfFloat.f16ToF32(h &+ 1)
            if next.isFinite, h & 0x7FFF != 0x7BFF, h != 0x7FFF {
                let mid = (Double(x) + Double(next)) / 2
                let m = Float(mid)
                if Double(m) == mid {
                    #expect(HalfFloat.f32ToF16(m) == Float16(m).bitPattern, "tie \(m)")
                    #expect(HalfFloat.f32ToF16(m.nextUp) == Float16(m.nextUp).bitPattern)
                    #expect(HalfFloat.f32ToF16(m.nextDown) == Float16(m.nextDown).bitPattern)
                }
            }
        }
        for v: Float in [65504, 65519.99, 65520, 65536, 1e10, .infinity, -.infinity, 0x1p-25, 0x1p-24, 0x1.8p-25] {
            #expect(HalfFloat.f32ToF16(v) == Float16(v).bitPattern, "\(v)")
        }
    }

    @Test func bf16ExhaustiveRoundTripAndRounding() {
        for b in Self.allCodes {
            let f = HalfFloat.bf16ToF32(b)
            let back = HalfFloat.f32ToBF16(f)
            if f.isNaN { #expect(back & 0x7FC0 == 0x7FC0); continue }
            #expect(back == b)
            // Round to nearest even at the midpoint to the next bf16 code.
            let mid = Float(bitPattern: (UInt32(b) << 16) | 0x8000)
            if mid.isFinite && (b & 0x7F80) != 0x7F80 {
                let expect: UInt16 = (b & 1) == 0 ? b : b &+ 1
                #expect(HalfFloat.f32ToBF16(mid) == expect, "mid of \(b)")
            }
        }
    }

    @Test func simdKernelsMatchScalarReferenceOnAllCodes() throws {
        let n = Self.allCodes.count
        var f16Out = [Float](repeating: 0, count: n)
        var bf16Out = [Float](repeating: 0, count: n)
        try Self.allCodes.withUnsafeBytes { src in
            try f16Out.withUnsafeMutableBytes {
                try FloatCodecs.convert(src, from: .f16, to: .f32, into: $0, count: n)
            }
            try bf16Out.withUnsafeMutableBytes {
                try FloatCodecs.convert(src, from: .bf16, to: .f32, into: $0, count: n)
            }
        }
        for (i, h) in Self.allCodes.enumerated() {
            #expect(f16Out[i].bitPattern == HalfFloat.f16ToF32(h).bitPattern)
            #expect(bf16Out[i].bitPattern == HalfFloat.bf16ToF32(h).bitPattern)
        }
        // f32 -> f16 / bf16 on a dense set of f32 inputs including ties, subnormals, overflow and NaNs.
        var inputs: [Float] = []
        for h in Self.allCodes {
            let x = HalfFloat.f16ToF32(h), y = HalfFloat.bf16ToF32(h)
            inputs += [x, x.nextUp, y, y.nextDown, Float(bitPattern: (UInt32(h) << 16) | 0x8000),
                       Float(bitPattern: (UInt32(h) << 13) | 0x1000)]
        }
        let m = inputs.count
        var h16 = [UInt16](repeating: 0, count: m), hb = [UInt16](repeating: 0, count: m)
        try inputs.withUnsafeBytes { src in
            try h16.withUnsafeMutableBytes { try FloatCodecs.convert(src, from: .f32, to: .f16, into: $0, count: m) }
            try hb.withUnsafeMutableBytes { try FloatCodecs.convert(src, from: .f32, to: .bf16, into: $0, count: m) }
        }
        for i in 0..<m {
            #expect(h16[i] == HalfFloat.f32ToF16(inputs[i]), "f16 of \(inputs[i])")
            #expect(hb[i] == HalfFloat.f32ToBF16(inputs[i]), "bf16 of \(inputs[i])")
        }
        // bf16 <-> f16 directly: same as through f32.
        var toF16 = [UInt16](repeating: 0, count: n), toBF16 = [UInt16](repeating: 0, count: n)
        try Self.allCodes.withUnsafeBytes { src in
            try toF16.withUnsafeMutableBytes { try FloatCodecs.convert(src, from: .bf16, to: .f16, into: $0, count: n) }
            try toBF16.withUnsafeMutableBytes { try FloatCodecs.convert(src, from: .f16, to: .bf16, into: $0, count: n) }
        }
        for (i, h) in Self.allCodes.enumerated() {
            #expect(toF16[i] == HalfFloat.f32ToF16(HalfFloat.bf16ToF32(h)))
            #expect(toBF16[i] == HalfFloat.f32ToBF16(HalfFloat.f16ToF32(h)))
        }
    }
}
