import Foundation
import IngotCore

/// The repository root (this file is Tests/IngotTestSupport/TestSupport.swift).
public let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// Path of `relative` under fixtures/.
public func fixture(_ relative: String) -> String { repoRoot + "/fixtures/" + relative }

/// A fresh temporary directory, removed when the object is released.
public final class TempDir {
    public let path: String
    public init() {
        path = NSTemporaryDirectory() + "ingot-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    /// Path of `name` inside the directory.
    public func file(_ name: String) -> String { path + "/" + name }
    /// The directory's entries, sorted.
    public var entries: [String] { (try? FileManager.default.contentsOfDirectory(atPath: path).sorted()) ?? [] }
}

/// Writes `bytes` to `path` (test inputs; outputs of the code under test go through OutputFile).
public func writeBytes(_ bytes: [UInt8], to path: String) {
    FileManager.default.createFile(atPath: path, contents: Data(bytes))
}

/// A deterministic generator (SplitMix64) for test data, so failures reproduce.
public struct TestRandom {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
    /// Standard normal (Box–Muller).
    public mutating func gaussian() -> Double { (-2 * log(max(uniform(), 1e-300))).squareRoot() * cos(2 * .pi * uniform()) }
}

/// JSON with object keys sorted, for order-insensitive comparison ("nil" for nil).
public func canonicalJSON(_ j: JSON?) -> String {
    func walk(_ j: JSON) -> JSON {
        switch j {
        case .object(let kv): .object(kv.sorted { $0.key < $1.key }.map { ($0.key, walk($0.value)) })
        case .array(let a): .array(a.map(walk))
        default: j
        }
    }
    return j.map { walk($0).serialized() } ?? "nil"
}
