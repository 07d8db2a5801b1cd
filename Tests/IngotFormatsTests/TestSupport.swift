import Foundation
import IngotCore
@testable import IngotFormats

/// Repository root (this file is Tests/IngotFormatsTests/TestSupport.swift).
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

func fixture(_ relative: String) -> String { repoRoot + "/fixtures/" + relative }

/// A fresh temporary directory, removed when the returned object is released.
final class TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "ingot-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
    var entries: [String] { (try? FileManager.default.contentsOfDirectory(atPath: path).sorted()) ?? [] }
}

/// Raw safetensors bytes from a header text and data section, header length taken from the text unless given.
func safetensorsBytes(header: String, data: [UInt8], declaredLength: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    return withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { Array($0) } + h + data
}

func write(_ bytes: [UInt8], to path: String) {
    FileManager.default.createFile(atPath: path, contents: Data(bytes))
}

/// SHA-256 of every tensor's bytes, by name.
func tensorDigests(_ source: TensorSource) throws -> [String: String] {
    var out: [String: String] = [:]
    for t in source.tensors { out[t.name] = try source.tensor(named: t.name).withBytes { SHA256.hex($0) } }
    return out
}
