/// Merge rules keyed by the pair of token ids: (left, right) -> (rank, merged id). Open addressing, no allocation
/// on lookup.
struct MergeTable: Sendable {
    private var keys: [UInt64]
    private var values: [UInt64]
    private var mask: Int
    private(set) var count = 0

    static let noMerge = UInt64.max

    init(minimumCapacity: Int) {
        var cap = 16
        while cap < minimumCapacity * 2 { cap <<= 1 }
        keys = [UInt64](repeating: .max, count: cap)
        values = [UInt64](repeating: 0, count: cap)
        mask = cap - 1
    }

    @inline(__always)
    private static func key(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    @inline(__always)
    private static func slot(_ k: UInt64, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (k &* 0x9E37_79B9_7F4A_7C15) >> 29) & mask
    }

    /// Sets the rule for (a, b), replacing an earlier one (HF keeps the last duplicate).
    mutating func set(_ a: Int32, _ b: Int32, rank: UInt32, merged: Int32) {
        let k = Self.key(a, b)
        var p = Self.slot(k, mask)
        while keys[p] != .max && keys[p] != k { p = (p + 1) & mask }
        if keys[p] == .max { count += 1 }
        keys[p] = k
        values[p] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merged))
    }

    /// `rank << 32 | merged id` of the rule for (a, b), or `noMerge`.
    @inline(__always)
    func lookup(_ a: Int32, _ b: Int32) -> UInt64 {
        let k = Self.key(a, b)
        return keys.withUnsafeBufferPointer { kp in
            var p = Self.slot(k, mask)
            while true {
                let x = kp[p]
                if x == k { return values[p] }
                if x == .max { return Self.noMerge }
                p = (p + 1) & mask
            }
        }
    }
}
