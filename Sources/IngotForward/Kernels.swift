import CKernels
import COpenBLAS
import Foundation
import IngotModel

/// OpenBLAS, for the products that still call it directly (AWQ's clip search): one thread, Ingot parallelizes around it.
public enum BLAS {
    private static let once: Void = {
        openblas_set_num_threads(1)
        // The pthreads build starts its worker pool when it loads, and idle workers spin on sched_yield for about
        // 2^28 cycles before they sleep: on a 2-core machine that is a core taken from Ingot's own workers for the
        // first ~0.1 s of every run (and after every threaded call). With one thread the pool is never used, so it
        // is shut down (`blas_thread_shutdown_`, exported by that build, found at run time so other builds link).
        #if os(Linux)
        if let symbol = dlsym(nil, "blas_thread_shutdown_") {  // nil: RTLD_DEFAULT, every loaded library
            typealias Shutdown = @convention(c) () -> Int32
            _ = unsafeBitCast(symbol, to: Shutdown.self)()
        }
        #endif
    }()
    /// Called before any sgemm (and first thing by the `ingot` executable); sets OpenBLAS to one thread and stops
    /// its idle worker pool, once per process.
    public static func useSingleThreadedKernels() { _ = once }
}

/// The numeric kernels of the forward pass (matrix products and attention on `CKernels`).
public enum Kernels {
    /// y[rows, outputs] = x[rows, inputs] · Wᵀ (W row-major [outputs, inputs]).
    ///
    /// Ingot's packed-panel kernel (`CKernels`, AVX2 + FMA when the CPU has it): the outputs are cut into fixed groups
    /// of 64 columns, run in parallel; each group packs its weight rows and runs 6×16 register tiles over the rows.
    /// Every output element is one chain of fused multiply-adds over the inputs in order, so it does not depend on
    /// the worker count, on the group or tile it falls in, or on the other rows of the batch: a row gives the same
    /// result alone or in any batch, on any `--threads`.
    public static func linear(_ x: [Float], _ w: [Float], rows: Int, inputs: Int, outputs: Int) -> [Float] {
        var y: [Float] = []
        linear(x, w, rows: rows, inputs: inputs, outputs: outputs, into: &y)
        return y
    }

    /// `linear` into `y`, reusing its storage when it already holds `rows × outputs` floats (a buffer kept across
    /// calls, e.g. each window's logits, is then neither reallocated nor faulted in again).
    public static func linear(_ x: [Float], _ w: [Float], rows: Int, inputs: Int, outputs: Int, into y: inout [Float]) {
        precondition(x.count >= rows * inputs && w.count >= outputs * inputs, "linear: operand sizes")
        if y.count != rows * outputs { y = [Float](unsafeUninitializedCapacity: rows * outputs) { _, n in n = rows * outputs } }
        x.withUnsafeBufferPointer { xp in
            w.withUnsafeBytes { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    linear(xp.baseAddress, wp.baseAddress, elementType: Int32(CK_F32), rows: rows, inputs: inputs, outputs: outputs,
                           into: yp.baseAddress)
                }
            }
        }
    }

    /// `linear` on raw operands: `w` holds `outputs × inputs` elements of `elementType` (`CK_F32`, `CK_BF16`,
    /// `CK_F16`: widened to f32 exactly as they are packed); `y` receives `rows × outputs` floats.
    static func linear(_ x: UnsafePointer<Float>?, _ w: UnsafeRawPointer?, elementType: Int32, rows: Int, inputs: Int, outputs: Int,
                       into y: UnsafeMutablePointer<Float>?) {
        guard rows > 0, outputs > 0, let y else { return }
        guard inputs > 0, let x, let w else { y.update(repeating: 0, count: rows * outputs); return }
        let group = Int(CK_GROUP_COLUMNS)
        let p = UncheckedSendable((x, w, y))
        parallelFor((outputs + group - 1) / group) { g in
            let (x, w, y) = p.value
            ck_linear_group(x, inputs, rows, inputs, w, elementType, inputs, g * group, min(group, outputs - g * group), y, outputs)
        }
    }

    /// RMSNorm over rows of width `w.count`, as transformers computes it in f32 (sum of squares in order).
    public static func rmsNorm(_ x: [Float], _ w: [Float], rows: Int, eps: Float) -> [Float] {
        let d = w.count
        precondition(x.count >= rows * d, "rmsNorm: operand sizes")
        var y = [Float](unsafeUninitializedCapacity: rows * d) { _, n in n = rows * d }
        x.withUnsafeBufferPointer { xp in
            w.withUnsafeBufferPointer { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    for r in 0..<rows {
                        let xr = xp.baseAddress! + r * d, yr = yp.baseAddress! + r * d
                        var ss: Float = 0
                        for k in 0..<d { ss += xr[k] * xr[k] }
                        let inv = 1 / (ss / Float(d) + eps).squareRoot()
                        for k in 0..<d { yr[k] = wp[k] * (xr[k] * inv) }
                    }
                }
            }
        }
        return y
    }

    /// RMSNorm over rows of `width` without a weight (`w` nil), or times `w` (transformers' `with_scale=False`).
    public static func rmsNorm(_ x: [Float], _ w: [Float]?, width d: Int, rows: Int, eps: Float) -> [Float] {
        if let w { return rmsNorm(x, w, rows: rows, eps: eps) }
        var y = [Float](repeating: 0, count: x.count)
        for r in 0..<rows {
            var ss: Float = 0
            for k in 0..<d { ss += x[r * d + k] * x[r * d + k] }
            let inv = 1 / (ss / Float(d) + eps).squareRoot()
            for k in 0..<d { y[r * d + k] = x[r * d + k] * inv }
        }
        return y
    }

    /// cos/sin tables `[positions, dim]` of a rotary (f32, as transformers computes them; frequencies repeated over
    /// both halves).
    public static func ropeTables(_ r: ModelConfig.Rotary, positions n: Int) -> (cos: [Float], sin: [Float]) {
        let d = r.dim
        var c = [Float](repeating: 0, count: n * d), s = c
        for t in 0..<n {
            for i in 0..<(d / 2) {
                let a = Float(t) * r.inverseFrequencies[i]
                c[t * d + i] = cosf(a) * r.attentionFactor; c[t * d + i + d / 2] = c[t * d + i]
                s[t * d + i] = sinf(a) * r.attentionFactor; s[t * d + i + d / 2] = s[t * d + i]
            }
        }
        return (c, s)
    }

    /// The MLP gate activation in place.
    public static func activate(_ x: inout [Float], _ a: ModelConfig.Activation) {
        switch a {
        case .silu: elementwise(&x) { v in v / (1 + expf(-v)) }
        case .geluTanh:
            // 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 x³))), as torch's gelu(approximate="tanh").
            let k: Float = 0.7978845608028654
            elementwise(&x) { v in 0.5 * v * (1 + tanhf(k * (v + 0.044715 * v * v * v))) }
        }
    }

    /// `x[i] = f(x[i])` in parallel over fixed chunks of 64 Ki elements (the same scalar `f` on every element, so the
    /// bits do not depend on the thread count).
    @inline(__always)
    public static func elementwise(_ x: inout [Float], _ f: (Float) -> Float) {
        let chunk = 1 << 16, n = x.count
        guard n > chunk else {
            for i in x.indices { x[i] = f(x[i]) }
            return
        }
        x.withUnsafeMutableBufferPointer { b in
            let p = b.baseAddress!
            parallelFor((n + chunk - 1) / chunk) { c in
                for i in (c * chunk)..<min(n, (c + 1) * chunk) { p[i] = f(p[i]) }
            }
        }
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

    /// Query rows per attention task: causal rows differ in work, so small fixed blocks balance the cores.
    static let attentionBlock = 64

    /// Causal softmax attention of every head of every sequence: `out[t] = Σ_j softmax_j(scale · q[t]·k[j]) · v[j]`
    /// over j ≤ t (and j > t − `window` with a sliding window), query head `h` reading key/value head
    /// `h / (heads / kvHeads)`; `sinks[h]`: a logit that joins head h's softmax and whose share is dropped (gpt-oss).
    /// q `[rows, heads, dk]`, k `[rows, kvHeads, dk]`, v `[rows, kvHeads, dv]`; returns `[rows, heads, dv]`.
    /// Tasks are (sequence, head, block of 64 query rows), each computing its rows' scores, softmax (f32) and
    /// weighted values in one pass (`ck_attention_rows`: no context × context matrix); results do not depend on the
    /// blocks or the worker count.
    public static func attention(q: [Float], k: [Float], v: [Float], segments: [(start: Int, length: Int)], heads: Int, kvHeads: Int,
                                 dk: Int, dv: Int, scale: Float, window: Int? = nil, sinks: [Float]? = nil) -> [Float] {
        let rows = segments.reduce(0) { max($0, $1.start + $1.length) }
        precondition(q.count >= rows * heads * dk && k.count >= rows * kvHeads * dk && v.count >= rows * kvHeads * dv
                     && (sinks?.count ?? heads) >= heads, "attention: operand sizes")
        var out = [Float](unsafeUninitializedCapacity: rows * heads * dv) { _, n in n = rows * heads * dv }
        var tasks: [(segment: Int, head: Int, r0: Int)] = []
        for (i, s) in segments.enumerated() {
            for h in 0..<heads { for r0 in stride(from: 0, to: s.length, by: attentionBlock) { tasks.append((i, h, r0)) } }
        }
        q.withUnsafeBufferPointer { qp in
            k.withUnsafeBufferPointer { kp in
                v.withUnsafeBufferPointer { vp in
                    out.withUnsafeMutableBufferPointer { op in
                        let p = UncheckedSendable((qp.baseAddress!, kp.baseAddress!, vp.baseAddress!, op.baseAddress!))
                        parallelFor(tasks.count) { i in
                            let (qb, kb, vb, ob) = p.value
                            let (seg, head, r0) = tasks[i]
                            let (start, length) = segments[seg]
                            let kvHead = head / (heads / kvHeads)
                            withUnsafePointer(to: sinks?[head] ?? 0) { sink in
                                ck_attention_rows(qb + (start * heads + head) * dk, heads * dk, kb + (start * kvHeads + kvHead) * dk, kvHeads * dk,
                                                  vb + (start * kvHeads + kvHead) * dv, kvHeads * dv, ob + (start * heads + head) * dv, heads * dv,
                                                  dk, dv, r0, min(r0 + attentionBlock, length), scale, window ?? 0, sinks == nil ? nil : sink)
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Causal softmax attention for one head of one sequence (rows `rows` of the batch), written into `out`
    /// `[·, heads, dv]`; `window` and `sink` as in `attention`, which runs every head of every sequence.
    static func attentionHead(q: [Float], k: [Float], v: [Float], rows: Range<Int>, head: Int, kvHead: Int, heads: Int, kvHeads: Int,
                              dk: Int, dv: Int, scale: Float, window: Int? = nil, sink: Float? = nil, out: UnsafeMutablePointer<Float>) {
        let r0 = rows.lowerBound
        guard rows.count > 0 else { return }
        q.withUnsafeBufferPointer { qp in
            k.withUnsafeBufferPointer { kp in
                v.withUnsafeBufferPointer { vp in
                    withUnsafePointer(to: sink ?? 0) { s in
                        ck_attention_rows(qp.baseAddress! + (r0 * heads + head) * dk, heads * dk, kp.baseAddress! + (r0 * kvHeads + kvHead) * dk,
                                          kvHeads * dk, vp.baseAddress! + (r0 * kvHeads + kvHead) * dv, kvHeads * dv, out + (r0 * heads + head) * dv,
                                          heads * dv, dk, dv, 0, rows.count, scale, window ?? 0, sink == nil ? nil : s)
                    }
                }
            }
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
    public static func swigluActivation(_ x: [Float], gate: [Float], up: [Float], rows: Int, hidden: Int, inner: Int,
                                        activation: ModelConfig.Activation = .silu) -> [Float] {
        var g = linear(x, gate, rows: rows, inputs: hidden, outputs: inner)
        let u = linear(x, up, rows: rows, inputs: hidden, outputs: inner)
        if activation == .silu {
            siluMultiply(&g, u)
        } else {
            activate(&g, activation)
            for i in g.indices { g[i] *= u[i] }
        }
        return g
    }

    /// g ← silu(g) · u elementwise (vectorized exp, `ck_silu_mul`), in parallel over fixed 64 Ki-element chunks.
    public static func siluMultiply(_ g: inout [Float], _ u: [Float]) {
        precondition(u.count >= g.count, "siluMultiply: operand sizes")
        let n = g.count, chunk = 1 << 16
        g.withUnsafeMutableBufferPointer { gp in
            u.withUnsafeBufferPointer { up in
                let p = UncheckedSendable((gp.baseAddress, up.baseAddress))
                parallelFor((n + chunk - 1) / chunk) { c in
                    let (g, u) = p.value
                    ck_silu_mul(g! + c * chunk, u! + c * chunk, min(chunk, n - c * chunk))
                }
            }
        }
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
