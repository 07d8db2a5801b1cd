#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call on a file, with the path and the reason in words.
public struct IOError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Operation: String, Sendable { case open, create, stat, map, read, write, sync, rename, remove, mkdir, list }
    public let operation: Operation
    public let path: String
    public let errno: Int32

    public init(_ operation: Operation, path: String, errno: Int32) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    public var isDiskFull: Bool { errno == ENOSPC || errno == EDQUOT || errno == EFBIG }

    public var description: String {
        let reason = String(cString: strerror(errno))
        if isDiskFull { return "\(path): disk full while writing (\(reason)); nothing was written under the final name" }
        return "\(path): cannot \(operation.rawValue): \(reason)"
    }
}

/// Retries a system call interrupted by a signal; throws `IOError` on failure.
@discardableResult
@inline(__always)
func syscall<T: FixedWidthInteger>(_ op: IOError.Operation, _ path: String, _ body: () -> T) throws -> T {
    while true {
        let r = body()
        if r >= 0 { return r }
        let e = errno
        if e == EINTR { continue }
        throw IOError(op, path: path, errno: e)
    }
}
