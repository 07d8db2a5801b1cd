/// Per-scalar character classes the pre-tokenizer scanners need, as bit flags.
///
/// The classes follow the regex engine HF `tokenizers` uses (Oniguruma, Unicode mode):
/// `\p{L}` = general category L*, `\p{N}` = N*, `\s` = U+0009...U+000D, U+0085 and Z[slp], which is exactly the
/// Unicode `White_Space` property. Rust's `char::is_numeric` (the `Digits` pre-tokenizer) is also N*.
enum ScalarClass {
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let whitespace: UInt8 = 4
    /// `\r` or `\n` (also whitespace).
    static let lineBreak: UInt8 = 8

    private static let ascii: [UInt8] = (0..<128).map { classify(slow: UInt32($0)) }

    @inline(__always)
    static func of(_ v: UInt32) -> UInt8 {
        v < 128 ? ascii[Int(v)] : classify(slow: v)
    }

    static func classify(slow v: UInt32) -> UInt8 {
        guard let u = Unicode.Scalar(v) else { return 0 }
        let p = u.properties
        var c: UInt8 = 0
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: c |= letter
        case .decimalNumber, .letterNumber, .otherNumber: c |= number
        default: break
        }
        if p.isWhitespace { c |= whitespace }
        if v == 0x0A || v == 0x0D { c |= lineBreak }
        return c
    }
}
