import Foundation
import Testing
@testable import IngotForward

/// OpenBLAS's kernel choice: the flags that decide it, and the executable fixing a fallback to pre-AVX2 kernels.
@Suite struct BLASCoreCLITests {
    @Test func coreFromFlags() {
        let avx2: Set<String> = ["sse4_2", "avx", "avx2", "fma"]
        #expect(BLASCore.recommendedCore(cpuFlags: avx2) == "Haswell")
        #expect(BLASCore.recommendedCore(cpuFlags: avx2.union(["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"])) == "SkylakeX")
        #expect(BLASCore.recommendedCore(cpuFlags: avx2.union(["avx512f"])) == "Haswell")  // AVX-512 without BW/VL/DQ
        #expect(BLASCore.recommendedCore(cpuFlags: ["sse4_2", "avx", "avx2"]) == nil)       // no FMA
        #expect(BLASCore.recommendedCore(cpuFlags: []) == nil)
    }

    /// The last "Core:" line OpenBLAS prints as it loads into `ingot` (after a re-exec, the second process's).
    func executableCore(environment extra: String = "") throws -> String? {
        let r = try ingot(["--version"], shellPrefix: "OPENBLAS_VERBOSE=2 \(extra)")
        #expect(r.status == 0)
        return r.stderr.split(separator: "\n").last(where: { $0.hasPrefix("Core: ") }).map { String($0.dropFirst(6)) }
    }

    @Test func executableRunsAVXKernelsWhereTheCPUHasThem() throws {
        guard let core = try executableCore() else { return }  // not a DYNAMIC_ARCH OpenBLAS: nothing to choose
        if BLASCore.recommendedCore(cpuFlags: BLASCore.cpuFlags()) != nil {
            #expect(!BLASCore.preAVX2.contains(core.lowercased()), "OpenBLAS runs \(core) kernels on an AVX2 CPU")
        }
        // A choice made by the user stands.
        #expect(try executableCore(environment: "OPENBLAS_CORETYPE=Prescott") == "Prescott")
    }
}
