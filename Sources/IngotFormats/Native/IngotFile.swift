import IngotCore

/// A memory-mapped `.ingot` file (formats/ingot.md).
///
/// Opening validates header, trailer and index (every offset and size checked against the file). Reading a
/// tensor decodes only its chunks, in parallel, verifying their checksums; a tensor stored in raw, contiguous
/// chunks is returned as a zero-copy view of the mapping.
public final class IngotFile: TensorSource, FormatNamed, TensorDetailsProviding, ChecksumVerifiable, @unchecked Sendable {
    public let path: String
    public let file: MappedFile
    public let tensors: [TensorInfo]
    public let entries: [NativeTensor]
    public let blobs: [NativeBlob]
    /// The index's free-form metadata object (provenance, recipe, source config…).
    public let metadataJSON: JSON
    public let alignment: Int
    public let shard: (index: Int, count: Int)
    public var formatName: String { "ingot" }
    let indexRange: Range<Int>
    private let byName: [String: Int]

    public var metadata: [(key: String, value: String)] {
        (metadataJSON["safetensors_metadata"]?.objectValue ?? []).compactMap { kv in kv.value.stringValue.map { (kv.key, $0) } }
    }

    public convenience init(path: String) throws { try self.init(file: MappedFile(path: path)) }

    public init(file: MappedFile) throws {
        let f = file.path
        path = f
        self.file = file
        let b = file.bytes
        guard b.count >= NativeLayout.headerSize + NativeLayout.trailerSize else { throw NativeError.truncated(file: f, size: b.count) }
        let header = try NativeLayout.Header.decode(b, file: f)
        let trailer: NativeLayout.Trailer
        do { trailer = try NativeLayout.Trailer.decode(b, file: f) } catch NativeError.badMagic(_, "trailer") {
            throw NativeError.truncatedEnd(file: f, size: b.count)
        }
        guard trailer.fileLength == UInt64(b.count) else {
            throw NativeError.fileLengthMismatch(file: f, recorded: trailer.fileLength, actual: b.count)
        }
        let dataEnd = b.count - NativeLayout.trailerSize
        guard trailer.indexOffset >= UInt64(NativeLayout.headerSize), trailer.indexOffset <= UInt64(dataEnd),
              trailer.indexLength == UInt64(dataEnd) - trailer.indexOffset, trailer.indexOffset % 8 == 0 else {
            throw NativeError.indexOutOfFile(file: f, offset: trailer.indexOffset, length: trailer.indexLength)
        }
        let start = Int(trailer.indexOffset)
        indexRange = start..<dataEnd
        let indexBytes = UnsafeRawBufferPointer(rebasing: b[indexRange])
        guard XXH64.hash(indexBytes) == trailer.indexHash else { throw NativeError.indexChecksum(file: f) }
        let index = try NativeIndex.decode(indexBytes, file: f, dataEnd: start, alignment: Int(header.alignment))
        alignment = Int(header.alignment)
        shard = (Int(header.shardIndex), Int(header.shardCount))
        entries = index.tensors
        blobs = index.files
        metadataJSON = index.metadata
        tensors = index.tensors.map { t in
            TensorInfo(name: t.name, dtype: t.dtype, shape: t.shape, byteCount: t.byteCount, file: f,
                       fileOffset: Self.contiguousRawOffset(t))
        }
        var map: [String: Int] = [:]
        for (i, t) in entries.enumerated() { map[t.name] = i }
        byName = map
    }

    /// Offset of the tensor's bytes when all its chunks are raw and adjacent (so it can be mapped in place).
    static func contiguousRawOffset(_ t: NativeTensor) -> Int? {
        guard let first = t.chunks.first, t.chunks.allSatisfy({ $0.codec == .raw }) else { return nil }
        var next = first.offset
        for c in t.chunks { guard c.offset == next else { return nil }; next += c.storedSize }
        return first.offset
    }

    public func entry(_ name: String) -> NativeTensor? { byName[name].map { entries[$0] } }

    public func tensor(named name: String) throws -> TensorView {
        guard let i = byName[name] else { throw SourceError.noSuchTensor(name: name, path: path) }
        let t = entries[i]
        if let off = tensors[i].fileOffset {
            // Raw chunks: verify their checksums, then hand out the mapped bytes.
            for (k, c) in t.chunks.enumerated() where XXH64.hash(file.slice(offset: c.offset, length: c.storedSize)!) != c.storedHash {
                throw NativeError.chunkChecksum(file: path, tensor: name, chunk: k)
            }
            return TensorView(name: name, dtype: t.dtype, shape: t.shape, bytes: file.slice(offset: off, length: t.byteCount)!, owner: file)
        }
        // Chunks tile the tensor exactly (validated at open), so every byte is written.
        let buffer = TensorBuffer(uninitializedByteCount: t.byteCount)
        try decodeChunks(t.chunks, dtype: t.dtype, owner: name, into: buffer.storage)
        return buffer.view(name: name, dtype: t.dtype, shape: t.shape, byteCount: t.byteCount)
    }

    /// The bytes of a stored companion file.
    public func fileContents(_ name: String) throws -> [UInt8] {
        guard let b = blobs.first(where: { $0.name == name }) else { throw SourceError.noSuchTensor(name: name, path: path) }
        let buffer = TensorBuffer(byteCount: b.byteCount)
        try decodeChunks(b.chunks, dtype: .u8, owner: name, into: buffer.storage)
        return Array(UnsafeRawBufferPointer(rebasing: buffer.storage[0..<b.byteCount]))
    }

    func decodeChunks(_ chunks: [NativeChunk], dtype: DType, owner: String, into dst: UnsafeMutableRawBufferPointer) throws {
        var starts: [Int] = []
        var pos = 0
        for c in chunks { starts.append(pos); pos += c.rawSize }
        var errors = [Error?](repeating: nil, count: chunks.count)
        errors.withUnsafeMutableBufferPointer { errs in
            let e = UncheckedSendable(errs)
            parallelFor(chunks.count) { k in
                let c = chunks[k]
                let stored = file.slice(offset: c.offset, length: c.storedSize)!  // validated at open
                let out = UnsafeMutableRawBufferPointer(rebasing: dst[starts[k]..<(starts[k] + c.rawSize)])
                do {
                    try ZstdPool.shared.withContext {
                        try ChunkEncoder.decode(stored, chunk: c, into: out, dtype: dtype, context: $0, file: path, owner: owner, index: k)
                    }
                } catch { e.value[k] = error }
            }
        }
        if let first = errors.compactMap({ $0 }).first { throw first }
    }

    /// Verifies every chunk (stored and decoded checksums) and that every byte not covered by a chunk, the
    /// index, the header or the trailer is zero padding. Together with the header, trailer and index checksums
    /// this covers every byte of the file.
    public func verifyAll() throws {
        var covered: [(Int, Int)] = [(0, NativeLayout.headerSize), (indexRange.lowerBound, file.count)]
        // Reading checks the decoded bytes; the stored bytes' checksums are checked here, each chunk once.
        func checkStored(_ chunks: [NativeChunk], owner: String) throws {
            for (k, c) in chunks.enumerated() {
                if c.codec != .raw, XXH64.hash(file.slice(offset: c.offset, length: c.storedSize)!) != c.storedHash {
                    throw NativeError.chunkChecksum(file: path, tensor: owner, chunk: k)
                }
                covered.append((c.offset, c.offset + c.storedSize))
            }
        }
        for t in entries {
            try checkStored(t.chunks, owner: t.name)
            _ = try tensor(named: t.name)
        }
        for b in blobs {
            try checkStored(b.chunks, owner: b.name)
            _ = try fileContents(b.name)
        }
        covered.sort { $0.0 < $1.0 }
        var pos = 0
        for (s, e) in covered {
            if s > pos, let gap = file.slice(offset: pos, length: s - pos), let bad = gap.firstIndex(where: { $0 != 0 }) {
                throw NativeError.nonZeroPadding(file: path, offset: pos + bad)
            }
            pos = max(pos, e)
        }
    }

    // MARK: inspect

    public var detailColumns: [String] { ["codec", "stored", "ratio", "quantization"] }

    public func details(of name: String) -> [String] {
        guard let t = entry(name) else { return ["", "", "", ""] }
        let codecs = Set(t.chunks.map(\.codec.rawValue)).sorted().joined(separator: "+")
        let ratio = t.byteCount == 0 ? "-" : String(format: "%.3f", Double(t.storedSize) / Double(t.byteCount))
        let q = t.quantization.map { q in
            "\(q.scheme.rawValue)/\(q.granularity.rawValue)" + (q.groupSize.map { " g\($0)" } ?? "")
        } ?? ""
        return [codecs, String(t.storedSize), ratio, q]
    }
}
