/// Everything that can be wrong with a safetensors file or a sharded index, one case per failure, each naming
/// the file and (where there is one) the tensor.
public enum SafetensorsError: Error, CustomStringConvertible, Equatable {
    case truncated(file: String, size: Int)
    case headerTooLarge(file: String, length: UInt64, limit: Int)
    case headerPastEnd(file: String, length: UInt64, fileSize: Int)
    case headerNotUTF8(file: String)
    case headerNotJSON(file: String, reason: String)
    case headerNotObject(file: String)
    case invalidEntry(file: String, tensor: String, reason: String)
    case unknownDType(file: String, tensor: String, dtype: String)
    case shapeOverflow(file: String, tensor: String)
    case sizeMismatch(file: String, tensor: String, expected: Int, actual: Int)
    case offsetsNotContiguous(file: String, tensor: String, expectedStart: Int, actualStart: Int)
    case offsetsPastEnd(file: String, tensor: String, end: Int, dataSize: Int)
    case trailingBytes(file: String, covered: Int, dataSize: Int)
    case duplicateTensor(file: String, tensor: String)
    case invalidMetadata(file: String, reason: String)
    case invalidIndex(file: String, reason: String)
    case missingShard(index: String, shard: String)
    case shardPathEscapes(index: String, shard: String)
    case tensorNotInShard(index: String, tensor: String, shard: String)
    case tensorNotInIndex(index: String, tensor: String, shard: String)
    case duplicateAcrossShards(index: String, tensor: String)

    public var description: String {
        switch self {
        case let .truncated(f, s): "\(f): truncated: \(s) bytes, a safetensors file needs at least 8"
        case let .headerTooLarge(f, l, lim): "\(f): header length \(l) exceeds the \(lim)-byte limit"
        case let .headerPastEnd(f, l, s): "\(f): header length \(l) runs past the end of the \(s)-byte file"
        case let .headerNotUTF8(f): "\(f): header is not valid UTF-8"
        case let .headerNotJSON(f, r): "\(f): header is not valid JSON (\(r))"
        case let .headerNotObject(f): "\(f): header is not a JSON object"
        case let .invalidEntry(f, t, r): "\(f): tensor '\(t)': \(r)"
        case let .unknownDType(f, t, d): "\(f): tensor '\(t)': unknown dtype '\(d)'"
        case let .shapeOverflow(f, t): "\(f): tensor '\(t)': shape × dtype size overflows"
        case let .sizeMismatch(f, t, e, a):
            "\(f): tensor '\(t)': byte range holds \(a) bytes but shape × dtype size is \(e)"
        case let .offsetsNotContiguous(f, t, e, a):
            a < e ? "\(f): tensor '\(t)': data overlaps the previous tensor (starts at \(a), previous ends at \(e))"
                : "\(f): tensor '\(t)': gap before data (starts at \(a), previous ends at \(e))"
        case let .offsetsPastEnd(f, t, e, s): "\(f): tensor '\(t)': data ends at \(e), past the \(s)-byte data section"
        case let .trailingBytes(f, c, s): "\(f): tensors cover \(c) of \(s) data bytes; the rest is unaccounted for"
        case let .duplicateTensor(f, t): "\(f): tensor '\(t)' appears twice in the header"
        case let .invalidMetadata(f, r): "\(f): __metadata__ \(r)"
        case let .invalidIndex(f, r): "\(f): \(r)"
        case let .missingShard(i, s): "\(i): shard '\(s)' does not exist"
        case let .shardPathEscapes(i, s): "\(i): shard path '\(s)' leaves the model directory"
        case let .tensorNotInShard(i, t, s): "\(i): tensor '\(t)' is mapped to '\(s)' but that shard does not hold it"
        case let .tensorNotInIndex(i, t, s): "\(i): shard '\(s)' holds tensor '\(t)' which the index does not list"
        case let .duplicateAcrossShards(i, t): "\(i): tensor '\(t)' is held by more than one shard"
        }
    }
}
