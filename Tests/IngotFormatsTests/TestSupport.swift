import Foundation
import IngotTestSupport
import IngotCore
@testable import IngotFormats

/// Raw safetensors bytes from a header text and data section, header length taken from the text unless given.
func safetensorsBytes(header: String, data: [UInt8], declaredLength: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    return withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { Array($0) } + h + data
}

/// SHA-256 of every tensor's bytes, by name.
func tensorDigests(_ source: TensorSource) throws -> [String: String] {
    var out: [String: String] = [:]
    for t in source.tensors { out[t.name] = try source.tensor(named: t.name).withBytes { SHA256.hex($0) } }
    return out
}
