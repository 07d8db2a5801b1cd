import IngotCore

/// Writes any readable checkpoint as `.ingot` (one file, or shards when larger than `maxShardSize`), with the
/// model directory's companion files and the source's metadata.
public struct PackJob {
    public var source: TensorSource
    public var destination: String
    public var options = IngotFileWriter.Options()
    public var maxShardSize: Int? = nil
    public var companionsFrom: String? = nil
    /// Extra companion files (name, bytes), e.g. from another `.ingot`.
    public var companions: [(name: String, bytes: [UInt8])] = []
    public var metadata: [(key: String, value: JSON)] = []
    public var overwrite = false
    public var progress: ProgressReporter = SilentProgress()

    public init(source: TensorSource, destination: String) {
        self.source = source
        self.destination = destination
    }

    public struct Stats { public var tensors = 0, rawBytes = 0, storedBytes = 0, files = 0, seconds = 0.0 }

    @discardableResult
    public func run() throws -> Stats {
        let t0 = monotonicSeconds()
        let entries = try source.tensors.map { try SafetensorsWriter.Entry(name: $0.name, dtype: $0.dtype, shape: $0.shape) }
        let plan = maxShardSize.map { CheckpointWriter.plan(entries, maxShardSize: $0) } ?? [entries]
        let paths = plan.count == 1 ? [destination]
            : plan.indices.map { IngotShardSet.shardName(destination, index: $0 + 1, count: plan.count) }
        for p in paths { try Destinations.claim(p, kind: .file, overwrite: overwrite) }
        var meta: [(key: String, value: JSON)] = [("created_by", .string("ingot")),
            ("safetensors_metadata", .object(source.metadata.map { ($0.key, JSON.string($0.value)) }))]
        meta += metadata
        var writers: [IngotFileWriter] = []
        defer { for w in writers { w.discard() } }  // no-op after commit
        var stats = Stats()
        progress.begin("pack", total: entries.reduce(0) { $0 + $1.byteCount }, unit: .bytes)
        var done = 0
        for (s, shard) in plan.enumerated() {
            let w = try IngotFileWriter(path: paths[s], options: options, overwrite: overwrite, shard: (s + 1, plan.count))
            writers.append(w)
            w.metadata = .object(meta)
            if s == 0 {
                var files = companions
                if let dir = companionsFrom {
                    for name in ModelFiles.present(in: dir) where !files.contains(where: { $0.name == name }) {
                        files.append((name, try FileSystem.read(dir + "/" + name)))
                    }
                }
                for f in files { try w.addFile(name: f.name, bytes: f.bytes); stats.files += 1 }
            }
            // Batches of tensors (up to 64 MiB or 32 tensors) are encoded together so small tensors use every core;
            // the working set stays bounded by the batch.
            var batch: [TensorView] = []
            var batchBytes = 0
            func flush() throws {
                guard !batch.isEmpty else { return }
                try w.addTensors(batch, quantization: batch.map { source.nativeEntry($0.name)?.quantization })
                done += batchBytes
                progress.update(done)
                batch.removeAll()
                batchBytes = 0
            }
            for e in shard {
                batch.append(try source.tensor(named: e.name))
                batchBytes += e.byteCount
                stats.tensors += 1
                stats.rawBytes += e.byteCount
                if batchBytes >= 64 << 20 || batch.count >= 32 { try flush() }
            }
            try flush()
        }
        for w in writers { try w.commit(); stats.storedBytes += w.bytesWritten }
        progress.finish()
        stats.seconds = monotonicSeconds() - t0
        return stats
    }
}
