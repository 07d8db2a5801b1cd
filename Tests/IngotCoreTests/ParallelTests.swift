import Foundation
import Testing
import IngotCore

/// `parallelFor` runs every index once, on at most the bound number of workers, nested loops included.
@Suite struct ParallelTests {
    /// Tracks how many bodies run at once.
    final class Occupancy: @unchecked Sendable {
        let lock = NSLock()
        var now = 0, peak = 0, visits: [Int]
        init(_ n: Int) { visits = Array(repeating: 0, count: n) }
        func enter(_ i: Int) { lock.lock(); now += 1; peak = max(peak, now); visits[i] += 1; lock.unlock() }
        func leave() { lock.lock(); now -= 1; lock.unlock() }
    }

    @Test(arguments: [1, 2, 3])
    func boundWorkersCapConcurrency(workers: Int) {
        let n = 64, o = Occupancy(n * 4)
        Parallelism.withWorkers(workers) {
            parallelFor(n) { i in
                parallelFor(4) { j in
                    o.enter(i * 4 + j)
                    usleep(200)
                    o.leave()
                }
            }
        }
        #expect(o.visits.allSatisfy { $0 == 1 }, "every index exactly once")
        #expect(o.peak <= workers, "\(o.peak) bodies ran at once with \(workers) workers")
        if workers == 1 { #expect(o.peak == 1) }
    }

    @Test func explicitWorkersOverrideTheScope() {
        let o = Occupancy(32)
        Parallelism.withWorkers(8) { parallelFor(32, workers: 1) { i in o.enter(i); usleep(100); o.leave() } }
        #expect(o.peak == 1)
        #expect(Parallelism.workers == 0, "the binding ends with its scope")
    }
}
