import IngotCore

/// How a chunk's bytes are stored. See formats/ingot.md §4.
public enum ChunkCodec: String, Sendable, CaseIterable {
    /// Stored as is (may be memory-mapped in place).
    case raw
    /// One zstd frame.
    case zstd
    /// Floats: each element rotated left one bit (sign to the bottom, exponent to the top byte), split into byte
    /// planes (plane k = byte k of every element), each plane stored raw, Huffman-coded or as one zstd frame.
    case byteplane
}

/// One plane of a byte-plane chunk.
public struct PlaneEntry: Sendable, Equatable {
    public enum Codec: String, Sendable { case raw, zstd, huffman }
    public var codec: Codec
    public var storedSize: Int
}

/// The transform behind `byteplane`, and its inverse; pure functions on buffers.
enum BytePlanes {
    /// Element width in bytes for dtypes the writer codes as byte planes (16/32-bit floats), nil otherwise.
    /// (Readers also accept one-plane chunks; for FP8 codes zstd matches Huffman's size and decodes faster.)
    static func width(_ d: DType) -> Int? {
        switch d {
        case .bf16, .f16: 2
        case .f32: 4
        default: nil
        }
    }

    /// Splits `n` elements of width `w` from `src` into planes in `dst` (plane k at dst[k*n ..< (k+1)*n]),
    /// rotating each element left by one bit first.
    static func split(_ src: UnsafeRawBufferPointer, width w: Int, into dst: UnsafeMutableRawBufferPointer) {
        let n = src.count / w
        let d = dst.baseAddress!.assumingMemoryBound(to: UInt8.self)
        if w == 1 {
            if n > 0 { dst.baseAddress!.copyMemory(from: src.baseAddress!, byteCount: n) }
        } else if w == 2 {
            // Sixteen elements at a time as vectors (rotate each lane, then narrow to its low and high bytes).
            let s = src.baseAddress!.assumingMemoryBound(to: UInt16.self)
            var i = 0
            while i + 16 <= n {
                let v = UnsafeRawPointer(s + i).loadUnaligned(as: SIMD16<UInt16>.self)
                let r = (v &<< 1) | (v &>> 15)
                UnsafeMutableRawPointer(d + i).storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: r), as: SIMD16<UInt8>.self)
                UnsafeMutableRawPointer(d + n + i).storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: r &>> 8), as: SIMD16<UInt8>.self)
                i += 16
            }
            while i < n {
                let v = UInt16(littleEndian: s[i])
                let r = (v << 1) | (v >> 15)
                d[i] = UInt8(truncatingIfNeeded: r)
                d[n + i] = UInt8(truncatingIfNeeded: r >> 8)
                i += 1
            }
        } else {
            let s = src.baseAddress!.assumingMemoryBound(to: UInt32.self)
            var i = 0
            while i + 16 <= n {
                let v = UnsafeRawPointer(s + i).loadUnaligned(as: SIMD16<UInt32>.self)
                let r = (v &<< 1) | (v &>> 31)
                for k in 0..<4 {
                    UnsafeMutableRawPointer(d + k * n + i).storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: r &>> UInt32(8 * k)),
                                                                      as: SIMD16<UInt8>.self)
                }
                i += 16
            }
            while i < n {
                let v = UInt32(littleEndian: s[i])
                let r = (v << 1) | (v >> 31)
                d[i] = UInt8(truncatingIfNeeded: r)
                d[n + i] = UInt8(truncatingIfNeeded: r >> 8)
                d[2 * n + i] = UInt8(truncatingIfNeeded: r >> 16)
                d[3 * n + i] = UInt8(truncatingIfNeeded: r >> 24)
                i += 1
            }
        }
    }

    /// Inverse of `split`.
    static func join(_ planes: UnsafeRawBufferPointer, width w: Int, into dst: UnsafeMutableRawBufferPointer) {
        let n = dst.count / w
        let p = planes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        if w == 1 {
            if n > 0 { dst.baseAddress!.copyMemory(from: planes.baseAddress!, byteCount: n) }
        } else if w == 2 {
            // Four elements per 64-bit word (SWAR): spread 4 low-plane and 4 high-plane bytes into 16-bit lanes,
            // then rotate every lane right by one bit.
            let o = dst.baseAddress!
            var i = 0
            @inline(__always) func spread(_ x: UInt64) -> UInt64 {
                var t = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF
                t = (t | (t << 8)) & 0x00FF_00FF_00FF_00FF
                return t
            }
            while i + 16 <= n {
                let lo = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<UInt8>.self)
                let hi = UnsafeRawPointer(p + n + i).loadUnaligned(as: SIMD16<UInt8>.self)
                let v = SIMD16<UInt16>(truncatingIfNeeded: lo) | (SIMD16<UInt16>(truncatingIfNeeded: hi) &<< 8)
                (o + 2 * i).storeBytes(of: (v &>> 1) | (v &<< 15), as: SIMD16<UInt16>.self)
                i += 16
            }
            while i + 4 <= n {
                let lo = UInt64(UInt32(littleEndian: UnsafeRawPointer(p + i).loadUnaligned(as: UInt32.self)))
                let hi = UInt64(UInt32(littleEndian: UnsafeRawPointer(p + n + i).loadUnaligned(as: UInt32.self)))
                let v = spread(lo) | (spread(hi) << 8)
                let r = ((v >> 1) & 0x7FFF_7FFF_7FFF_7FFF) | ((v << 15) & 0x8000_8000_8000_8000)
                (o + 2 * i).storeBytes(of: r.littleEndian, as: UInt64.self)
                i += 4
            }
            let t = o.assumingMemoryBound(to: UInt16.self)
            while i < n {
                let r = UInt16(p[i]) | UInt16(p[n + i]) << 8
                t[i] = ((r >> 1) | (r << 15)).littleEndian
                i += 1
            }
        } else {
            let o = dst.baseAddress!.assumingMemoryBound(to: UInt32.self)
            for i in 0..<n {
                let r = UInt32(p[i]) | UInt32(p[n + i]) << 8 | UInt32(p[2 * n + i]) << 16 | UInt32(p[3 * n + i]) << 24
                o[i] = ((r >> 1) | (r << 31)).littleEndian
            }
        }
    }
}
