/// Open-addressing hash map from byte strings to a 64-bit payload, with keys stored in one arena.
///
/// Lookups take a borrowed byte buffer, so the encoder's hot loop never allocates a key. Used for the byte-level
/// vocabulary (bytes -> id) and for the per-call word cache (bytes -> span of cached ids).
struct ByteKeyTable: Sendable {
    private struct Entry: Sendable {
        var hash: UInt64
        var keyOffset: Int
        var keyCount: Int
        var value: Int64
    }

    private var slots: [Int32]          // entry index, -1 = empty; count is a power of two
    private var entries: [Entry] = []
    private var keys: [UInt8] = []
    private var mask: Int

    init(minimumCapacity: Int = 16) {
        var cap = 16
        while cap < minimumCapacity * 2 { cap <<= 1 }
        slots = [Int32](repeating: -1, count: cap)
        mask = cap - 1
    }

    var count: Int { entries.count }

    @inline(__always)
    static func hash(_ key: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(key.count)
        var i = 0
        let n = key.count
        guard let base = key.baseAddress else { return h }
        while i + 8 <= n {
            let w = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)
            h = (h ^ w) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 31
            i += 8
        }
        if i < n {
            var w: UInt64 = 0
            var shift: UInt64 = 0
            while i < n {
                w |= UInt64(base[i]) << shift
                shift += 8
                i += 1
            }
            h = (h ^ w) &* 0x94D0_49BB_1331_11EB
            h ^= h >> 29
        }
        h = (h ^ (h >> 32)) &* 0xD6E8_FEB8_6659_FD93
        return h ^ (h >> 32)
    }

    /// The payload stored for `key`, nil if absent.
    @inline(__always)
    func value(for key: UnsafeBufferPointer<UInt8>) -> Int64? {
        let h = Self.hash(key)
        return slots.withUnsafeBufferPointer { sl in
            entries.withUnsafeBufferPointer { en in
                keys.withUnsafeBufferPointer { kb in
                    var p = Int(truncatingIfNeeded: h) & mask
                    while true {
                        let e = Int(sl[p])
                        if e < 0 { return nil }
                        let entry = en[e]
                        if entry.hash == h, entry.keyCount == key.count,
                           key.count == 0 || memcmp(kb.baseAddress! + entry.keyOffset, key.baseAddress!, key.count) == 0 {
                            return entry.value
                        }
                        p = (p + 1) & mask
                    }
                }
            }
        }
    }

    func value(for key: [UInt8]) -> Int64? {
        key.withUnsafeBufferPointer { value(for: $0) }
    }

    /// Inserts `key` -> `value`; returns false (and changes nothing) if the key is already present.
    @discardableResult
    mutating func insert(_ key: UnsafeBufferPointer<UInt8>, value: Int64) -> Bool {
        if self.value(for: key) != nil { return false }
        if (entries.count + 1) * 2 > slots.count { grow() }
        let h = Self.hash(key)
        let offset = keys.count
        keys.append(contentsOf: key)
        entries.append(Entry(hash: h, keyOffset: offset, keyCount: key.count, value: value))
        place(Int32(entries.count - 1), hash: h)
        return true
    }

    @discardableResult
    mutating func insert(_ key: [UInt8], value: Int64) -> Bool {
        key.withUnsafeBufferPointer { insert($0, value: value) }
    }

    private mutating func place(_ index: Int32, hash h: UInt64) {
        var p = Int(truncatingIfNeeded: h) & mask
        while slots[p] >= 0 { p = (p + 1) & mask }
        slots[p] = index
    }

    private mutating func grow() {
        let cap = slots.count * 2
        slots = [Int32](repeating: -1, count: cap)
        mask = cap - 1
        for i in entries.indices { place(Int32(i), hash: entries[i].hash) }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
