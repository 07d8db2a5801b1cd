import Testing
import IngotCore
import IngotFormats
@testable import IngotQuant
import IngotTestSupport

/// Quantized `.ingot` files: the same numbers as the direct export, repackable into every runtime layout.
struct QuantizeIngotTests {
    func plan(_ scheme: QuantScheme, group: Int? = 32, symmetric: Bool = false) -> QuantizationPlan {
        var s = QuantizationPlan.Settings(scheme: scheme)
        s.groupSize = scheme.groupSizeIsFixed ? scheme.defaultGroupSize : group
        s.symmetric = symmetric
        return QuantizationPlan(defaults: s)
    }

    @Test(arguments: [(QuantScheme.rtnInt4, false), (.rtnInt4, true), (.rtnInt8, false), (.fp8E4M3, true), (.mxfp4, true), (.nvfp4a16, true)])
    func ingotThenExportEqualsDirectExport(scheme: QuantScheme, symmetric: Bool) throws {
        let d = TempDir()
        let model = fixture("peers/models/tiny-mixtral")
        try QuantizeJob(source: Checkpoint.open(model), modelDirectory: model, plan: plan(scheme, symmetric: symmetric),
                        destination: d.file("q.ingot")).run()
        let q = try IngotFile(path: d.file("q.ingot"))
        try q.verifyAll()
        // The stored codes decide what is written, and what config.json says, whatever scheme the export's plan names.
        var viaIngot = ExportJob(source: q, modelDirectory: nil, format: .compressedTensors, plan: QuantizationPlan(defaults: .init(scheme: .rtnInt8)),
                                 destination: d.file("a"))
        viaIngot.storedCompanions = try q.storedCompanionFiles()
        try viaIngot.run()
        try ExportJob(source: Checkpoint.open(model), modelDirectory: model, format: .compressedTensors,
                      plan: plan(scheme, symmetric: symmetric), destination: d.file("b")).run()
        let a = try Checkpoint.open(d.file("a")), b = try Checkpoint.open(d.file("b"))
        #expect(Set(a.tensors.map(\.name)) == Set(b.tensors.map(\.name)))
        for t in b.tensors {
            #expect(try a.tensor(named: t.name).withBytes { x in try b.tensor(named: t.name).withBytes { x.elementsEqual($0) } }, "\(t.name)")
        }
        #expect(try FileSystem.read(d.file("a/config.json")) == FileSystem.read(d.file("b/config.json")))
        // And the .ingot dequantizes to the same weights as the export.
        let dq = try DequantizedSource(q), de = try DequantizedSource(b)
        let name = "model.layers.1.self_attn.o_proj.weight"
        #expect(try dq.tensor(named: name).floats() == de.tensor(named: name).floats())
    }

    @Test func ignoreListsAndOverrides() throws {
        var p = plan(.rtnInt4, group: 32)
        p.ignore = ["re:.*self_attn\\.q_proj"]
        var int8 = QuantizationPlan.Settings(scheme: .rtnInt8)
        int8.groupSize = nil
        p.overrides = [("*.experts.*.w2", int8)]
        #expect(p.settings(for: "model.layers.0.self_attn.q_proj.weight", shape: [64, 64]) == nil)
        #expect(p.settings(for: "model.layers.0.self_attn.k_proj.weight", shape: [32, 64])?.scheme == .rtnInt4)
        #expect(p.settings(for: "model.layers.0.block_sparse_moe.experts.3.w2.weight", shape: [64, 96])?.scheme == .rtnInt8)
        #expect(p.settings(for: "model.layers.0.block_sparse_moe.gate.weight", shape: [4, 64]) == nil, "router")
        #expect(p.settings(for: "model.embed_tokens.weight", shape: [2048, 64]) == nil)
        #expect(p.settings(for: "lm_head.weight", shape: [2048, 64]) == nil)
        #expect(p.settings(for: "model.layers.0.input_layernorm.weight", shape: [64]) == nil)
    }

    @Test func ragged128GroupsOnAWidthNotDivisible() throws {
        // SmolLM2's 576 inputs with group 128: the last group has 64 columns and its own scale.
        let rows = 4, cols = 576
        var state: UInt64 = 42
        let w = (0..<(rows * cols)).map { _ -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return HalfFloat.bf16ToF32(HalfFloat.f32ToBF16(Float(Int(state >> 40) - (1 << 23)) / Float(1 << 23) * 0.05))
        }
        let q = w.withUnsafeBufferPointer { IntQuantizer(bits: 4, groupSize: 128).quantize($0, rows: rows, columns: cols, precision: .bf16) }
        #expect(q.scaleColumns == 5 && q.scales.count == 20)
        let dq = q.dequantized()
        for r in 0..<rows {
            // Asymmetric grids with a rounded zero point can clip the extreme value by up to one step.
            for c in 512..<576 { #expect(abs(dq[r * cols + c] - w[r * cols + c]) <= q.scales[r * 5 + 4] * 1.001) }
        }
    }

    @Test func badWeightsNeverGiveNaNScales() throws {
        let rows = 2, cols = 64
        var w = [Float](repeating: 0, count: rows * cols)      // row 0 all zeros
        for c in 0..<cols { w[cols + c] = c == 3 ? .nan : c == 5 ? .infinity : Float(c) * 1e-40 }  // NaN, Inf, denormals
        for scheme in [QuantScheme.rtnInt4, .fp8E4M3] {
            var s = QuantizationPlan.Settings(scheme: scheme)
            s.groupSize = 32
            let q = try w.withUnsafeBufferPointer { try QuantizeJob.quantize($0, rows: rows, columns: cols, dtype: .f32, settings: s) }
            #expect(q.scales.allSatisfy { $0.isFinite && $0 > 0 }, "\(scheme): \(q.scales)")
        }
    }
}
