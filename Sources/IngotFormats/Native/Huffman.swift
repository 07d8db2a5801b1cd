import CCodec

/// Canonical Huffman coding of byte planes (formats/ingot.md §4.1): an order-0 entropy coder for the exponent
/// plane of floats, where zstd's LZ stage costs ratio and time (2.9 vs 2.66 bits per bf16 exponent).
///
/// A plane is coded in blocks of `blockSize` bytes, each with its own code (adapts to each tensor region):
/// 128 bytes of 4-bit code lengths (symbol 2k in the low nibble, 0 = absent, at most `maxLength`), a u32
/// payload length, then the payload: codes packed LSB-first, each code bit-reversed (as in DEFLATE).
enum Huffman {
    static let maxLength = 12
    static let blockSize = 1 << 18
    /// Blocks decoded together (`ic_huffman_decode` interleaves four).
    static let interleave = 4

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

    /// Byte histogram (`ic_histogram`).
    static func histogram(_ s: UnsafeBufferPointer<UInt8>) -> [Int] {
        var counts = [UInt64](repeating: 0, count: 256)
        if let base = s.baseAddress { ic_histogram(base, s.count, &counts) }
        return counts.map { Int($0) }
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

    /// `encode` with the block code lengths `plan(src)` computed; the bits are packed by `ic_huffman_pack` (its
    /// stream is `encodeReference`'s).
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
            let payload = ic_huffman_pack(s.baseAddress! + start, end - start, table, (d + o).assumingMemoryBound(to: UInt8.self))
            o += payload
            (d + lenPos).storeBytes(of: UInt32(payload).littleEndian, as: UInt32.self)
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
    /// Table-driven (`ic_huffman_decode`): a 12-bit lookup yields up to four whole symbols (exponent codes average
    /// ~2.7 bits), and blocks are decoded `interleave` at a time, their lookups interleaved; a one-symbol table
    /// finishes each block.
    static func decode(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws {
        let d = dst.baseAddress?.assumingMemoryBound(to: UInt8.self)
        let size = 1 << maxLength
        let single = UnsafeMutablePointer<UInt16>.allocate(capacity: interleave * size)
        let multi = UnsafeMutablePointer<UInt64>.allocate(capacity: interleave * size)
        defer { single.deallocate(); multi.deallocate() }
        var lens = [UInt8](repeating: 0, count: 256)
        var pos = 0, start = 0
        var blocks: [ic_huffman_block] = []
        var payloads: [Int] = []
        while start < dst.count {
            blocks.removeAll(keepingCapacity: true)
            payloads.removeAll(keepingCapacity: true)
            for slot in 0..<interleave where start < dst.count {
                let end = min(dst.count, start + blockSize)
                guard pos + 132 <= src.count else { throw Failure.corrupt("truncated block header") }
                for k in 0..<128 { let b = src[pos + k]; lens[2 * k] = b & 0xF; lens[2 * k + 1] = b >> 4 }
                pos += 128
                let payload = Int(UInt32(littleEndian: src.loadUnaligned(fromByteOffset: pos, as: UInt32.self)))
                pos += 4
                guard payload <= src.count - pos else { throw Failure.corrupt("payload runs past the plane") }
                guard let codes = codes(lens) else { throw Failure.corrupt("code lengths over-subscribe the code space") }
                ic_huffman_tables(lens, codes, single + slot * size, multi + slot * size)
                blocks.append(ic_huffman_block(payload: src.baseAddress!.assumingMemoryBound(to: UInt8.self) + pos, length: payload,
                                               single: single + slot * size, multi: multi + slot * size, out: d! + start,
                                               count: end - start, bits: 0))
                payloads.append(payload)
                pos += payload
                start = end
            }
            guard ic_huffman_decode(&blocks, blocks.count) == 0 else { throw Failure.corrupt("invalid code") }
            for (b, payload) in zip(blocks, payloads) where (b.bits + 7) / 8 != payload {
                throw Failure.corrupt("payload length does not match its codes")
            }
        }
        guard pos == src.count else { throw Failure.corrupt("trailing bytes after the last block") }
    }
}
