#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory. Tensor views borrow from it without copying.
///
/// The mapping lives as long as this object; views keep it alive through their `owner`.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeRawBufferPointer
    private let base: UnsafeMutableRawPointer?
    private var ownsHeap = false

    /// Maps `path`. An empty file maps to an empty buffer.
    public init(path: String) throws {
        self.path = path
        // O_NONBLOCK: a FIFO under a checkpoint's name must not block the open; only regular files are mapped.
        let fd = try syscall(.open, path) { open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) }
        defer { close(fd) }
        var st = stat()
        try syscall(.stat, path) { fstat(fd, &st) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw FileError.isDirectory(path) }
        if (st.st_mode & S_IFMT) != S_IFREG { throw FileError.notRegular(path, kind: FileSystem.kindName(st.st_mode & S_IFMT)) }
        let size = Int(st.st_size)
        if size == 0 {
            base = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw IOError(.map, path: path, errno: errno)
        }
        base = p
        bytes = UnsafeRawBufferPointer(start: p, count: size)
    }

    /// An in-memory "file" holding a copy of `contents` (for parsing bytes that did not come from disk:
    /// fuzzing, network buffers). `path` is only used in messages.
    public init(contents: [UInt8], path: String) {
        self.path = path
        if contents.isEmpty {
            base = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            ownsHeap = false
            return
        }
        let p = UnsafeMutableRawPointer.allocate(byteCount: contents.count, alignment: 64)
        contents.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: contents.count) }
        base = p
        bytes = UnsafeRawBufferPointer(start: p, count: contents.count)
        ownsHeap = true
    }

    public var count: Int { bytes.count }

    /// Bytes `[offset, offset+length)`, nil when the range is not inside the file (checked arithmetic).
    public func slice(offset: Int, length: Int) -> UnsafeRawBufferPointer? {
        guard offset >= 0, length >= 0 else { return nil }
        let (end, o) = offset.addingReportingOverflow(length)
        guard !o, end <= bytes.count else { return nil }
        if length == 0 { return UnsafeRawBufferPointer(start: bytes.baseAddress, count: 0) }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<end])
    }

    /// Tells the kernel we will read `range` soon (sequential read-ahead).
    public func adviseWillNeed(offset: Int, length: Int) {
        guard let b = base, length > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page
        _ = madvise(b + start, length + (offset - start), MADV_WILLNEED)
    }

    /// Lets the kernel drop `range` from this process's resident set (pages stay in the page cache).
    public func adviseDontNeed(offset: Int, length: Int) {
        guard let b = base, length > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page
        _ = madvise(b + start, length + (offset - start), MADV_DONTNEED)
    }

    deinit {
        if let b = base { if ownsHeap { b.deallocate() } else { munmap(b, bytes.count) } }
    }
}
