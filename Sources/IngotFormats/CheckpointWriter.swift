import IngotCore

/// Writes a whole checkpoint, streaming one tensor at a time, to one of:
/// - `X.safetensors`: a single safetensors file;
/// - `X.h5` / `X.hdf5`: an HDF5 file;
/// - any other path: a model directory holding `model.safetensors`, or shards `model-0000k-of-0000n.safetensors`
///   plus `model.safetensors.index.json` when the tensors exceed `maxShardSize` (Hugging Face's layout), and the
///   companion files (config, tokenizer, generation config) of `companionsFrom`.
///
/// Every output is crash-safe: nothing appears under the destination until everything is written and synced.
public struct CheckpointWriter {
    public enum Layout: Equatable { case safetensorsFile, hdf5File, directory }

    public let destination: String
    public let layout: Layout
    public var maxShardSize: Int = 5_000_000_000
    public var metadata: [(key: String, value: String)] = []
    public var companionsFrom: String? = nil
    /// Extra files to place in a directory output (name → bytes), e.g. an edited config.json.
    public var extraFiles: [(name: String, bytes: [UInt8])] = []
    public var overwrite = false

    public init(destination: String) {
        self.destination = destination
        let lower = destination.lowercased()
        if lower.hasSuffix(".safetensors") { layout = .safetensorsFile }
        else if Checkpoint.isHDF5Path(destination) { layout = .hdf5File }
        else { layout = .directory }
    }

    /// Splits `entries` (in order) into shards of at most `maxShardSize` bytes (a tensor larger than that gets a
    /// shard of its own), as `save_pretrained` does.
    public static func plan(_ entries: [SafetensorsWriter.Entry], maxShardSize: Int) -> [[SafetensorsWriter.Entry]] {
        var shards: [[SafetensorsWriter.Entry]] = [[]]
        var size = 0
        for e in entries {
            if !shards[shards.count - 1].isEmpty, size + e.byteCount > maxShardSize {
                shards.append([])
                size = 0
            }
            shards[shards.count - 1].append(e)
            size += e.byteCount
        }
        return shards
    }

    /// Writes `entries` in order; `produce(i, sink)` must pass entry i's bytes to `sink` (in one or more pieces).
    public func write(_ entries: [SafetensorsWriter.Entry],
                      produce: (Int, (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        switch layout {
        case .safetensorsFile:
            FileSystem.removeStaleTemporaries(besides: destination)
            let w = try SafetensorsWriter(path: destination, entries: entries, metadata: metadata, overwrite: overwrite)
            for i in entries.indices { try produce(i) { try w.append($0) } }
            try w.commit()
        case .hdf5File:
            FileSystem.removeStaleTemporaries(besides: destination)
            let w = try HDF5Writer(path: destination, metadata: metadata, overwrite: overwrite)
            for (i, e) in entries.enumerated() {
                let buffer = TensorBuffer(byteCount: e.byteCount)
                var filled = 0
                try produce(i) { piece in
                    guard filled + piece.count <= e.byteCount else {
                        throw SafetensorsWriterError.tooManyBytes(path: destination)
                    }
                    if piece.count > 0 { (buffer.storage.baseAddress! + filled).copyMemory(from: piece.baseAddress!, byteCount: piece.count) }
                    filled += piece.count
                }
                guard filled == e.byteCount else { throw SafetensorsWriterError.incomplete(path: destination, missing: e.name) }
                try w.add(name: e.name, dtype: e.dtype, shape: e.shape,
                          bytes: UnsafeRawBufferPointer(rebasing: buffer.storage[0..<e.byteCount]))
            }
            try w.commit()
        case .directory:
            FileSystem.removeStaleTemporaries(besides: destination)
            let dir = try OutputDirectory(path: destination, overwrite: overwrite)
            let shards = Self.plan(entries, maxShardSize: maxShardSize)
            var index = 0
            var weightMap: [(String, String)] = []
            for (k, shard) in shards.enumerated() {
                let name = shards.count == 1 ? "model.safetensors"
                    : "model-\(Self.pad5(k + 1))-of-\(Self.pad5(shards.count)).safetensors"
                let w = try SafetensorsWriter(path: dir.file(name), entries: shard, metadata: metadata, overwrite: true)
                for e in shard {
                    try produce(index) { try w.append($0) }
                    weightMap.append((e.name, name))
                    index += 1
                }
                try w.commit()
            }
            if shards.count > 1 {
                let total = entries.reduce(0) { $0 + $1.byteCount }
                let json = JSON.object([("metadata", .object([("total_size", .int(total))])),
                                        ("weight_map", .object(weightMap.sorted { $0.0 < $1.0 }.map { ($0.0, JSON.string($0.1)) }))])
                let f = try dir.create(ShardedSafetensors.indexName)
                try f.write(json.serialized(pretty: true) + "\n")
                try f.commit()
            }
            if let src = companionsFrom {
                for name in ModelFiles.present(in: src) where !extraFiles.contains(where: { $0.name == name }) {
                    let f = try dir.create(name)
                    try f.write(FileSystem.read(src + "/" + name))
                    try f.commit()
                }
            }
            for (name, bytes) in extraFiles {
                let f = try dir.create(name)
                try f.write(bytes)
                try f.commit()
            }
            try dir.commit()
        }
    }

    static func pad5(_ n: Int) -> String { let s = String(n); return String(repeating: "0", count: max(0, 5 - s.count)) + s }
}
