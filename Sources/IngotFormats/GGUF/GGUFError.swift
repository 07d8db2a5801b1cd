/// Everything that can be wrong with a GGUF file, one case per failure, each naming the file and (where there is
/// one) the key or tensor.
public enum GGUFError: Error, CustomStringConvertible, Equatable {
    case notGGUF(file: String)
    case bigEndian(file: String)
    case unsupportedVersion(file: String, version: UInt32)
    case truncated(file: String, what: String, offset: Int)
    case countTooLarge(file: String, what: String, count: UInt64, limit: Int)
    case invalidString(file: String, what: String)
    case unknownValueType(file: String, key: String, type: UInt32)
    case nestingTooDeep(file: String, key: String)
    case duplicateKey(file: String, key: String)
    case invalidMetadata(file: String, key: String, reason: String)
    case invalidTensor(file: String, tensor: String, reason: String)
    case unknownType(file: String, tensor: String, type: UInt32)
    case unsupportedType(file: String, tensor: String, type: String)
    case duplicateTensor(file: String, tensor: String)
    case tensorPastEnd(file: String, tensor: String, end: Int, fileSize: Int)

    public var description: String {
        switch self {
        case let .notGGUF(f): "\(f): not a GGUF file (no 'GGUF' magic)"
        case let .bigEndian(f): "\(f): big-endian GGUF is not supported"
        case let .unsupportedVersion(f, v): "\(f): GGUF version \(v) is not supported (versions 2 and 3 are)"
        case let .truncated(f, w, o): "\(f): truncated: \(w) runs past the end of the file (at byte \(o))"
        case let .countTooLarge(f, w, c, l): "\(f): \(w) count \(c) cannot fit in the file (at most \(l))"
        case let .invalidString(f, w): "\(f): \(w) is not valid UTF-8"
        case let .unknownValueType(f, k, t): "\(f): metadata key '\(k)' has unknown value type \(t)"
        case let .nestingTooDeep(f, k): "\(f): metadata key '\(k)' nests arrays too deeply"
        case let .duplicateKey(f, k): "\(f): duplicate metadata key '\(k)'"
        case let .invalidMetadata(f, k, r): "\(f): metadata '\(k)' \(r)"
        case let .invalidTensor(f, t, r): "\(f): tensor '\(t)': \(r)"
        case let .unknownType(f, t, ty): "\(f): tensor '\(t)' has unknown ggml type \(ty)"
        case let .unsupportedType(f, t, ty): "\(f): tensor '\(t)' has type \(ty), which Ingot does not decode (it reads \(GGMLType.supported.map(\.name).joined(separator: ", ")))"
        case let .duplicateTensor(f, t): "\(f): duplicate tensor '\(t)'"
        case let .tensorPastEnd(f, t, e, s): "\(f): tensor '\(t)' data ends at byte \(e), past the end of the \(s)-byte file (truncated?)"
        }
    }
}
