/// Pre-tokenization of HF byte-level BPE tokenizers, as hand-written scanners over Unicode scalars (no regex
/// engine): the GPT-2 split pattern
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` and the `Digits` pre-tokenizer.
enum PreTokenizer {
    enum Kind: UInt8 { case letter, number, space, other }

    @inline(__always)
    static func kind(_ u: Unicode.Scalar) -> Kind {
        if u.value < 0x80 {
            switch u.value {
            case 0x41...0x5A, 0x61...0x7A: return .letter
            case 0x30...0x39: return .number
            case 0x09...0x0D, 0x20: return .space
            default: return .other
            }
        }
        if u.properties.isWhitespace { return .space }
        switch u.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }

    /// Splits `s` (scalars) into pieces per the GPT-2 pattern; returns scalar index ranges.
    static func gpt2(_ s: [Unicode.Scalar], _ kinds: [Kind], in range: Range<Int>, into out: inout [Range<Int>]) {
        var i = range.lowerBound
        let end = range.upperBound
        while i < end {
            let c = s[i]
            // contractions: 's 't 're 've 'm 'll 'd (case-sensitive, as in GPT-2)
            if c == "'" && i + 1 < end {
                let a = s[i + 1]
                if a == "s" || a == "t" || a == "m" || a == "d" { out.append(i..<(i + 2)); i += 2; continue }
                if i + 2 < end {
                    let b = s[i + 2]
                    if (a == "r" && b == "e") || (a == "v" && b == "e") || (a == "l" && b == "l") { out.append(i..<(i + 3)); i += 3; continue }
                }
            }
            // optional single space then a class run
            var j = i
            if c == " " && i + 1 < end && kinds[i + 1] != .space { j = i + 1 }
            let k = kinds[j]
            if k == .letter || k == .number || k == .other {
                var e = j + 1
                while e < end && kinds[e] == k { e += 1 }
                out.append(i..<e)
                i = e
                continue
            }
            // whitespace: \s+(?!\S) then \s+
            var e = i + 1
            while e < end && kinds[e] == .space { e += 1 }
            if e < end && e - i > 1 { e -= 1 }  // leave the last space to prefix the next token
            out.append(i..<e)
            i = e
        }
    }

    /// `Digits(individual_digits: true)`: every numeric scalar becomes its own piece.
    static func splitDigits(_ kinds: [Kind], in range: Range<Int>, into out: inout [Range<Int>]) {
        var start = range.lowerBound
        for i in range where kinds[i] == .number {
            if start < i { out.append(start..<i) }
            out.append(i..<(i + 1))
            start = i + 1
        }
        if start < range.upperBound { out.append(start..<range.upperBound) }
    }
}
