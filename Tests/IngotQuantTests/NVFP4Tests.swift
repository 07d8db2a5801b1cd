import IngotCore
import IngotFormats
import IngotModel
@testable import IngotQuant
import IngotTestSupport
import Testing

/// NVFP4's scale arithmetic against compressed-tensors' own, exhaustively over bf16 (tables written by
/// `fixtures/peers/scripts/nvfp4_tables.py`), and the quantizer against a scalar reference.
@Suite struct NVFP4Tests {
    static let tables = try! Checkpoint.open(fixture("peers/nvfp4/scales.safetensors"))

    @Test func globalScaleOfEveryBF16AbsmaxMatchesCompressedTensors() throws {
        let a = try Self.tables.tensor(named: "absmax").floats(), want = try Self.tables.tensor(named: "global_scale").floats()
        #expect(a.count == 0x7F80 && want.count == a.count)
        var wrong = 0
        for (x, w) in zip(a, want) where NVFP4Quantizer.globalScale(absmax: x, precision: .bf16).bitPattern != w.bitPattern { wrong += 1 }
        #expect(wrong == 0, "\(wrong) of \(a.count) global scales differ")
    }

    @Test func groupScaleOfEveryBF16AbsmaxMatchesCompressedTensors() throws {
        let m = try Self.tables.tensor(named: "absmax").floats(), globals = try Self.tables.tensor(named: "globals").floats()
        let codes = try Self.tables.tensor(named: "group_scale").withBytes { Array($0) }
        #expect(codes.count == globals.count * m.count)
        for (k, g) in globals.enumerated() {
            var wrong = 0
            for (i, x) in m.enumerated() {
                let s = NVFP4Quantizer.groupScale(x, global: g, precision: .bf16)
                if FP8Codec.encode(s, .e4m3) != codes[k * m.count + i] { wrong += 1 }
            }
            #expect(wrong == 0, "global \(g): \(wrong) of \(m.count) group scales differ")
        }
    }

    /// Scalar reference: per group, the E4M3 scale of the group's absmax (FP8's exhaustive-search encoder), then the
    /// E2M1 code of `x / (s / g)` (E2M1 rounding is tested exhaustively in FP4Tests).
    @Test(arguments: [ComputePrecision.bf16, .f16, .f32])
    func quantizerMatchesScalarReference(precision: ComputePrecision) {
        var rng = TestRandom(seed: 7)
        let rows = 9, cols = 40   // a last group of 8 columns
        var w = (0..<(rows * cols)).map { _ in precision.round(Float(rng.gaussian()) * 0.05) }
        w[3] = 0; w[17] = -0.31; for c in 16..<32 { w[2 * cols + c] = 0 }   // an all-zero group
        let g = NVFP4Quantizer.globalScale(absmax: w.map(\.magnitude).max()!, precision: precision)
        let q = w.withUnsafeBufferPointer { NVFP4Quantizer().quantize($0, rows: rows, columns: cols, globalScale: g, precision: precision) }
        #expect(q.scaleColumns == 3 && q.globalScale == g && q.scaleDType == .f8e4m3)
        for r in 0..<rows {
            for gi in 0..<3 {
                let cs = (gi * 16)..<min(cols, gi * 16 + 16)
                let m = cs.map { w[r * cols + $0].magnitude }.max()!
                var s = FP8Codec.decode(FP8Codec.encodeReference(g * precision.round(m / 6), .e4m3), .e4m3)
                if s == 0 { s = 0.125 }
                #expect(q.scales[r * 3 + gi] == s)
                for c in cs { #expect(q.codes[r * cols + c] == FP4.encode(w[r * cols + c] / (s / g)), "(\(r), \(c))") }
            }
        }
        // Dequantization is e2m1 · (s / g).
        let d = q.dequantized()
        for i in 0..<(rows * cols) { #expect(d[i] == FP4.e2m1[Int(q.codes[i])] * (q.scales[i / cols * 3 + (i % cols) / 16] / g)) }
    }

    /// Every E4M3 code survives decode → `e4m3Code(exact:)` (how NVFP4 group scales are written), and agrees with
    /// the exhaustive-search encoder.
    @Test func everyE4M3CodeRoundTrips() {
        for c in 0...255 where c & 0x7F != 0x7F {
            let v = FP8.e4m3ToF32(UInt8(c))
            #expect(FP8.e4m3Code(exact: v) == UInt8(c), "code \(c)")
            #expect(FP8Codec.encodeReference(v, .e4m3) == UInt8(c) || v == 0, "code \(c)")
        }
        #expect(FP8.e4m3Code(exact: .nan) == 0x7F)
    }

    @Test func globalScaleEdgeCases() {
        #expect(NVFP4Quantizer.globalScale(absmax: 0, precision: .bf16) == 1)      // 2688 / tiny overflows: nan_to_num → 1
        #expect(NVFP4Quantizer.globalScale(absmax: .nan, precision: .bf16) == 1)
        #expect(NVFP4Quantizer.globalScale(absmax: .infinity, precision: .f32) == 0)
        #expect(NVFP4Quantizer.globalScale(absmax: 448 * 6, precision: .f32) == 1)
        #expect(NVFP4Quantizer.absmax([1, -3, .infinity]) == .infinity && NVFP4Quantizer.absmax([1, .nan]).isNaN)
    }

    @Test func fusedWeightsShareTheirGroupsScale() throws {
        let names = ["m.layers.0.self_attn.q_proj.weight", "m.layers.0.self_attn.k_proj.weight", "m.layers.0.self_attn.v_proj.weight",
                     "m.layers.0.self_attn.o_proj.weight", "m.layers.0.mlp.gate_proj.weight", "m.layers.0.mlp.up_proj.weight",
                     "m.layers.0.mlp.down_proj.weight", "m.layers.1.mlp.gate_proj.weight"]   // layer 1 has no up_proj: not fused
        let maxima: [String: Float] = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, Float($0 + 1)) })
        var reads: [String] = []
        let scales = NVFP4GlobalScales(members: names.map { ($0, DType.f32) }) { reads.append($0); return maxima[$0]! }
        var g: [String: Float] = [:]
        for n in names { g[n] = try scales.scale(for: n) }
        func scale(_ a: Float) -> Float { NVFP4Quantizer.globalScale(absmax: a, precision: .f32) }
        for n in names[0..<3] { #expect(g[n] == scale(3)) }
        #expect(g[names[3]] == scale(4))
        #expect(g[names[4]] == scale(6) && g[names[5]] == scale(6))
        #expect(g[names[6]] == scale(7) && g[names[7]] == scale(8))
        #expect(reads == names, "each weight read once, in order")
        #expect(try scales.scale(for: "m.layers.0.input_layernorm.weight") == nil)
        #expect(WeightNames.fusedSiblings(of: "x.block_sparse_moe.experts.3.w3.weight") { _ in true }
                == ["x.block_sparse_moe.experts.3.w1.weight", "x.block_sparse_moe.experts.3.w3.weight"])
    }
}
