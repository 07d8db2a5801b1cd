import IngotCore

/// A model split over `NAME-00001-of-0000N.ingot` files, read as one source. Opened from the name without the
/// shard suffix (`NAME.ingot`) or from any one shard.
public final class IngotShardSet: TensorSource, FormatNamed, TensorDetailsProviding, ChecksumVerifiable, @unchecked Sendable {
    public let path: String
    public let shards: [IngotFile]
    public let tensors: [TensorInfo]
    public var metadata: [(key: String, value: String)] { shards[0].metadata }
    public var formatName: String { "ingot (sharded)" }
    private let location: [String: Int]

    /// Shard file name: `model.ingot` → `model-00002-of-00005.ingot`.
    public static func shardName(_ path: String, index: Int, count: Int) -> String {
        let base = path.hasSuffix(".ingot") ? String(path.dropLast(6)) : path
        func pad(_ n: Int) -> String { let s = String(n); return String(repeating: "0", count: max(0, 5 - s.count)) + s }
        return base + "-\(pad(index))-of-\(pad(count)).ingot"
    }

    /// Opens the shard set that `path` names, or nil when there is none.
    public static func open(_ path: String) throws -> IngotShardSet? {
        guard let count = try shardCount(path) else { return nil }
        return try IngotShardSet(path: path, count: count)
    }

    /// The number of shards of the set `path` names (from the name of its first shard), or nil when there is none.
    public static func shardCount(_ path: String) throws -> Int? {
        let dir = FileSystem.directoryName(path)
        let stem = String(FileSystem.baseName(path).dropLast(6))
        guard let names = try? FileSystem.list(dir) else { return nil }
        let first = names.first { $0.hasPrefix(stem + "-00001-of-") && $0.hasSuffix(".ingot") }
        guard let first else { return nil }
        guard let count = Int(first.dropFirst(stem.count + 10).dropLast(6)), count >= 1 else {
            throw NativeError.shardMismatch(file: path, reason: "cannot read the shard count from '\(first)'")
        }
        return count
    }

    init(path: String, count: Int) throws {
        self.path = path
        var files: [IngotFile] = []
        for i in 1...count {
            let p = Self.shardName(path, index: i, count: count)
            guard FileSystem.exists(p) else { throw NativeError.missingShard(file: path, shard: FileSystem.baseName(p)) }
            let f = try IngotFile(path: p)
            guard f.shard.index == i, f.shard.count == count else {
                throw NativeError.shardMismatch(file: p, reason: "header says shard \(f.shard.index) of \(f.shard.count), name says \(i) of \(count)")
            }
            files.append(f)
        }
        var infos: [TensorInfo] = []
        var loc: [String: Int] = [:]
        for (s, f) in files.enumerated() {
            for t in f.tensors {
                guard loc[t.name] == nil else { throw NativeError.duplicateName(file: f.path, name: t.name) }
                loc[t.name] = s
                infos.append(t)
            }
        }
        shards = files
        tensors = infos
        location = loc
    }

    public func tensor(named name: String) throws -> TensorView {
        guard let s = location[name] else { throw SourceError.noSuchTensor(name: name, path: path) }
        return try shards[s].tensor(named: name)
    }

    public func entry(_ name: String) -> NativeTensor? { location[name].flatMap { shards[$0].entry(name) } }

    public func verifyAll() throws { for s in shards { try s.verifyAll() } }
    public var detailColumns: [String] { shards[0].detailColumns }
    public func details(of tensor: String) -> [String] {
        location[tensor].map { shards[$0].details(of: tensor) } ?? []
    }
}

extension TensorSource {
    /// The native entry (codec, chunks, quantization) of a tensor when the source is an `.ingot` file or set.
    public func nativeEntry(_ name: String) -> NativeTensor? {
        (self as? IngotFile)?.entry(name) ?? (self as? IngotShardSet)?.entry(name)
    }

    /// The companion files a source carries (stored in `.ingot`, rebuilt from GGUF metadata), as name → bytes.
    public func storedCompanionFiles() throws -> [(name: String, bytes: [UInt8])] {
        if let p = self as? CompanionFilesProviding { return try p.companionFiles() }
        let f = (self as? IngotFile) ?? (self as? IngotShardSet)?.shards.first
        guard let f else { return [] }
        return try f.blobs.map { ($0.name, try f.fileContents($0.name)) }
    }
}
