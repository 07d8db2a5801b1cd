import Testing
import IngotCore
@testable import IngotFormats
import IngotTestSupport

/// Ingot's ggml block encoders and decoders against ggml's own output (fixtures/gguf/blocks.safetensors, made by
/// scripts/make-gguf-block-fixtures from llama.cpp's ggml-base): bytes identical, decoded floats bit-identical.
struct GGUFBlockTests {
    let fixture: SafetensorsFile
    let input: [Float], importance: [Float]
    let rows = 6, columns = 512

    init() throws {
        fixture = try SafetensorsFile(path: repoRoot + "/fixtures/gguf/blocks.safetensors")
        input = try fixture.tensor(named: "input").floats()
        importance = try fixture.tensor(named: "importance").floats()
    }

    func encode(_ type: GGMLType, importance imp: [Float]?) -> [UInt8] {
        var out = [UInt8](repeating: 0xAA, count: rows * type.rowBytes(columns: columns)!)
        input.withUnsafeBufferPointer { x in out.withUnsafeMutableBytes { o in
            if let imp { imp.withUnsafeBufferPointer { GGUFBlocks.quantize(type, x, rows: rows, columns: columns, importance: $0, into: o) } }
            else { GGUFBlocks.quantize(type, x, rows: rows, columns: columns, into: o) }
        } }
        return out
    }

    func reference(_ name: String) throws -> [UInt8] { try fixture.tensor(named: name).withBytes { Array($0) } }

    /// ggml_type_name's spelling (`q4_0`, `q4_K`, `bf16`), which names the fixture tensors.
    func ggmlName(_ t: GGMLType) -> String { t.name.hasSuffix("_K") ? t.name.dropLast(2).lowercased() + "_K" : t.name.lowercased() }

    /// The first differing block, for a readable failure.
    func firstDifference(_ a: [UInt8], _ b: [UInt8], _ type: GGMLType) -> String {
        guard let i = zip(a, b).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset else { return "sizes \(a.count) vs \(b.count)" }
        let bb = type.block.bytes
        return "byte \(i) (row \(i / type.rowBytes(columns: columns)!), block \(i / bb), offset in block \(i % bb)): \(a[i]) vs \(b[i])"
    }

    static let types: [GGMLType] = [.f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K]

    @Test(arguments: types) func encodesLikeGGML(_ type: GGMLType) throws {
        let ours = encode(type, importance: nil), ref = try reference(ggmlName(type))
        #expect(ours == ref, "\(type.name): \(firstDifference(ours, ref, type))")
    }

    @Test(arguments: types.filter { $0.isQuantized && $0 != .q8_0 }) func encodesWithImportanceLikeGGML(_ type: GGMLType) throws {
        let ours = encode(type, importance: importance), ref = try reference(ggmlName(type) + ".imatrix")
        #expect(ours == ref, "\(type.name) with imatrix: \(firstDifference(ours, ref, type))")
        #expect(ours != encode(type, importance: nil), "importance changes the choice somewhere")
    }

    @Test(arguments: types) func decodesLikeGGML(_ type: GGMLType) throws {
        let q = try reference(ggmlName(type))
        var ours = [Float](repeating: .nan, count: rows * columns)
        q.withUnsafeBytes { b in ours.withUnsafeMutableBufferPointer { GGUFBlocks.dequantize(type, b, into: $0, rows: rows, columns: columns) } }
        let ref = try fixture.tensor(named: ggmlName(type) + ".dequantized").floats()
        let bad = zip(ours, ref).enumerated().first { $0.element.0.bitPattern != $0.element.1.bitPattern }
        #expect(bad == nil, "\(type.name): element \(bad?.offset ?? -1): \(bad?.element.0 ?? 0) vs \(bad?.element.1 ?? 0)")
    }

    @Test func outputDoesNotDependOnThreads() throws {
        let all = encode(.q4_K, importance: importance)
        #expect(Parallelism.withWorkers(1) { encode(.q4_K, importance: importance) } == all)
        #expect(Parallelism.withWorkers(3) { encode(.q4_K, importance: importance) } == all)
    }
}
