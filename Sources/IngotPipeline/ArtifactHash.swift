import IngotCore

/// SHA-256 of an artifact: a file's bytes (memory-mapped), or for a directory the hash of every regular file's
/// relative path and bytes hash, in sorted order (temporary and hidden entries skipped).
public enum ArtifactHash {
    public static func sha256(_ path: String) throws -> String {
        if FileSystem.isDirectory(path) {
            var h = SHA256()
            for (rel, full) in try files(path, prefix: "") {
                h.update(rel + "\0" + (try sha256(full)) + "\n")
            }
            return hex(h.finalize())
        }
        let f = try MappedFile(path: path)
        var h = SHA256()
        withExtendedLifetime(f) { h.update(f.bytes) }
        return hex(h.finalize())
    }

    /// (relative path, full path) of every file under `dir`, sorted.
    public static func files(_ dir: String, prefix: String) throws -> [(String, String)] {
        var out: [(String, String)] = []
        for name in try FileSystem.list(dir) where !name.hasPrefix(".") {
            let full = dir + "/" + name, rel = prefix.isEmpty ? name : prefix + "/" + name
            if FileSystem.isDirectory(full) { out += try files(full, prefix: rel) } else { out.append((rel, full)) }
        }
        return out
    }

    static func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }
}
