/// GPT-2's reversible mapping between the 256 byte values and printable Unicode scalars (`bytes_to_unicode`).
///
/// Printable Latin-1 bytes (`!`..`~`, `¡`..`¬`, `®`..`ÿ`) map to themselves; the other 68 bytes map, in
/// increasing byte order, to U+0100, U+0101, ... Vocabulary entries of byte-level BPE files are written in this
/// alphabet; Ingot converts them back to raw bytes once at load time and works on bytes afterwards.
enum ByteLevelAlphabet {
    /// `scalarOfByte[b]` = the scalar value byte `b` is written as.
    static let scalarOfByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    /// The byte written as scalar `v`, nil for scalars outside the alphabet.
    @inline(__always)
    static func byte(ofScalar v: UInt32) -> UInt8? {
        if v < 256 {
            let b = Int(v)
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) { return UInt8(b) }
            return nil
        }
        return v < 256 + 68 ? byteOfExtra[Int(v - 256)] : nil
    }

    private static let byteOfExtra: [UInt8] = {
        var out = [UInt8](repeating: 0, count: 68)
        for b in 0..<256 where scalarOfByte[b] >= 256 { out[Int(scalarOfByte[b] - 256)] = UInt8(b) }
        return out
    }()

    /// Raw bytes of a token written in the byte-level alphabet; nil if any scalar is outside it.
    static func bytes(ofToken token: String) -> [UInt8]? {
        var out = [UInt8]()
        out.reserveCapacity(token.unicodeScalars.count)
        for u in token.unicodeScalars {
            guard let b = byte(ofScalar: u.value) else { return nil }
            out.append(b)
        }
        return out
    }

    /// HF's ByteLevel decoder rule for one token: its alphabet bytes, or its own UTF-8 if it is not in the alphabet.
    static func decodedBytes(ofToken token: String) -> [UInt8] {
        bytes(ofToken: token) ?? Array(token.utf8)
    }
}
