/// The regular expressions byte-level tokenizers split with, implemented as hand-written scanners.
enum SplitPattern: Sendable, Equatable {
    /// GPT-2 (`ByteLevel` with `use_regex`):
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// Llama-3 / tiktoken cl100k style:
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    /// Qwen2: the Llama-3 pattern with single digits (`\p{N}` instead of `\p{N}{1,3}`).
    case qwen2
    /// A literal string (`{"String": ...}`), matched left to right without overlap.
    case literal([UInt32])

    var isLiteral: Bool { if case .literal = self { true } else { false } }

    static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Source =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Source =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
}

/// What `Split` does with the matched delimiters (HF `SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

/// One splitting pre-tokenizer that runs before the final `ByteLevel` step.
enum PreTokenizerStep: Sendable, Equatable {
    case split(SplitPattern, SplitBehavior, invert: Bool)
    /// `Digits`: every N* scalar its own piece (`individual`) or runs of them (Contiguous).
    case digits(individual: Bool)
}

/// The pre-tokenizer of a byte-level BPE file: optional splitting steps, then `ByteLevel`.
///
/// Mirrors HF `tokenizers`: each step splits every current piece independently; `ByteLevel` then prepends a
/// space to pieces that do not start with one (`add_prefix_space`) and splits them with the GPT-2 pattern
/// (`use_regex`). The byte mapping itself is implicit: the BPE model works on raw UTF-8 bytes.
struct PreTokenizerPipeline: Sendable, Equatable {
    var steps: [PreTokenizerStep]
    var addPrefixSpace: Bool
    var useRegex: Bool

    /// Calls `body(scalars, start, end)` for every pre-token of `scalars[0..<count]`, in order.
    ///
    /// `scalars`/`classes` are scratch buffers owned by the caller; they may grow (prefix spaces are written
    /// after `count`). `pieces` is scratch too.
    func forEachPreToken(scalars: inout [UInt32], classes: inout [UInt8], count: Int, pieces: inout [Int],
                         _ body: (UnsafeBufferPointer<UInt32>, Int, Int) -> Void) {
        guard count > 0 else { return }
        // Pieces as flat (start, end) pairs.
        pieces.removeAll(keepingCapacity: true)
        pieces.append(0)
        pieces.append(count)
        var next = [Int]()
        for step in steps {
            next.removeAll(keepingCapacity: true)
            scalars.withUnsafeBufferPointer { s in
                classes.withUnsafeBufferPointer { c in
                    var k = 0
                    while k < pieces.count {
                        Self.apply(step, s, c, pieces[k], pieces[k + 1], into: &next)
                        k += 2
                    }
                }
            }
            swap(&pieces, &next)
        }
        if addPrefixSpace {
            var k = 0
            while k < pieces.count {
                let (a, b) = (pieces[k], pieces[k + 1])
                if scalars[a] != 0x20 {
                    let start = scalars.count
                    scalars.append(0x20)
                    classes.append(ScalarClass.whitespace)
                    scalars.append(contentsOf: scalars[a..<b])
                    classes.append(contentsOf: classes[a..<b])
                    pieces[k] = start
                    pieces[k + 1] = scalars.count
                }
                k += 2
            }
        }
        scalars.withUnsafeBufferPointer { s in
            classes.withUnsafeBufferPointer { c in
                var k = 0
                while k < pieces.count {
                    let (a, b) = (pieces[k], pieces[k + 1])
                    if useRegex {
                        var i = a
                        while i < b {
                            let e = Self.gpt2MatchEnd(s, c, i, b)
                            body(s, i, e)
                            i = e
                        }
                    } else {
                        body(s, a, b)
                    }
                    k += 2
                }
            }
        }
    }

    /// Splits `[a, b)` with `step`, appending the resulting non-empty pieces to `out` as (start, end) pairs.
    static func apply(_ step: PreTokenizerStep, _ s: UnsafeBufferPointer<UInt32>, _ c: UnsafeBufferPointer<UInt8>,
                      _ a: Int, _ b: Int, into out: inout [Int]) {
        // Fast path for the common case (Llama-3 / Qwen2 files): an isolating split with a tiling regex yields
        // exactly its matches.
        if case let .split(pattern, .isolated, false) = step, !pattern.isLiteral {
            var i = a
            while i < b {
                let e = switch pattern {
                case .gpt2: gpt2MatchEnd(s, c, i, b)
                case .llama3: llama3MatchEnd(s, c, i, b, maxDigits: 3)
                default: llama3MatchEnd(s, c, i, b, maxDigits: 1)
                }
                out.append(i)
                out.append(e)
                i = e
            }
            return
        }
        // (start, end, isMatch) triples covering [a, b), as HF's Pattern::find_matches produces them.
        var m = [(Int, Int, Bool)]()
        let behavior: SplitBehavior
        var invert = false
        switch step {
        case .digits(let individual):
            behavior = individual ? .isolated : .contiguous
            var last = a
            for i in a..<b where c[i] & ScalarClass.number != 0 {
                if last < i { m.append((last, i, false)) }
                m.append((i, i + 1, true))
                last = i + 1
            }
            if last < b { m.append((last, b, false)) }
        case let .split(pattern, bh, inv):
            behavior = bh
            invert = inv
            switch pattern {
            case .gpt2, .llama3, .qwen2:
                // These patterns match every scalar, so matches tile the piece.
                var i = a
                while i < b {
                    let e = switch pattern {
                    case .gpt2: gpt2MatchEnd(s, c, i, b)
                    case .llama3: llama3MatchEnd(s, c, i, b, maxDigits: 3)
                    default: llama3MatchEnd(s, c, i, b, maxDigits: 1)
                    }
                    m.append((i, e, true))
                    i = e
                }
            case .literal(let lit):
                var last = a
                var i = a
                while i + lit.count <= b {
                    var hit = true
                    for j in 0..<lit.count where s[i + j] != lit[j] { hit = false; break }
                    if hit {
                        if last < i { m.append((last, i, false)) }
                        m.append((i, i + lit.count, true))
                        i += lit.count
                        last = i
                    } else {
                        i += 1
                    }
                }
                if last < b { m.append((last, b, false)) }
            }
        }
        if invert { m = m.map { ($0.0, $0.1, !$0.2) } }
        // HF NormalizedString::split: fold the matches per behavior into (start, end, remove) pieces.
        var pieces = [(Int, Int, Bool)]()
        switch behavior {
        case .isolated: pieces = m.map { ($0.0, $0.1, false) }
        case .removed: pieces = m
        case .contiguous:
            var previous = false
            for (x, y, isMatch) in m {
                if isMatch == previous, !pieces.isEmpty { pieces[pieces.count - 1].1 = y } else { pieces.append((x, y, false)) }
                previous = isMatch
            }
        case .mergedWithPrevious:
            var previous = false
            for (x, y, isMatch) in m {
                if isMatch && !previous, !pieces.isEmpty { pieces[pieces.count - 1].1 = y } else { pieces.append((x, y, false)) }
                previous = isMatch
            }
        case .mergedWithNext:
            var previous = false
            for (x, y, isMatch) in m.reversed() {
                if isMatch && !previous, !pieces.isEmpty { pieces[pieces.count - 1].0 = x } else { pieces.append((x, y, false)) }
                previous = isMatch
            }
            pieces.reverse()
        }
        for (x, y, remove) in pieces where !remove && x < y {
            out.append(x)
            out.append(y)
        }
    }

    // MARK: scanners

    private static let apostrophe: UInt32 = 0x27
    private static let space: UInt32 = 0x20

    @inline(__always)
    private static func isOther(_ cls: UInt8) -> Bool {
        cls & (ScalarClass.letter | ScalarClass.number | ScalarClass.whitespace) == 0
    }

    /// End of the whitespace alternatives `\s+(?!\S)|\s+` starting at whitespace scalar `i`.
    @inline(__always)
    private static func whitespaceEnd(_ c: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        var j = i + 1
        while j < end, c[j] & ScalarClass.whitespace != 0 { j += 1 }
        // \s+(?!\S): the whole run at the end of the piece, else the run minus its last scalar (if that leaves
        // one); otherwise \s+ takes the single scalar.
        if j == end || j - i == 1 { return j }
        return j - 1
    }

    @inline(__always)
    private static func run(_ c: UnsafeBufferPointer<UInt8>, from i: Int, _ end: Int, _ flag: UInt8) -> Int {
        var j = i
        while j < end, c[j] & flag != 0 { j += 1 }
        return j
    }

    @inline(__always)
    private static func runOther(_ c: UnsafeBufferPointer<UInt8>, from i: Int, _ end: Int) -> Int {
        var j = i
        while j < end, isOther(c[j]) { j += 1 }
        return j
    }

    /// End of the GPT-2 pattern's match at `i` (every scalar starts a match, so matches tile the input).
    static func gpt2MatchEnd(_ s: UnsafeBufferPointer<UInt32>, _ c: UnsafeBufferPointer<UInt8>,
                             _ i: Int, _ end: Int) -> Int {
        let ch = s[i]
        if ch == apostrophe, i + 1 < end {
            switch s[i + 1] {
            case 0x73, 0x74, 0x6D, 0x64: return i + 2  // s t m d
            case 0x72 where i + 2 < end && s[i + 2] == 0x65: return i + 3  // re
            case 0x76 where i + 2 < end && s[i + 2] == 0x65: return i + 3  // ve
            case 0x6C where i + 2 < end && s[i + 2] == 0x6C: return i + 3  // ll
            default: break
            }
        }
        let k = (ch == space && i + 1 < end) ? i + 1 : i
        let ck = c[k]
        if ck & ScalarClass.letter != 0 { return run(c, from: k + 1, end, ScalarClass.letter) }
        if ck & ScalarClass.number != 0 { return run(c, from: k + 1, end, ScalarClass.number) }
        if isOther(ck) { return runOther(c, from: k + 1, end) }
        // k is whitespace; if k == i + 1 then s[i] is a space, also whitespace.
        return whitespaceEnd(c, i, end)
    }

    /// ASCII lower case, plus U+017F LATIN SMALL LETTER LONG S which Oniguruma's `(?i)` folds to `s`.
    @inline(__always)
    private static func fold(_ v: UInt32) -> UInt32 {
        if v >= 0x41 && v <= 0x5A { return v + 0x20 }
        if v == 0x17F { return 0x73 }
        return v
    }

    /// End of the Llama-3 pattern's match at `i` (every scalar starts a match, so matches tile the input);
    /// `maxDigits` is 3 for Llama-3 (`\p{N}{1,3}`) and 1 for Qwen2 (`\p{N}`).
    static func llama3MatchEnd(_ s: UnsafeBufferPointer<UInt32>, _ c: UnsafeBufferPointer<UInt8>,
                               _ i: Int, _ end: Int, maxDigits: Int) -> Int {
        let ch = s[i]
        let ci = c[i]
        if ch == apostrophe, i + 1 < end {
            let d = fold(s[i + 1])
            switch d {
            case 0x73, 0x74, 0x6D, 0x64: return i + 2
            case 0x72 where i + 2 < end && fold(s[i + 2]) == 0x65: return i + 3
            case 0x76 where i + 2 < end && fold(s[i + 2]) == 0x65: return i + 3
            case 0x6C where i + 2 < end && fold(s[i + 2]) == 0x6C: return i + 3
            default: break
            }
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if ci & ScalarClass.letter != 0 { return run(c, from: i + 1, end, ScalarClass.letter) }
        if ci & (ScalarClass.number | ScalarClass.lineBreak) == 0, i + 1 < end, c[i + 1] & ScalarClass.letter != 0 {
            return run(c, from: i + 2, end, ScalarClass.letter)
        }
        // \p{N}{1,3} (Llama-3) or \p{N} (Qwen2)
        if ci & ScalarClass.number != 0 {
            var j = i + 1
            while j < end, j < i + maxDigits, c[j] & ScalarClass.number != 0 { j += 1 }
            return j
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        let k = (ch == space && i + 1 < end) ? i + 1 : i
        if isOther(c[k]) {
            let j = runOther(c, from: k + 1, end)
            return run(c, from: j, end, ScalarClass.lineBreak)
        }
        // Here s[i] is whitespace. \s*[\r\n]+ : up to and including the last line break of the whitespace run.
        let wsEnd = run(c, from: i, end, ScalarClass.whitespace)
        var p = wsEnd - 1
        while p >= i {
            if c[p] & ScalarClass.lineBreak != 0 { return p + 1 }
            p -= 1
        }
        return whitespaceEnd(c, i, end)
    }
}
