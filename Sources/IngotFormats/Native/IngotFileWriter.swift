import IngotCore

/// Streams tensors into an `.ingot` file (formats/ingot.md).
///
/// Each tensor is cut into chunks of `chunkSize` bytes which are encoded in parallel (a batch at a time) and
/// written in order, so the output is byte-identical whatever the thread count. The index is written last.
/// Crash-safe: nothing appears under `path` until `commit()`.
public final class IngotFileWriter {
    public struct Options: Sendable {
        /// zstd level; nil stores every chunk raw (mmap-able in place).
        public var level: Int32? = 3
        public var chunkSize = 4 << 20
        public var alignment = 4096
        /// 1 = serial; anything else uses all cores (results are identical).
        public var threads = 0
        public init() {}
    }

    public let path: String
    public let options: Options
    public var metadata: JSON = .object([])
    private let out: OutputFile
    private var index = NativeIndex()
    private var names = Set<String>()

    public init(path: String, options: Options = Options(), overwrite: Bool = false,
                shard: (index: Int, count: Int) = (1, 1)) throws {
        precondition(options.alignment >= 64 && options.alignment & (options.alignment - 1) == 0)
        precondition(options.chunkSize > 0 && options.chunkSize % 4 == 0)
        self.path = path
        self.options = options
        FileSystem.removeStaleTemporaries(besides: path)
        out = try OutputFile(path: path, overwrite: overwrite)
        try out.write(NativeLayout.Header(alignment: UInt32(options.alignment), shardIndex: UInt32(shard.index),
                                          shardCount: UInt32(shard.count)).encode())
    }

    /// Bytes written so far (the file grows as tensors are added).
    public var bytesWritten: Int { out.offset }

    /// Adds a tensor; `bytes` may be a zero-copy view of a memory-mapped source.
    public func addTensor(name: String, dtype: DType, shape: [Int], bytes: UnsafeRawBufferPointer,
                          quantization: QuantizationInfo? = nil) throws {
        guard names.insert(name).inserted else { throw NativeError.duplicateName(file: path, name: name) }
        guard let n = ShapeMath.byteCount(shape, dtype), n == bytes.count else {
            throw NativeError.sizeMismatch(file: path, tensor: name, expected: ShapeMath.byteCount(shape, dtype) ?? -1, actual: bytes.count)
        }
        let chunks = try writeChunks(bytes, dtype: dtype)
        index.tensors.append(NativeTensor(name: name, dtype: dtype, shape: shape, byteCount: n, chunks: chunks, quantization: quantization))
    }

    public func addTensor(_ view: TensorView, quantization: QuantizationInfo? = nil) throws {
        try view.withBytes { try addTensor(name: view.name, dtype: view.dtype, shape: view.shape, bytes: $0, quantization: quantization) }
    }

    /// Stores a companion file (config.json, tokenizer…), zstd-compressed.
    public func addFile(name: String, bytes: [UInt8]) throws {
        guard !index.files.contains(where: { $0.name == name }) else { throw NativeError.duplicateName(file: path, name: name) }
        let chunks = try bytes.withUnsafeBytes { try writeChunks($0, dtype: .u8) }
        index.files.append(NativeBlob(name: name, byteCount: bytes.count, chunks: chunks))
    }

    /// Writes the index and trailer, fsyncs and renames into place.
    public func commit() throws {
        var idx = index
        idx.metadata = metadata
        let bytes = idx.encode()
        try pad(to: NativeLayout.smallAlignment)
        let offset = out.offset
        try out.write(bytes)
        let trailer = NativeLayout.Trailer(indexOffset: UInt64(offset), indexLength: UInt64(bytes.count),
                                           indexHash: XXH64.hash(bytes), fileLength: UInt64(out.offset + NativeLayout.trailerSize))
        try out.write(trailer.encode())
        try out.commit()
    }

    public func discard() { out.discard() }

    private func pad(to alignment: Int) throws {
        try out.writeZeros(NativeLayout.alignUp(out.offset, alignment) - out.offset)
    }

    /// Encodes `bytes` in batches of chunks (parallel), writing them in order.
    private func writeChunks(_ bytes: UnsafeRawBufferPointer, dtype: DType) throws -> [NativeChunk] {
        let size = options.chunkSize
        let count = max(1, (bytes.count + size - 1) / size)
        let batch = options.threads == 1 ? 1 : 8
        var result: [NativeChunk] = []
        var first = 0
        while first < count {
            let last = min(count, first + batch)
            var encoded = [ChunkEncoder.Encoded?](repeating: nil, count: last - first)
            let level = options.level
            encoded.withUnsafeMutableBufferPointer { slots in
                let s = UncheckedSendable(slots)
                let work = { (i: Int) in
                    let k = first + i
                    let piece = UnsafeRawBufferPointer(rebasing: bytes[(k * size)..<min(bytes.count, (k + 1) * size)])
                    s.value[i] = ZstdPool.shared.withContext { ChunkEncoder.encode(piece, dtype: dtype, level: level, context: $0) }
                }
                if options.threads == 1 { for i in 0..<(last - first) { work(i) } } else { parallelFor(last - first, work) }
            }
            for (i, e) in encoded.enumerated() {
                let k = first + i
                let e = e!
                try pad(to: e.codec == .raw ? options.alignment : NativeLayout.smallAlignment)
                let offset = out.offset
                if e.codec == .raw {
                    try out.write(UnsafeRawBufferPointer(rebasing: bytes[(k * size)..<min(bytes.count, (k + 1) * size)]))
                } else {
                    try out.write(e.bytes)
                }
                let raw = min(bytes.count, (k + 1) * size) - k * size
                result.append(NativeChunk(offset: offset, rawSize: raw, storedSize: e.storedSize, codec: e.codec,
                                          storedHash: e.storedHash, rawHash: e.rawHash, planes: e.planes))
            }
            first = last
        }
        return result
    }
}
