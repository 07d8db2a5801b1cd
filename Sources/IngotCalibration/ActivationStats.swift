import IngotCore

/// Per-channel statistics of one linear input: mean |x|, max |x|, and how many rows they cover.
public struct ActivationStats: Sendable, Equatable {
    public var width: Int
    public var tokens = 0
    /// Σ|x| per channel, in f64 (rows added in order, so the sum does not depend on thread count).
    var sumAbs: [Double]
    public var absmax: [Float]

    public init(width: Int) {
        self.width = width
        sumAbs = [Double](repeating: 0, count: width)
        absmax = [Float](repeating: 0, count: width)
    }

    public init(width: Int, tokens: Int, meanAbs: [Float], absmax: [Float]) {
        self.width = width
        self.tokens = tokens
        sumAbs = meanAbs.map { Double($0) * Double(tokens) }
        self.absmax = absmax
    }

    /// Mean |x| per channel (AWQ's `x_mean`); zeros when no rows were seen.
    public var meanAbs: [Float] { sumAbs.map { tokens > 0 ? Float($0 / Double(tokens)) : 0 } }

    /// Adds `rows` rows of a `[rows, width]` matrix. Channels are split across cores; each channel's rows are
    /// summed in order.
    public mutating func add(_ x: [Float], rows: Int) {
        guard rows > 0 else { return }
        precondition(x.count >= rows * width, "ActivationStats.add: matrix smaller than rows × width")
        let w = width, blocks = (w + 63) / 64
        sumAbs.withUnsafeMutableBufferPointer { s in
            absmax.withUnsafeMutableBufferPointer { m in
                x.withUnsafeBufferPointer { xs in
                    let (s, m, xs) = (UncheckedSendable(s), UncheckedSendable(m), UncheckedSendable(xs))
                    parallelFor(blocks) { b in
                        let lo = b * 64, hi = min(w, lo + 64)
                        for r in 0..<rows {
                            let row = r * w
                            for c in lo..<hi {
                                let a = abs(xs.value[row + c])
                                s.value[c] += Double(a)
                                if a > m.value[c] || a.isNaN { m.value[c] = a }
                            }
                        }
                    }
                }
            }
        }
        tokens += rows
    }
}
