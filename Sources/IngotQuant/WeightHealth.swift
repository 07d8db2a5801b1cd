import CKernels
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
        // Rows in parallel blocks, merged in order (the first non-finite index is the smallest).
        let blockRows = max(1, (1 << 16) / max(columns, 1))
        let blocks = (rows + blockRows - 1) / blockRows
        var parts = [WeightHealth](repeating: WeightHealth(), count: blocks)
        parts.withUnsafeMutableBufferPointer { out in
            let out = UncheckedSendable(out)
            parallelFor(blocks) { b in
                out.value[b] = scanRows(v, rows: (b * blockRows)..<min(rows, (b + 1) * blockRows), columns: columns,
                                        groupSize: groupSize ?? columns, fp8Max: fp8Max)
            }
        }
        var h = WeightHealth()
        for p in parts {
            h.nan += p.nan; h.infinite += p.infinite; h.denormal += p.denormal
            h.zeroRows += p.zeroRows; h.zeroGroups += p.zeroGroups; h.beyondFP8 += p.beyondFP8
            if h.firstNonFinite == nil { h.firstNonFinite = p.firstNonFinite }
        }
        return h
    }

    /// `scan` on some rows: each group is checked with branch-free reductions over the bit patterns, and only a
    /// group holding a NaN, infinity or denormal is walked value by value to count them.
    static func scanRows(_ v: UnsafeBufferPointer<Float>, rows: Range<Int>, columns: Int, groupSize g: Int, fp8Max: Float?) -> WeightHealth {
        var h = WeightHealth()
        let limit = fp8Max ?? .infinity
        for r in rows {
            var rowZero = true
            var c = 0
            while c < columns {
                let n = min(g, columns - c), lo = r * columns + c
                // OR of magnitudes, any exponent all ones (NaN, infinity) or all zeros with a mantissa (denormal),
                // largest magnitude: `ck_scan_group`, vectorized.
                var nonzero: UInt32 = 0, special: UInt32 = 0, maxMagnitude: UInt32 = 0
                ck_scan_group(v.baseAddress! + lo, n, &nonzero, &special, &maxMagnitude)
                if special != 0 {
                    for i in lo..<(lo + n) {
                        let x = v[i]
                        if x.isNaN { h.nan += 1; if h.firstNonFinite == nil { h.firstNonFinite = i } }
                        else if x.isInfinite { h.infinite += 1; if h.firstNonFinite == nil { h.firstNonFinite = i } }
                        else if x.isSubnormal { h.denormal += 1 }
                    }
                }
                // Finite magnitudes order like their bit patterns; only then is the per-value count needed.
                if fp8Max != nil, Float(bitPattern: min(maxMagnitude, 0x7F7F_FFFF)) > limit {
                    for i in lo..<(lo + n) where v[i].isFinite && v[i].magnitude > limit { h.beyondFP8 += 1 }
                }
                if nonzero == 0 { h.zeroGroups += 1 } else { rowZero = false }
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
