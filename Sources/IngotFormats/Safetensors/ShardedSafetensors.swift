import IngotCore

/// A model directory whose tensors are spread over shards listed in `model.safetensors.index.json`
/// (`{"metadata": {...}, "weight_map": {tensor: shard}}`).
///
/// Validation: every listed shard exists inside the directory (no absolute paths, no `..`), every shard holds
/// exactly the tensors the index maps to it, and no tensor is held twice.
public final class ShardedSafetensors: TensorSource, @unchecked Sendable {
    public static let indexName = "model.safetensors.index.json"

    public let path: String
    public let shards: [SafetensorsFile]
    public let tensors: [TensorInfo]
    public let metadata: [(key: String, value: String)]
    /// The index's own `metadata` object (e.g. `total_size`).
    public let indexMetadata: JSON
    private let location: [String: (shard: Int, index: Int)]

    /// Opens the index at `indexPath` (a file) and every shard it names.
    public init(indexPath: String) throws {
        let dir = FileSystem.directoryName(indexPath)
        path = dir
        let raw = try FileSystem.read(indexPath)
        let json: JSON
        do { json = try JSON.parse(raw) } catch {
            throw SafetensorsError.invalidIndex(file: indexPath, reason: "not valid JSON (\(error))")
        }
        guard let weightMap = json["weight_map"]?.objectValue else {
            throw SafetensorsError.invalidIndex(file: indexPath, reason: "no 'weight_map' object")
        }
        indexMetadata = json["metadata"] ?? .object([])
        var shardNames: [String] = []
        var expected: [String: Set<String>] = [:]
        for (tensor, shardJSON) in weightMap {
            guard let shard = shardJSON.stringValue else {
                throw SafetensorsError.invalidIndex(file: indexPath, reason: "weight_map['\(tensor)'] is not a string")
            }
            guard Self.isContained(shard) else { throw SafetensorsError.shardPathEscapes(index: indexPath, shard: shard) }
            if expected[shard] == nil { shardNames.append(shard); expected[shard] = [] }
            expected[shard]!.insert(tensor)
        }
        var files: [SafetensorsFile] = []
        var infos: [TensorInfo] = []
        var loc: [String: (Int, Int)] = [:]
        var meta: [(key: String, value: String)] = []
        for (si, shard) in shardNames.enumerated() {
            let p = dir + "/" + shard
            guard FileSystem.exists(p), !FileSystem.isDirectory(p) else {
                throw SafetensorsError.missingShard(index: indexPath, shard: shard)
            }
            let f = try SafetensorsFile(path: p)
            let want = expected[shard]!
            for t in f.tensors {
                guard want.contains(t.name) else {
                    if loc[t.name] != nil { throw SafetensorsError.duplicateAcrossShards(index: indexPath, tensor: t.name) }
                    throw SafetensorsError.tensorNotInIndex(index: indexPath, tensor: t.name, shard: shard)
                }
                loc[t.name] = (si, infos.count)
                infos.append(t)
            }
            for name in want.sorted() where f.info(name) == nil {
                throw SafetensorsError.tensorNotInShard(index: indexPath, tensor: name, shard: shard)
            }
            if si == 0 { meta = f.metadata }
            files.append(f)
        }
        shards = files
        tensors = infos
        metadata = meta
        location = loc
    }

    public func tensor(named name: String) throws -> TensorView {
        guard let (s, i) = location[name] else { throw SourceError.noSuchTensor(name: name, path: path) }
        return shards[s].view(tensors[i])
    }

    /// A relative path that stays inside its directory.
    static func isContained(_ p: String) -> Bool {
        if p.isEmpty || p.hasPrefix("/") || p.contains("\0") { return false }
        return !p.split(separator: "/", omittingEmptySubsequences: false).contains("..")
    }
}
