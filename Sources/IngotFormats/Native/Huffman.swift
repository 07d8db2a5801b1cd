/// Canonical Huffman coding of byte planes (formats/ingot.md §4.1): an order-0 entropy coder for the exponent
/// plane of floats, where zstd's LZ stage costs ratio and time (2.9 vs 2.66 bits per bf16 exponent).
///
/// A plane is coded in blocks of `blockSize` bytes, each with its own code (adapts to each tensor region):
/// 128 bytes of 4-bit code lengths (symbol 2k in the low nibble, 0 = absent, at most `maxLength`), a u32
/// payload length, then the payload: codes packed LSB-first, each code bit-reversed (as in DEFLATE).
enum Huffman {
    static let maxLength = 12
    static let blockSize = 1 << 18

    enum Failure: Error, Equatable { case corrupt(String) }

    /// Upper bound of the encoded size of `n` bytes.
    static func bound(_ n: Int) -> Int { n * 2 + (n / blockSize + 1) * 140 + 16 }

    /// Code lengths for the histogram, limited to `maxLength` (counts are halved until the tree fits).
    static func lengths(_ counts: [Int]) -> [UInt8] {
        var c = counts
        while true {
            var lens = [UInt8](repeating: 0, count: 256)
            let used = (0..<256).filter { c[$0] > 0 }
            if used.count == 1 { lens[used[0]] = 1; return lens }
            if used.isEmpty { return lens }
            // Deterministic Huffman: a min-heap ordered by (weight, id).
            var nodes: [(w: Int, id: Int)] = used.map { (c[$0], $0) }
            var parent = [Int](repeating: -1, count: 512)
            var next = 256
            nodes.sort { ($0.w, $0.id) < ($1.w, $1.id) }
            var heap = nodes
            while heap.count > 1 {
                let a = heap.removeFirst(), b = heap.removeFirst()
                parent[a.id] = next; parent[b.id] = next
                let n = (w: a.w + b.w, id: next)
                next += 1
                let pos = heap.firstIndex { ($0.w, $0.id) > (n.w, n.id) } ?? heap.count
                heap.insert(n, at: pos)
            }
            var maxLen = 0
            for s in used {
                var d = 0, x = s
                while parent[x] >= 0 { d += 1; x = parent[x] }
                lens[s] = UInt8(d)
                maxLen = max(maxLen, d)
            }
            if maxLen <= maxLength { return lens }
            for s in used { c[s] = max(1, c[s] >> 1) }
        }
    }

    /// Canonical codes (bit-reversed for LSB-first packing) from lengths; nil if the lengths over-subscribe.
    static func codes(_ lens: [UInt8]) -> [UInt32]? {
        var countPerLength = [Int](repeating: 0, count: maxLength + 1)
        for l in lens where l > 0 { guard Int(l) <= maxLength else { return nil }; countPerLength[Int(l)] += 1 }
        var code = 0
        var nextCode = [Int](repeating: 0, count: maxLength + 2)
        var kraft = 0
        for l in 1...maxLength {
            code = (code + countPerLength[l - 1]) << 1
            nextCode[l] = code
            kraft += countPerLength[l] << (maxLength - l)
        }
        guard kraft <= 1 << maxLength else { return nil }
        var out = [UInt32](repeating: 0, count: 256)
        for s in 0..<256 where lens[s] > 0 {
            let l = Int(lens[s])
            var c = nextCode[l]
            nextCode[l] += 1
            var r: UInt32 = 0
            for _ in 0..<l { r = (r << 1) | UInt32(c & 1); c >>= 1 }
            out[s] = r
        }
        return out
    }

    /// Histogram and code lengths of one block.
    static func blockCode(_ s: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> (counts: [Int], lengths: [UInt8]) {
        let counts = histogram(UnsafeBufferPointer(rebasing: s[range]))
        return (counts, lengths(counts))
    }

    /// Byte histogram: four sub-histograms (consecutive bytes rarely hit the same counter, so increments do not
    /// wait on each other), summed at the end.
    static func histogram(_ s: UnsafeBufferPointer<UInt8>) -> [Int] {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 1024) { h in
            h.initialize(repeating: 0)
            let p = UnsafeRawPointer(s.baseAddress), n = s.count
            let h0 = h.baseAddress!, h1 = h0 + 256, h2 = h0 + 512, h3 = h0 + 768
            var i = 0
            while i + 8 <= n {
                let w = UInt64(littleEndian: p!.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                h0[Int(w & 0xFF)] &+= 1; h1[Int((w >> 8) & 0xFF)] &+= 1
                h2[Int((w >> 16) & 0xFF)] &+= 1; h3[Int((w >> 24) & 0xFF)] &+= 1
                h0[Int((w >> 32) & 0xFF)] &+= 1; h1[Int((w >> 40) & 0xFF)] &+= 1
                h2[Int((w >> 48) & 0xFF)] &+= 1; h3[Int(w >> 56)] &+= 1
                i += 8
            }
            while i < n { h0[Int(s[i])] &+= 1; i += 1 }
            return (0..<256).map { Int(h0[$0]) + Int(h1[$0]) + Int(h2[$0]) + Int(h3[$0]) }
        }
    }

    /// The code lengths of every block of `src` and the exact encoded size they give: what `encode` writes, so a
    /// writer deciding whether a plane shrinks computes the histograms once.
    struct Plan {
        var lengths: [[UInt8]] = []
        var encodedSize = 0
    }

    static func plan(_ src: UnsafeRawBufferPointer) -> Plan {
        let s = src.bindMemory(to: UInt8.self)
        var p = Plan()
        var start = 0
        while start < s.count {
            let end = min(s.count, start + blockSize)
            let (counts, lens) = blockCode(s, start..<end)
            var bits = 0
            for k in 0..<256 { bits += counts[k] * Int(lens[k]) }
            p.encodedSize += 132 + (bits + 7) / 8
            p.lengths.append(lens)
            start = end
        }
        return p
    }

    /// Exact encoded size of `src`, from histograms alone (lets a writer skip planes that would not shrink).
    static func encodedSize(_ src: UnsafeRawBufferPointer) -> Int { plan(src).encodedSize }

    /// Encodes `src` into `dst` (capacity ≥ `bound(src.count)`); returns the byte count.
    static func encode(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) -> Int {
        encode(src, plan: plan(src), into: dst)
    }

    /// `encode` with the block code lengths `plan(src)` computed. Four codes (≤ 48 bits) are gathered in a 64-bit
    /// accumulator, then its whole bytes are stored with one unaligned 8-byte store (the bytes past them are
    /// overwritten later; `bound` leaves room for the last store). The bit stream is `encodeReference`'s.
    static func encode(_ src: UnsafeRawBufferPointer, plan: Plan, into dst: UnsafeMutableRawBufferPointer) -> Int {
        var o = 0
        let s = src.bindMemory(to: UInt8.self)
        let d = dst.baseAddress!
        var start = 0, block = 0
        // code | length << 16, per symbol
        var table = [UInt32](repeating: 0, count: 256)
        while start < s.count {
            let end = min(s.count, start + blockSize)
            let lens = plan.lengths[block]
            let codes = codes(lens)!
            for k in 0..<256 { table[k] = codes[k] | UInt32(lens[k]) << 16 }
            for k in 0..<128 { d.storeBytes(of: lens[2 * k] | (lens[2 * k + 1] << 4), toByteOffset: o + k, as: UInt8.self) }
            o += 128
            let lenPos = o
            o += 4
            let payloadStart = o
            table.withUnsafeBufferPointer { T in
                let t = T.baseAddress!, x = s.baseAddress!
                var acc: UInt64 = 0, bits: UInt64 = 0
                // Masking shifts and wrapping adds: `bits` stays below 64 and indices below `end`, so Swift's
                // overshift and overflow checks would only cost time.
                @inline(__always) func put(_ sym: UInt8) {
                    let e = t[Int(sym)]
                    acc |= UInt64(e & 0xFFFF) &<< bits
                    bits &+= UInt64(e &>> 16)
                }
                var i = start
                while i &+ 4 <= end {
                    put(x[i]); put(x[i &+ 1]); put(x[i &+ 2]); put(x[i &+ 3])
                    (d + o).storeBytes(of: acc.littleEndian, as: UInt64.self)
                    let whole = bits & ~7
                    o &+= Int(whole &>> 3)
                    acc = acc &>> whole
                    bits &= 7
                    i &+= 4
                }
                while i < end {
                    put(x[i])
                    if bits >= 8 {
                        (d + o).storeBytes(of: acc.littleEndian, as: UInt64.self)
                        let whole = bits & ~7
                        o += Int(whole >> 3)
                        acc >>= whole
                        bits &= 7
                    }
                    i += 1
                }
                if bits > 0 { d.storeBytes(of: UInt8(truncatingIfNeeded: acc), toByteOffset: o, as: UInt8.self); o += 1 }
            }
            let payload = UInt32(o - payloadStart)
            (d + lenPos).storeBytes(of: payload.littleEndian, as: UInt32.self)
            start = end
            block += 1
        }
        return o
    }

    /// The reference encoder (one code at a time, 32 bits flushed at once): `encode`'s output is tested against it.
    static func encodeReference(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) -> Int {
        var o = 0
        let s = src.bindMemory(to: UInt8.self)
        let d = dst.bindMemory(to: UInt8.self)
        var start = 0
        while start < s.count {
            let end = min(s.count, start + blockSize)
            var counts = [Int](repeating: 0, count: 256)
            for i in start..<end { counts[Int(s[i])] += 1 }
            let lens = lengths(counts)
            let table = codes(lens)!
            for k in 0..<128 { d[o + k] = lens[2 * k] | (lens[2 * k + 1] << 4) }
            o += 128
            let lenPos = o
            o += 4
            let payloadStart = o
            var acc: UInt64 = 0
            var bits: UInt64 = 0
            for i in start..<end {
                let sym = Int(s[i])
                acc |= UInt64(table[sym]) << bits
                bits += UInt64(lens[sym])
                if bits >= 32 {
                    UnsafeMutableRawPointer(d.baseAddress! + o).storeBytes(of: UInt32(truncatingIfNeeded: acc).littleEndian, as: UInt32.self)
                    o += 4
                    acc >>= 32
                    bits -= 32
                }
            }
            while bits > 0 { d[o] = UInt8(truncatingIfNeeded: acc); o += 1; acc >>= 8; bits = bits > 8 ? bits - 8 : 0 }
            let payload = UInt32(o - payloadStart)
            withUnsafeBytes(of: payload.littleEndian) { for k in 0..<4 { d[lenPos + k] = $0[k] } }
            start = end
        }
        return o
    }

    /// Decodes exactly `dst.count` bytes from `src`, which must be consumed entirely. Never reads out of bounds.
    ///
    /// Table-driven: a 12-bit lookup yields up to four whole symbols (exponent codes average ~2.7 bits), so the
    /// fast loop emits several symbols per lookup; a one-symbol table finishes each block.
    static func decode(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws {
        let d = dst.bindMemory(to: UInt8.self)
        var pos = 0
        var start = 0
        let size = 1 << maxLength, mask = UInt64(size - 1)
        var single = [UInt16](repeating: 0, count: size)  // symbol | length << 8; length 0 = invalid code
        var multi = [UInt64](repeating: 0, count: size)   // s0..s3 in bytes 0-3 | count << 32 | bits << 35
        while start < d.count {
            let end = min(d.count, start + blockSize)
            guard pos + 132 <= src.count else { throw Failure.corrupt("truncated block header") }
            var lens = [UInt8](repeating: 0, count: 256)
            for k in 0..<128 { let b = src[pos + k]; lens[2 * k] = b & 0xF; lens[2 * k + 1] = b >> 4 }
            pos += 128
            let payload = Int(UInt32(littleEndian: src.loadUnaligned(fromByteOffset: pos, as: UInt32.self)))
            pos += 4
            guard payload <= src.count - pos else { throw Failure.corrupt("payload runs past the plane") }
            guard let codes = codes(lens) else { throw Failure.corrupt("code lengths over-subscribe the code space") }
            for i in 0..<size { single[i] = 0 }
            for s in 0..<256 where lens[s] > 0 {
                let l = Int(lens[s])
                var f = Int(codes[s])
                while f < size { single[f] = UInt16(s) | UInt16(l) << 8; f += 1 << l }
            }
            for p in 0..<size {
                var bits = 0, count = 0, e: UInt64 = 0
                while count < 4 {
                    let t = single[(p >> bits) & (size - 1)]
                    let l = Int(t >> 8)
                    if l == 0 || bits + l > maxLength { break }
                    e |= UInt64(t & 0xFF) << UInt64(8 * count)
                    bits += l
                    count += 1
                }
                multi[p] = e | UInt64(count) << 32 | UInt64(bits) << 35
            }
            let p = UnsafeRawBufferPointer(rebasing: src[pos..<(pos + payload)])
            var bitPos = 0
            var i = start
            var bad = false
            multi.withUnsafeBufferPointer { M in
                // Fast path: 8 readable input bytes give ≥ 56 bits, enough for four lookups of ≤ 12 bits; each
                // lookup stores 4 output bytes (≤ 4 valid), so 16 output bytes of room are needed.
                while i + 16 <= end, (bitPos >> 3) + 8 <= p.count {
                    var w = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: bitPos >> 3, as: UInt64.self)) >> UInt64(bitPos & 7)
                    var used = 0
                    for _ in 0..<4 {
                        let e = M[Int(w & mask)]
                        let n = Int((e >> 32) & 7), b = Int(e >> 35)
                        if n == 0 { bad = true; return }
                        UnsafeMutableRawPointer(d.baseAddress! + i).storeBytes(of: UInt32(truncatingIfNeeded: e).littleEndian, as: UInt32.self)
                        i += n
                        w >>= UInt64(b)
                        used += b
                    }
                    bitPos += used
                }
            }
            if bad { throw Failure.corrupt("invalid code") }
            try single.withUnsafeBufferPointer { T in
                while i < end {
                    var w: UInt64 = 0
                    let byte = bitPos >> 3
                    for k in 0..<min(3, max(0, p.count - byte)) { w |= UInt64(p[byte + k]) << UInt64(8 * k) }
                    w >>= UInt64(bitPos & 7)
                    let e = T[Int(w & mask)]
                    let l = Int(e >> 8)
                    if l == 0 { throw Failure.corrupt("invalid code") }
                    d[i] = UInt8(truncatingIfNeeded: e)
                    bitPos += l
                    i += 1
                }
            }
            guard (bitPos + 7) / 8 == payload else { throw Failure.corrupt("payload length does not match its codes") }
            pos += payload
            start = end
        }
        guard pos == src.count else { throw Failure.corrupt("trailing bytes after the last block") }
    }
}
