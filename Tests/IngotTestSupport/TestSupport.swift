import Foundation

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
