import COpenBLAS
import Foundation
import IngotCore
import IngotForward

/// AWQ's clip search (AutoAWQ `_compute_best_clip`, llm-awq `auto_clip.py`): for each output row and input group,
/// the symmetric clamp `±absmax·(1 − i/20)`, i = 0..<10, whose quantized group output differs least from the
/// original on the calibration inputs: error = mean over tokens of (Σ_group x·(Q(clamp(w)) − w))².
///
/// For an asymmetric quantizer the two ends of a group set its scale and zero point independently, so the search
/// also tries every pair of one-sided clamps `[min·(1 − a/20), max·(1 − b/20)]`, a, b = 0..<10 (AutoAWQ clamps both
/// ends to the same magnitude): the 110 candidates include the symmetric ten, so no group's calibration error
/// grows.
///
/// The token sum is folded into each group's Gram matrix `C = XᵀX` (`Σ_t (x_t·d)² = d C dᵀ`), so every token of
/// the sample counts (AutoAWQ subsamples 512) at a cost independent of the token count.
public enum AWQClip {
    public static let grid = 20
    public static let maxShrink: Float = 0.5
    /// Clamps per side: steps 0..<sideSteps of 1/grid.
    static let sideSteps = Int(Float(grid) * maxShrink)
    /// Codes of the one-sided pairs: `pairBase + a·sideSteps + b` (lower end shrunk by a, upper by b steps); codes
    /// below `pairBase` are symmetric steps.
    static let pairBase = 100

    /// The clip codes searched: the symmetric steps, then (asymmetric quantizers) every one-sided pair.
    static func codes(asymmetric: Bool) -> [UInt8] {
        (0..<sideSteps).map { UInt8($0) }
            + (asymmetric ? (0..<(sideSteps * sideSteps)).map { UInt8(pairBase + $0) } : [])
    }

    /// The best clip step of each (row, group) of `w` (`[rows, columns]`), with the mean error before and after
    /// over all (row, group) cells. `clamp` applies the steps.
    public static func search(_ w: [Float], rows: Int, columns: Int, groupSize: Int?, inputs x: [Float], tokens: Int,
                              asymmetric: Bool = false, fakeQuantize: ([Float], Int, Int) -> [Float]) -> (steps: [UInt8], before: Double, after: Double) {
        let g = groupSize ?? columns
        let groups = (columns + g - 1) / g
        guard tokens > 0, rows > 0 else { return ([UInt8](repeating: 0, count: rows * groups), 0, 0) }
        // Gram matrices per group: C_k = X[:, group k]ᵀ X[:, group k] / tokens.
        var gram: [[Float]] = []
        for k in 0..<groups {
            let lo = k * g, n = min(columns, lo + g) - lo
            var c = [Float](repeating: 0, count: n * n)
            x.withUnsafeBufferPointer { xp in
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(n), Int32(n), Int32(tokens), 1 / Float(tokens),
                            xp.baseAddress! + lo, Int32(columns), xp.baseAddress! + lo, Int32(columns), 0, &c, Int32(n))
            }
            gram.append(c)
        }
        return search(w, rows: rows, columns: columns, groupSize: g, gram: gram, asymmetric: asymmetric, fakeQuantize: fakeQuantize)
    }

    /// The same search with the inputs given as their Hessian `XᵀX` (`[columns, columns]`, GPTQ's): each group's
    /// Gram matrix is its diagonal block, divided by `tokens`.
    public static func search(_ w: [Float], rows: Int, columns: Int, groupSize: Int?, hessian h: [Double], tokens: Int,
                              asymmetric: Bool, fakeQuantize: ([Float], Int, Int) -> [Float]) -> (steps: [UInt8], before: Double, after: Double) {
        let g = groupSize ?? columns
        let groups = (columns + g - 1) / g
        guard tokens > 0, rows > 0, h.count == columns * columns else { return ([UInt8](repeating: 0, count: rows * groups), 0, 0) }
        let gram = (0..<groups).map { k -> [Float] in
            let lo = k * g, n = min(columns, lo + g) - lo
            var c = [Float](repeating: 0, count: n * n)
            for i in 0..<n { for j in 0..<n { c[i * n + j] = Float(h[(lo + i) * columns + lo + j] / Double(tokens)) } }
            return c
        }
        return search(w, rows: rows, columns: columns, groupSize: g, gram: gram, asymmetric: asymmetric, fakeQuantize: fakeQuantize)
    }

    /// Rows of one tile of the search: a tile is these rows of one input group, searched by one worker.
    static let tileRows = 64

    /// Every candidate of every (row, group) cell, tile by tile: a tile's group values are clamped, quantized and
    /// scored against its Gram matrix for each candidate while they stay in cache, and only the tile is copied.
    /// Tiles are fixed by the shape alone, and each cell's candidates are compared in order, so the steps do not
    /// depend on the worker count.
    static func search(_ w: [Float], rows: Int, columns: Int, groupSize g: Int, gram: [[Float]], asymmetric: Bool,
                       fakeQuantize: ([Float], Int, Int) -> [Float]) -> (steps: [UInt8], before: Double, after: Double) {
        let groups = gram.count
        let candidates = codes(asymmetric: asymmetric)
        var best = [Double](repeating: .infinity, count: rows * groups)
        var bestStep = [UInt8](repeating: 0, count: rows * groups)
        var first = [Double](repeating: 0, count: rows * groups)
        let blocks = (rows + tileRows - 1) / tileRows
        BLAS.useSingleThreadedKernels()
        best.withUnsafeMutableBufferPointer { bestp in
            bestStep.withUnsafeMutableBufferPointer { stepp in
                first.withUnsafeMutableBufferPointer { firstp in
                    w.withUnsafeBufferPointer { wp in
                        withoutActuallyEscaping(fakeQuantize) { fq in
                            let shared = UncheckedSendable((wp, bestp, stepp, firstp, fq))
                            parallelFor(blocks * groups) { t in
                                let (w, best, step, first, fq) = shared.value
                                let r0 = (t / groups) * tileRows, k = t % groups
                                let n = min(tileRows, rows - r0), lo = k * g, width = min(columns, lo + g) - lo
                                var original = [Float](repeating: 0, count: n * width)
                                for r in 0..<n { for c in 0..<width { original[r * width + c] = w[(r0 + r) * columns + lo + c] } }
                                // Each row's ends once for all candidates; each candidate's clamp fused with the copy.
                                let ends = original.withUnsafeBufferPointer { o in (0..<n).map { GroupEnds(o, ($0 * width)..<(($0 + 1) * width)) } }
                                var clamped = [Float](repeating: 0, count: n * width)
                                var product = [Float](repeating: 0, count: n * width)
                                var errors = [Double](repeating: 0, count: n)
                                for (i, code) in candidates.enumerated() {
                                    clamped.withUnsafeMutableBufferPointer { out in
                                        original.withUnsafeBufferPointer { o in
                                            for r in 0..<n {
                                                let (lo, hi) = ends[r].bounds(code) ?? (-Float.infinity, Float.infinity)
                                                for c in (r * width)..<((r + 1) * width) { out[c] = min(max(o[c], lo), hi) }
                                            }
                                        }
                                    }
                                    var d = fq(clamped, n, width)
                                    for j in d.indices { d[j] -= original[j] }
                                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(width), Int32(width), 1, d, Int32(width),
                                                gram[k], Int32(width), 0, &product, Int32(width))
                                    rowErrors(product, d, rows: n, width: width, into: &errors)
                                    for r in 0..<n {
                                        let e = errors[r], cell = (r0 + r) * groups + k
                                        if i == 0 { first[cell] = e }
                                        if e < best[cell] { best[cell] = e; step[cell] = code }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let n = Double(rows * groups)
        return (bestStep, first.reduce(0, +) / n, best.reduce(0, +) / n)
    }

    /// A group's absmax, minimum and maximum (NaNs skipped), and the clamp interval of each clip code.
    struct GroupEnds {
        var absmax: Float = 0, low = Float.infinity, high = -Float.infinity

        init(_ w: UnsafeBufferPointer<Float>, _ span: Range<Int>) {
            for c in span { absmax = max(absmax, abs(w[c])); low = min(low, w[c]); high = max(high, w[c]) }
        }

        /// `[lo, hi]` for `code`: `±absmax·(1 − step/grid)` for a symmetric step, `[min·(1 − a/grid),
        /// max·(1 − b/grid)]` for a one-sided pair; nil for no clamp (step 0, pair (0, 0)).
        func bounds(_ code: UInt8) -> (lo: Float, hi: Float)? {
            let s = Int(code)
            if s == 0 || s == pairBase { return nil }
            if s < pairBase {
                let m = absmax * (1 - Float(s) / Float(grid))
                return (-m, m)
            }
            let a = (s - pairBase) / sideSteps, b = (s - pairBase) % sideSteps
            return (low * (1 - Float(a) / Float(grid)), high * (1 - Float(b) / Float(grid)))
        }
    }

    /// `Σ_c p[r, c]·d[r, c]` of each row in f64, summed in column order: rows are interleaved eight at a time so
    /// the additions of different rows overlap, and each row's sum is still the plain sequential one.
    static func rowErrors(_ p: [Float], _ d: [Float], rows n: Int, width: Int, into out: inout [Double]) {
        p.withUnsafeBufferPointer { p in
            d.withUnsafeBufferPointer { d in
                var r = 0
                while r + 8 <= n {
                    var a = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
                    let b = r * width
                    for c in 0..<width {
                        a.0 += Double(p[b + c]) * Double(d[b + c])
                        a.1 += Double(p[b + width + c]) * Double(d[b + width + c])
                        a.2 += Double(p[b + 2 * width + c]) * Double(d[b + 2 * width + c])
                        a.3 += Double(p[b + 3 * width + c]) * Double(d[b + 3 * width + c])
                        a.4 += Double(p[b + 4 * width + c]) * Double(d[b + 4 * width + c])
                        a.5 += Double(p[b + 5 * width + c]) * Double(d[b + 5 * width + c])
                        a.6 += Double(p[b + 6 * width + c]) * Double(d[b + 6 * width + c])
                        a.7 += Double(p[b + 7 * width + c]) * Double(d[b + 7 * width + c])
                    }
                    (out[r], out[r + 1], out[r + 2], out[r + 3], out[r + 4], out[r + 5], out[r + 6], out[r + 7]) = a
                    r += 8
                }
                while r < n {
                    var e = 0.0
                    for c in 0..<width { e += Double(p[r * width + c]) * Double(d[r * width + c]) }
                    out[r] = e
                    r += 1
                }
            }
        }
    }

    /// Clamps each (row, group) of `w` by its code: a symmetric step to `±absmax·(1 − step/grid)`, a one-sided pair
    /// to `[min·(1 − a/grid), max·(1 − b/grid)]`; absmax, min and max taken from `w` itself.
    public static func clamp(_ w: inout [Float], rows: Int, columns: Int, groupSize: Int, steps: [UInt8]) {
        clamp(&w, rows: rows, columns: columns, groupSize: groupSize) { steps[$0] }
    }

    static func clamp(_ w: inout [Float], rows: Int, columns: Int, groupSize g: Int, step: (Int) -> UInt8) {
        // Blocks of rows in parallel (each element is clamped on its own: the same values for any worker count).
        let rowBlock = 64
        w.withUnsafeMutableBufferPointer { buffer in
            withoutActuallyEscaping(step) { step in
                let shared = UncheckedSendable((buffer, step))
                parallelFor((rows + rowBlock - 1) / rowBlock) { b in
                    let (w, step) = shared.value
                    clampRows((b * rowBlock)..<min(rows, (b + 1) * rowBlock), of: w, columns: columns, groupSize: g, step: step)
                }
            }
        }
    }

    static func clampRows(_ rows: Range<Int>, of w: UnsafeMutableBufferPointer<Float>, columns: Int, groupSize g: Int, step: (Int) -> UInt8) {
        let groups = (columns + g - 1) / g
        for r in rows {
            for k in 0..<groups {
                let span = (r * columns + k * g)..<(r * columns + min(columns, (k + 1) * g))
                guard let (lo, hi) = GroupEnds(UnsafeBufferPointer(w), span).bounds(step(r * groups + k)) else { continue }
                for c in span { w[c] = min(max(w[c], lo), hi) }
            }
        }
    }
}
