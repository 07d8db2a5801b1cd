import CCodec
import Testing
@testable import IngotFormats

/// The plane entropy coder: lossless on every kind of distribution, length-limited, and safe on garbage.
struct HuffmanTests {
    func roundTrip(_ data: [UInt8]) throws -> Int {
        var enc = [UInt8](repeating: 0, count: Huffman.bound(data.count))
        let n = data.withUnsafeBytes { s in enc.withUnsafeMutableBytes { Huffman.encode(s, into: $0) } }
        var dec = [UInt8](repeating: 0xAA, count: data.count)
        try enc[0..<n].withUnsafeBytes { s in try dec.withUnsafeMutableBytes { try Huffman.decode(s, into: $0) } }
        #expect(dec == data)
        return n
    }

    /// `ic_huffman_tables` (the AVX-512 build on CPUs that have it) against a plain walk of the code, for every
    /// 12-bit window of several codes: complete and incomplete, one symbol, lengths 1 to 12. An entry holds the
    /// symbols whose whole codes fit in the window, at most four, their bit total and count.
    @Test func decodeTablesMatchAPlainWalkOfTheCode() throws {
        var lengthSets: [[UInt8]] = [
            Huffman.lengths((0..<256).map { $0 < 20 ? 1 << (20 - $0) : 0 }),  // skewed, up to 12 bits
            Huffman.lengths((0..<256).map { _ in 1 }),                           // uniform: all 8 bits
            Huffman.lengths((0..<256).map { $0 == 9 ? 5 : 0 }),                  // one symbol
            (0..<256).map { $0 < 3 ? UInt8(2) : 0 },                              // incomplete: 3 codes of 2 bits
        ]
        var g = TestRandomWalk(seed: 3)
        for _ in 0..<6 { lengthSets.append(Huffman.lengths((0..<256).map { _ in g.next() % 5 == 0 ? 0 : 1 << (g.next() % 14) })) }
        for lens in lengthSets {
            let codes = try #require(Huffman.codes(lens))
            var single = [UInt16](repeating: 0, count: 4096), multi = [UInt64](repeating: 0, count: 4096)
            ic_huffman_tables(lens, codes, &single, &multi)
            // The one-symbol table by its definition: the symbol whose (bit-reversed) code is a prefix of the window.
            var one = [(symbol: Int, length: Int)?](repeating: nil, count: 4096)
            for s in 0..<256 where lens[s] > 0 {
                for w in 0..<4096 where w & ((1 << Int(lens[s])) - 1) == Int(codes[s]) { one[w] = (s, Int(lens[s])) }
            }
            for w in 0..<4096 {
                #expect(single[w] == (one[w].map { UInt16($0.symbol | $0.length << 8) } ?? 0), "single[\(w)]")
                var bits = 0, count = 0, symbols: UInt64 = 0
                while count < 4, let next = one[(w >> bits) & 4095], bits + next.length <= 12 {
                    symbols |= UInt64(next.symbol) << (8 * count)
                    bits += next.length
                    count += 1
                }
                #expect(multi[w] == symbols << 32 | UInt64(count) << 8 | UInt64(bits), "multi[\(w)] for lengths \(lens.prefix(8))…")
            }
        }
    }

    @Test func distributions() throws {
        var g = SystemRandomNumberGenerator()
        _ = try roundTrip([])
        _ = try roundTrip([7])
        _ = try roundTrip([UInt8](repeating: 42, count: 300_000))  // one symbol, spans two blocks
        _ = try roundTrip((0..<600_000).map { UInt8(truncatingIfNeeded: $0) })  // uniform over 256
        let random = (0..<100_000).map { _ in UInt8.random(in: 0...255, using: &g) }
        _ = try roundTrip(random)
        // Geometric: probabilities 2^-k force lengths past the 12-bit limit, which must be enforced.
        var skewed: [UInt8] = []
        for k in 0..<20 { skewed += [UInt8](repeating: UInt8(k), count: max(1, 1 << (19 - k))) }
        skewed.shuffle(using: &g)
        let n = try roundTrip(skewed)
        #expect(n < skewed.count / 3)
        #expect(Huffman.lengths((0..<256).map { $0 < 20 ? 1 << (20 - $0) : 0 }).max()! <= UInt8(Huffman.maxLength))
    }

    @Test func everyInterleavingOfBlocks() throws {
        // Planes of 1 to 9 blocks, the last one partial or whole, decode four, three, two and one block at a time;
        // blocks with different codes (one nearly uniform) leave the fast path at different points.
        var g = SystemRandomNumberGenerator()
        for blocks in 1...9 {
            for partial in [0, 1, 40_001] {
                let n = (blocks - (partial == 0 ? 0 : 1)) * Huffman.blockSize + partial
                let data: [UInt8] = (0..<n).map { i in
                    (i / Huffman.blockSize) % 3 == 1 ? UInt8.random(in: 0...255, using: &g) : UInt8(118 + min(6, (i &* 2654435761 >> 7) % 9))
                }
                _ = try roundTrip(data)
            }
        }
    }

    @Test func compressesExponentLikeData() throws {
        // bf16 exponents of N(0, 0.02) weights cluster around 118-122: entropy ≈ 2.6 bits.
        var g = SystemRandomNumberGenerator()
        let data: [UInt8] = (0..<200_000).map { _ in
            let x = Double.random(in: 0..<1, using: &g)
            return x < 0.5 ? 121 : x < 0.75 ? 120 : x < 0.875 ? 119 : x < 0.94 ? 118 : UInt8.random(in: 100...117, using: &g)
        }
        let n = try roundTrip(data)
        #expect(Double(n * 8) / Double(data.count) < 2.2)
    }

    @Test func encoderMatchesTheReference() {
        // The fast encoder (four codes per 8-byte store) writes the reference's bytes, and the plan's size is exact.
        var g = SystemRandomNumberGenerator()
        var inputs: [[UInt8]] = (0..<20).map { n in (0..<n).map { _ in UInt8.random(in: 0...3, using: &g) } }
        inputs.append((0..<700_001).map { i in i % 5 == 0 ? UInt8.random(in: 0...255, using: &g) : UInt8(118 + i % 4) })
        var skewed: [UInt8] = []
        for k in 0..<20 { skewed += [UInt8](repeating: UInt8(k), count: max(1, 1 << (19 - k))) }  // 12-bit codes
        skewed.shuffle(using: &g)
        inputs.append(skewed)
        inputs.append([UInt8](repeating: 9, count: 262_145))
        for data in inputs {
            var a = [UInt8](repeating: 0xAB, count: Huffman.bound(data.count)), b = a
            let n = data.withUnsafeBytes { s in a.withUnsafeMutableBytes { Huffman.encode(s, into: $0) } }
            let m = data.withUnsafeBytes { s in b.withUnsafeMutableBytes { Huffman.encodeReference(s, into: $0) } }
            #expect(n == m && a[0..<n] == b[0..<m], "\(data.count) bytes")
            #expect(data.withUnsafeBytes { Huffman.plan($0).encodedSize } == m)
        }
    }

    @Test func damagedPayloadsOfManyBlocksAreRejectedOrDecodeInBounds() throws {
        // A valid five-block plane with bytes flipped: decoding must fail or write exactly the requested bytes.
        var g = SystemRandomNumberGenerator()
        let data: [UInt8] = (0..<(4 * Huffman.blockSize + 1000)).map { _ in UInt8(116 + Int.random(in: 0...7, using: &g)) }
        var enc = [UInt8](repeating: 0, count: Huffman.bound(data.count))
        let n = data.withUnsafeBytes { s in enc.withUnsafeMutableBytes { Huffman.encode(s, into: $0) } }
        for _ in 0..<40 {
            var bad = Array(enc[0..<n])
            for _ in 0..<8 { bad[Int.random(in: 0..<n, using: &g)] ^= UInt8.random(in: 1...255, using: &g) }
            var out = [UInt8](repeating: 0, count: data.count + 64)
            let sentinel = Array(out[data.count...])
            _ = try? bad.withUnsafeBytes { s in try out.withUnsafeMutableBytes { try Huffman.decode(s, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<data.count])) } }
            #expect(Array(out[data.count...]) == sentinel)
        }
    }

    @Test func garbageNeverCrashes() {
        var g = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let junk = (0..<Int.random(in: 0..<600, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }
            var out = [UInt8](repeating: 0, count: Int.random(in: 0..<2000, using: &g))
            _ = try? junk.withUnsafeBytes { s in try out.withUnsafeMutableBytes { try Huffman.decode(s, into: $0) } }
        }
    }
}

/// The byte-plane transform inverts exactly, for every bf16/f16 code and for odd lengths (SWAR and tail paths).
struct BytePlaneTests {
    @Test(arguments: [2, 4])
    func splitJoinRoundTrip(width: Int) {
        for n in [0, 1, 3, 4, 5, 7, 8, 65_536 + 3] {
            var src = [UInt8](repeating: 0, count: n * width)
            for i in src.indices { src[i] = UInt8(truncatingIfNeeded: i &* 131 &+ (i >> 8)) }
            if width == 2 && n == 65_539 { for c in 0..<65_536 { src[2 * c] = UInt8(c & 0xFF); src[2 * c + 1] = UInt8(c >> 8) } }
            var planes = [UInt8](repeating: 0, count: src.count), back = [UInt8](repeating: 0xEE, count: src.count)
            src.withUnsafeBytes { s in planes.withUnsafeMutableBytes { BytePlanes.split(s, width: width, into: $0) } }
            planes.withUnsafeBytes { p in back.withUnsafeMutableBytes { BytePlanes.join(p, width: width, into: $0) } }
            #expect(back == src, "width \(width), n \(n)")
            // Plane k holds byte k of each element rotated left by one bit (formats/ingot.md).
            for i in 0..<n {
                var v: UInt64 = 0
                for k in 0..<width { v |= UInt64(src[i * width + k]) << (8 * k) }
                let bits = UInt64(8 * width), r = ((v << 1) | (v >> (bits - 1))) & ((1 << bits) - 1)
                for k in 0..<width where planes[k * n + i] != UInt8(truncatingIfNeeded: r >> (8 * k)) {
                    Issue.record("plane \(k) of element \(i), width \(width), n \(n)")
                    return
                }
            }
        }
    }
}

/// xorshift, for the test's random code-length sets.
struct TestRandomWalk {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> Int { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return Int(state >> 33) }
}
