import CKernels
import Foundation
import Testing
import IngotCore
@testable import IngotForward

/// The SIMD kernels (`CKernels`) against scalar references in f64, with explicit error budgets, in both bodies
/// (AVX2 + FMA where the CPU has it, and the portable one), and their independence from batch, tiling and threads.
struct KernelTests {
    /// Deterministic values in [-1, 1).
    static func values(_ n: Int, seed: UInt64) -> [Float] {
        var s = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<n).map { _ in
            s ^= s << 13; s ^= s >> 7; s ^= s << 17
            return Float(Int64(bitPattern: s >> 11) % 2_000_000) / 1_000_000
        }
    }

    /// Runs `body` once with the CPU's body and once with the portable body (on this thread).
    static func bothBodies(_ body: (String) throws -> Void) rethrows {
        for portable in [0, 1] {
            ck_force_portable(Int32(portable))
            defer { ck_force_portable(0) }
            try body(portable == 1 ? "portable" : "simd level \(ck_simd_level())")
        }
    }

    /// |y − Σ x·w| ≤ 1e-6 · Σ |x·w| (f32 accumulation over ≤ 200 terms), every output, every shape edge (tiles of
    /// 6 rows and 16 columns, groups of 64, zero inputs), f32 / bf16 / f16 weights.
    @Test func linearGroupMatchesReference() {
        Self.bothBodies { body in
            for (rows, inputs, outputs) in [(1, 1, 1), (5, 7, 17), (6, 16, 64), (7, 33, 65), (13, 200, 130), (3, 0, 5)] {
                let x = Self.values(rows * inputs, seed: 1), w = Self.values(outputs * inputs, seed: 2)
                for type in [CK_F32, CK_BF16, CK_F16] {
                    // The weights as stored in `type` and their exact f32 values.
                    let stored: [UInt8], exact: [Float]
                    switch type {
                    case CK_BF16:
                        let h = w.map { HalfFloat.f32ToBF16($0) }
                        stored = h.withUnsafeBytes { Array($0) }; exact = h.map { HalfFloat.bf16ToF32($0) }
                    case CK_F16:
                        let h = w.map { HalfFloat.f32ToF16($0) }
                        stored = h.withUnsafeBytes { Array($0) }; exact = h.map { HalfFloat.f16ToF32($0) }
                    default:
                        stored = w.withUnsafeBytes { Array($0) }; exact = w
                    }
                    var y = [Float](repeating: .nan, count: rows * outputs)
                    x.withUnsafeBufferPointer { xp in
                        stored.withUnsafeBytes { wp in
                            y.withUnsafeMutableBufferPointer { yp in
                                for c0 in stride(from: 0, to: outputs, by: Int(CK_GROUP_COLUMNS)) {
                                    ck_linear_group(xp.baseAddress, inputs, rows, inputs, wp.baseAddress, Int32(type), inputs, c0,
                                                    min(Int(CK_GROUP_COLUMNS), outputs - c0), yp.baseAddress, outputs)
                                }
                            }
                        }
                    }
                    for r in 0..<rows {
                        for o in 0..<outputs {
                            var ref = 0.0, mag = 0.0
                            for p in 0..<inputs { let t = Double(x[r * inputs + p]) * Double(exact[o * inputs + p]); ref += t; mag += abs(t) }
                            let err = abs(Double(y[r * outputs + o]) - ref)
                            #expect(err <= 1e-6 * mag, "\(body) type \(type) [\(rows)×\(inputs)]·[\(outputs)]ᵀ at (\(r), \(o)): \(err) vs budget \(1e-6 * mag)")
                        }
                    }
                }
            }
        }
    }

    /// The AVX-512 12-row tiles and panel packing give bitwise the AVX2 tiles' and scalar packing's results (same
    /// fused multiply-add chain per output), f32 and bf16 weights, for row counts around the tile sizes, inputs
    /// around the 16-element packing blocks and ragged column panels. (On a CPU without AVX-512 both runs take the
    /// AVX2 path.)
    @Test func wideTilesEqualAVX2TilesBitwise() {
        for (rows, inputs, outputs) in [(7, 33, 65), (12, 16, 16), (13, 200, 130), (24, 64, 64), (25, 96, 200), (40, 5, 3)] {
            let x = Self.values(rows * inputs, seed: 5), w = Self.values(outputs * inputs, seed: 6)
            var results: [[Float]] = []
            for cap in [3, 2] {
                ck_cap_simd_level(Int32(cap))
                defer { ck_cap_simd_level(3) }
                // One worker: the cap holds on this thread only.
                results.append(Parallelism.withWorkers(1) { Kernels.linear(x, w, rows: rows, inputs: inputs, outputs: outputs) })
            }
            #expect(results[0].map(\.bitPattern) == results[1].map(\.bitPattern), "[\(rows)×\(inputs)]·[\(outputs)]ᵀ")
            // bf16 weights, widened while packed (the AVX-512 packing against the scalar one).
            let h = w.map { HalfFloat.f32ToBF16($0) }
            var bf: [[Float]] = []
            for cap in [3, 2] {
                ck_cap_simd_level(Int32(cap))
                defer { ck_cap_simd_level(3) }
                var y = [Float](repeating: .nan, count: rows * outputs)
                Parallelism.withWorkers(1) {
                    x.withUnsafeBufferPointer { xp in
                        h.withUnsafeBytes { wp in
                            y.withUnsafeMutableBufferPointer { yp in
                                Kernels.linear(xp.baseAddress, wp.baseAddress, elementType: Int32(CK_BF16), rows: rows, inputs: inputs,
                                               outputs: outputs, into: yp.baseAddress)
                            }
                        }
                    }
                }
                bf.append(y)
            }
            #expect(bf[0].map(\.bitPattern) == bf[1].map(\.bitPattern), "bf16 [\(rows)×\(inputs)]·[\(outputs)]ᵀ")
        }
    }

    /// A row's output is bitwise the same alone, at any place in a batch, and with any thread count.
    @Test func linearIsIndependentOfBatchAndThreads() {
        let rows = 50, inputs = 96, outputs = 200
        let x = Self.values(rows * inputs, seed: 3), w = Self.values(outputs * inputs, seed: 4)
        let all = Kernels.linear(x, w, rows: rows, inputs: inputs, outputs: outputs)
        for r in [0, 5, 6, 31, 49] {
            let alone = Kernels.linear(Array(x[(r * inputs)..<((r + 1) * inputs)]), w, rows: 1, inputs: inputs, outputs: outputs)
            #expect(alone == Array(all[(r * outputs)..<((r + 1) * outputs)]), "row \(r)")
        }
        for workers in [1, 3] {
            let y = Parallelism.withWorkers(workers) { Kernels.linear(x, w, rows: rows, inputs: inputs, outputs: outputs) }
            #expect(y == all, "\(workers) workers")
        }
    }

    /// Causal GQA attention against an f64 reference: |out − ref| ≤ 1e-5 · (1 + |ref|), several sequences, lengths
    /// crossing the 64-row task blocks and 6-row tiles, dk ≠ dv and widths that are not multiples of 16; plain, with a
    /// sliding window (shorter and longer than a block) and with per-head sinks.
    @Test(arguments: [(nil, false), (5, false), (100, false), (nil, true), (37, true)] as [(Int?, Bool)])
    func attentionMatchesReference(window: Int?, withSinks: Bool) throws {
        let heads = 4, kvHeads = 2, dk = 20, dv = 12, scale: Float = 0.3
        let segments = [(start: 0, length: 1), (start: 1, length: 70), (start: 71, length: 133)]
        let rows = 204
        let q = Self.values(rows * heads * dk, seed: 5).map { $0 * 3 }, k = Self.values(rows * kvHeads * dk, seed: 6)
        let v = Self.values(rows * kvHeads * dv, seed: 7)
        let sinks: [Float]? = withSinks ? [0.5, -1, 2, 0] : nil
        let out = Kernels.attention(q: q, k: k, v: v, segments: segments, heads: heads, kvHeads: kvHeads, dk: dk, dv: dv, scale: scale,
                                    window: window, sinks: sinks)
        var worst = 0.0
        for (start, length) in segments {
            for h in 0..<heads {
                let kh = h / (heads / kvHeads)
                for t in 0..<length {
                    let first = window.map { max(0, t - $0 + 1) } ?? 0
                    var s = (first...t).map { j in
                        Double(scale) * (0..<dk).reduce(0.0) { $0 + Double(q[((start + t) * heads + h) * dk + $1]) * Double(k[((start + j) * kvHeads + kh) * dk + $1]) }
                    }
                    let sink = sinks.map { Double($0[h]) }
                    let m = max(s.max()!, sink ?? -.infinity)
                    s = s.map { exp($0 - m) }
                    let sum = s.reduce(0, +) + (sink.map { exp($0 - m) } ?? 0)
                    for c in 0..<dv {
                        let ref = s.indices.reduce(0.0) { $0 + s[$1] / sum * Double(v[((start + first + $1) * kvHeads + kh) * dv + c]) }
                        let got = Double(out[((start + t) * heads + h) * dv + c])
                        worst = max(worst, abs(got - ref) / (1 + abs(ref)))
                    }
                }
            }
        }
        #expect(worst <= 1e-5, "worst scaled error \(worst)")
        // The per-head entry point gives the same bits as the batched one.
        var single = [Float](repeating: 0, count: rows * heads * dv)
        single.withUnsafeMutableBufferPointer { o in
            for (start, length) in segments {
                for h in 0..<heads {
                    Kernels.attentionHead(q: q, k: k, v: v, rows: start..<(start + length), head: h, kvHead: h / (heads / kvHeads), heads: heads,
                                          kvHeads: kvHeads, dk: dk, dv: dv, scale: scale, window: window, sink: sinks?[h], out: o.baseAddress!)
                }
            }
        }
        #expect(single == out)
    }

    /// exp within 2.5e-7 relative (≈ 2 ulp) of f64 exp wherever the result is a normal float; 0 below −103.97,
    /// +inf above 88.72, NaN kept.
    @Test func expMatchesReference() {
        Self.bothBodies { body in
            let x = stride(from: -110.0, through: 95.0, by: 0.0137).map { Float($0) } + [0, -0, .infinity, -.infinity, .nan, 88.72, -87.33]
            var y = [Float](repeating: 0, count: x.count)
            ck_exp(x, &y, x.count)
            for (a, b) in zip(x, y) {
                if a.isNaN { #expect(b.isNaN, "\(body) exp(nan)"); continue }
                let ref = exp(Double(a))
                if ref >= Double(Float.leastNormalMagnitude) && ref <= Double(Float.greatestFiniteMagnitude) {
                    #expect(abs(Double(b) - ref) <= 2.5e-7 * ref, "\(body) exp(\(a)) = \(b), f64 \(ref)")
                } else if a < -103.98 {
                    #expect(b == 0, "\(body) exp(\(a)) = \(b)")
                } else if a > 88.73 {
                    #expect(b == .infinity, "\(body) exp(\(a)) = \(b)")
                }
            }
        }
    }

    /// silu(g)·u within 5e-7 relative + 1e-30 of the f64 formula; log-sum-exp of vocabulary-sized rows within
    /// 1e-6 absolute of f64.
    @Test func siluAndLogSumExpMatchReference() {
        Self.bothBodies { body in
            let g0 = Self.values(1003, seed: 8).map { $0 * 40 }, u = Self.values(1003, seed: 9)
            var g = g0
            ck_silu_mul(&g, u, g.count)
            for i in g.indices {
                let a = Double(g0[i]), ref = a / (1 + exp(-a)) * Double(u[i])
                #expect(abs(Double(g[i]) - ref) <= 5e-7 * abs(ref) + 1e-30, "\(body) silu(\(a))·\(u[i]) = \(g[i]) vs \(ref)")
            }
            for n in [1, 7, 8, 65, 49_157] {
                let row = Self.values(n, seed: UInt64(n)).map { $0 * 20 }
                let m = Double(row.max()!)
                let ref = m + log(row.reduce(0.0) { $0 + exp(Double($1) - m) })
                let got = ck_logsumexp(row, n)
                #expect(abs(got - ref) <= 1e-6, "\(body) logsumexp n=\(n): \(got) vs \(ref)")
            }
        }
    }
}
