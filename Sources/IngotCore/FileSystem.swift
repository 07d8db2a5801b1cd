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

    /// Reads a whole file of at most `limit` bytes and records it as an input (`InputFiles`).
    /// Regular files only, unless `streams`: then pipes and devices (`<(…)`, `/dev/stdin`) are read until their
    /// end, and refused once past `limit` (`/dev/zero` is not read until memory runs out). A FIFO is never
    /// opened where a regular file is expected, so nothing blocks waiting for a writer.
    public static func read(_ path: String, limit: Int = 1 << 30, streams: Bool = false) throws -> [UInt8] {
        let limit = max(0, limit)
        var st = stat()
        guard stat(path, &st) == 0 else { throw IOError(.open, path: path, errno: errno) }
        let type = st.st_mode & S_IFMT
        if type == S_IFDIR { throw FileError.isDirectory(path) }
        if type != S_IFREG {
            guard streams else { throw FileError.notRegular(path, kind: kindName(type)) }
            let fd = try syscall(.open, path) { open(path, O_RDONLY | O_CLOEXEC) }
            defer { close(fd) }
            let cap = min(limit, streamLimit)
            var out: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = try chunk.withUnsafeMutableBytes { b in try syscall(.read, path) { Glibc.read(fd, b.baseAddress!, b.count) } }
                if n == 0 { break }
                guard out.count + n <= cap else { throw FileError.tooLarge(path, limit: cap) }
                out += chunk[0..<n]
            }
            return out
        }
        guard Int(st.st_size) <= limit else { throw FileError.tooLarge(path, limit: limit) }
        let m = try MappedFile(path: path)
        return withExtendedLifetime(m) { Array(m.bytes) }
    }

    /// The most read from a pipe or device (larger inputs belong in a regular file).
    public static let streamLimit = 256 << 20

    static func kindName(_ type: mode_t) -> String {
        switch type {
        case S_IFIFO: "a FIFO (named pipe)"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        default: "not a regular file"
        }
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

/// A path that is not the kind of file expected, or too large to read.
public enum FileError: Error, CustomStringConvertible, Equatable {
    case isDirectory(String)
    case notRegular(String, kind: String)
    case tooLarge(String, limit: Int)

    public var description: String {
        switch self {
        case .isDirectory(let p): "\(p): is a directory, expected a file"
        case let .notRegular(p, k): "\(p): is \(k), expected a regular file"
        case let .tooLarge(p, l): "\(p): larger than \(l >> 20) MiB, more than Ingot reads from such a file"
        }
    }
}

/// The toolkit's version, recorded in artifacts' provenance.
public let ingotVersion = "0.2.0"
