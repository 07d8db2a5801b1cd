import Foundation

/// Runs `body(i)` for `i in 0..<n` on all cores and waits. Work must be split by index alone (never by thread),
/// so results do not depend on the number of cores.
public func parallelFor(_ n: Int, _ body: (Int) -> Void) {
    if n <= 0 { return }
    if n == 1 { body(0); return }
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
