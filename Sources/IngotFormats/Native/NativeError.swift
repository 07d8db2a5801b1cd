/// Everything a reader of `.ingot` files rejects, one case per failure, naming the file and, where there is
/// one, the tensor and chunk.
public enum NativeError: Error, CustomStringConvertible, Equatable {
    case truncated(file: String, size: Int)
    case badMagic(file: String, at: String)
    /// A valid header but no trailer at the end: the file was cut short (an interrupted copy) or its end damaged.
    case truncatedEnd(file: String, size: Int)
    case unsupportedVersion(file: String, major: Int, minor: Int)
    case headerChecksum(file: String)
    case trailerChecksum(file: String)
    case badHeaderField(file: String, field: String, reason: String)
    case fileLengthMismatch(file: String, recorded: UInt64, actual: Int)
    case indexOutOfFile(file: String, offset: UInt64, length: UInt64)
    case indexChecksum(file: String)
    case indexInvalid(file: String, reason: String)
    case duplicateName(file: String, name: String)
    case chunkOutOfRange(file: String, tensor: String, chunk: Int, reason: String)
    case chunkOverlap(file: String, tensor: String, chunk: Int)
    case chunkChecksum(file: String, tensor: String, chunk: Int)
    case chunkDecodedChecksum(file: String, tensor: String, chunk: Int)
    case chunkDecode(file: String, tensor: String, chunk: Int, reason: String)
    case chunkTooLarge(file: String, tensor: String, chunk: Int, declared: Int, limit: Int)
    case sizeMismatch(file: String, tensor: String, expected: Int, actual: Int)
    case nonZeroPadding(file: String, offset: Int)
    case missingShard(file: String, shard: String)
    case shardMismatch(file: String, reason: String)

    public var description: String {
        switch self {
        case let .truncated(f, s): "\(f): truncated: \(s) bytes is shorter than an .ingot header and trailer (128 bytes)"
        case let .badMagic(f, w): "\(f): not an .ingot file (wrong magic in the \(w))"
        case let .truncatedEnd(f, s):
            "\(f): truncated (or its end damaged): the header is valid but the file's last 64 bytes are not an .ingot trailer (\(s) bytes; an interrupted copy?)"
        case let .unsupportedVersion(f, a, b): "\(f): format version \(a).\(b) is not supported (this reader reads 1.x)"
        case let .headerChecksum(f): "\(f): header checksum mismatch (header corrupted)"
        case let .trailerChecksum(f): "\(f): trailer checksum mismatch (trailer corrupted)"
        case let .badHeaderField(f, k, r): "\(f): header field \(k) \(r)"
        case let .fileLengthMismatch(f, r, a): "\(f): file is \(a) bytes but its trailer records \(r) (truncated or appended to)"
        case let .indexOutOfFile(f, o, l): "\(f): index [\(o), +\(l)) lies outside the file's data region"
        case let .indexChecksum(f): "\(f): index checksum mismatch (index corrupted)"
        case let .indexInvalid(f, r): "\(f): invalid index: \(r)"
        case let .duplicateName(f, n): "\(f): '\(n)' appears twice in the index"
        case let .chunkOutOfRange(f, t, c, r): "\(f): tensor '\(t)' chunk \(c): \(r)"
        case let .chunkOverlap(f, t, c): "\(f): tensor '\(t)' chunk \(c) overlaps another chunk"
        case let .chunkChecksum(f, t, c): "\(f): tensor '\(t)' chunk \(c): stored bytes fail their checksum (corrupted)"
        case let .chunkDecodedChecksum(f, t, c): "\(f): tensor '\(t)' chunk \(c): decoded bytes fail their checksum (corrupted)"
        case let .chunkDecode(f, t, c, r): "\(f): tensor '\(t)' chunk \(c): cannot decode (\(r))"
        case let .chunkTooLarge(f, t, c, d, l): "\(f): tensor '\(t)' chunk \(c): declares \(d) decoded bytes, above the \(l)-byte limit"
        case let .sizeMismatch(f, t, e, a): "\(f): tensor '\(t)': chunks hold \(a) bytes, shape × dtype size is \(e)"
        case let .nonZeroPadding(f, o): "\(f): padding byte at offset \(o) is not zero (corrupted)"
        case let .missingShard(f, s): "\(f): shard '\(s)' is missing"
        case let .shardMismatch(f, r): "\(f): \(r)"
        }
    }
}
