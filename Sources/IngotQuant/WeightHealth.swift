import IngotCore

/// What is wrong with a weight before it is quantized: NaN/Inf values, all-zero rows and groups, denormals,
/// values beyond the FP8 range. Quantizers stay NaN-free regardless (scales are never 0 or NaN); this is the
/// report, and `--strict` turns any finding into a failure.
public struct WeightHealth: Sendable, Equatable {
    public var nan = 0, infinite = 0, denormal = 0, zeroRows = 0, zeroGroups = 0, beyondFP8 = 0
    /// Flat index of the first NaN or infinity.
    public var firstNonFinite: Int?

    public var isClean: Bool { nan == 0 && infinite == 0 && denormal == 0 && zeroRows == 0 && zeroGroups == 0 && beyondFP8 == 0 }

    /// Scans `[rows, columns]` values; `groupSize` for zero-group counting, `fp8Max` to count values the FP8
    /// grid cannot hold before scaling (reported, not an error: per-tensor/channel scales absorb them).
    public static func scan(_ v: UnsafeBufferPointer<Float>, rows: Int, columns: Int, groupSize: Int?, fp8Max: Float?) -> WeightHealth {
        var h = WeightHealth()
        let g = groupSize ?? columns
        for r in 0..<rows {
            var rowZero = true
            var c = 0
            while c < columns {
                let n = min(g, columns - c)
                var groupZero = true
                for i in (r * columns + c)..<(r * columns + c + n) {
                    let x = v[i]
                    if x.isNaN { h.nan += 1; if h.firstNonFinite == nil { h.firstNonFinite = i } }
                    else if x.isInfinite { h.infinite += 1; if h.firstNonFinite == nil { h.firstNonFinite = i } }
                    else if x.isSubnormal { h.denormal += 1 }
                    if x != 0 { groupZero = false }
                    if let m = fp8Max, x.magnitude > m, x.isFinite { h.beyondFP8 += 1 }
                }
                if groupZero { h.zeroGroups += 1 } else { rowZero = false }
                c += n
            }
            if rowZero { h.zeroRows += 1 }
        }
        return h
    }

    /// One line for the report.
    public var summary: String {
        var parts: [String] = []
        if nan > 0 { parts.append("\(nan) NaN") }
        if infinite > 0 { parts.append("\(infinite) infinite") }
        if let f = firstNonFinite { parts.append("first non-finite at index \(f)") }
        if zeroRows > 0 { parts.append("\(zeroRows) all-zero rows") }
        if zeroGroups > 0 { parts.append("\(zeroGroups) all-zero groups") }
        if denormal > 0 { parts.append("\(denormal) denormals") }
        if beyondFP8 > 0 { parts.append("\(beyondFP8) values beyond the FP8 range before scaling") }
        return parts.joined(separator: ", ")
    }
}

/// Raised in `--strict` mode when a weight is not clean (nothing is written).
public struct BadWeights: Error, CustomStringConvertible, Equatable {
    public let tensor: String
    public let summary: String
    public init(tensor: String, health: WeightHealth) {
        self.tensor = tensor
        summary = health.summary
    }
    public var description: String { "tensor '\(tensor)': \(summary) (--strict)" }
}
