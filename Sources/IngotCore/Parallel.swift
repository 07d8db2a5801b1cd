import Foundation

/// Runs `body(i)` for `i in 0..<n` on all cores and waits. Work must be split by index alone (never by thread),
/// so results do not depend on the number of cores.
public func parallelFor(_ n: Int, _ body: (Int) -> Void) {
    if n <= 0 { return }
    if n == 1 || Parallelism.serial { for i in 0..<n { body(i) }; return }
    withoutActuallyEscaping(body) { b in
        let box = UncheckedSendable(b)
        DispatchQueue.concurrentPerform(iterations: n) { box.value($0) }
    }
}

/// Wraps a value that is shared across threads under the caller's own guarantee of safe use.
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}

/// Process-wide parallelism switch (`--threads 1` sets `serial`). Work is split by index, so results are the same
/// either way; only speed changes.
public enum Parallelism {
    nonisolated(unsafe) public static var serial = false

    /// Applies a `--threads` option: 1 runs everything on one core, anything else uses all cores.
    public static func configure(threads: Int) { serial = threads == 1 }
}
