import Testing
import IngotCore
@testable import IngotFormats
import IngotTestSupport

/// Every malformed-file case the reader must reject, each with its own error.
struct SafetensorsValidationTests {
    func open(_ bytes: [UInt8]) throws -> SafetensorsFile {
        try SafetensorsFile(file: MappedFile(contents: bytes, path: "t.safetensors"))
    }

    func expectError(_ bytes: [UInt8], _ check: (SafetensorsError) -> Bool) {
        do {
            _ = try open(bytes)
            Issue.record("file accepted")
        } catch let e as SafetensorsError {
            #expect(check(e), "unexpected error: \(e)")
            #expect(e.description.hasPrefix("t.safetensors"), "message names the file: \(e)")
        } catch { Issue.record("wrong error type: \(error)") }
    }

    let four = [UInt8](repeating: 1, count: 8)

    @Test func validFileOpensZeroCopy() throws {
        let f = try open(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"k":"v"}}"#, data: four))
        #expect(f.tensors.map(\.name) == ["a"])
        #expect(f.metadata.first?.value == "v")
        let v = try f.tensor(named: "a")
        #expect(v.bytes.baseAddress == f.file.bytes.baseAddress! + f.dataStart)
    }

    @Test func truncated() { expectError([1, 2, 3]) { if case .truncated = $0 { true } else { false } } }

    @Test func headerLongerThanFile() {
        expectError(safetensorsBytes(header: "{}", data: [], declaredLength: 50)) { if case .headerPastEnd = $0 { true } else { false } }
    }

    @Test func headerOverLimit() {
        expectError(safetensorsBytes(header: "{}", data: [], declaredLength: 200_000_000)) {
            if case .headerTooLarge = $0 { true } else { false }
        }
    }

    @Test func headerNotUTF8() {
        expectError(withUnsafeBytes(of: UInt64(4).littleEndian) { Array($0) } + [0x7B, 0xFF, 0xFE, 0x7D]) {
            if case .headerNotUTF8 = $0 { true } else { false }
        }
    }

    @Test func headerNotJSON() {
        expectError(safetensorsBytes(header: "{nope", data: [])) { if case .headerNotJSON = $0 { true } else { false } }
        expectError(safetensorsBytes(header: "[1]", data: [])) { if case .headerNotObject = $0 { true } else { false } }
    }

    @Test func overlappingOffsets() {
        expectError(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: four)) {
            if case .offsetsNotContiguous(_, "b", 8, 4) = $0 { true } else { false }
        }
    }

    @Test func gapBetweenTensors() {
        expectError(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: four)) {
            if case .offsetsNotContiguous(_, "a", 0, 4) = $0 { true } else { false }
        }
    }

    @Test func offsetsPastEnd() {
        expectError(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: four)) {
            if case .offsetsPastEnd(_, "a", 16, 8) = $0 { true } else { false }
        }
    }

    @Test func trailingBytes() {
        expectError(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: four)) {
            if case .trailingBytes(_, 4, 8) = $0 { true } else { false }
        }
    }

    @Test func shapeTimesDTypeMismatch() {
        expectError(safetensorsBytes(header: #"{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}}"#, data: four)) {
            if case .sizeMismatch(_, "a", 4, 8) = $0 { true } else { false }
        }
    }

    @Test func shapeOverflow() {
        expectError(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, data: four)) {
            if case .shapeOverflow(_, "a") = $0 { true } else { false }
        }
    }

    @Test func unknownDType() {
        expectError(safetensorsBytes(header: #"{"a":{"dtype":"F13","shape":[2],"data_offsets":[0,8]}}"#, data: four)) {
            if case .unknownDType(_, "a", "F13") = $0 { true } else { false }
        }
    }

    @Test func duplicateTensor() {
        expectError(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: four)) {
            if case .duplicateTensor(_, "a") = $0 { true } else { false }
        }
    }

    @Test func negativeOrFractionalShape() {
        expectError(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: four)) {
            if case .invalidEntry(_, "a", _) = $0 { true } else { false }
        }
        expectError(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}"#, data: four)) {
            if case .invalidEntry(_, "a", _) = $0 { true } else { false }
        }
    }

    @Test func metadataMustBeStrings() {
        expectError(safetensorsBytes(header: #"{"__metadata__":{"k":1}}"#, data: [])) { if case .invalidMetadata = $0 { true } else { false } }
    }
}

/// The sharded index: missing shards, escaping paths, tensors missing or duplicated.
struct ShardedIndexTests {
    func makeShard(_ dir: TempDir, _ name: String, tensors: [String]) {
        var header: [String] = []
        for (i, t) in tensors.enumerated() { header.append(#""\#(t)":{"dtype":"U8","shape":[1],"data_offsets":[\#(i),\#(i + 1)]}"#) }
        writeBytes(safetensorsBytes(header: "{" + header.joined(separator: ",") + "}", data: [UInt8](repeating: 7, count: tensors.count)), to: dir.file(name))
    }

    func index(_ dir: TempDir, _ map: [(String, String)]) {
        let body = map.map { #""\#($0.0)":"\#($0.1)""# }.joined(separator: ",")
        writeBytes(Array(#"{"metadata":{"total_size":3},"weight_map":{\#(body)}}"#.utf8), to: dir.file(ShardedSafetensors.indexName))
    }

    func expectError(_ dir: TempDir, _ check: (SafetensorsError) -> Bool) {
        do {
            _ = try Checkpoint.open(dir.path)
            Issue.record("index accepted")
        } catch let e as SafetensorsError { #expect(check(e), "\(e)") } catch { Issue.record("\(error)") }
    }

    @Test func valid() throws {
        let d = TempDir()
        makeShard(d, "a.safetensors", tensors: ["x", "y"])
        makeShard(d, "b.safetensors", tensors: ["z"])
        index(d, [("x", "a.safetensors"), ("y", "a.safetensors"), ("z", "b.safetensors")])
        let s = try Checkpoint.open(d.path)
        #expect(s.tensors.map(\.name) == ["x", "y", "z"])
        #expect(try s.tensor(named: "z").bytes.first == 7)
    }

    @Test func missingShard() {
        let d = TempDir()
        makeShard(d, "a.safetensors", tensors: ["x"])
        index(d, [("x", "a.safetensors"), ("y", "gone.safetensors")])
        expectError(d) { if case .missingShard(_, "gone.safetensors") = $0 { true } else { false } }
    }

    @Test func pathEscapingTheDirectory() {
        let d = TempDir()
        index(d, [("x", "../evil.safetensors")])
        expectError(d) { if case .shardPathEscapes = $0 { true } else { false } }
        let e = TempDir()
        index(e, [("x", "/etc/passwd")])
        expectError(e) { if case .shardPathEscapes = $0 { true } else { false } }
    }

    @Test func tensorMissingFromItsShard() {
        let d = TempDir()
        makeShard(d, "a.safetensors", tensors: ["x"])
        index(d, [("x", "a.safetensors"), ("w", "a.safetensors")])
        expectError(d) { if case .tensorNotInShard(_, "w", _) = $0 { true } else { false } }
    }

    @Test func tensorHeldTwice() {
        let d = TempDir()
        makeShard(d, "a.safetensors", tensors: ["x"])
        makeShard(d, "b.safetensors", tensors: ["x", "y"])
        index(d, [("x", "a.safetensors"), ("y", "b.safetensors")])
        expectError(d) { if case .duplicateAcrossShards(_, "x") = $0 { true } else { false } }
    }

    @Test func shardTensorNotInIndex() {
        let d = TempDir()
        makeShard(d, "a.safetensors", tensors: ["x", "q"])
        index(d, [("x", "a.safetensors")])
        expectError(d) { if case .tensorNotInIndex(_, "q", _) = $0 { true } else { false } }
    }
}
