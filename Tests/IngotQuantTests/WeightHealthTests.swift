@testable import IngotQuant
import Testing

/// The bit-pattern scan against a plain value-by-value reference.
struct WeightHealthTests {
    static func reference(_ v: [Float], rows: Int, columns: Int, groupSize: Int?, fp8Max: Float?) -> WeightHealth {
        var h = WeightHealth()
        let g = groupSize ?? columns
        for r in 0..<rows {
            var rowZero = true
            for c in stride(from: 0, to: columns, by: g) {
                var groupZero = true
                for i in (r * columns + c)..<(r * columns + min(columns, c + g)) {
                    let x = v[i]
                    if x.isNaN { h.nan += 1; if h.firstNonFinite == nil { h.firstNonFinite = i } }
                    else if x.isInfinite { h.infinite += 1; if h.firstNonFinite == nil { h.firstNonFinite = i } }
                    else if x.isSubnormal { h.denormal += 1 }
                    if x != 0 { groupZero = false }
                    if let m = fp8Max, x.isFinite, x.magnitude > m { h.beyondFP8 += 1 }
                }
                if groupZero { h.zeroGroups += 1 } else { rowZero = false }
            }
            if rowZero { h.zeroRows += 1 }
        }
        return h
    }

    @Test(arguments: [(7, 300, 64), (1000, 96, 32), (3, 5, 2), (129, 130, nil)] as [(Int, Int, Int?)])
    func scanMatchesReference(rows: Int, columns: Int, group: Int?) {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 16 }
        let specials: [Float] = [.nan, -.nan, .infinity, -.infinity, .leastNonzeroMagnitude, -Float.leastNormalMagnitude / 2,
                                 0, -0, 449, -1e30, .greatestFiniteMagnitude, 448]
        var v = (0..<(rows * columns)).map { _ in Float(Int(next() % 2001) - 1000) / 4000 }
        for _ in 0..<(rows * columns / 50 + 3) { v[Int(next() % UInt64(v.count))] = specials[Int(next() % UInt64(specials.count))] }
        for r in stride(from: 0, to: rows, by: 5) { for c in 0..<columns { v[r * columns + c] = 0 } }  // zero rows
        if rows > 1 { for c in 0..<min(columns, group ?? columns) { v[columns + c] = -0.0 } }       // a zero group
        for fp8 in [nil, Float(448)] {
            let fast = v.withUnsafeBufferPointer { WeightHealth.scan($0, rows: rows, columns: columns, groupSize: group, fp8Max: fp8) }
            #expect(fast == Self.reference(v, rows: rows, columns: columns, groupSize: group, fp8Max: fp8))
        }
    }
}
