import Foundation
import IngotCore

/// AWQ's scale arithmetic (AutoAWQ `_search_best_scale` / `_compute_best_scale`, llm-compressor `AWQModifier`).
public enum AWQScales {
    /// `w_mean[c]`: mean over rows of |W[r,c]| / (max |W| of its group in that row + 1e-6), over the balance
    /// weights stacked along the output dimension (all `[·, columns]`).
    public static func weightMean(_ weights: [[Float]], columns: Int, groupSize: Int?) -> [Float] {
        var m = WeightMean(columns: columns, groupSize: groupSize)
        for w in weights { m.add(w) }
        return m.mean
    }

    /// `weightMean` accumulated one weight at a time (experts streamed).
    public struct WeightMean {
        let columns: Int, groupSize: Int
        var sum: [Double]
        var rows = 0

        public init(columns: Int, groupSize: Int?) {
            self.columns = columns
            self.groupSize = groupSize ?? columns
            sum = [Double](repeating: 0, count: columns)
        }

        public mutating func add(_ w: [Float]) {
            let n = w.count / columns, g = groupSize
            rows += n
            for r in 0..<n {
                var lo = 0
                while lo < columns {
                    let hi = min(columns, lo + g)
                    var m: Float = 0
                    for c in lo..<hi { m = max(m, abs(w[r * columns + c])) }
                    let inv = 1 / (m + 1e-6)
                    for c in lo..<hi { sum[c] += Double(abs(w[r * columns + c]) * inv) }
                    lo = hi
                }
            }
        }

        public var mean: [Float] { sum.map { Float($0 / Double(max(rows, 1))) } }
    }

    /// The candidate scale for grid ratio `r`: duo scaling `x^r / (w^(1−r) + 1e-4)` (or `x^r` alone), clamped to
    /// ≥ 1e-4, normalised by `sqrt(max·min)`; non-finite entries become 1.
    public static func candidate(ratio r: Float, xMean: [Float], wMean: [Float]?) -> [Float] {
        var s = xMean.indices.map { c -> Float in
            let x = powf(xMean[c], r)
            let v = wMean.map { x / (powf($0[c], 1 - r) + 1e-4) } ?? x
            return max(v, 1e-4)
        }
        let norm = (s.max()! * s.min()!).squareRoot()
        for c in s.indices {
            s[c] /= norm
            if !s[c].isFinite { s[c] = 1 }
        }
        return s
    }

    /// `W[:, c] *= s[c]` for a row-major `[·, s.count]` matrix.
    public static func scaleColumns(_ w: inout [Float], by s: [Float]) {
        let n = s.count
        for i in w.indices { w[i] *= s[i % n] }
    }

    /// `W[r, :] /= s[r]` for a row-major `[s.count, ·]` matrix (the smoothing linear's output rows).
    public static func divideRows(_ w: inout [Float], by s: [Float]) {
        let cols = w.count / s.count
        for r in s.indices { for c in 0..<cols { w[r * cols + c] /= s[r] } }
    }

    /// `x[·, c] /= s[c]`: what the balance layers see after folding.
    public static func divideColumns(_ x: [Float], by s: [Float]) -> [Float] {
        let n = s.count
        var y = x
        for i in y.indices { y[i] /= s[i % n] }
        return y
    }

    /// Σ(a − b)² / count, in f64.
    public static func mse(_ a: [Float], _ b: [Float]) -> Double {
        var s = 0.0
        for i in a.indices { let d = Double(a[i]) - Double(b[i]); s += d * d }
        return s / Double(max(a.count, 1))
    }
}
