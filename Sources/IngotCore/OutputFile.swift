#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file written crash-safely: bytes go to a temporary name beside the destination, `commit()` fsyncs and
/// renames it into place (then fsyncs the directory). If the writer is dropped without `commit()` or any write
/// fails, the temporary file is removed, so nothing is ever left half-written under the final name.
public final class OutputFile {
    public let path: String
    public let temporaryPath: String
    private var fd: Int32
    private var buffer: UnsafeMutableRawBufferPointer
    private var buffered = 0
    private var committed = false
    /// Every streaming stage ends in an output file, so this is where freed heap pages are handed back.
    private var trimmer = HeapTrimmer()
    /// Bytes written so far (including buffered ones).
    public private(set) var offset: Int = 0

    /// Prefix of temporary names; `Atomic.removeStaleTemporaries` cleans what a killed run left behind.
    public static let temporaryMarker = ".ingot-tmp-"

    /// Opens a temporary file for `path`. Refuses when `path` exists unless `overwrite` is set.
    public init(path: String, overwrite: Bool = false, bufferSize: Int = 8 << 20) throws {
        self.path = path
        if !overwrite, FileSystem.exists(path) { throw OutputError.destinationExists(path) }
        let dir = FileSystem.directoryName(path)
        let base = FileSystem.baseName(path)
        self.temporaryPath = dir + "/." + base + OutputFile.temporaryMarker + String(getpid())
            + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let tmp = temporaryPath
        do { fd = try syscall(.open, tmp) { open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) } } catch let e as IOError {
            throw IOError(.create, path: path, errno: e.errno)  // name what the user asked for, not our temporary
        }
        buffer = .allocate(byteCount: bufferSize, alignment: 64)
    }

    deinit {
        if !committed { discard() }
        buffer.deallocate()
    }

    /// Appends bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        if bytes.count >= buffer.count {
            try flush()
            try writeAll(bytes)
        } else {
            if buffered + bytes.count > buffer.count { try flush() }
            (buffer.baseAddress! + buffered).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            buffered += bytes.count
        }
        offset += bytes.count
    }

    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }
    public func write(_ string: String) throws { try write(Array(string.utf8)) }

    /// Appends `count` zero bytes (padding).
    public func writeZeros(_ count: Int) throws {
        guard count > 0 else { return }
        try write([UInt8](repeating: 0, count: count))
    }

    /// Writes `bytes` at an absolute position already written (e.g. patching a header). Flushes first.
    public func patch(at position: Int, _ bytes: [UInt8]) throws {
        try flush()
        var done = 0
        while done < bytes.count {
            let n = try bytes.withUnsafeBytes { raw in
                try syscall(.write, temporaryPath) {
                    pwrite(fd, raw.baseAddress! + done, raw.count - done, off_t(position + done))
                }
            }
            done += n
        }
    }

    public func flush() throws {
        guard buffered > 0 else { return }
        try writeAll(UnsafeRawBufferPointer(rebasing: buffer[0..<buffered]))
        buffered = 0
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        let tmp = temporaryPath
        while done < bytes.count {
            let n: Int
            do { n = try syscall(.write, tmp) { Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done) } } catch let e as IOError {
                throw IOError(.write, path: path, errno: e.errno)
            }
            if n == 0 { throw IOError(.write, path: path, errno: EIO) }
            done += n
        }
        trimmer.processed(bytes.count)
    }

    /// Flushes, fsyncs, and renames the temporary file to `path`.
    public func commit() throws {
        do {
            try flush()
            let tmp = temporaryPath
            try syscall(.sync, tmp) { fsync(fd) }
            close(fd)
            fd = -1
            try syscall(.rename, path) { rename(tmp, path) }
            committed = true
            FileSystem.syncDirectory(FileSystem.directoryName(path))
        } catch let e as IOError {
            discard()
            // Report failures against the destination the user named.
            throw IOError(e.operation, path: path, errno: e.errno)
        }
    }

    /// Closes and removes the temporary file.
    public func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        if !committed { unlink(temporaryPath) }
        committed = true
    }
}

public enum OutputError: Error, CustomStringConvertible, Equatable {
    case destinationExists(String)

    public var description: String {
        switch self {
        case .destinationExists(let p): "\(p): destination exists (pass --force to overwrite)"
        }
    }
}

/// A directory written crash-safely: files are written into a temporary sibling directory, which `commit()`
/// renames into place. Dropped without `commit()`, the temporary directory is removed.
public final class OutputDirectory {
    public let path: String
    public let temporaryPath: String
    private let overwrite: Bool
    private var committed = false

    public init(path: String, overwrite: Bool = false) throws {
        self.path = path
        self.overwrite = overwrite
        if !overwrite, FileSystem.exists(path) { throw OutputError.destinationExists(path) }
        temporaryPath = FileSystem.directoryName(path) + "/." + FileSystem.baseName(path) + OutputFile.temporaryMarker
            + String(getpid()) + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let tmp = temporaryPath
        do { try syscall(.mkdir, tmp) { mkdir(tmp, 0o755) } } catch let e as IOError {
            throw IOError(.create, path: path, errno: e.errno)
        }
    }

    deinit { if !committed { FileSystem.removeTree(temporaryPath) } }

    /// Path of a file inside the (temporary) directory.
    public func file(_ name: String) -> String { temporaryPath + "/" + name }

    /// Opens a crash-safe file inside the directory.
    public func create(_ name: String) throws -> OutputFile { try OutputFile(path: file(name), overwrite: true) }

    /// Renames the temporary directory to `path` (replacing an existing one when overwriting).
    public func commit() throws {
        FileSystem.syncDirectory(temporaryPath)
        if overwrite, FileSystem.exists(path) { FileSystem.removeTree(path) }
        let tmp = temporaryPath
        do { try syscall(.rename, path) { rename(tmp, path) } } catch {
            FileSystem.removeTree(temporaryPath)
            committed = true
            throw error
        }
        committed = true
        FileSystem.syncDirectory(FileSystem.directoryName(path))
    }

    public func discard() {
        if !committed { FileSystem.removeTree(temporaryPath) }
        committed = true
    }
}

extension OutputFile {
    /// Writes a whole text file crash-safely (temporary name, fsync, rename), replacing any existing file.
    public static func writeText(_ text: String, to path: String) throws {
        let f = try OutputFile(path: path, overwrite: true)
        try f.write(text)
        try f.commit()
    }
}
