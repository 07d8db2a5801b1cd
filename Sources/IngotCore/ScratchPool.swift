import Foundation

/// Scratch buffers reused by the jobs of a `parallelFor`: a job borrows one (at least the bytes it asks for) and
/// returns it when done, so a stage allocates about one buffer per worker instead of one per job, and freshly
/// mapped pages are faulted in once. The buffers are freed with the pool. Contents are undefined when borrowed.
public final class ScratchPool: @unchecked Sendable {
    private var free: [UnsafeMutableRawBufferPointer] = []
    private let lock = NSLock()

    public init() {}

    deinit { for b in free { b.deallocate() } }

    /// Runs `body` with a buffer of at least `byteCount` bytes (64-byte aligned), borrowed for the call.
    public func withBuffer<R>(byteCount: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        let need = max(byteCount, 64)
        var buffer = lock.withLock { () -> UnsafeMutableRawBufferPointer? in
            // The smallest free buffer that fits, so a small request does not take a large one from a large job.
            guard let i = free.indices.filter({ free[$0].count >= need }).min(by: { free[$0].count < free[$1].count }) else {
                return free.popLast()
            }
            return free.remove(at: i)
        }
        if let b = buffer, b.count < need { b.deallocate(); buffer = nil }
        let b = buffer ?? .allocate(byteCount: need, alignment: 64)
        defer { lock.withLock { free.append(b) } }
        return try body(b)
    }
}
