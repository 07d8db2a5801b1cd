import IngotCore

/// Opens any checkpoint Ingot reads, by looking at the path:
/// - a `.safetensors` file;
/// - a directory with `model.safetensors.index.json` (sharded), `model.safetensors`, or a single `*.safetensors` file;
/// - an HDF5 file (`.h5`, `.hdf5`, Keras `.weights.h5`);
/// - a native `.ingot` file;
/// - a llama.cpp `.gguf` file (Hugging Face names, `GGUFCheckpoint`).
public enum Checkpoint {
    public static func open(_ path: String) throws -> TensorSource {
        if path.hasSuffix(".ingot"), !FileSystem.exists(path), let set = try IngotShardSet.open(path) { return set }
        guard FileSystem.exists(path) else { throw IOError(.open, path: path, errno: 2) }
        if FileSystem.isDirectory(path) {
            let index = path + "/" + ShardedSafetensors.indexName
            if FileSystem.exists(index) { return try ShardedSafetensors(indexPath: index) }
            if FileSystem.exists(path + "/model.safetensors") { return try SafetensorsFile(path: path + "/model.safetensors") }
            let files = try FileSystem.list(path).filter { $0.hasSuffix(".safetensors") }
            if files.count == 1 { return try SafetensorsFile(path: path + "/" + files[0]) }
            if files.isEmpty {
                throw SourceError.notACheckpoint(path: path, reason: "directory holds no .safetensors file and no \(ShardedSafetensors.indexName)")
            }
            throw SourceError.notACheckpoint(path: path, reason: "directory holds \(files.count) .safetensors files but no \(ShardedSafetensors.indexName)")
        }
        if path.hasSuffix(".json"), FileSystem.baseName(path) == ShardedSafetensors.indexName {
            return try ShardedSafetensors(indexPath: path)
        }
        if isHDF5Path(path) { return try HDF5File(path: path) }
        if path.hasSuffix(".ingot") { return try IngotFile(path: path) }
        if path.lowercased().hasSuffix(".gguf") { return try GGUFCheckpoint(path: path) }
        return try SafetensorsFile(path: path)
    }

    /// Registers as inputs (`InputFiles`) the path and every file a checkpoint at `path` consists of: tensor
    /// files, shard index and companion files. Unreadable checkpoints register only the path (opening them
    /// later reports the error).
    public static func registerInputs(_ path: String) {
        InputFiles.register(path)
        let dir = modelDirectory(of: path)
        for name in ModelFiles.present(in: dir) + [ShardedSafetensors.indexName] { InputFiles.register(dir + "/" + name) }
        if path.hasSuffix(".ingot"), !FileSystem.exists(path), let n = try? IngotShardSet.shardCount(path) {
            for i in 1...max(n, 1) { InputFiles.register(IngotShardSet.shardName(path, index: i, count: n)) }
        }
        guard let source = try? open(path) else { return }
        for f in Set(source.tensors.map(\.file)) { InputFiles.register(f) }
    }

    static func isHDF5Path(_ path: String) -> Bool {
        let p = path.lowercased()
        return p.hasSuffix(".h5") || p.hasSuffix(".hdf5") || p.hasSuffix(".hdf")
    }

    /// The model directory of a checkpoint path (the directory itself, or the file's directory).
    public static func modelDirectory(of path: String) -> String {
        FileSystem.isDirectory(path) ? path : FileSystem.directoryName(path)
    }
}
