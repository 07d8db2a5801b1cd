import COpenBLAS
import Foundation

/// The numeric kernels of the forward pass.
public enum Kernels {
    /// y[rows, outputs] = x[rows, inputs] · Wᵀ (W row-major [outputs, inputs]).
    public static func linear(_ x: [Float], _ w: [Float], rows: Int, inputs: Int, outputs: Int) -> [Float] {
        var y = [Float](repeating: 0, count: rows * outputs)
        if rows == 0 { return y }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outputs), Int32(inputs), 1, x, Int32(inputs),
                    w, Int32(inputs), 0, &y, Int32(outputs))
        return y
    }

    /// RMSNorm over rows of width `w.count`, as transformers computes it in f32.
    public static func rmsNorm(_ x: [Float], _ w: [Float], rows: Int, eps: Float) -> [Float] {
        let d = w.count
        var y = [Float](repeating: 0, count: x.count)
        for r in 0..<rows {
            var ss: Float = 0
            for k in 0..<d { ss += x[r * d + k] * x[r * d + k] }
            let inv = 1 / (ss / Float(d) + eps).squareRoot()
            for k in 0..<d { y[r * d + k] = w[k] * (x[r * d + k] * inv) }
        }
        return y
    }

    /// Rotary embedding in place on rows `rows` of `[·, heads, d]`; positions count from the first row.
    static func applyRoPE(_ x: inout [Float], heads: Int, rows: Range<Int>, d: Int, cos: [Float], sin: [Float]) {
        let half = d / 2
        for row in rows {
            let t = row - rows.lowerBound
            for hd in 0..<heads {
                let base = (row * heads + hd) * d
                for i in 0..<half {
                    let a = x[base + i], b = x[base + i + half]
                    x[base + i] = a * cos[t * d + i] - b * sin[t * d + i]
                    x[base + i + half] = b * cos[t * d + i + half] + a * sin[t * d + i + half]
                }
            }
        }
    }

    /// Causal softmax attention for one head: scores = q·kᵀ·scale (sgemm), softmax in f32, · v (sgemm).
    /// q `[·, heads, dk]`, k `[·, kvHeads, dk]`, v `[·, kvHeads, dv]`, out `[·, heads, dv]`.
    static func attentionHead(q: [Float], k: [Float], v: [Float], rows: Range<Int>, head: Int, kvHead: Int, heads: Int, kvHeads: Int,
                              dk: Int, dv: Int, scale: Float, out: UnsafeMutablePointer<Float>) {
        let n = rows.count, r0 = rows.lowerBound, d = dv
        var qh = [Float](repeating: 0, count: n * dk), kh = qh, vh = [Float](repeating: 0, count: n * dv)
        for t in 0..<n {
            for i in 0..<dk {
                qh[t * dk + i] = q[((r0 + t) * heads + head) * dk + i]
                kh[t * dk + i] = k[((r0 + t) * kvHeads + kvHead) * dk + i]
            }
            for i in 0..<dv { vh[t * dv + i] = v[((r0 + t) * kvHeads + kvHead) * dv + i] }
        }
        var s = [Float](repeating: 0, count: n * n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(dk), 1, qh, Int32(dk), kh, Int32(dk), 0, &s, Int32(n))
        for t in 0..<n {
            var m = -Float.infinity
            for j in 0...t { s[t * n + j] *= scale; m = max(m, s[t * n + j]) }
            var sum: Float = 0
            for j in 0...t { let e = expf(s[t * n + j] - m); s[t * n + j] = e; sum += e }
            for j in 0...t { s[t * n + j] /= sum }
            for j in (t + 1)..<max(n, t + 1) { s[t * n + j] = 0 }
        }
        var o = [Float](repeating: 0, count: n * d)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(d), Int32(n), 1, s, Int32(n), vh, Int32(d), 0, &o, Int32(d))
        for t in 0..<n { for i in 0..<d { out[((r0 + t) * heads + head) * d + i] = o[t * d + i] } }
    }

    /// Rope dims stored as interleaved pairs → halves (even indices, then odd), per `width`-wide slice.
    static func deinterleave(_ x: inout [Float], width: Int) {
        var tmp = [Float](repeating: 0, count: width)
        for b in stride(from: 0, to: x.count, by: width) {
            for i in 0..<(width / 2) { tmp[i] = x[b + 2 * i]; tmp[i + width / 2] = x[b + 2 * i + 1] }
            for i in 0..<width { x[b + i] = tmp[i] }
        }
    }

    /// DeepSeek-V3 routing of one token: sigmoid scores; choice = score + bias; keep the `topkGroup` groups whose
    /// two best choices sum highest; top-k of the kept choices (others count as 0, as transformers masks them);
    /// weights = unbiased scores, renormalised (+1e-20) if asked, times `scale`. Ties go to the lower index.
    public static func sigmoidGroupLimitedTopK(_ logits: [Float], bias: [Float], groups: Int, topkGroup: Int, k: Int, normalize: Bool,
                                               scale: Float) -> [(expert: Int, weight: Float)] {
        let E = logits.count, per = E / groups
        let scores = logits.map { 1 / (1 + expf(-$0)) }
        let choice = scores.indices.map { scores[$0] + bias[$0] }
        let groupScore: [Float] = (0..<groups).map { g in
            let top = choice[(g * per)..<((g + 1) * per)].sorted(by: >)
            return top[0] + (per > 1 ? top[1] : 0)
        }
        let kept = Set(groupScore.enumerated().sorted { $0.element > $1.element || ($0.element == $1.element && $0.offset < $1.offset) }
            .prefix(topkGroup).map(\.offset))
        let masked = choice.indices.map { kept.contains($0 / per) ? choice[$0] : 0 }
        let top = masked.enumerated().sorted { $0.element > $1.element || ($0.element == $1.element && $0.offset < $1.offset) }.prefix(k)
        var weights = top.map { scores[$0.offset] }
        if normalize {
            let sum = weights.reduce(0, +) + 1e-20
            weights = weights.map { $0 / sum }
        }
        return zip(top, weights).map { ($0.offset, $1 * scale) }
    }

    /// silu(gate(x)) · up(x): the input of down_proj.
    public static func swigluActivation(_ x: [Float], gate: [Float], up: [Float], rows: Int, hidden: Int, inner: Int) -> [Float] {
        var g = linear(x, gate, rows: rows, inputs: hidden, outputs: inner)
        let u = linear(x, up, rows: rows, inputs: hidden, outputs: inner)
        for i in g.indices { let a = g[i]; g[i] = a / (1 + expf(-a)) * u[i] }
        return g
    }

    /// Rows `rows` of a `[·, width]` matrix, in order.
    public static func gatherRows(_ x: [Float], _ rows: [Int], width: Int) -> [Float] {
        var out = [Float](repeating: 0, count: rows.count * width)
        for (r, t) in rows.enumerated() { for k in 0..<width { out[r * width + k] = x[t * width + k] } }
        return out
    }
}
