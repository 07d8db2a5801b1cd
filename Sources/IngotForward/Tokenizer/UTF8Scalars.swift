/// UTF-8 <-> scalar conversion for the encoder's scratch buffers (input comes from Swift strings, so it is valid).
enum UTF8Scalars {
    /// Decodes `bytes` into `scalars[0..<n]` and their `ScalarClass` flags into `classes`; returns n.
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, into scalars: inout [UInt32], classes: inout [UInt8]) -> Int {
        scalars.removeAll(keepingCapacity: true)
        classes.removeAll(keepingCapacity: true)
        scalars.reserveCapacity(bytes.count)
        classes.reserveCapacity(bytes.count)
        var i = 0
        let n = bytes.count
        while i < n {
            let b0 = UInt32(bytes[i])
            var v: UInt32
            if b0 < 0x80 {
                v = b0
                i += 1
            } else if b0 < 0xE0 {
                v = (b0 & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F)
                i += 2
            } else if b0 < 0xF0 {
                v = (b0 & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F)
                i += 3
            } else {
                v = (b0 & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12 | UInt32(bytes[i + 2] & 0x3F) << 6
                    | UInt32(bytes[i + 3] & 0x3F)
                i += 4
            }
            scalars.append(v)
            classes.append(ScalarClass.of(v))
        }
        return scalars.count
    }

    /// Appends the UTF-8 encoding of `s[a..<b]` to `out`.
    @inline(__always)
    static func encode(_ s: UnsafeBufferPointer<UInt32>, _ a: Int, _ b: Int, into out: inout [UInt8]) {
        for i in a..<b {
            let v = s[i]
            if v < 0x80 {
                out.append(UInt8(v))
            } else if v < 0x800 {
                out.append(UInt8(0xC0 | v >> 6))
                out.append(UInt8(0x80 | v & 0x3F))
            } else if v < 0x10000 {
                out.append(UInt8(0xE0 | v >> 12))
                out.append(UInt8(0x80 | v >> 6 & 0x3F))
                out.append(UInt8(0x80 | v & 0x3F))
            } else {
                out.append(UInt8(0xF0 | v >> 18))
                out.append(UInt8(0x80 | v >> 12 & 0x3F))
                out.append(UInt8(0x80 | v >> 6 & 0x3F))
                out.append(UInt8(0x80 | v & 0x3F))
            }
        }
    }
}
