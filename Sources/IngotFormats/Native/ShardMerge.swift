import IngotCore

/// `ingot merge`: joins a shard set (`NAME-0000i-of-0000N.ingot`) into one `.ingot` file by copying stored chunks,
/// never decoding or re-encoding them.
///
/// Shards written by a work split (`quantize --shard i/N`) carry a `work_split` metadata entry (formats/ingot.md
/// §7) giving each tensor's position in the unsplit run; the merged file puts every tensor back in that position,
/// drops the entry, and is byte-identical to the file one process would have written. Shards of a size-split
/// `pack` have no such entry and are joined in shard order, which likewise reproduces the unsplit `pack` output.
public enum ShardMerge {
    /// The metadata key a work-split shard records its share under.
    public static let metadataKey = "work_split"

    public struct Stats: Sendable { public var shards = 0, tensors = 0, files = 0, bytes = 0 }

    /// Checks the set and writes the merged file to `destination` (crash-safe: nothing appears there on failure).
    @discardableResult
    public static func merge(_ set: IngotShardSet, into destination: String, overwrite: Bool = false) throws -> Stats {
        let shards = set.shards
        let first = shards[0]
        let base = strippedMetadata(first.metadataJSON)
        for s in shards.dropFirst() {
            guard s.alignment == first.alignment else {
                throw NativeError.shardMismatch(file: s.path, reason: "alignment \(s.alignment) differs from shard 1's \(first.alignment)")
            }
            guard strippedMetadata(s.metadataJSON).serialized() == base.serialized(),
                  s.metadataJSON[metadataKey]?["run"] == first.metadataJSON[metadataKey]?["run"] else {
                throw NativeError.shardMismatch(file: s.path, reason: "its metadata differs from shard 1's: the shards come from different runs or settings")
            }
            guard s.blobs.isEmpty else {
                throw NativeError.shardMismatch(file: s.path, reason: "companion files belong in shard 1 only")
            }
        }
        let order = try mergedOrder(shards)
        var options = IngotFileWriter.Options()
        options.alignment = first.alignment
        let writer = try IngotFileWriter(path: destination, options: options, overwrite: overwrite)
        do {
            writer.metadata = base
            for b in first.blobs { try writer.copyFile(b, from: first) }
            for (s, t) in order { try writer.copyTensor(shards[s].entries[t], from: shards[s]) }
            try writer.commit()
        } catch {
            writer.discard()
            throw error
        }
        return Stats(shards: shards.count, tensors: order.count, files: first.blobs.count, bytes: writer.bytesWritten)
    }

    /// (shard, tensor) pairs in the order of the unsplit file.
    static func mergedOrder(_ shards: [IngotFile]) throws -> [(Int, Int)] {
        let splits = try shards.map { try share(of: $0, count: shards.count) }
        if splits.allSatisfy({ $0 == nil }) {
            return shards.indices.flatMap { s in shards[s].entries.indices.map { (s, $0) } }
        }
        // Every shard must then carry its share, all of the same unsplit run.
        var total: Int?
        var owner: [Int: Int] = [:]
        var byPosition: [[(Int, Int)]] = []
        for (s, split) in splits.enumerated() {
            guard let split else {
                throw NativeError.shardMismatch(file: shards[s].path, reason: "it has no '\(metadataKey)' entry but other shards do")
            }
            if total == nil { total = split.sourceTensors; byPosition = Array(repeating: [], count: split.sourceTensors) }
            guard split.sourceTensors == total else {
                throw NativeError.shardMismatch(file: shards[s].path, reason: "it splits \(split.sourceTensors) source tensors, shard 1 splits \(total!)")
            }
            for (t, k) in split.positions.enumerated() {
                if let o = owner[k], o != s {
                    throw NativeError.shardMismatch(file: shards[s].path, reason: "source tensor \(k) is also in shard \(o + 1)")
                }
                owner[k] = s
                byPosition[k].append((s, t))
            }
        }
        if let missing = (0..<(total ?? 0)).first(where: { owner[$0] == nil }) {
            throw NativeError.shardMismatch(file: shards[0].path, reason: "source tensor \(missing) is in no shard (a shard of a different split?)")
        }
        return byPosition.flatMap { $0 }
    }

    /// The `work_split` entry of one shard: its index, the set size, the unsplit run's source tensor count and, per
    /// stored tensor, the position of the source tensor it came from (non-decreasing).
    static func share(of f: IngotFile, count: Int) throws -> (sourceTensors: Int, positions: [Int])? {
        guard let entry = f.metadataJSON[metadataKey] else { return nil }
        func bad(_ reason: String) -> NativeError { .badHeaderField(file: f.path, field: "metadata.\(metadataKey)", reason: reason) }
        guard let shard = entry["shard"]?.intValue, let of = entry["of"]?.intValue,
              let total = entry["source_tensors"]?.intValue, total >= 0,
              let list = entry["positions"]?.arrayValue else {
            throw bad("needs integer 'shard', 'of', 'source_tensors' and an array 'positions'")
        }
        guard shard == f.shard.index, of == count, of == f.shard.count else {
            throw bad("says shard \(shard) of \(of), but the file is shard \(f.shard.index) of \(f.shard.count)")
        }
        let positions = list.compactMap(\.intValue)
        guard positions.count == list.count, positions.count == f.entries.count else {
            throw bad("has \(list.count) positions for \(f.entries.count) tensors")
        }
        var last = 0
        for p in positions {
            guard p >= last, p < total else { throw bad("position \(p) is out of order or not below \(total)") }
            last = p
        }
        return (total, positions)
    }

    static func strippedMetadata(_ m: JSON) -> JSON {
        .object((m.objectValue ?? []).filter { $0.key != metadataKey })
    }
}
