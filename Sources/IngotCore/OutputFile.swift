#if canImport(Glibc)
import CMalloc
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A file written crash-safely: bytes go to a temporary name beside the destination, `commit()` fsyncs and
/// renames it into place (then fsyncs the directory). If the writer is dropped without `commit()` or any write
/// fails, the temporary file is removed, so nothing is ever left half-written under the final name.
///
/// The destination is claimed first (`Destinations.claim`: never an input, not an existing file without
/// `overwrite`, locked against other writers); without `overwrite` the final rename never replaces anything.
///
/// Where the filesystem supports it (Linux `O_DIRECT`), whole 4 KiB-aligned blocks go from the buffer straight to
/// the device: writing hundreds of GB does not evict the page cache (the mapped input among it), and the copy into
/// freshly allocated page-cache pages, the dearest part of a buffered write, disappears. The last partial block is
/// written zero-padded and the file truncated to its size. Elsewhere (tmpfs, other systems) writes are buffered.
public final class OutputFile {
    public let path: String
    public let temporaryPath: String
    private let overwrite: Bool
    /// Inside an `OutputDirectory`'s temporary directory: no claim, the directory's commit publishes it.
    private let staged: Bool
    private let sink: FileSink
    /// The buffer being filled, and the one the background writer may be writing (see `submit`).
    private var buffer: UnsafeMutableRawBufferPointer
    private var spare: UnsafeMutableRawBufferPointer
    private var buffered = 0
    /// Full buffers are written on this thread while the caller fills the other one: the stage computes while the
    /// disk writes. Only one write is ever in flight, and the caller waits for it (`waitForWriter`) before it
    /// touches the file or the spare buffer itself.
    private let writer = BackgroundWriter()
    /// Direct I/O writes whole blocks of this size (see `FileSink.direct`).
    static let directBlock = 4096
    private var committed = false
    /// Bytes written so far (including buffered ones).
    public private(set) var offset: Int = 0

    /// Prefix of temporary names; `Atomic.removeStaleTemporaries` cleans what a killed run left behind.
    public static let temporaryMarker = ".ingot-tmp-"

    /// Opens a temporary file for `path`. Refuses when `path` exists unless `overwrite` is set.
    public convenience init(path: String, overwrite: Bool = false, bufferSize: Int = 8 << 20) throws {
        try self.init(path: path, overwrite: overwrite, bufferSize: bufferSize, staged: false)
    }

    init(path: String, overwrite: Bool, bufferSize: Int, staged: Bool) throws {
        self.path = path
        self.overwrite = overwrite
        self.staged = staged
        if !staged { try Destinations.claim(path, kind: .file, overwrite: overwrite) }
        self.temporaryPath = Destinations.temporaryName(for: path)
        let tmp = temporaryPath
        let fd: Int32
        do { fd = try syscall(.open, tmp) { open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) } } catch let e as IOError {
            if !staged { Destinations.release(path) }
            throw IOError(.create, path: path, errno: e.errno)  // name what the user asked for, not our temporary
        }
        Destinations.temporaries.add(tmp)
        sink = FileSink(path: path, temporaryPath: tmp, fd: fd)
        let size = max(Self.directBlock, (bufferSize + Self.directBlock - 1) / Self.directBlock * Self.directBlock)
        buffer = .allocate(byteCount: size, alignment: Self.directBlock)
        spare = .allocate(byteCount: size, alignment: Self.directBlock)
        #if canImport(Glibc)
        // Set after creating (not an open flag): on a filesystem without direct I/O, open(O_CREAT | O_DIRECT) can
        // create the file and still fail.
        let flags = fcntl(fd, F_GETFL)
        if ingot_o_direct() != 0, flags >= 0, fcntl(fd, F_SETFL, flags | ingot_o_direct()) == 0 { sink.direct = true }
        #endif
    }

    deinit {
        if !committed { discard() }
        writer.stop()  // after waiting for its last write
        buffer.deallocate()
        spare.deallocate()
    }

    /// Appends bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        // Everything goes through the buffers: the caller's memory is free to reuse on return, and direct I/O
        // needs aligned memory.
        var done = 0
        while done < bytes.count {
            let n = min(bytes.count - done, buffer.count - buffered)
            (buffer.baseAddress! + buffered).copyMemory(from: bytes.baseAddress! + done, byteCount: n)
            buffered += n
            done += n
            if buffered == buffer.count { try submit() }
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

    /// Hands the full buffer to the background writer and continues in the spare one (once its write is done).
    private func submit() throws {
        try waitForWriter()
        swap(&buffer, &spare)
        let bytes = UncheckedSendable(UnsafeRawBufferPointer(rebasing: spare[0..<buffered]))
        buffered = 0
        let sink = sink
        writer.submit {
            do { try sink.writeAll(bytes.value) } catch { sink.error = error }
        }
    }

    /// Waits for the background write; rethrows its failure.
    private func waitForWriter() throws {
        writer.wait()
        if let e = sink.error { throw e }
    }

    /// Writes the last buffered bytes and waits for every write. With direct I/O a partial last block is written
    /// zero-padded and the file truncated to `offset`.
    private func flushLast() throws {
        try waitForWriter()
        guard buffered > 0 else { return }
        var count = buffered
        if sink.direct, count % Self.directBlock != 0 {
            let padded = (count / Self.directBlock + 1) * Self.directBlock
            UnsafeMutableRawBufferPointer(rebasing: buffer[count..<padded]).initializeMemory(as: UInt8.self, repeating: 0)
            count = padded
        }
        try sink.writeAll(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        buffered = 0
        if sink.written > offset { try syscall(.write, path) { ftruncate(sink.fd, off_t(offset)) } }
    }

    /// Flushes, fsyncs, and renames the temporary file to `path`.
    public func commit() throws {
        do {
            try flushLast()
            let tmp = temporaryPath
            try syscall(.sync, tmp) { fsync(sink.fd) }
            close(sink.fd)
            sink.fd = -1
            if staged {
                try syscall(.rename, path) { rename(tmp, path) }
                Destinations.temporaries.remove(tmp)
            } else {
                try Destinations.publishFile(tmp, at: path, overwrite: overwrite)
            }
            committed = true
        } catch {
            discard()
            // Report failures against the destination the user named.
            if let e = error as? IOError { throw IOError(e.operation, path: path, errno: e.errno) }
            throw error
        }
    }

    /// Closes and removes the temporary file.
    public func discard() {
        writer.wait()
        if sink.fd >= 0 { close(sink.fd); sink.fd = -1 }
        if !committed {
            unlink(temporaryPath)
            Destinations.temporaries.remove(temporaryPath)
            if !staged { Destinations.release(path) }
        }
        committed = true
    }
}

/// The temporary file's descriptor and what writing to it needs, shared by an `OutputFile` and its writer thread.
/// The writer's jobs hold this, never the `OutputFile`: were a job to hold the last reference to the file, the file's
/// deinit would run on the writer thread and wait for that thread's own job.
private final class FileSink: @unchecked Sendable {
    let path: String, temporaryPath: String
    var fd: Int32
    /// Writes bypass the page cache (`O_DIRECT`): only whole `OutputFile.directBlock`s, from aligned buffers, at
    /// aligned offsets.
    var direct = false
    /// The background write's failure, thrown by every later write and by `commit`.
    var error: Error?
    /// Every streaming stage ends in an output file, so this is where freed heap pages are handed back.
    var trimmer = HeapTrimmer()

    init(path: String, temporaryPath: String, fd: Int32) {
        self.path = path
        self.temporaryPath = temporaryPath
        self.fd = fd
    }

    /// Writes `bytes` at the end of the file (on the caller's thread or the background writer, never both).
    func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        let tmp = temporaryPath
        while done < bytes.count {
            let n: Int
            do { n = try syscall(.write, tmp) { Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done) } } catch let e as IOError {
                // A filesystem that accepted O_DIRECT but refuses this write: go on buffered (nothing was written).
                if direct, e.errno == EINVAL, stopDirect() { continue }
                throw IOError(.write, path: path, errno: e.errno)
            }
            if n == 0 { throw IOError(.write, path: path, errno: EIO) }
            done += n
            // A short direct write leaves the next one unaligned: finish buffered.
            if direct, done < bytes.count, n % OutputFile.directBlock != 0, !stopDirect() { throw IOError(.write, path: path, errno: EIO) }
        }
        written += bytes.count
        startWriteback()
        trimmer.processed(bytes.count)
    }

    /// Clears `O_DIRECT`; later writes are buffered. False if the flag cannot be cleared.
    func stopDirect() -> Bool {
        #if canImport(Glibc)
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags & ~ingot_o_direct()) == 0 else { return false }
        #endif
        direct = false
        return true
    }

    /// Bytes handed to the kernel so far, and how many of them have been scheduled for writeback.
    var written = 0, scheduled = 0
    /// Writeback is started every this many bytes.
    static let writebackStep = 8 << 20

    /// Asks the kernel to start writing back what has been written since the last call (Linux: `sync_file_range`
    /// with `SYNC_FILE_RANGE_WRITE`, which does not wait), every `writebackStep` bytes: the disk works while the
    /// stage computes, and `commit()`'s fsync, which alone makes the file durable, has only the tail left.
    func startWriteback() {
        #if canImport(Glibc)
        guard !direct, written - scheduled >= Self.writebackStep else { return }
        _ = ingot_start_writeback(fd, __off64_t(scheduled), __off64_t(written - scheduled))
        scheduled = written
        #endif
    }
}

/// One thread that runs an `OutputFile`'s writes, one at a time, while the caller goes on (a thread of its own: a
/// write blocked on the disk must not hold one of the workers `parallelFor` counts on).
private final class BackgroundWriter: @unchecked Sendable {
    private let condition = NSCondition()
    private var job: (@Sendable () -> Void)?
    private var stopping = false

    init() {
        let t = Thread { [self] in run() }
        t.name = "ingot.output-file"
        t.start()
    }

    private func run() {
        condition.lock()
        while true {
            while job == nil, !stopping { condition.wait() }
            guard let j = job else { break }
            condition.unlock()
            j()
            condition.lock()
            job = nil
            condition.broadcast()
        }
        condition.unlock()
    }

    /// Runs `j` on the thread, after the previous job has finished.
    func submit(_ j: @escaping @Sendable () -> Void) {
        condition.lock()
        while job != nil { condition.wait() }
        job = j
        condition.broadcast()
        condition.unlock()
    }

    /// Returns once no job is running or waiting.
    func wait() {
        condition.lock()
        while job != nil { condition.wait() }
        condition.unlock()
    }

    /// Ends the thread once its job (if any) is done.
    func stop() {
        condition.lock()
        while job != nil { condition.wait() }
        stopping = true
        condition.broadcast()
        condition.unlock()
    }
}

public enum OutputError: Error, CustomStringConvertible, Equatable {
    case destinationExists(String)
    /// Writing the destination would overwrite or remove an input of this run.
    case isInput(destination: String, input: String)
    /// Another process holds the destination's lock.
    case busy(String)
    /// The destination exists as something the output cannot replace (a directory for a file output).
    case wrongKind(String, reason: String)
    /// A directory to replace holds files Ingot did not write.
    case foreign(String, names: [String])
    /// Without overwrite, something appeared under the destination while the output was being written.
    case appeared(String)

    public var description: String {
        switch self {
        case .destinationExists(let p): "\(p): destination exists (pass --force to overwrite)"
        case let .isInput(d, i):
            d == i || InputFiles.resolve(d) == InputFiles.resolve(i)
                ? "\(d): is an input of this command; choose another destination (--force never overwrites an input)"
                : "\(d): would overwrite or remove the input \(i); choose another destination (--force never overwrites an input)"
        case .busy(let p): "\(p): another ingot process is writing this destination; wait for it or choose another destination"
        case let .wrongKind(p, r): "\(p): \(r)"
        case let .foreign(p, names):
            "\(p): holds files Ingot did not write (\(names.prefix(3).joined(separator: ", "))\(names.count > 3 ? ", …" : "")); "
                + "choose another destination, or pass --force-foreign to replace it anyway"
        case .appeared(let p): "\(p): was created by someone else while this output was being written; nothing was replaced"
        }
    }
}

/// A directory written crash-safely: files are written into a temporary sibling directory, which `commit()`
/// renames into place, or, replacing an existing directory, swaps with it atomically (the old one is then
/// removed). Dropped without `commit()`, the temporary directory is removed. The directory gets a marker,
/// `Destinations.markerName`, listing the files Ingot wrote, which is how `--force` later recognizes it.
public final class OutputDirectory {
    public let path: String
    public let temporaryPath: String
    private let overwrite: Bool
    private var committed = false

    public init(path: String, overwrite: Bool = false) throws {
        self.path = path
        self.overwrite = overwrite
        try Destinations.claim(path, kind: .directory, overwrite: overwrite)
        temporaryPath = Destinations.temporaryName(for: path)
        let tmp = temporaryPath
        do { try syscall(.mkdir, tmp) { mkdir(tmp, 0o755) } } catch let e as IOError {
            Destinations.release(path)
            throw IOError(.create, path: path, errno: e.errno)
        }
        Destinations.temporaries.add(tmp)
    }

    deinit { if !committed { discard() } }

    /// Path of a file inside the (temporary) directory.
    public func file(_ name: String) -> String { temporaryPath + "/" + name }

    /// Opens a crash-safe file inside the directory.
    public func create(_ name: String) throws -> OutputFile {
        try OutputFile(path: file(name), overwrite: true, bufferSize: 8 << 20, staged: true)
    }

    /// Publishes the directory: renamed into place, or swapped with the existing one when overwriting.
    public func commit() throws {
        do {
            try Destinations.writeMarker(in: temporaryPath)
            try Destinations.publishDirectory(temporaryPath, at: path, overwrite: overwrite)
        } catch {
            discard()
            throw error
        }
        committed = true
    }

    public func discard() {
        if !committed {
            FileSystem.removeTree(temporaryPath)
            Destinations.temporaries.remove(temporaryPath)
            Destinations.release(path)
        }
        committed = true
    }
}

extension OutputFile {
    /// Writes a whole text file crash-safely (temporary name, fsync, rename); an existing file is replaced only
    /// with `overwrite`.
    public static func writeText(_ text: String, to path: String, overwrite: Bool) throws {
        let f = try OutputFile(path: path, overwrite: overwrite)
        try f.write(text)
        try f.commit()
    }
}

/// The one discipline for every destination a command writes, main output or side output:
///
/// - never an input: not a file this process reads (same inode or same resolved path), not a directory holding
///   one (`InputFiles`), with or without `--force`;
/// - an existing destination is replaced only with `overwrite` (`--force`), and only the destination: a file by
///   an atomic rename, a directory by an atomic swap (`renameat2(RENAME_EXCHANGE)`), the old one removed after;
///   a directory is replaced only if Ingot wrote it (its `markerName` lists every file in it), unless
///   `allowForeign` (`--force-foreign`);
/// - claimed before any work (`claim`), which checks all of the above, proves the directory writable and takes
///   a lock (`.NAME.ingot-lock` beside the destination, `flock`), so of two processes writing one destination
///   exactly one proceeds and the other fails at once; without `overwrite` the final rename is no-replace
///   (`RENAME_NOREPLACE`), so nothing that appeared meanwhile is ever replaced;
/// - temporaries (and locks) are removed on error, at exit and on SIGINT/SIGTERM/SIGHUP (`installSignalCleanup`).
public enum Destinations {
    public enum Kind: Sendable {
        case file, directory
        /// A directory written in place (a run's output directory): only checked against inputs and locked.
        case workDirectory
    }

    /// The marker Ingot writes in every directory it produces: the names of the files it wrote (sorted JSON).
    public static let markerName = ".ingot-output.json"

    struct Claim { var kind: Kind, lockFD: Int32, lockPath: String }

    final class State: @unchecked Sendable {
        let lock = NSLock()
        var claims: [String: Claim] = [:]
        var allowForeign = false
    }
    static let state = State()

    /// Lets `--force` replace directories holding files Ingot did not write (never ones holding an input).
    public static func allowForeign(_ allow: Bool) {
        state.lock.lock(); state.allowForeign = allow; state.lock.unlock()
    }

    /// Checks `path` as a destination and locks it for this process (idempotent: a path already claimed by this
    /// process is not checked again). Throws `OutputError` or `IOError` naming `path`.
    public static func claim(_ path: String, kind: Kind, overwrite: Bool) throws {
        let key = InputFiles.resolve(normalized(path)) ?? InputFiles.absolute(normalized(path))
        state.lock.lock()
        let held = state.claims[key] != nil, foreign = state.allowForeign
        state.lock.unlock()
        if held { return }
        let p = normalized(path)
        if let input = InputFiles.conflict(destination: p, inPlace: kind == .workDirectory) {
            throw OutputError.isInput(destination: path, input: input)
        }
        let dir = FileSystem.directoryName(p)
        guard FileSystem.isDirectory(dir) else {
            throw IOError(.create, path: path, errno: FileSystem.exists(dir) ? ENOTDIR : ENOENT)
        }
        // The lock file is also the proof that the directory is writable, before any work.
        let lockPath = dir + "/." + FileSystem.baseName(p) + ".ingot-lock"
        let fd = try lock(lockPath, for: path)
        var ok = false
        defer { if !ok { unlink(lockPath); close(fd) } }
        var st = stat()
        if kind != .workDirectory, lstat(p, &st) == 0 {
            guard overwrite else { throw OutputError.destinationExists(path) }
            var target = stat()
            let isDir = stat(p, &target) == 0 && (target.st_mode & S_IFMT) == S_IFDIR
            switch kind {
            case .file where isDir:
                throw OutputError.wrongKind(path, reason: "is a directory; a file output does not replace a directory")
            case .directory where !foreign:
                let names = isDir ? foreignNames(in: p) : [FileSystem.baseName(p)]
                if !names.isEmpty { throw OutputError.foreign(path, names: names) }
            default: break
            }
        }
        ok = true
        state.lock.lock()
        state.claims[key] = Claim(kind: kind, lockFD: fd, lockPath: lockPath)
        state.lock.unlock()
    }

    /// Releases this process's claim on `path` (its lock file is removed).
    public static func release(_ path: String) {
        let p = normalized(path)
        let key = InputFiles.resolve(p) ?? InputFiles.absolute(p)
        state.lock.lock()
        let c = state.claims.removeValue(forKey: key)
        state.lock.unlock()
        if let c { unlink(c.lockPath); close(c.lockFD) }
    }

    /// Takes the lock file's `flock` without waiting. The lock file is unlinked on release, so after locking it
    /// must still be the file at `lockPath` (else another process released it meanwhile: try again).
    static func lock(_ lockPath: String, for path: String) throws -> Int32 {
        for _ in 0..<100 {
            let fd: Int32
            do { fd = try syscall(.create, lockPath) { open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644) } } catch let e as IOError {
                throw IOError(.create, path: path, errno: e.errno)
            }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let e = errno
                close(fd)
                if e == EWOULDBLOCK { throw OutputError.busy(path) }
                throw IOError(.create, path: path, errno: e)
            }
            var a = stat(), b = stat()
            if fstat(fd, &a) == 0, lstat(lockPath, &b) == 0, a.st_ino == b.st_ino, a.st_dev == b.st_dev { return fd }
            close(fd)
        }
        throw OutputError.busy(path)
    }

    /// Names in directory `dir` that its marker does not list (everything, when there is no marker).
    static func foreignNames(in dir: String) -> [String] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0 != markerName }.sorted()
        guard !names.isEmpty else { return [] }
        var listed = Set<String>()
        if let bytes = try? FileSystem.read(dir + "/" + markerName, limit: 1 << 20),
           let j = try? JSON.parse(bytes, rejectDuplicateKeys: false), j["written_by"]?.stringValue == "ingot" {
            listed = Set(j["files"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        }
        return names.filter { !listed.contains($0) }
    }

    /// Writes the marker listing every file of the (temporary) directory `dir`.
    static func writeMarker(in dir: String) throws {
        let names = try FileSystem.list(dir).filter { $0 != markerName }
        let text = JSON.object([("written_by", .string("ingot")), ("files", .array(names.map { .string($0) }))]).serialized() + "\n"
        let f = try OutputFile(path: dir + "/" + markerName, overwrite: true, bufferSize: 1 << 16, staged: true)
        try f.write(text)
        try f.commit()
    }

    /// A fresh temporary name beside `path` (`removeStaleTemporaries` recognizes it by the pid).
    public static func temporaryName(for path: String) -> String {
        let p = normalized(path)
        return FileSystem.directoryName(p) + "/." + FileSystem.baseName(p) + OutputFile.temporaryMarker + String(getpid())
            + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
    }

    /// Moves the complete temporary file `tmp` to `path`: replacing an existing file only with `overwrite`.
    public static func publishFile(_ tmp: String, at path: String, overwrite: Bool) throws {
        let p = normalized(path)
        defer { release(path) }
        if let input = InputFiles.conflict(destination: p) {
            unlink(tmp); temporaries.remove(tmp)
            throw OutputError.isInput(destination: path, input: input)
        }
        if overwrite {
            try syscall(.rename, path) { rename(tmp, p) }
        } else {
            try renameNoReplace(tmp, p, path: path)
        }
        temporaries.remove(tmp)
        FileSystem.syncDirectory(FileSystem.directoryName(p))
    }

    /// Moves the complete temporary directory `tmp` to `path`; an existing one (only with `overwrite`) is swapped
    /// out atomically and then removed, so a kill at any moment leaves either the old or the new directory.
    static func publishDirectory(_ tmp: String, at path: String, overwrite: Bool) throws {
        let p = normalized(path)
        defer { release(path) }
        FileSystem.syncDirectory(tmp)
        var st = stat()
        if overwrite, lstat(p, &st) == 0 {
            if let input = InputFiles.conflict(destination: p) { throw OutputError.isInput(destination: path, input: input) }
            state.lock.lock(); let foreign = state.allowForeign; state.lock.unlock()
            if !foreign, (st.st_mode & S_IFMT) == S_IFDIR {
                let names = foreignNames(in: p)
                if !names.isEmpty { throw OutputError.foreign(path, names: names) }
            }
            if renameat2(AT_FDCWD, tmp, AT_FDCWD, p, renameExchange) == 0 {
                // `tmp` now names the old directory.
                FileSystem.syncDirectory(FileSystem.directoryName(p))
                FileSystem.removeTree(tmp)
                temporaries.remove(tmp)
                return
            }
            let e = errno
            guard e == EINVAL || e == ENOSYS else { throw IOError(.rename, path: path, errno: e) }
            // No atomic exchange on this filesystem: move the old one aside, the new one in, then remove the old.
            let aside = temporaryName(for: path)
            temporaries.add(aside)
            try syscall(.rename, path) { rename(p, aside) }
            if rename(tmp, p) != 0 {
                let e = errno
                rename(aside, p)
                temporaries.remove(aside)
                throw IOError(.rename, path: path, errno: e)
            }
            temporaries.remove(tmp)
            FileSystem.syncDirectory(FileSystem.directoryName(p))
            FileSystem.removeTree(aside)
            temporaries.remove(aside)
            return
        }
        try renameNoReplace(tmp, p, path: path)
        temporaries.remove(tmp)
        FileSystem.syncDirectory(FileSystem.directoryName(p))
    }

    /// `rename` that fails rather than replace anything (`RENAME_NOREPLACE`; `link` + `unlink` for files on
    /// filesystems without it; directories there rely on the destination's lock).
    static func renameNoReplace(_ from: String, _ to: String, path: String) throws {
        if renameat2(AT_FDCWD, from, AT_FDCWD, to, renameNoReplaceFlag) == 0 { return }
        var e = errno
        if e == EINVAL || e == ENOSYS {
            if FileSystem.isDirectory(from) {
                if !FileSystem.exists(to), rename(from, to) == 0 { return }
                e = FileSystem.exists(to) ? EEXIST : errno
            } else if link(from, to) == 0 {
                unlink(from)
                return
            } else {
                e = errno
            }
        }
        if e == EEXIST || e == ENOTEMPTY { throw OutputError.appeared(path) }
        throw IOError(.rename, path: path, errno: e)
    }

    static func normalized(_ path: String) -> String {
        var p = path
        while p.count > 1, p.hasSuffix("/") { p.removeLast() }
        return p
    }

    // MARK: temporaries and cleanup

    /// Paths (files or directories) to remove if the process is interrupted or exits before publishing them.
    public final class Temporaries: @unchecked Sendable {
        let lock = NSLock()
        var paths = Set<String>()
        public func add(_ p: String) { lock.lock(); paths.insert(p); lock.unlock() }
        public func remove(_ p: String) { lock.lock(); paths.remove(p); lock.unlock() }
        func drain() -> [String] { lock.lock(); defer { lock.unlock() }; let all = Array(paths); paths = []; return all }
    }
    public static let temporaries = Temporaries()

    /// Removes every temporary and lock this process holds (at exit, or on a signal).
    public static func cleanUp() {
        for p in temporaries.drain() { FileSystem.removeTree(p) }
        state.lock.lock()
        let claims = state.claims
        state.claims = [:]
        state.lock.unlock()
        for (_, c) in claims { unlink(c.lockPath); close(c.lockFD) }
    }

    nonisolated(unsafe) static var signalSources: [DispatchSourceSignal] = []

    /// On SIGINT, SIGTERM or SIGHUP: remove temporaries and locks, then exit with 128 + the signal number; at
    /// normal exit too. Call once, early in `main`.
    public static func installSignalCleanup() {
        atexit { Destinations.cleanUp() }
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                Destinations.cleanUp()
                _exit(128 + sig)
            }
            s.resume()
            signalSources.append(s)
        }
    }
}

#if canImport(Glibc)
@_silgen_name("renameat2")
private func renameat2(_ olddirfd: Int32, _ oldpath: UnsafePointer<CChar>, _ newdirfd: Int32, _ newpath: UnsafePointer<CChar>,
                       _ flags: UInt32) -> Int32
private let renameNoReplaceFlag: UInt32 = 1  // RENAME_NOREPLACE
private let renameExchange: UInt32 = 2  // RENAME_EXCHANGE
#endif
