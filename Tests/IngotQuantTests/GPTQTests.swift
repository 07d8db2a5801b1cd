import Foundation
import IngotCore
@testable import IngotQuant
import Testing
import IngotTestSupport

/// GPTQ against a scalar reference: the textbook algorithm (Frantar et al. 2022, Alg. 1) in f64, one column at a
/// time with every update applied at once (no blocks, no lazy batch), inverse by Gauss-Jordan, Cholesky by
/// Cholesky-Banachiewicz, group parameters fixed up front as in `GPTQ`.
@Suite struct GPTQTests {
    struct Rand {
        var s: UInt64
        mutating func next() -> Double {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Double(s >> 11) / Double(1 << 53)
        }
        mutating func gaussian() -> Float { Float((-2 * log(max(next(), 1e-300))).squareRoot() * cos(2 * .pi * next())) }
    }

    /// Inputs with correlated, unevenly scaled channels (as activations are), and weights.
    func problem(rows: Int, columns: Int, tokens: Int, seed: UInt64) -> (w: [Float], x: [Float]) {
        var r = Rand(s: seed)
        let w = (0..<(rows * columns)).map { _ in r.gaussian() * 0.02 }
        let scale = (0..<columns).map { _ in Float(0.2 + 3 * r.next()) }
        var x = [Float](repeating: 0, count: tokens * columns)
        for t in 0..<tokens {
            let common = r.gaussian()
            for c in 0..<columns { x[t * columns + c] = (r.gaussian() + 0.5 * common) * scale[c] }
        }
        return (w, x)
    }

    static func reference(_ w: [Float], rows: Int, columns n: Int, hessian h0: [Double], quantizer: IntQuantizer, dampening: Double,
                          actOrder: Bool) -> [UInt8] {
        let q = w.withUnsafeBufferPointer { quantizer.quantize($0, rows: rows, columns: n, precision: .f32) }
        var h = h0
        var dead = [Bool](repeating: false, count: n)
        for i in 0..<n where h[i * n + i] == 0 { dead[i] = true; h[i * n + i] = 1 }
        let perm = actOrder ? (0..<n).sorted { h[$0 * n + $0] > h[$1 * n + $1] || (h[$0 * n + $0] == h[$1 * n + $1] && $0 < $1) } : Array(0..<n)
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { a[i * n + j] = h[perm[i] * n + perm[j]] } }
        let mean = (0..<n).reduce(0.0) { $0 + a[$1 * n + $1] } / Double(n)
        for i in 0..<n { a[i * n + i] += dampening * mean }
        // Gauss-Jordan inverse.
        var inv = [Double](repeating: 0, count: n * n)
        for i in 0..<n { inv[i * n + i] = 1 }
        for c in 0..<n {
            let p = (c..<n).max { abs(a[$0 * n + c]) < abs(a[$1 * n + c]) }!
            for k in 0..<n { a.swapAt(c * n + k, p * n + k); inv.swapAt(c * n + k, p * n + k) }
            let d = a[c * n + c]
            for k in 0..<n { a[c * n + k] /= d; inv[c * n + k] /= d }
            for r in 0..<n where r != c {
                let f = a[r * n + c]
                if f == 0 { continue }
                for k in 0..<n { a[r * n + k] -= f * a[c * n + k]; inv[r * n + k] -= f * inv[c * n + k] }
            }
        }
        // inv = L Lᵀ; U = Lᵀ.
        var l = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                var s = inv[i * n + j]
                for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
                l[i * n + j] = i == j ? s.squareRoot() : s / l[j * n + j]
            }
        }
        let g = quantizer.groupSize ?? n, groups = (n + g - 1) / g
        var codes = q.codes
        for r in 0..<rows {
            var wr = (0..<n).map { dead[perm[$0]] ? 0 : Double(w[r * n + perm[$0]]) }
            for i in 0..<n {
                let col = perm[i], gi = r * groups + col / g
                let s = q.scales[gi], z = q.zeros?[gi] ?? UInt8(q.codeOffset)
                let code = quantizer.code(Float(wr[i]), scale: s, zero: z, precision: .f32)
                codes[r * n + col] = code
                let e = (wr[i] - Double((Float(code) - Float(z)) * s)) / l[i * n + i]
                for j in (i + 1)..<n { wr[j] -= e * l[j * n + i] }
            }
        }
        return codes
    }

    /// ‖X·(Ŵ − W)ᵀ‖² / ‖X·Wᵀ‖² for dequantized `ŵ`.
    func outputError(_ what: [Float], _ w: [Float], x: [Float], rows: Int, columns: Int, tokens: Int) -> Double {
        var num = 0.0, den = 0.0
        for t in 0..<tokens {
            for r in 0..<rows {
                var a = 0.0, b = 0.0
                for c in 0..<columns { a += Double(x[t * columns + c]) * Double(what[r * columns + c]); b += Double(x[t * columns + c]) * Double(w[r * columns + c]) }
                num += (a - b) * (a - b); den += b * b
            }
        }
        return num / den
    }

    @Test(arguments: [(false, false, 64), (true, false, 32), (false, true, 64)])
    func matchesScalarReference(actOrder: Bool, symmetric: Bool, group: Int) throws {
        let rows = 48, columns = 192, tokens = 400
        let (w, x) = problem(rows: rows, columns: columns, tokens: tokens, seed: 7)
        let h = GPTQ.hessian(x, tokens: tokens, columns: columns)
        let quantizer = IntQuantizer(bits: 4, groupSize: group, symmetric: symmetric)
        let gptq = GPTQ(blockSize: 32, dampening: 0.01, actOrder: actOrder)
        let q = try gptq.quantize(w, rows: rows, columns: columns, hessian: h, quantizer: quantizer, precision: .f32, name: "test")
        let want = Self.reference(w, rows: rows, columns: columns, hessian: h, quantizer: quantizer, dampening: 0.01, actOrder: actOrder)
        let same = zip(q.codes, want).filter { $0 == $1 }.count
        // f32 blocked updates against f64: a code may flip where a value lands within rounding noise of a half step.
        #expect(Double(same) / Double(want.count) >= 0.995, "\(same) of \(want.count) codes equal")
        var ref = q
        ref.codes = want
        let err = outputError(q.dequantized(), w, x: x, rows: rows, columns: columns, tokens: tokens)
        let refErr = outputError(ref.dequantized(), w, x: x, rows: rows, columns: columns, tokens: tokens)
        #expect(abs(err - refErr) <= 0.01 * refErr, "GPTQ \(err) vs reference \(refErr)")
        let rtn = w.withUnsafeBufferPointer { quantizer.quantize($0, rows: rows, columns: columns, precision: .f32) }.dequantized()
        #expect(err < outputError(rtn, w, x: x, rows: rows, columns: columns, tokens: tokens))
    }

    /// Fewer tokens than inputs and no dampening: `XᵀX` is singular, and the error names the linear.
    @Test func singularHessianIsNamed() throws {
        let (w, x) = problem(rows: 8, columns: 64, tokens: 16, seed: 3)
        let h = GPTQ.hessian(x, tokens: 16, columns: 64)
        #expect(throws: GPTQ.Failure.singular("model.layers.0.mlp.down_proj.weight")) {
            try GPTQ(dampening: 0).quantize(w, rows: 8, columns: 64, hessian: h, quantizer: IntQuantizer(bits: 4, groupSize: 32),
                                            precision: .f32, name: "model.layers.0.mlp.down_proj.weight")
        }
    }

    /// GPTQ's grid from the clip search: the search on the Hessian finds the clamps the search on the inputs finds
    /// (same error), the scales are those of the clipped weights, and the output error on the calibration inputs is
    /// below plain min/max GPTQ's on skewed weights.
    @Test func clipSearchedGridOnTheHessian() throws {
        var rng = TestRandom(seed: 11)
        let rows = 16, columns = 64, tokens = 96
        let w = (0..<(rows * columns)).map { i -> Float in
            let u = Float(rng.gaussian())
            return i % 13 == 0 ? 6 * abs(u) : u }
        let x = (0..<(tokens * columns)).map { _ in Float(rng.gaussian()) }
        let q = IntQuantizer(bits: 4, groupSize: 32)
        let fq: ([Float], Int, Int) -> [Float] = { v, r, c in v.withUnsafeBufferPointer { q.quantize($0, rows: r, columns: c, precision: .f32).dequantized() } }
        let h = GPTQ.hessian(x, tokens: tokens, columns: columns)
        let a = AWQClip.search(w, rows: rows, columns: columns, groupSize: 32, inputs: x, tokens: tokens, asymmetric: true, fakeQuantize: fq)
        let b = AWQClip.search(w, rows: rows, columns: columns, groupSize: 32, hessian: h, tokens: tokens, asymmetric: true, fakeQuantize: fq)
        #expect(abs(a.after - b.after) <= 1e-4 * a.after && b.after < b.before)
        var clipped = w
        AWQClip.clamp(&clipped, rows: rows, columns: columns, groupSize: 32, steps: b.steps)
        let gptq = GPTQ()
        let plain = try gptq.quantize(w, rows: rows, columns: columns, hessian: h, quantizer: q, precision: .f32, name: "w")
        let gridded = try gptq.quantize(w, rows: rows, columns: columns, hessian: h, quantizer: q, precision: .f32, name: "w", gridFrom: clipped)
        #expect(gridded.scales == clipped.withUnsafeBufferPointer { q.quantize($0, rows: rows, columns: columns, precision: .f32) }.scales)
        func outputError(_ qw: QuantizedWeight) -> Double {
            let d = zip(qw.dequantized(), w).map { Double($0 - $1) }
            var e = 0.0
            for t in 0..<tokens { for r in 0..<rows {
                var s = 0.0
                for c in 0..<columns { s += Double(x[t * columns + c]) * d[r * columns + c] }
                e += s * s
            } }
            return e
        }
        #expect(outputError(gridded) < outputError(plain))
    }
}
