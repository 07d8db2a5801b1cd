#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The files and directories a command reads, by identity (device and inode) and resolved path, so that no
/// output ever lands on an input (`Destinations` asks before claiming a destination and again before committing).
/// Commands register their inputs before any work (`Checkpoint.registerInputs` for a checkpoint's files), so
/// inputs read late (an evaluation text) are known from the start.
public enum InputFiles {
    struct Identity: Hashable { let device: UInt64, inode: UInt64 }

    final class Registry: @unchecked Sendable {
        let lock = NSLock()
        var identities: [Identity: String] = [:]
        var resolved: [String: String] = [:]  // resolved path → path as given
    }
    static let registry = Registry()

    /// Records `path` (a file or a directory) as an input. Best effort: a path that does not exist is not an
    /// input anything could overwrite.
    public static func register(_ path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return }
        add(path, st)
    }

    private static func add(_ path: String, _ st: stat) {
        let real = resolve(path) ?? path
        let r = registry
        r.lock.lock(); defer { r.lock.unlock() }
        r.identities[Identity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))] = path
        r.resolved[real] = path
    }

    /// The input that writing `destination` would overwrite or, when it is (or will replace) a directory,
    /// remove: the destination itself, a file it links to, or (unless `inPlace`: a directory written into, never
    /// replaced) anything inside it. Nil when it touches no input.
    public static func conflict(destination: String, inPlace: Bool = false) -> String? {
        let r = registry
        var st = stat()
        let exists = stat(destination, &st) == 0
        let real = resolve(destination) ?? absolute(destination)
        r.lock.lock()
        let identities = r.identities, resolved = r.resolved
        r.lock.unlock()
        if exists, let hit = identities[Identity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))] { return hit }
        if inPlace { return resolved[real] }
        let inside = resolved.filter { $0.key == real || $0.key.hasPrefix(real.hasSuffix("/") ? real : real + "/") }
        if let hit = inside.min(by: { ($0.key.count, $0.key) < ($1.key.count, $1.key) }) { return hit.value }
        // Hard links to an input inside a directory about to be replaced.
        if exists, (st.st_mode & S_IFMT) == S_IFDIR, !identities.isEmpty,
           let walker = FileManager.default.enumerator(atPath: destination) {
            var seen = 0
            while let rel = walker.nextObject() as? String, seen < 100_000 {
                seen += 1
                var c = stat()
                if lstat(destination + "/" + rel, &c) == 0,
                   let hit = identities[Identity(device: UInt64(c.st_dev), inode: UInt64(c.st_ino))] { return hit }
            }
        }
        return nil
    }

    /// The canonical path of an existing file, or of a missing file in an existing directory.
    static func resolve(_ path: String) -> String? {
        if let p = realpath(path, nil) { defer { free(p) }; return String(cString: p) }
        guard let d = realpath(FileSystem.directoryName(path), nil) else { return nil }
        defer { free(d) }
        let dir = String(cString: d)
        return (dir == "/" ? "" : dir) + "/" + FileSystem.baseName(path)
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}
