import IngotCore

/// Fixed-size parts of an `.ingot` file (formats/ingot.md §2, §5).
enum NativeLayout {
    static let headerSize = 64
    static let trailerSize = 64
    static let magic: [UInt8] = [0x89, 0x49, 0x4E, 0x47, 0x4F, 0x54, 0x0D, 0x0A]  // "\x89INGOT\r\n"
    static let trailerMagic: [UInt8] = Array("INGOTEND".utf8)
    static let major: UInt16 = 1
    static let minor: UInt16 = 0
    /// Largest decoded chunk a reader accepts (zstd-bomb guard).
    static let maxChunkSize = 1 << 30
    /// Alignment of compressed chunks and the index.
    static let smallAlignment = 8

    struct Header: Equatable {
        var alignment: UInt32
        var shardIndex: UInt32
        var shardCount: UInt32

        func encode() -> [UInt8] {
            var b = magic
            b += le(major) + le(minor) + le(UInt32(0)) + le(alignment) + le(shardIndex) + le(shardCount)
            b += [UInt8](repeating: 0, count: 56 - b.count)
            return b + le(XXH64.hash(b))
        }

        static func decode(_ b: UnsafeRawBufferPointer, file: String) throws -> Header {
            guard b.count >= headerSize else { throw NativeError.truncated(file: file, size: b.count) }
            guard b[0..<8].elementsEqual(magic) else { throw NativeError.badMagic(file: file, at: "header") }
            let maj = Int(read(b, 8, UInt16.self)), min = Int(read(b, 10, UInt16.self))
            guard XXH64.hash(UnsafeRawBufferPointer(rebasing: b[0..<56])) == read(b, 56, UInt64.self) else {
                throw NativeError.headerChecksum(file: file)
            }
            guard maj == Int(major) else { throw NativeError.unsupportedVersion(file: file, major: maj, minor: min) }
            guard read(b, 12, UInt32.self) == 0 else {
                throw NativeError.badHeaderField(file: file, field: "flags", reason: "has unknown bits set")
            }
            let a = read(b, 16, UInt32.self)
            guard a >= 64, a <= 1 << 20, a & (a - 1) == 0 else {
                throw NativeError.badHeaderField(file: file, field: "alignment", reason: "must be a power of two in [64, 1 MiB], got \(a)")
            }
            let si = read(b, 20, UInt32.self), sc = read(b, 24, UInt32.self)
            guard sc >= 1, si >= 1, si <= sc else {
                throw NativeError.badHeaderField(file: file, field: "shard", reason: "\(si) of \(sc) is not valid")
            }
            guard b[28..<56].allSatisfy({ $0 == 0 }) else {
                throw NativeError.badHeaderField(file: file, field: "reserved", reason: "is not zero")
            }
            return Header(alignment: a, shardIndex: si, shardCount: sc)
        }
    }

    struct Trailer: Equatable {
        var indexOffset: UInt64
        var indexLength: UInt64
        var indexHash: UInt64
        var fileLength: UInt64

        func encode() -> [UInt8] {
            var b = trailerMagic + le(indexOffset) + le(indexLength) + le(indexHash) + le(fileLength)
            b += [UInt8](repeating: 0, count: 56 - b.count)
            return b + le(XXH64.hash(b))
        }

        static func decode(_ all: UnsafeRawBufferPointer, file: String) throws -> Trailer {
            let b = UnsafeRawBufferPointer(rebasing: all[(all.count - trailerSize)...])
            guard b[0..<8].elementsEqual(trailerMagic) else { throw NativeError.badMagic(file: file, at: "trailer") }
            guard XXH64.hash(UnsafeRawBufferPointer(rebasing: b[0..<56])) == read(b, 56, UInt64.self) else {
                throw NativeError.trailerChecksum(file: file)
            }
            guard b[40..<56].allSatisfy({ $0 == 0 }) else {
                throw NativeError.badHeaderField(file: file, field: "trailer reserved", reason: "is not zero")
            }
            return Trailer(indexOffset: read(b, 8, UInt64.self), indexLength: read(b, 16, UInt64.self),
                           indexHash: read(b, 24, UInt64.self), fileLength: read(b, 32, UInt64.self))
        }
    }

    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func read<T: FixedWidthInteger>(_ b: UnsafeRawBufferPointer, _ o: Int, _: T.Type) -> T {
        T(littleEndian: b.loadUnaligned(fromByteOffset: o, as: T.self))
    }
    static func alignUp(_ v: Int, _ a: Int) -> Int { (v + a - 1) / a * a }
}
