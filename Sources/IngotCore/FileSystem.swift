#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Small POSIX helpers used by readers and writers.
public enum FileSystem {
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    public static func directoryName(_ path: String) -> String {
        guard let i = path.lastIndex(of: "/") else { return "." }
        if i == path.startIndex { return "/" }
        return String(path[..<i])
    }

    public static func baseName(_ path: String) -> String {
        guard let i = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: i)...])
    }

    /// fsyncs a directory so a rename inside it is durable. Best effort.
    public static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    public static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Creates a directory (and its parents).
    public static func makeDirectory(_ path: String) throws {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw IOError(.mkdir, path: path, errno: EACCES)
        }
    }

    /// Names in a directory, sorted (deterministic).
    public static func list(_ path: String) throws -> [String] {
        do { return try FileManager.default.contentsOfDirectory(atPath: path).sorted() } catch {
            throw IOError(.list, path: path, errno: ENOENT)
        }
    }

    /// Reads a whole (small) file.
    /// Regular files are memory-mapped; pipes and other streams (`<(…)`, `/dev/stdin`) are read to the end.
    public static func read(_ path: String) throws -> [UInt8] {
        var st = stat()
        if stat(path, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG {
            guard let h = FileHandle(forReadingAtPath: path) else { throw IOError(.open, path: path, errno: errno) }
            defer { try? h.close() }
            do { return Array(try h.readToEnd() ?? Data()) } catch { throw IOError(.read, path: path, errno: EIO) }
        }
        let m = try MappedFile(path: path)
        return withExtendedLifetime(m) { Array(m.bytes) }
    }

    /// Removes temporary files a killed run left beside `path` (ours, from processes no longer alive).
    public static func removeStaleTemporaries(besides path: String) {
        let dir = directoryName(path)
        let prefix = "." + baseName(path) + OutputFile.temporaryMarker
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for n in names where n.hasPrefix(prefix) {
            let rest = n.dropFirst(prefix.count)
            guard let pidText = rest.split(separator: "-").first, let pid = Int32(pidText) else { continue }
            if pid != getpid(), kill(pid, 0) != 0, errno == ESRCH { removeTree(dir + "/" + n) }
        }
    }
}

/// The toolkit's version, recorded in artifacts' provenance.
public let ingotVersion = "0.2.0"
