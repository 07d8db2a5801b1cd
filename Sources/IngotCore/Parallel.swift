import Foundation

/// Runs `body(i)` for `i in 0..<n` on `workers` threads (0: the count `Parallelism.workers` binds, whose 0 means
/// every core) and waits. Work must be split by index alone (never by thread), so results do not depend on the
/// number of workers. Indices are handed out in order, one at a time, to whichever worker is free; a nested
/// `parallelFor` gets an equal share of this one's workers, so the total stays within the count.
public func parallelFor(_ n: Int, workers: Int = 0, _ body: (Int) -> Void) {
    if n <= 0 { return }
    let total = workers > 0 ? workers : Parallelism.resolvedWorkers
    let used = min(total, n)
    if used <= 1 { for i in 0..<n { body(i) }; return }
    let inner = max(1, total / used)
    let next = IndexDispenser()
    withoutActuallyEscaping(body) { b in
        let box = UncheckedSendable(b)
        DispatchQueue.concurrentPerform(iterations: used) { _ in
            Parallelism.$workers.withValue(inner) {
                while true {
                    let i = next.take()
                    if i >= n { break }
                    box.value(i)
                }
            }
        }
    }
}

/// The next index of a `parallelFor`, for whichever worker asks first.
private final class IndexDispenser: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    func take() -> Int {
        lock.lock()
        defer { lock.unlock() }
        next += 1
        return next - 1
    }
}

/// Wraps a value that is shared across threads under the caller's own guarantee of safe use.
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}

/// How many workers `parallelFor` uses, bound for a scope (a command binds its `--threads`); no process-wide state.
public enum Parallelism {
    /// Workers for `parallelFor` in the current scope; 0 = every core.
    @TaskLocal public static var workers = 0

    /// `workers`, with 0 resolved to the number of active cores.
    public static var resolvedWorkers: Int { workers > 0 ? workers : ProcessInfo.processInfo.activeProcessorCount }

    /// Runs `body` with `parallelFor` using `n` workers (0 = every core).
    public static func withWorkers<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        try $workers.withValue(n, operation: body)
    }
}
