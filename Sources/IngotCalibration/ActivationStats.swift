import Foundation
import IngotCore

/// Per-channel statistics of one linear input: mean |x|, mean x², max |x|, and how many rows they cover.
///
/// Σ|x| is accumulated exactly, in fixed point (units of 2^-40 in an `Int128`), so the sum does not depend on the
/// order rows arrive in: statistics gathered over parts of the data by several processes (`calibrate --shard`) add
/// up to the very bits one process gets. Only the magnitudes below 2^-40 (≈ 1e-12) are dropped, and a finite |x|
/// above 2^62 counts as 2^62; a non-finite one shows in `absmax` and makes that channel's mean NaN or infinite.
/// Σx² (llama.cpp's importance matrix is its mean) is kept the same way; calibration files written before it was
/// added have none (`hasSquares` false).
public struct ActivationStats: Sendable, Equatable {
    public var width: Int
    public var tokens = 0
    /// Σ|x| per channel, in units of 2^-40.
    public internal(set) var exactSum: [Int128]
    /// Σx² per channel, in units of 2^-40.
    public internal(set) var exactSumSquares: [Int128]
    /// False for statistics read from a calibration file that predates Σx².
    public internal(set) var hasSquares = true
    public var absmax: [Float]

    static let unit = 0x1p40
    static let ceiling: Float = 0x1p62

    public init(width: Int) {
        self.width = width
        exactSum = [Int128](repeating: 0, count: width)
        exactSumSquares = [Int128](repeating: 0, count: width)
        absmax = [Float](repeating: 0, count: width)
    }

    /// Statistics read back from a file: exact sums when stored, else sums rebuilt from the means. Without
    /// `meanSquares` and `exactSumSquares` (older files) there is no Σx².
    public init(width: Int, tokens: Int, meanAbs: [Float], absmax: [Float], exactSum: [Int128]? = nil,
                meanSquares: [Float]? = nil, exactSumSquares: [Int128]? = nil) {
        self.width = width
        self.tokens = tokens
        self.exactSum = exactSum ?? meanAbs.map { Self.fixed(Double($0) * Double(tokens)) }
        self.absmax = absmax
        if let q = exactSumSquares ?? meanSquares.map({ $0.map { Self.fixed(Double($0) * Double(tokens)) } }), q.count == width {
            self.exactSumSquares = q
        } else {
            self.exactSumSquares = [Int128](repeating: 0, count: width)
            hasSquares = false
        }
    }

    /// Mean x² per channel (llama.cpp's imatrix value); nil when the statistics predate Σx².
    public var meanSquares: [Float]? {
        guard hasSquares else { return nil }
        return (0..<width).map { c in
            guard tokens > 0 else { return 0 }
            guard absmax[c].isFinite else { return absmax[c] * absmax[c] }
            return Float(Double(exactSumSquares[c]) / Self.unit / Double(tokens))
        }
    }

    /// Mean |x| per channel (AWQ's `x_mean`); zeros when no rows were seen.
    public var meanAbs: [Float] {
        (0..<width).map { c in
            guard tokens > 0 else { return 0 }
            guard absmax[c].isFinite else { return absmax[c] }
            return Float(Double(exactSum[c]) / Self.unit / Double(tokens))
        }
    }

    /// The fixed-point value of a magnitude (exact for every float below 2^23; truncated below 2^-40).
    @inline(__always) static func fixed(_ a: Double) -> Int128 {
        a < 0x1p23 ? Int128(Int64(a * unit)) : Int128(Swift.min(a, Double(ceiling)) * unit)
    }

    /// Adds `rows` rows of a `[rows, width]` matrix. Channels are split across cores.
    public mutating func add(_ x: [Float], rows: Int) {
        guard rows > 0 else { return }
        precondition(x.count >= rows * width, "ActivationStats.add: matrix smaller than rows × width")
        let w = width, blocks = (w + 63) / 64
        exactSum.withUnsafeMutableBufferPointer { s in exactSumSquares.withUnsafeMutableBufferPointer { q in
            absmax.withUnsafeMutableBufferPointer { m in
                x.withUnsafeBufferPointer { xs in
                    let (s, q, m, xs) = (UncheckedSendable(s), UncheckedSendable(q), UncheckedSendable(m), UncheckedSendable(xs))
                    parallelFor(blocks) { b in
                        let lo = b * 64, hi = min(w, lo + 64)
                        for r in 0..<rows {
                            let row = r * w
                            for c in lo..<hi {
                                let a = abs(xs.value[row + c])
                                if a.isFinite {
                                    let d = Double(a)
                                    s.value[c] &+= Self.fixed(d)
                                    q.value[c] &+= Self.fixed(d * d)  // exact: a float's square fits a double
                                } else {
                                    s.value[c] &+= Self.fixed(Double(Self.ceiling)); q.value[c] &+= Self.fixed(Double(Self.ceiling))
                                }
                                if a > m.value[c] || a.isNaN { m.value[c] = a }
                            }
                        }
                    }
                }
            }
        } }
        tokens += rows
    }

    /// Adds statistics gathered over other rows (exact: the result does not depend on how the rows were split).
    public mutating func merge(_ other: ActivationStats) {
        precondition(other.width == width, "ActivationStats.merge: widths differ")
        for c in 0..<width {
            exactSum[c] &+= other.exactSum[c]
            exactSumSquares[c] &+= other.exactSumSquares[c]
            let a = other.absmax[c]
            if a > absmax[c] || (a.isNaN && !absmax[c].isNaN) { absmax[c] = a }
        }
        tokens += other.tokens
        hasSquares = hasSquares && other.hasSquares
    }
}
