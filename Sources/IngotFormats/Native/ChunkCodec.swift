import CCodec
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
    /// rotating each element left by one bit first (`ic_planes_split`).
    static func split(_ src: UnsafeRawBufferPointer, width w: Int, into dst: UnsafeMutableRawBufferPointer) {
        let n = src.count / w
        guard n > 0 else { return }
        if w == 1 {
            dst.baseAddress!.copyMemory(from: src.baseAddress!, byteCount: n)
        } else {
            ic_planes_split(src.baseAddress!.assumingMemoryBound(to: UInt8.self), n, w, dst.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// Inverse of `split`.
    static func join(_ planes: UnsafeRawBufferPointer, width w: Int, into dst: UnsafeMutableRawBufferPointer) {
        let n = dst.count / w
        guard n > 0 else { return }
        let p = planes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        join((0..<w).map { UnsafePointer(p + $0 * n) }, count: n, into: dst)
    }

    /// Joins `count` elements from planes held anywhere (`planes[k]`: `count` bytes of plane k), so a plane
    /// stored raw is read where it lies (`ic_planes_join`).
    static func join(_ planes: [UnsafePointer<UInt8>], count n: Int, into dst: UnsafeMutableRawBufferPointer) {
        guard n > 0 else { return }
        if planes.count == 1 {
            dst.baseAddress!.copyMemory(from: planes[0], byteCount: n)
        } else {
            planes.map { Optional($0) }.withUnsafeBufferPointer {
                ic_planes_join($0.baseAddress!, n, planes.count, dst.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
    }
}
