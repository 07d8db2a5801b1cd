import Foundation
import Testing
import IngotFuzzTargets
import IngotTestSupport

/// Replays the fuzz seed corpora and every past crash input through each parser: none may crash.
struct FuzzReplayTests {
    @Test(arguments: FuzzTarget.allCases)
    func replayCorpusAndRegressions(target: FuzzTarget) throws {
        var count = 0
        for dir in ["corpus", "regressions"] {
            let path = repoRoot + "/Fuzz/\(dir)/\(target.rawValue)"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
                guard let d = FileManager.default.contents(atPath: path + "/" + name) else { continue }
                target.run(Array(d))
                count += 1
            }
        }
        #expect(count > 0, "no seed inputs for \(target.rawValue)")
    }

    @Test func mutatedSeedsNeverCrash() throws {
        // A cheap in-process mutation pass (the real fuzzing is scripts/fuzz): truncations and byte flips of
        // every seed, deterministic.
        for target in FuzzTarget.allCases where target != .hdf5 && target != .safetensorsIndex {
            let path = repoRoot + "/Fuzz/corpus/\(target.rawValue)"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
                guard let d = FileManager.default.contents(atPath: path + "/" + name) else { continue }
                let seed = Array(d)
                var rng = UInt64(seed.count) &* 0x9E37_79B9_7F4A_7C15
                for _ in 0..<60 {
                    rng = rng &* 6364136223846793005 &+ 1442695040888963407
                    var m = seed
                    if m.isEmpty { continue }
                    let i = Int(rng >> 33) % m.count
                    if rng & 1 == 0 { m[i] ^= UInt8(truncatingIfNeeded: rng >> 8) | 1 } else { m = Array(m[0..<i]) }
                    target.run(m)
                }
            }
        }
    }
}
