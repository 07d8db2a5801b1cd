/// The BPE merge loop of HF `tokenizers` (`Word::merge_all`): repeatedly apply the applicable merge with the
/// lowest rank, the leftmost one among equal ranks, until none applies.
///
/// Two implementations with identical results: a rank scan over a compact array (fast for the short words that
/// make up almost all text) and HF's own priority-queue algorithm over a linked list (linear-log for long runs).
enum BPEMerge {
    /// Words up to this many symbols use the scan; longer ones the heap.
    static let scanLimit = 48

    /// Merges `ids[0..<n]` in place; returns the new symbol count.
    static func merge(_ ids: UnsafeMutableBufferPointer<Int32>, count n: Int, rules: MergeTable,
                      scratch: inout MergeScratch) -> Int {
        n <= scanLimit ? scan(ids, count: n, rules: rules, scratch: &scratch)
                       : heap(ids, count: n, rules: rules, scratch: &scratch)
    }

    /// Rank scan: O(n^2) but branch-light and allocation-free.
    static func scan(_ ids: UnsafeMutableBufferPointer<Int32>, count n0: Int, rules: MergeTable,
                     scratch: inout MergeScratch) -> Int {
        var n = n0
        if n < 2 { return n }
        if scratch.pairs.count < n { scratch.pairs = [UInt64](repeating: 0, count: max(n, 64)) }
        return scratch.pairs.withUnsafeMutableBufferPointer { pairs in
            for i in 0..<(n - 1) { pairs[i] = rules.lookup(ids[i], ids[i + 1]) }
            while n > 1 {
                var best = MergeTable.noMerge
                var bi = -1
                for i in 0..<(n - 1) where pairs[i] < best {
                    best = pairs[i]
                    bi = i
                }
                if bi < 0 { break }
                ids[bi] = Int32(truncatingIfNeeded: best)
                var j = bi + 1
                while j < n - 1 { ids[j] = ids[j + 1]; j += 1 }
                n -= 1
                j = bi + 1
                while j < n - 1 { pairs[j] = pairs[j + 1]; j += 1 }
                if bi < n - 1 { pairs[bi] = rules.lookup(ids[bi], ids[bi + 1]) }
                if bi > 0 { pairs[bi - 1] = rules.lookup(ids[bi - 1], ids[bi]) }
            }
            return n
        }
    }

    /// HF's algorithm: a min-heap of (rank, position) entries over a doubly linked list of symbols; entries made
    /// stale by earlier merges are skipped when popped.
    static func heap(_ ids: UnsafeMutableBufferPointer<Int32>, count n: Int, rules: MergeTable,
                     scratch: inout MergeScratch) -> Int {
        if n < 2 { return n }
        scratch.prepareLinks(n)
        var heap = MinHeap(storage: scratch.heap)
        defer { scratch.heap = heap.storage }
        return scratch.prev.withUnsafeMutableBufferPointer { prev in
            scratch.next.withUnsafeMutableBufferPointer { next in
                for i in 0..<n {
                    prev[i] = Int32(i - 1)
                    next[i] = i + 1 < n ? Int32(i + 1) : -1
                }
                for i in 0..<(n - 1) {
                    let v = rules.lookup(ids[i], ids[i + 1])
                    if v != MergeTable.noMerge { heap.push((v >> 32) << 32 | UInt64(i)) }
                }
                // A removed symbol is marked by prev = -2.
                while let top = heap.pop() {
                    let rank = top >> 32
                    let pos = Int(top & 0xFFFF_FFFF)
                    if prev[pos] == -2 { continue }
                    let nx = Int(next[pos])
                    if nx < 0 { continue }
                    let v = rules.lookup(ids[pos], ids[nx])
                    if v == MergeTable.noMerge || v >> 32 != rank { continue }
                    ids[pos] = Int32(truncatingIfNeeded: v)
                    prev[nx] = -2
                    let nn = Int(next[nx])
                    next[pos] = Int32(nn)
                    if nn >= 0 { prev[nn] = Int32(pos) }
                    let pv = Int(prev[pos])
                    if pv >= 0 {
                        let w = rules.lookup(ids[pv], ids[pos])
                        if w != MergeTable.noMerge { heap.push((w >> 32) << 32 | UInt64(pv)) }
                    }
                    if nn >= 0 {
                        let w = rules.lookup(ids[pos], ids[nn])
                        if w != MergeTable.noMerge { heap.push((w >> 32) << 32 | UInt64(pos)) }
                    }
                }
                var out = 0
                for i in 0..<n where prev[i] != -2 {
                    ids[out] = ids[i]
                    out += 1
                }
                return out
            }
        }
    }
}

/// Reusable buffers of the merge loop (one per encode call).
struct MergeScratch {
    var pairs: [UInt64] = []
    var prev: [Int32] = []
    var next: [Int32] = []
    var heap: [UInt64] = []

    mutating func prepareLinks(_ n: Int) {
        if prev.count < n {
            prev = [Int32](repeating: 0, count: n)
            next = [Int32](repeating: 0, count: n)
        }
        heap.removeAll(keepingCapacity: true)
    }
}

/// Binary min-heap of packed (rank << 32 | position) keys: smallest rank first, then leftmost position.
struct MinHeap {
    var storage: [UInt64]

    mutating func push(_ x: UInt64) {
        storage.append(x)
        var i = storage.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if storage[p] <= x { break }
            storage[i] = storage[p]
            i = p
        }
        storage[i] = x
    }

    mutating func pop() -> UInt64? {
        guard let last = storage.popLast() else { return nil }
        if storage.isEmpty { return last }
        let top = storage[0]
        let n = storage.count
        var i = 0
        while true {
            let l = 2 * i + 1
            if l >= n { break }
            let r = l + 1
            let c = r < n && storage[r] < storage[l] ? r : l
            if storage[c] >= last { break }
            storage[i] = storage[c]
            i = c
        }
        storage[i] = last
        return top
    }
}
