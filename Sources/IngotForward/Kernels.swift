import COpenBLAS
import Foundation

/// The numeric kernels of the forward pass.
/// OpenBLAS runs single-threaded; Ingot parallelizes around it in fixed tiles (see `Kernels.linear`).
public enum BLAS {
    private static let once: Void = { openblas_set_num_threads(1) }()
    /// Called before any sgemm; sets OpenBLAS to one thread, once per process.
    public static func useSingleThreadedKernels() { _ = once }
}

public enum Kernels {
    /// y[rows, outputs] = x[rows, inputs] · Wᵀ (W row-major [outputs, inputs]).
    ///
    /// Tiled into fixed 64-row × 512-column blocks, each a single-threaded sgemm, run in parallel: every output
    /// element is computed the same way whatever the core count (OpenBLAS's own threading gives results that
    /// depend on its thread count), so artifacts are byte-identical across machines and `--threads`.
    public static func linear(_ x: [Float], _ w: [Float], rows: Int, inputs: Int, outputs: Int) -> [Float] {
        var y = [Float](repeating: 0, count: rows * outputs)
        if rows == 0 || outputs == 0 { return y }
        BLAS.useSingleThreadedKernels()
        let tileRows = 64, tileCols = 512
        let rt = (rows + tileRows - 1) / tileRows, ct = (outputs + tileCols - 1) / tileCols
        x.withUnsafeBufferPointer { xp in
            w.withUnsafeBufferPointer { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    let p = UncheckedSendable((xp.baseAddress!, wp.baseAddress!, yp.baseAddress!))
                    parallelFor(rt * ct) { t in
                        let (xb, wb, yb) = p.value
                        let r0 = (t / ct) * tileRows, c0 = (t % ct) * tileCols
                        let m = min(tileRows, rows - r0), n = min(tileCols, outputs - c0)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(inputs), 1, xb + r0 * inputs, Int32(inputs),
                                    wb + c0 * inputs, Int32(inputs), 0, yb + r0 * outputs + c0, Int32(outputs))
                    }
                }
            }
        }
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

    /// Rotary embedding in place on the first `d` dims of each head of rows `rows` of `[·, heads, stride]`
    /// (`stride` defaults to `d`; cos/sin tables are `[·, d]`); positions count from the first row.
    static func applyRoPE(_ x: inout [Float], heads: Int, rows: Range<Int>, d: Int, stride: Int? = nil, cos: [Float], sin: [Float]) {
        let half = d / 2, width = stride ?? d
        for row in rows {
            let t = row - rows.lowerBound
            for hd in 0..<heads {
                let base = (row * heads + hd) * width
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
    /// `window`: each position sees only the last `window` positions (itself included), as transformers'
    /// sliding-window mask. `sink`: a learned logit that joins each row's softmax and whose share is dropped
    /// (gpt-oss), so the row's probabilities sum to less than one.
    static func attentionHead(q: [Float], k: [Float], v: [Float], rows: Range<Int>, head: Int, kvHead: Int, heads: Int, kvHeads: Int,
                              dk: Int, dv: Int, scale: Float, window: Int? = nil, sink: Float? = nil, out: UnsafeMutablePointer<Float>) {
        let n = rows.count, r0 = rows.lowerBound
        guard n > 0 else { return }
        // The head's rows are strided views of q/k/v (leading dimension = all heads' width): sgemm reads them in
        // place and writes the output rows in place, no gathers.
        var s = [Float](repeating: 0, count: n * n)
        q.withUnsafeBufferPointer { qp in
            k.withUnsafeBufferPointer { kp in
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(dk), scale,
                            qp.baseAddress! + (r0 * heads + head) * dk, Int32(heads * dk),
                            kp.baseAddress! + (r0 * kvHeads + kvHead) * dk, Int32(kvHeads * dk), 0, &s, Int32(n))
            }
        }
        s.withUnsafeMutableBufferPointer { sp in
            for t in 0..<n {
                let row = sp.baseAddress! + t * n
                let first = window.map { max(0, t - $0 + 1) } ?? 0
                var m = sink ?? -Float.infinity
                for j in first...t { m = max(m, row[j]) }
                var sum: Float = 0
                for j in first...t { let e = expf(row[j] - m); row[j] = e; sum += e }
                if let sink { sum += expf(sink - m) }
                let inv = 1 / sum
                for j in first...t { row[j] *= inv }
                if first > 0 { row.update(repeating: 0, count: first) }
                if t + 1 < n { (row + t + 1).update(repeating: 0, count: n - t - 1) }
            }
        }
        v.withUnsafeBufferPointer { vp in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(dv), Int32(n), 1, s, Int32(n),
                        vp.baseAddress! + (r0 * kvHeads + kvHead) * dv, Int32(kvHeads * dv), 0, out + (r0 * heads + head) * dv, Int32(heads * dv))
        }
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

    /// gpt-oss's expert activation on `g = gate·x + b`, `u = up·x + b` (in place into `g`): gate clamped to
    /// ≤ limit, up to [−limit, limit], `g · σ(alpha · g) · (u + 1)`.
    public static func clampedSwiGLU(_ g: inout [Float], _ u: [Float], alpha: Float, limit: Float) {
        for i in g.indices {
            let a = min(g[i], limit), b = min(max(u[i], -limit), limit)
            g[i] = (b + 1) * (a * (1 / (1 + expf(-(a * alpha)))))
        }
    }

    /// Adds `bias` (`[width]`) to every row of `x`.
    public static func addBias(_ x: inout [Float], _ bias: [Float]) {
        let w = bias.count
        guard w > 0 else { return }
        for r in 0..<(x.count / w) { for k in 0..<w { x[r * w + k] += bias[k] } }
    }

    /// Rows `rows` of a `[·, width]` matrix, in order.
    public static func gatherRows(_ x: [Float], _ rows: [Int], width: Int) -> [Float] {
        var out = [Float](repeating: 0, count: rows.count * width)
        for (r, t) in rows.enumerated() { for k in 0..<width { out[r * width + k] = x[t * width + k] } }
        return out
    }
}
