import CKernels
import Foundation
import Testing
import IngotCore
@testable import IngotQuant

/// The vectorized quantizer loops (`CKernels/quant.c`) give exactly the bits of their Swift references.
struct QuantKernelTests {
    /// Values spanning normal, subnormal, tiny and huge magnitudes of both signs, plus exact halfway cases.
    static let values: [Float] = {
        var s: UInt64 = 0x1234_5678_9ABC_DEF1
        var v: [Float] = []
        for _ in 0..<20_000 {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17
            let bits = UInt32(truncatingIfNeeded: s >> 7)
            let f = Float(bitPattern: bits)
            if f.isFinite { v.append(f) }
            v.append(Float(Int64(bitPattern: s) % 4_000_000) / 1_000_000)  // typical weights
        }
        v += [0, -0, 0.5, -0.5, 1.5, 2.5, -2.5, 7.5, -8.5, Float(bitPattern: 0x0001_0000), -Float(bitPattern: 0x0001_0000), 448, 449, 464, -464, 57344, 61440, .greatestFiniteMagnitude]
        return v
    }()

    /// Integer dequantization run by run (one scale and zero point per group or row) gives the element-by-element
    /// reference's bits: affine and symmetric, groups that divide the row and a ragged last group, per channel.
    @Test func integerDequantizationMatchesElementReference() {
        let x = Array(Self.values.filter { abs($0) < 1e4 }.prefix(96 * 40))
        for (quantizer, columns) in [(IntQuantizer(bits: 4, groupSize: 32, symmetric: false, convention: .compressedTensors), 96),
                                     (IntQuantizer(bits: 4, groupSize: 32, symmetric: true, convention: .compressedTensors), 96),
                                     (IntQuantizer(bits: 4, groupSize: 64, symmetric: false, convention: .autoawq), 96),
                                     (IntQuantizer(bits: 8, groupSize: nil, symmetric: false, convention: .compressedTensors), 80)] {
            let rows = x.count / columns
            let q = x.prefix(rows * columns).withUnsafeBufferPointer { quantizer.quantize($0, rows: rows, columns: columns, precision: .bf16) }
            let got = q.dequantized(), want = q.referenceDequantized()
            #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "\(quantizer) columns \(columns)")
        }
    }

    @Test func compressedTensorsGroupMatchesSwiftReference() {
        let x = Self.values
        for (precision, name) in [(ComputePrecision.f32, "f32"), (.bf16, "bf16"), (.f16, "f16")] {
            for (s, zp, qmin, qmax, offset) in [(Float(0.013), Float(-3), Float(-8), Float(7), Float(8)), (0.37, 0, -8, 7, 8),
                                                (2.5e-3, 17, -128, 127, 128), (1e-6, 0, 0, 15, 0)] {
                var got = [UInt8](repeating: 0, count: x.count), want = got
                ck_quant_ct_group(x, x.count, s, zp, qmin, qmax, offset, precision.kernelRounding, &got)
                x.withUnsafeBufferPointer { xp in
                    want.withUnsafeMutableBufferPointer { w in
                        switch precision {
                        case .bf16: QuantKernels.ctGroup(RoundBF16.self, xp.baseAddress!, x.count, scale: s, zero: zp, qmin: qmin, qmax: qmax, offset: offset, into: w.baseAddress!)
                        case .f16: QuantKernels.ctGroup(RoundF16.self, xp.baseAddress!, x.count, scale: s, zero: zp, qmin: qmin, qmax: qmax, offset: offset, into: w.baseAddress!)
                        case .f32: QuantKernels.ctGroup(RoundF32.self, xp.baseAddress!, x.count, scale: s, zero: zp, qmin: qmin, qmax: qmax, offset: offset, into: w.baseAddress!)
                        }
                    }
                }
                let bad = zip(got, want).enumerated().first { $0.element.0 != $0.element.1 }
                #expect(bad == nil, "\(name) s=\(s) zp=\(zp): x=\(bad.map { x[$0.offset] } ?? 0) got \(bad?.element.0 ?? 0) want \(bad?.element.1 ?? 0)")
            }
        }
    }

    /// FP8 codes against the exhaustive-search reference `FP8Codec.encodeReference`, and the rounding loops against
    /// the Swift element step.
    @Test func fp8RunMatchesReference() {
        let x = Self.values
        for (format, e4m3) in [(FP8.Format.e4m3, true), (.e5m2, false)] {
            let limit: Float = e4m3 ? 448 : 57344
            var got = [UInt8](repeating: 0, count: x.count)
            ck_quant_fp8_run(x, x.count, 1, limit, e4m3 ? 1 : 0, ComputePrecision.f32.kernelRounding, &got)
            for (v, c) in zip(x, got) {
                let want = FP8Codec.encodeReference(min(max(v, -limit), limit), format)
                #expect(c == want, "\(format) \(v): \(c) vs reference \(want)")
                if c != want { break }
            }
            for (precision, name) in [(ComputePrecision.bf16, "bf16"), (.f16, "f16")] {
                let s: Float = 0.0173
                ck_quant_fp8_run(x, x.count, s, limit, e4m3 ? 1 : 0, precision.kernelRounding, &got)
                var want = [UInt8](repeating: 0, count: x.count)
                x.withUnsafeBufferPointer { xp in
                    want.withUnsafeMutableBufferPointer { w in
                        if precision == .bf16 {
                            QuantKernels.fp8Run(RoundBF16.self, xp.baseAddress!, x.count, scale: s, limit: limit, e4m3: e4m3, into: w.baseAddress!)
                        } else {
                            QuantKernels.fp8Run(RoundF16.self, xp.baseAddress!, x.count, scale: s, limit: limit, e4m3: e4m3, into: w.baseAddress!)
                        }
                    }
                }
                #expect(got == want, "\(format) in \(name)")
            }
        }
    }

    @Test func reductionsMatchScalarLoops() {
        let x = Self.values + [.nan, .infinity, -.infinity]
        for (lo, n) in [(0, 0), (0, 1), (3, 129), (0, x.count - 3), (0, x.count), (x.count - 3, 3), (x.count - 4, 1)] {
            let run = Array(x[lo..<(lo + n)])
            var mn: Float = 0, mx: Float = 0
            let special = ck_min_max(run, n, &mn, &mx)
            let finite = run.filter { $0.isFinite }
            #expect((special != 0) == (finite.count != n), "special flag of [\(lo), +\(n))")
            if special == 0 {
                #expect(mn == (run.min() ?? .infinity) && mx == (run.max() ?? -.infinity))
            }
            #expect(ck_abs_max(run, n) == (finite.map(\.magnitude).max() ?? 0))
            var nonzero: UInt32 = 0, sp: UInt32 = 0, mm: UInt32 = 0
            ck_scan_group(run, n, &nonzero, &sp, &mm)
            #expect((nonzero != 0) == run.contains { $0 != 0 })
            #expect((sp != 0) == run.contains { !$0.isFinite || $0.isSubnormal })
            #expect(mm == (run.map { $0.bitPattern & 0x7FFF_FFFF }.max() ?? 0))
        }
        let codes: [UInt8] = (0..<64).map { UInt8($0 * 37 & 0xFF) }
        var packed = [UInt8](repeating: 0, count: 32)
        ck_pack_nibbles(codes, 32, &packed)
        let want: [UInt8] = (0..<32).map { (i: Int) -> UInt8 in (codes[2 * i] & 0xF) | ((codes[2 * i + 1] & 0xF) << 4) }
        #expect(packed == want)
    }
}
