import IngotCore

/// One stored chunk of a tensor or file.
public struct NativeChunk: Sendable, Equatable {
    public var offset: Int
    public var rawSize: Int
    public var storedSize: Int
    public var codec: ChunkCodec
    /// XXH64 of the stored bytes.
    public var storedHash: UInt64
    /// XXH64 of the decoded bytes (equal to `storedHash` for raw chunks).
    public var rawHash: UInt64
    /// Per-plane storage for `byteplane`.
    public var planes: [PlaneEntry] = []
}

/// A tensor as the index records it.
public struct NativeTensor: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    public var byteCount: Int
    public var chunks: [NativeChunk]
    public var quantization: QuantizationInfo?

    public var storedSize: Int { chunks.reduce(0) { $0 + $1.storedSize } }
}

/// A companion file (config.json, tokenizer…) stored in the container.
public struct NativeBlob: Sendable, Equatable {
    public var name: String
    public var byteCount: Int
    public var chunks: [NativeChunk]
}

/// The JSON index at the end of an `.ingot` file (formats/ingot.md §3).
struct NativeIndex {
    var metadata: JSON = .object([])
    var tensors: [NativeTensor] = []
    var files: [NativeBlob] = []

    func encode() -> [UInt8] {
        func chunkJSON(_ c: NativeChunk) -> JSON {
            var kv: [(key: String, value: JSON)] = [("offset", .int(c.offset)), ("size", .int(c.rawSize)),
                                                    ("stored", .int(c.storedSize)), ("codec", .string(c.codec.rawValue)),
                                                    ("xxh64", .string(XXH64.hex(c.storedHash)))]
            if c.codec != .raw { kv.append(("raw_xxh64", .string(XXH64.hex(c.rawHash)))) }
            if !c.planes.isEmpty {
                kv.append(("planes", .array(c.planes.map { .object([("codec", .string($0.codec.rawValue)), ("stored", .int($0.storedSize))]) })))
            }
            return .object(kv)
        }
        let tensorsJSON = JSON.array(tensors.map { t in
            var kv: [(key: String, value: JSON)] = [("name", .string(t.name)), ("dtype", .string(t.dtype.rawValue)),
                                                    ("shape", .array(t.shape.map { .int($0) })), ("size", .int(t.byteCount)),
                                                    ("chunks", .array(t.chunks.map(chunkJSON)))]
            if let q = t.quantization { kv.append(("quantization", q.json)) }
            return .object(kv)
        })
        let filesJSON = JSON.array(files.map { f in
            .object([("name", .string(f.name)), ("size", .int(f.byteCount)), ("chunks", .array(f.chunks.map(chunkJSON)))])
        })
        let root = JSON.object([("format", .string("ingot")), ("version", .array([.int(1), .int(0)])),
                                ("metadata", metadata), ("files", filesJSON), ("tensors", tensorsJSON)])
        return Array(root.serialized().utf8)
    }

    /// Parses and validates the index against the file's data region `[headerSize, dataEnd)`.
    static func decode(_ bytes: UnsafeRawBufferPointer, file: String, dataEnd: Int, alignment: Int) throws -> NativeIndex {
        func bad(_ r: String) -> NativeError { .indexInvalid(file: file, reason: r) }
        let json: JSON
        do { json = try JSON.parse(bytes) } catch { throw bad("\(error)") }
        guard json["format"]?.stringValue == "ingot" else { throw bad("'format' is not \"ingot\"") }
        var index = NativeIndex()
        index.metadata = json["metadata"] ?? .object([])
        guard index.metadata.objectValue != nil else { throw bad("'metadata' is not an object") }
        guard let tensors = json["tensors"]?.arrayValue, let files = json["files"]?.arrayValue else {
            throw bad("missing 'tensors' or 'files' array")
        }
        var ranges: [(start: Int, end: Int, owner: String, chunk: Int)] = []
        func chunks(_ j: JSON?, owner: String, total: Int) throws -> [NativeChunk] {
            guard let arr = j?.arrayValue else { throw bad("'\(owner)' has no chunk list") }
            var out: [NativeChunk] = []
            var sum = 0
            for (k, c) in arr.enumerated() {
                func cbad(_ r: String) -> NativeError { .chunkOutOfRange(file: file, tensor: owner, chunk: k, reason: r) }
                guard let off = c["offset"]?.intValue, let raw = c["size"]?.intValue, let stored = c["stored"]?.intValue,
                      let codecName = c["codec"]?.stringValue, let h = c["xxh64"]?.stringValue.flatMap({ UInt64($0, radix: 16) })
                else { throw cbad("missing or malformed field") }
                guard let codec = ChunkCodec(rawValue: codecName) else { throw cbad("unknown codec '\(codecName)'") }
                guard raw >= 0, stored >= 0 else { throw cbad("negative size") }
                guard raw <= NativeLayout.maxChunkSize else {
                    throw NativeError.chunkTooLarge(file: file, tensor: owner, chunk: k, declared: raw, limit: NativeLayout.maxChunkSize)
                }
                guard off >= NativeLayout.headerSize, off <= dataEnd, stored <= dataEnd - off else {
                    throw cbad("stored range [\(off), +\(stored)) lies outside the data region")
                }
                let align = codec == .raw ? alignment : NativeLayout.smallAlignment
                guard off % align == 0 else { throw cbad("offset \(off) is not aligned to \(align)") }
                var rawHash = h
                var planes: [PlaneEntry] = []
                switch codec {
                case .raw:
                    guard stored == raw else { throw cbad("raw chunk stores \(stored) bytes for \(raw)") }
                case .zstd, .byteplane:
                    guard let rh = c["raw_xxh64"]?.stringValue.flatMap({ UInt64($0, radix: 16) }) else { throw cbad("missing raw_xxh64") }
                    rawHash = rh
                    if codec == .byteplane {
                        guard let ps = c["planes"]?.arrayValue, [1, 2, 4].contains(ps.count) else { throw cbad("byte-plane chunk needs 1, 2 or 4 planes") }
                        var total = 0
                        for p in ps {
                            guard let pc = p["codec"]?.stringValue.flatMap(PlaneEntry.Codec.init(rawValue:)), let s = p["stored"]?.intValue, s >= 0 else {
                                throw cbad("malformed plane")
                            }
                            if pc == .raw, s != raw / ps.count { throw cbad("raw plane stores \(s) bytes for \(raw / ps.count)") }
                            planes.append(PlaneEntry(codec: pc, storedSize: s))
                            total += s
                        }
                        guard total == stored, raw % ps.count == 0 else { throw cbad("planes do not add up to the chunk") }
                    }
                }
                ranges.append((off, off + stored, owner, k))
                out.append(NativeChunk(offset: off, rawSize: raw, storedSize: stored, codec: codec, storedHash: h, rawHash: rawHash, planes: planes))
                sum += raw
            }
            guard sum == total else { throw NativeError.sizeMismatch(file: file, tensor: owner, expected: total, actual: sum) }
            return out
        }
        var names = Set<String>()
        for t in tensors {
            guard let name = t["name"]?.stringValue else { throw bad("a tensor has no name") }
            guard names.insert(name).inserted else { throw NativeError.duplicateName(file: file, name: name) }
            guard let dn = t["dtype"]?.stringValue, let dtype = DType(rawValue: dn) else { throw bad("tensor '\(name)': unknown dtype") }
            guard let shapeArr = t["shape"]?.arrayValue else { throw bad("tensor '\(name)': missing shape") }
            let shape = shapeArr.compactMap(\.intValue)
            guard shape.count == shapeArr.count, let n = ShapeMath.byteCount(shape, dtype) else {
                throw bad("tensor '\(name)': invalid shape")
            }
            guard t["size"]?.intValue == n else {
                throw NativeError.sizeMismatch(file: file, tensor: name, expected: n, actual: t["size"]?.intValue ?? -1)
            }
            let q = try t["quantization"].map { try QuantizationInfo(json: $0, tensor: name, file: file) }
            index.tensors.append(NativeTensor(name: name, dtype: dtype, shape: shape, byteCount: n,
                                              chunks: try chunks(t["chunks"], owner: name, total: n), quantization: q))
        }
        var fileNames = Set<String>()
        for f in files {
            guard let name = f["name"]?.stringValue, let size = f["size"]?.intValue, size >= 0 else { throw bad("malformed file entry") }
            guard fileNames.insert(name).inserted else { throw NativeError.duplicateName(file: file, name: name) }
            guard ShardedSafetensors.isContained(name), !name.contains("/") else { throw bad("file name '\(name)' is not a plain name") }
            index.files.append(NativeBlob(name: name, byteCount: size, chunks: try chunks(f["chunks"], owner: name, total: size)))
        }
        ranges.sort { $0.start < $1.start }
        for i in ranges.indices.dropFirst() where ranges[i].start < ranges[i - 1].end {
            throw NativeError.chunkOverlap(file: file, tensor: ranges[i].owner, chunk: ranges[i].chunk)
        }
        return index
    }
}
