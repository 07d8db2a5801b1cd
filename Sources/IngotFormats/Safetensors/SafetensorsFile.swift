import IngotCore

/// One memory-mapped `.safetensors` file, validated as the reference crate validates.
///
/// Layout: u64 little-endian header length N, N bytes of UTF-8 JSON `{name: {dtype, shape, data_offsets}}` with
/// an optional `__metadata__` string map, then the data section. Offsets are relative to the data section and
/// must tile it exactly: contiguous, no gaps, no overlaps, nothing left over.
public final class SafetensorsFile: TensorSource, @unchecked Sendable {
    /// The reference implementation's cap on the header length.
    public static let maxHeaderLength = 100_000_000

    public let path: String
    public let file: MappedFile
    public let tensors: [TensorInfo]
    public let metadata: [(key: String, value: String)]
    /// Offset of the data section in the file.
    public let dataStart: Int
    private let byName: [String: Int]

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        let f = file.path
        self.path = f
        self.file = file
        let bytes = file.bytes
        guard bytes.count >= 8 else { throw SafetensorsError.truncated(file: f, size: bytes.count) }
        let n = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard n <= UInt64(Self.maxHeaderLength) else {
            throw SafetensorsError.headerTooLarge(file: f, length: n, limit: Self.maxHeaderLength)
        }
        guard n <= UInt64(bytes.count - 8) else {
            throw SafetensorsError.headerPastEnd(file: f, length: n, fileSize: bytes.count)
        }
        let headerLength = Int(n)
        let header = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + headerLength)])
        guard String(validating: header.bindMemory(to: UInt8.self), as: UTF8.self) != nil else {
            throw SafetensorsError.headerNotUTF8(file: f)
        }
        let json: JSON
        do { json = try JSON.parse(header) } catch let e as JSONError {
            if e.reason.hasPrefix("duplicate key") {
                let name = e.reason.split(separator: "\"").dropFirst().first.map(String.init) ?? "?"
                throw SafetensorsError.duplicateTensor(file: f, tensor: name)
            }
            throw SafetensorsError.headerNotJSON(file: f, reason: e.description)
        }
        guard let entries = json.objectValue else { throw SafetensorsError.headerNotObject(file: f) }
        dataStart = 8 + headerLength
        let dataSize = bytes.count - dataStart

        var meta: [(key: String, value: String)] = []
        var parsed: [(name: String, dtype: DType, shape: [Int], begin: Int, end: Int)] = []
        for (name, value) in entries {
            if name == "__metadata__" {
                guard let kv = value.objectValue else { throw SafetensorsError.invalidMetadata(file: f, reason: "is not an object") }
                for (k, v) in kv {
                    guard let s = v.stringValue else {
                        throw SafetensorsError.invalidMetadata(file: f, reason: "value of '\(k)' is not a string")
                    }
                    meta.append((k, s))
                }
                continue
            }
            guard let obj = value.objectValue else {
                throw SafetensorsError.invalidEntry(file: f, tensor: name, reason: "entry is not an object")
            }
            for (k, _) in obj where !["dtype", "shape", "data_offsets"].contains(k) {
                throw SafetensorsError.invalidEntry(file: f, tensor: name, reason: "unknown field '\(k)'")
            }
            guard let dtypeName = value["dtype"]?.stringValue else {
                throw SafetensorsError.invalidEntry(file: f, tensor: name, reason: "missing or non-string 'dtype'")
            }
            guard let dtype = DType(rawValue: dtypeName), dtype != .i4, dtype != .u4 else {
                throw SafetensorsError.unknownDType(file: f, tensor: name, dtype: dtypeName)
            }
            guard let shapeJSON = value["shape"]?.arrayValue else {
                throw SafetensorsError.invalidEntry(file: f, tensor: name, reason: "missing or non-array 'shape'")
            }
            var shape: [Int] = []
            for d in shapeJSON {
                guard let v = d.intValue, v >= 0 else {
                    throw SafetensorsError.invalidEntry(file: f, tensor: name, reason: "shape holds a value that is not a non-negative integer")
                }
                shape.append(v)
            }
            guard let offs = value["data_offsets"]?.arrayValue, offs.count == 2,
                  let b = offs[0].intValue, let e = offs[1].intValue, b >= 0, e >= b else {
                throw SafetensorsError.invalidEntry(file: f, tensor: name, reason: "data_offsets must be two integers [begin, end] with begin ≤ end")
            }
            guard let expected = ShapeMath.byteCount(shape, dtype) else {
                throw SafetensorsError.shapeOverflow(file: f, tensor: name)
            }
            guard expected == e - b else {
                throw SafetensorsError.sizeMismatch(file: f, tensor: name, expected: expected, actual: e - b)
            }
            parsed.append((name, dtype, shape, b, e))
        }
        // Offsets must tile the data section exactly, in some order: sort by start and walk.
        let order = parsed.indices.sorted { (parsed[$0].begin, parsed[$0].end) < (parsed[$1].begin, parsed[$1].end) }
        var cursor = 0
        var infos: [TensorInfo] = []
        infos.reserveCapacity(parsed.count)
        for i in order {
            let t = parsed[i]
            guard t.begin == cursor else {
                throw SafetensorsError.offsetsNotContiguous(file: f, tensor: t.name, expectedStart: cursor, actualStart: t.begin)
            }
            guard t.end <= dataSize else {
                throw SafetensorsError.offsetsPastEnd(file: f, tensor: t.name, end: t.end, dataSize: dataSize)
            }
            cursor = t.end
            infos.append(TensorInfo(name: t.name, dtype: t.dtype, shape: t.shape, byteCount: t.end - t.begin,
                                    file: f, fileOffset: dataStart + t.begin))
        }
        guard cursor == dataSize else { throw SafetensorsError.trailingBytes(file: f, covered: cursor, dataSize: dataSize) }
        tensors = infos
        metadata = meta
        var map: [String: Int] = [:]
        for (i, t) in infos.enumerated() { map[t.name] = i }
        byName = map
    }

    public func tensor(named name: String) throws -> TensorView {
        guard let i = byName[name] else { throw SourceError.noSuchTensor(name: name, path: path) }
        return view(tensors[i])
    }

    /// Zero-copy view of a listed tensor.
    public func view(_ t: TensorInfo) -> TensorView {
        let bytes = file.slice(offset: t.fileOffset!, length: t.byteCount)!  // validated at open
        return TensorView(name: t.name, dtype: t.dtype, shape: t.shape, bytes: bytes, owner: file)
    }
}
