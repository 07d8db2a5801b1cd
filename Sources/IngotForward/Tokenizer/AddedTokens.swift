/// One entry of `added_tokens`, with the id HF `tokenizers` actually assigns it.
struct AddedToken: Sendable, Equatable {
    var id: Int
    var content: String
    var singleWord: Bool
    var lstrip: Bool
    var rstrip: Bool
    var normalized: Bool
    var special: Bool
}

/// Finds added tokens in text the way HF's `AddedVocabulary::find_matches` does: leftmost-longest,
/// non-overlapping matches, then the `single_word`, `lstrip` and `rstrip` rules.
struct AddedTokenMatcher: Sendable {
    private struct Pattern: Sendable {
        var bytes: [UInt8]
        var token: Int  // index into `tokens`
    }

    /// A piece of the input: a byte range and the added token it is, if any.
    struct Piece: Equatable {
        var start: Int
        var end: Int
        var tokenId: Int?
    }

    private let tokens: [AddedToken]
    /// Pattern indices by first byte, longest pattern first.
    private let byFirstByte: [[Int]]
    private let patterns: [Pattern]

    var isEmpty: Bool { patterns.isEmpty }

    /// `patterns` pairs each token with the text it is matched as (its content, or its normalized content).
    init(tokens: [AddedToken], matchText: [String]) {
        self.tokens = tokens
        var pats = [Pattern]()
        for (i, text) in matchText.enumerated() where !text.isEmpty {
            pats.append(Pattern(bytes: Array(text.utf8), token: i))
        }
        var table = [[Int]](repeating: [], count: 256)
        for (i, p) in pats.enumerated() { table[Int(p.bytes[0])].append(i) }
        for b in 0..<256 {
            table[b].sort { (x, y) in
                pats[x].bytes.count != pats[y].bytes.count ? pats[x].bytes.count > pats[y].bytes.count : x < y
            }
        }
        patterns = pats
        byFirstByte = table
    }

    /// Splits `text` (valid UTF-8) into text pieces and added-token pieces. Empty text pieces are dropped; pieces
    /// may overlap only in the corner case HF also produces (an `rstrip` token whose stripped spaces begin
    /// another token).
    func split(_ text: UnsafeBufferPointer<UInt8>) -> [Piece] {
        let n = text.count
        if patterns.isEmpty || n == 0 { return n == 0 ? [] : [Piece(start: 0, end: n, tokenId: nil)] }
        var out = [Piece]()
        var startOffset = 0
        var i = 0
        while i < n {
            var matched: Pattern?
            for pi in byFirstByte[Int(text[i])] {
                let p = patterns[pi]
                if i + p.bytes.count <= n, p.bytes.withUnsafeBufferPointer({ pb in
                    memcmp(pb.baseAddress!, text.baseAddress! + i, pb.count) == 0
                }) {
                    matched = p
                    break
                }
            }
            guard let m = matched else { i += 1; continue }
            var start = i
            var stop = i + m.bytes.count
            i = stop
            let token = tokens[m.token]
            if token.singleWord {
                let startSpace = start == 0 || !Self.isWordScalar(Self.scalar(before: start, in: text))
                let stopSpace = stop == n || !Self.isWordScalar(Self.scalar(at: stop, in: text))
                if !startSpace || !stopSpace { continue }
            }
            if token.lstrip {
                var s = start
                while s > 0 {
                    let (v, len) = Self.scalarAndLength(before: s, in: text)
                    if !Self.isSpace(v) { break }
                    s -= len
                }
                start = max(s, startOffset)
            }
            if token.rstrip {
                while stop < n {
                    let (v, len) = Self.scalarAndLength(at: stop, in: text)
                    if !Self.isSpace(v) { break }
                    stop += len
                }
            }
            // An lstrip token lying wholly inside the spaces a previous rstrip token took (HF panics on the
            // inverted range): skip it.
            if start >= stop { continue }
            if startOffset < start { out.append(Piece(start: startOffset, end: start, tokenId: nil)) }
            out.append(Piece(start: start, end: stop, tokenId: token.id))
            startOffset = stop
        }
        if startOffset != n { out.append(Piece(start: startOffset, end: n, tokenId: nil)) }
        return out
    }

    // MARK: UTF-8 helpers (input is valid UTF-8)

    static func scalarAndLength(at i: Int, in t: UnsafeBufferPointer<UInt8>) -> (UInt32, Int) {
        let b0 = UInt32(t[i])
        if b0 < 0x80 { return (b0, 1) }
        if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(t[i + 1] & 0x3F), 2) }
        if b0 < 0xF0 { return ((b0 & 0x0F) << 12 | UInt32(t[i + 1] & 0x3F) << 6 | UInt32(t[i + 2] & 0x3F), 3) }
        return ((b0 & 0x07) << 18 | UInt32(t[i + 1] & 0x3F) << 12 | UInt32(t[i + 2] & 0x3F) << 6
                | UInt32(t[i + 3] & 0x3F), 4)
    }

    static func scalarAndLength(before i: Int, in t: UnsafeBufferPointer<UInt8>) -> (UInt32, Int) {
        var s = i - 1
        while s > 0, t[s] & 0xC0 == 0x80 { s -= 1 }
        return (scalarAndLength(at: s, in: t).0, i - s)
    }

    static func scalar(at i: Int, in t: UnsafeBufferPointer<UInt8>) -> UInt32 { scalarAndLength(at: i, in: t).0 }
    static func scalar(before i: Int, in t: UnsafeBufferPointer<UInt8>) -> UInt32 { scalarAndLength(before: i, in: t).0 }

    /// Rust regex `\s` (Unicode White_Space).
    static func isSpace(_ v: UInt32) -> Bool {
        ScalarClass.of(v) & ScalarClass.whitespace != 0
    }

    /// Rust regex `\w`: Alphabetic, marks, decimal digits, connector punctuation, Join_Control.
    static func isWordScalar(_ v: UInt32) -> Bool {
        guard let u = Unicode.Scalar(v) else { return false }
        let p = u.properties
        if p.isAlphabetic || p.isJoinControl { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
