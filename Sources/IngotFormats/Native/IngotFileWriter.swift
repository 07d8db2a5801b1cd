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
        /// Encoding workers (0: the scope's `Parallelism.workers`); results are identical for any count.
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
        guard options.alignment >= 64, options.alignment <= 1 << 20, options.alignment & (options.alignment - 1) == 0 else {
            throw NativeError.badHeaderField(file: path, field: "alignment", reason: "must be a power of two in [64, 1 MiB], got \(options.alignment)")
        }
        guard options.chunkSize > 0, options.chunkSize % 4 == 0, options.chunkSize <= NativeLayout.maxChunkSize else {
            throw NativeError.badHeaderField(file: path, field: "chunk size", reason: "must be a positive multiple of 4 up to 1 GiB, got \(options.chunkSize)")
        }
        self.path = path
        self.options = options
        FileSystem.removeStaleTemporaries(besides: path)
        out = try OutputFile(path: path, overwrite: overwrite)
        try out.write(NativeLayout.Header(alignment: UInt32(options.alignment), shardIndex: UInt32(shard.index),
                                          shardCount: UInt32(shard.count)).encode())
    }

    /// Tensors added so far.
    public var tensorCount: Int { index.tensors.count }

    /// Bytes written so far (the file grows as tensors are added).
    public var bytesWritten: Int { out.offset }

    /// Adds a tensor; `bytes` may be a zero-copy view of a memory-mapped source.
    public func addTensor(name: String, dtype: DType, shape: [Int], bytes: UnsafeRawBufferPointer,
                          quantization: QuantizationInfo? = nil) throws {
        try addTensors([(name, dtype, shape, bytes, quantization)])
    }

    public func addTensor(_ view: TensorView, quantization: QuantizationInfo? = nil) throws {
        try view.withBytes { try addTensor(name: view.name, dtype: view.dtype, shape: view.shape, bytes: $0, quantization: quantization) }
    }

    /// Adds several tensors at once: their chunks are encoded together in parallel (small tensors have one chunk
    /// each, so batching is what keeps every core busy), then written in the given order.
    public func addTensors(_ views: [TensorView], quantization: [QuantizationInfo?]) throws {
        try withExtendedLifetime(views) {
            try addTensors(views.enumerated().map { i, v in (v.name, v.dtype, v.shape, v.bytes, quantization[i]) })
        }
    }

    private func addTensors(_ items: [(name: String, dtype: DType, shape: [Int], bytes: UnsafeRawBufferPointer, q: QuantizationInfo?)]) throws {
        for it in items {
            guard names.insert(it.name).inserted else { throw NativeError.duplicateName(file: path, name: it.name) }
            guard let n = ShapeMath.byteCount(it.shape, it.dtype), n == it.bytes.count else {
                throw NativeError.sizeMismatch(file: path, tensor: it.name, expected: ShapeMath.byteCount(it.shape, it.dtype) ?? -1, actual: it.bytes.count)
            }
        }
        let chunkLists = try writeChunks(items.map { ($0.bytes, $0.dtype) })
        for (i, it) in items.enumerated() {
            index.tensors.append(NativeTensor(name: it.name, dtype: it.dtype, shape: it.shape, byteCount: it.bytes.count,
                                              chunks: chunkLists[i], quantization: it.q))
        }
    }

    /// Stores a companion file (config.json, tokenizer…), zstd-compressed.
    public func addFile(name: String, bytes: [UInt8]) throws {
        guard !index.files.contains(where: { $0.name == name }) else { throw NativeError.duplicateName(file: path, name: name) }
        let chunks = try bytes.withUnsafeBytes { try writeChunks([($0, .u8)])[0] }
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

    /// Output buffers of the chunks encoded together (`writeChunks`), reused window after window.
    private var outputs: [UnsafeMutableRawBufferPointer] = []
    /// Raw bytes of chunks a window holds at most once every worker has one.
    static let windowBytes = 256 << 20

    deinit { for o in outputs { o.deallocate() } }

    /// Encodes the chunks of every buffer and writes them in order, a window of chunks at a time: the window's
    /// chunks are encoded in parallel (split by index) into the reused `outputs`, so memory stays bounded by the
    /// window whatever the tensor's size, and no fresh pages are faulted in per chunk.
    private func writeChunks(_ buffers: [(bytes: UnsafeRawBufferPointer, dtype: DType)]) throws -> [[NativeChunk]] {
        let size = options.chunkSize
        var jobs: [(buffer: Int, range: Range<Int>)] = []
        for (b, buf) in buffers.enumerated() {
            let count = max(1, (buf.bytes.count + size - 1) / size)
            for k in 0..<count { jobs.append((b, (k * size)..<min(buf.bytes.count, (k + 1) * size))) }
        }
        // Four chunks per worker balance chunks of unequal cost; beyond one chunk per worker, the window is capped at
        // `windowBytes` of chunks, since its buffers stay resident for the writer's life.
        let workers = max(1, options.threads > 0 ? options.threads : Parallelism.resolvedWorkers)
        let window = min(jobs.count, max(workers, min(4 * workers, Self.windowBytes / size)))
        let capacity = ChunkEncoder.outputCapacity(min(size, buffers.map(\.bytes.count).max() ?? 0))
        for k in 0..<window where k >= outputs.count || outputs[k].count < capacity {
            if k < outputs.count { outputs[k].deallocate(); outputs[k] = .allocate(byteCount: capacity, alignment: 64) } else {
                outputs.append(.allocate(byteCount: capacity, alignment: 64))
            }
        }
        var result = [[NativeChunk]](repeating: [], count: buffers.count)
        var encoded = [ChunkEncoder.Encoded?](repeating: nil, count: window)
        let level = options.level, slots = UncheckedSendable(outputs)
        for first in stride(from: 0, to: jobs.count, by: window) {
            let n = min(window, jobs.count - first)
            encoded.withUnsafeMutableBufferPointer { e in
                let e = UncheckedSendable(e)
                parallelFor(n, workers: options.threads) { i in
                    let job = jobs[first + i], buf = buffers[job.buffer]
                    let piece = UnsafeRawBufferPointer(rebasing: buf.bytes[job.range])
                    e.value[i] = ZstdPool.shared.withContext {
                        ChunkEncoder.encode(piece, dtype: buf.dtype, level: level, context: $0, into: slots.value[i])
                    }
                }
            }
            for i in 0..<n {
                let e = encoded[i]!, job = jobs[first + i]
                let stored = e.codec == .raw ? UnsafeRawBufferPointer(rebasing: buffers[job.buffer].bytes[job.range])
                                             : UnsafeRawBufferPointer(rebasing: outputs[i][0..<e.storedSize])
                let offset = try appendStored(stored, codec: e.codec)
                result[job.buffer].append(NativeChunk(offset: offset, rawSize: job.range.count, storedSize: e.storedSize, codec: e.codec,
                                                      storedHash: e.storedHash, rawHash: e.rawHash, planes: e.planes))
            }
        }
        return result
    }

    /// Pads as the layout requires for `codec` (raw chunks on `alignment`, others on 8 bytes), writes the stored
    /// bytes and returns their offset. Every chunk goes through here, so copied chunks land exactly where encoded
    /// ones would.
    private func appendStored(_ bytes: UnsafeRawBufferPointer, codec: ChunkCodec) throws -> Int {
        try pad(to: codec == .raw ? options.alignment : NativeLayout.smallAlignment)
        let offset = out.offset
        try out.write(bytes)
        return offset
    }

    // MARK: copying stored chunks (merge)

    /// Appends a tensor of another `.ingot` file by copying its stored chunks, without decoding or re-encoding:
    /// the result is the bytes the original writer would have produced here. The chunks' checksums are verified.
    public func copyTensor(_ t: NativeTensor, from file: IngotFile) throws {
        guard names.insert(t.name).inserted else { throw NativeError.duplicateName(file: path, name: t.name) }
        let chunks = try copyChunks(t.chunks, from: file, owner: t.name)
        index.tensors.append(NativeTensor(name: t.name, dtype: t.dtype, shape: t.shape, byteCount: t.byteCount, chunks: chunks,
                                          quantization: t.quantization))
    }

    /// Appends a companion file of another `.ingot` file by copying its stored chunks.
    public func copyFile(_ b: NativeBlob, from file: IngotFile) throws {
        guard !index.files.contains(where: { $0.name == b.name }) else { throw NativeError.duplicateName(file: path, name: b.name) }
        index.files.append(NativeBlob(name: b.name, byteCount: b.byteCount, chunks: try copyChunks(b.chunks, from: file, owner: b.name)))
    }

    private func copyChunks(_ chunks: [NativeChunk], from file: IngotFile, owner: String) throws -> [NativeChunk] {
        try chunks.enumerated().map { k, c in
            let stored = file.file.slice(offset: c.offset, length: c.storedSize)!  // validated when the file was opened
            guard XXH64.hash(stored) == c.storedHash else { throw NativeError.chunkChecksum(file: file.path, tensor: owner, chunk: k) }
            var copy = c
            copy.offset = try appendStored(stored, codec: c.codec)
            return copy
        }
    }
}
