import Testing
import IngotCore
@testable import IngotFormats
import IngotTestSupport

/// GGUF reading and writing: a round trip through `GGUFWriter`, and every malformed-file case the reader rejects
/// with its own error (never a crash or a huge allocation).
struct GGUFFileTests {
    /// Raw GGUF bytes, built field by field so that any of them can be wrong.
    struct Builder {
        var bytes: [UInt8] = Array("GGUF".utf8)
        mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        mutating func str(_ s: String) { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }
        mutating func pad(_ a: Int = 32) { bytes += [UInt8](repeating: 0, count: (a - bytes.count % a) % a) }
        /// Header with version 3.
        static func header(tensors: UInt64, kv: UInt64) -> Builder {
            var b = Builder(); b.u32(3); b.u64(tensors); b.u64(kv); return b
        }
        /// One tensor info.
        mutating func tensor(_ name: String, dims: [UInt64], type: UInt32, offset: UInt64) {
            str(name); u32(UInt32(dims.count)); for d in dims { u64(d) }; u32(type); u64(offset)
        }
    }

    func open(_ bytes: [UInt8]) throws -> GGUFFile { try GGUFFile(file: MappedFile(contents: bytes, path: "t.gguf")) }

    func expectError(_ bytes: [UInt8], _ check: (GGUFError) -> Bool) {
        do {
            _ = try open(bytes)
            Issue.record("file accepted")
        } catch let e as GGUFError {
            #expect(check(e), "unexpected error: \(e)")
            #expect(e.description.hasPrefix("t.gguf"), "message names the file: \(e)")
        } catch { Issue.record("wrong error type: \(error)") }
    }

    /// A valid file: one F32 tensor [2, 32] (ggml dims {32, 2}) and two KVs.
    func valid(type: UInt32 = 0, dims: [UInt64] = [32, 2], offset: UInt64 = 0, dataBytes: Int = 256) -> [UInt8] {
        var b = Builder.header(tensors: 1, kv: 2)
        b.str("general.architecture"); b.u32(8); b.str("llama")
        b.str("general.alignment"); b.u32(4); b.u32(32)
        b.tensor("w", dims: dims, type: type, offset: offset)
        b.pad()
        b.bytes += [UInt8](repeating: 0, count: dataBytes)
        return b.bytes
    }

    @Test func validFileOpens() throws {
        let f = try open(valid())
        #expect(f.version == 3 && f.alignment == 32)
        #expect(f["general.architecture"]?.stringValue == "llama")
        #expect(f.tensors.map(\.name) == ["w"] && f.tensors[0].shape == [2, 32] && f.tensors[0].byteCount == 256)
    }

    @Test func writerRoundTrip() throws {
        let dir = TempDir(), path = dir.file("x.gguf")
        let values: [Float] = (0..<512).map { Float($0 % 17) * 0.01 - 0.05 }
        var q8 = [UInt8](repeating: 0, count: 2 * GGMLType.q8_0.rowBytes(columns: 256)!)
        values.withUnsafeBufferPointer { x in q8.withUnsafeMutableBytes { GGUFBlocks.quantize(.q8_0, x, rows: 2, columns: 256, into: $0) } }
        let meta: [(key: String, value: GGUFValue)] = [("general.architecture", .string("llama")), ("a.list", .strings(["x", "yz"])),
                                                      ("a.ints", .int32s([1, -2])), ("a.f", .f32(0.5)), ("a.b", .bool(true)),
                                                      ("a.nested", .array(elementType: 9, [.int32s([7]), .int32s([])]))]
        let w = try GGUFWriter(path: path, overwrite: false, metadata: meta,
                               tensors: [.init(name: "a", type: .f32, dims: [3]), .init(name: "b", type: .q8_0, dims: [256, 2])])
        try [Float(1), 2, 3].withUnsafeBytes { try w.write("a", $0) }
        #expect(throws: GGUFWriter.Failure.self) { try w.commit() }
        try q8.withUnsafeBytes { try w.write("b", $0) }
        try w.commit()
        let f = try GGUFFile(path: path)
        #expect(f.metadata.map(\.key) == meta.map(\.key))
        for (k, v) in meta { #expect(f[k] == v, "\(k)") }
        #expect(try f.floats(f.tensor("a")!) == [1, 2, 3])
        #expect(f.tensor("b")!.fileOffset % 32 == 0)
        let back = try f.floats(f.tensor("b")!)
        #expect(zip(back, values).allSatisfy { abs($0 - $1) < 0.001 })
    }

    @Test func notGGUF() { expectError(Array("GGUX".utf8) + [UInt8](repeating: 0, count: 40)) { $0 == .notGGUF(file: "t.gguf") } }

    @Test func oldVersionAndBigEndian() {
        var b = valid(); b[4] = 1
        expectError(b) { if case .unsupportedVersion = $0 { true } else { false } }
        var c = valid(); c[4] = 0; c[7] = 3
        expectError(c) { $0 == .bigEndian(file: "t.gguf") }
    }

    @Test func truncatedHeader() {
        expectError(Array(valid().prefix(70))) { if case .truncated = $0 { true } else { false } }
    }

    @Test func hugeMetadataCount() {
        var b = Builder.header(tensors: 0, kv: UInt64.max / 2); b.bytes += [UInt8](repeating: 0, count: 64)
        expectError(b.bytes) { if case let .countTooLarge(_, w, _, _) = $0 { w == "metadata key-value" } else { false } }
    }

    @Test func hugeTensorCount() {
        var b = Builder.header(tensors: 1 << 40, kv: 0); b.bytes += [UInt8](repeating: 0, count: 64)
        expectError(b.bytes) { if case let .countTooLarge(_, w, _, _) = $0 { w == "tensor" } else { false } }
    }

    @Test func hugeArrayCount() {
        var b = Builder.header(tensors: 0, kv: 1)
        b.str("tokenizer.ggml.tokens"); b.u32(9); b.u32(8); b.u64(1 << 50)
        b.bytes += [UInt8](repeating: 0, count: 64)
        expectError(b.bytes) { if case .countTooLarge = $0 { true } else { false } }
    }

    @Test func hugeStringLength() {
        var b = Builder.header(tensors: 0, kv: 1)
        b.u64(1 << 62)
        b.bytes += [UInt8](repeating: 0, count: 64)
        expectError(b.bytes) { if case .truncated = $0 { true } else { false } }
    }

    @Test func unknownValueType() {
        var b = Builder.header(tensors: 0, kv: 1)
        b.str("k"); b.u32(13); b.u32(0)
        expectError(b.bytes) { $0 == .unknownValueType(file: "t.gguf", key: "k", type: 13) }
    }

    @Test func deeplyNestedArrays() {
        var b = Builder.header(tensors: 0, kv: 1)
        b.str("k"); b.u32(9)
        for _ in 0..<8 { b.u32(9); b.u64(1) }
        b.u32(0); b.u64(0)
        expectError(b.bytes) { $0 == .nestingTooDeep(file: "t.gguf", key: "k") }
    }

    @Test func duplicateKey() {
        var b = Builder.header(tensors: 0, kv: 2)
        for _ in 0..<2 { b.str("k"); b.u32(4); b.u32(1) }
        expectError(b.bytes) { $0 == .duplicateKey(file: "t.gguf", key: "k") }
    }

    @Test func badAlignment() {
        var b = Builder.header(tensors: 0, kv: 1)
        b.str("general.alignment"); b.u32(4); b.u32(24)
        expectError(b.bytes) { if case .invalidMetadata = $0 { true } else { false } }
    }

    @Test func unknownTensorType() {
        expectError(valid(type: 99)) { $0 == .unknownType(file: "t.gguf", tensor: "w", type: 99) }
    }

    @Test func outOfRangeOffset() {
        expectError(valid(offset: 1 << 40)) { if case .tensorPastEnd = $0 { true } else { false } }
        expectError(valid(offset: UInt64.max - 31)) { if case .invalidTensor = $0 { true } else { false } }
    }

    @Test func misalignedOffset() {
        expectError(valid(offset: 8)) { if case let .invalidTensor(_, t, r) = $0 { t == "w" && r.contains("alignment") } else { false } }
    }

    @Test func truncatedTensorData() {
        expectError(valid(dataBytes: 200)) { if case let .tensorPastEnd(_, t, e, _) = $0 { t == "w" && e > 200 } else { false } }
    }

    @Test func rowNotMultipleOfBlock() {
        expectError(valid(type: GGMLType.q4_K.rawValue, dims: [100, 2])) { if case .invalidTensor = $0 { true } else { false } }
    }

    @Test func tooManyDimensionsOrOverflow() {
        expectError(valid(dims: [1, 1, 1, 1, 1])) { if case .invalidTensor = $0 { true } else { false } }
        expectError(valid(dims: [1 << 34, 1 << 34, 1 << 34])) { if case .invalidTensor = $0 { true } else { false } }
    }

    @Test func duplicateTensor() {
        var b = Builder.header(tensors: 2, kv: 0)
        b.tensor("w", dims: [8], type: 0, offset: 0); b.tensor("w", dims: [8], type: 0, offset: 32)
        b.pad(); b.bytes += [UInt8](repeating: 0, count: 64)
        expectError(b.bytes) { $0 == .duplicateTensor(file: "t.gguf", tensor: "w") }
    }

    @Test func unsupportedTypeIsRefusedByNameWhenDecoded() throws {
        let f = try open(valid(type: GGMLType.iq2_xxs.rawValue, dims: [256, 1], dataBytes: 66))
        #expect(throws: GGUFError.unsupportedType(file: "t.gguf", tensor: "w", type: "IQ2_XXS")) { try f.floats(f.tensors[0]) }
    }
}
