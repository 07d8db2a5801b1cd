import COpenBLAS
import Foundation

/// Which OpenBLAS kernel set this process runs, and a better one when OpenBLAS guessed wrong.
///
/// OpenBLAS built with DYNAMIC_ARCH (Debian's, for one) picks its kernels from the CPU's family and model numbers
/// when the library loads. A CPU newer than the library (or a VM that reports a generic model) falls back to
/// "Prescott", SSE3 kernels: on a 2-core Xeon VM (family 6, model 207) the SmolLM2-135M forward pass ran at
/// 95 tokens/s instead of 252 with the AVX-512 kernels. The choice can only be changed through the
/// `OPENBLAS_CORETYPE` environment variable before the library loads, so the `ingot` executable re-executes
/// itself once with it set (`overrideIfMisdetected`); a library user sets the variable to `recommended`.
public enum BLASCore {
    /// The kernel set OpenBLAS chose for this process, e.g. "SkylakeX", "Haswell", "Prescott".
    public static var current: String { String(cString: openblas_get_corename()) }

    /// Kernel sets OpenBLAS falls back to when it does not recognise the CPU, or that predate AVX2.
    static let preAVX2 = ["prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "sandybridge",
                          "barcelona", "bobcat", "bulldozer", "piledriver", "steamroller", "katmai", "northwood"]

    /// The kernel set to ask for when OpenBLAS chose a pre-AVX2 one on a CPU that has AVX-512 or AVX2 + FMA;
    /// nil when its choice stands (including any choice made through `OPENBLAS_CORETYPE`).
    public static var recommended: String? {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil,
              preAVX2.contains(current.lowercased()) else { return nil }
        return recommendedCore(cpuFlags: cpuFlags())
    }

    /// The best OpenBLAS x86-64 kernel set these CPU flags (as in /proc/cpuinfo) run.
    static func recommendedCore(cpuFlags flags: Set<String>) -> String? {
        if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]) { return "SkylakeX" }
        if flags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// Re-executes this program with `OPENBLAS_CORETYPE` set when `recommended` names a better kernel set; returns
    /// (and the program goes on as it was) when there is none or the re-exec fails. Call first thing in `main`.
    public static func overrideIfMisdetected() {
        #if os(Linux)
        guard let core = recommended else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        unsetenv("OPENBLAS_CORETYPE")  // exec failed: stay as we are
        #endif
    }

    /// The first CPU's flags from /proc/cpuinfo (empty where there is none).
    static func cpuFlags() -> Set<String> {
        guard let handle = FileHandle(forReadingAtPath: "/proc/cpuinfo") else { return [] }
        defer { try? handle.close() }
        let head = String(decoding: handle.readData(ofLength: 64 << 10), as: UTF8.self)
        guard let line = head.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }
}
