import Foundation
import IngotCalibration
import IngotCore
import IngotFormats
import IngotForward
import IngotModel
@testable import IngotQuant
import Testing
import IngotTestSupport

/// AWQ on gpt-oss: biased q/k/v/o with attention sinks, experts with biases and the clamped SwiGLU, gate and up
/// interleaved in one fused tensor (bf16 or MXFP4). Searched on the per-expert view quantizers read
/// (`LinearizedExperts`), from a calibration made on the fused checkpoint.
@Suite struct GptOssAWQTests {
    static let fixtures = ["tiny-gpt-oss", "tiny-gpt-oss-mxfp4"]
    static let routerLabel = "post_attention_layernorm → mlp.router,mlp.experts.*.gate_proj,mlp.experts.*.up_proj"

    /// The fused checkpoint's model (what calibration runs) and the per-expert one (what AWQ searches).
    func models(_ dir: String) throws -> (fused: ReferenceModel, linear: ReferenceModel) {
        let config = try ModelConfig.load(directory: dir)
        let fused = ReferenceModel(source: try DequantizedSource(Checkpoint.open(dir)), config: config)
        let linear = ReferenceModel(source: try DequantizedSource(LinearizedExperts.wrap(Checkpoint.open(dir), config: fused.config)),
                                    config: fused.config)
        return (fused, linear)
    }

    func calibration(_ m: ReferenceModel) throws -> Calibration {
        let rows = Array(try tokenRows(fixture("peers/data/calib_text.safetensors")).prefix(8)).map { $0.map { $0 % m.config.vocabSize } }
        return try Calibrator(model: m, settings: .init()).run(CalibrationData(sequences: rows, sourceSHA256: "", sourcePath: "test"))
    }

    /// Every declared mapping is searched or named as skipped (v → o under grouped-query attention), the router
    /// mapping runs in every layer, and with the scales folded (no clip, no quantization) the logits are the
    /// original's: norms ÷ s, q/k/v and expert gate/up columns × s, router columns × s, biases untouched.
    @Test(arguments: fixtures)
    func mappingsAppliedAndFoldingIsExact(name: String) throws {
        let (fused, linear) = try models(fixture("families/" + name))
        let cal = try calibration(fused)
        var awq = AWQ(model: linear, calibration: cal, quantizer: IntQuantizer(bits: 4, groupSize: 32))
        awq.clip = false
        let r = try awq.run()
        for l in 0..<linear.config.layers {
            let recipe = linear.config.awqRecipe(layer: l)
            #expect(!recipe.mappings.contains { $0.smooth == "mlp.experts.*.up_proj" }, "up → down is declared absent (clamped SwiGLU)")
            for mp in recipe.mappings {
                let lines = r.log.filter { $0.layer == l && $0.mapping == mp.label }
                #expect(lines.count == 1, "layer \(l) \(mp.label)")
                for x in lines { #expect(x.skipped != nil || (x.bestLoss.isFinite && x.bestLoss <= x.rtnLoss), "layer \(l) \(mp.label)") }
            }
            #expect(r.log.contains { $0.layer == l && $0.mapping == Self.routerLabel && $0.skipped == nil })
            #expect(r.log.contains { $0.layer == l && $0.mapping == "self_attn.v_proj → self_attn.o_proj" && ($0.skipped ?? "").contains("grouped-query") })
        }
        #expect(r.log.contains { $0.bestRatio != nil })
        let folded = ReferenceModel(source: try TransformedSource(base: linear.source, replacements: try awq.transformed(r), keepF32: true),
                                    config: linear.config)
        let ids = Array((0..<64).map { ($0 * 131 + 7) % linear.config.vocabSize })
        #expect(relL2(try folded.logits(ids), try fused.logits(ids)) <= 1e-5)
        // The fused tensors interleave gate and up: transforming them in place is refused, not done wrongly.
        #expect(throws: AWQ.Failure.self) { try AWQ(model: fused, calibration: cal, quantizer: awq.quantizer).transformed(r) }
    }

    /// v → o with v's bias: tiny-gpt-oss with its two kv heads repeated for every query head (the same function
    /// without grouped-query attention), so the mapping applies; folding divides v's rows and bias alike.
    @Test func valueToOutputWithBiasFoldsExactly() throws {
        let src = fixture("families/tiny-gpt-oss")
        let base = try ReferenceModel(directory: src)
        let c = base.config
        let (heads, kv, d) = (c.heads, c.kvHeads, c.headDim)
        let dir = TempDir()
        var config = String(decoding: try FileSystem.read(src + "/config.json"), as: UTF8.self)
        config = config.replacingOccurrences(of: "\"num_key_value_heads\": \(kv)", with: "\"num_key_value_heads\": \(heads)")
        writeBytes(Array(config.utf8), to: dir.file("config.json"))
        let ck = try Checkpoint.open(src)
        var tensors: [(String, [Int], [Float])] = []
        for t in ck.tensors.sorted(by: { $0.name < $1.name }) {
            var v = try ck.tensor(named: t.name).floats()
            var shape = t.shape
            if t.name.hasSuffix("k_proj.weight") || t.name.hasSuffix("v_proj.weight") || t.name.hasSuffix("k_proj.bias") || t.name.hasSuffix("v_proj.bias") {
                let block = v.count / kv  // one kv head's rows (its d entries for a bias)
                var repeated: [Float] = []
                for j in 0..<heads {
                    let g = j / (heads / kv)
                    repeated += v[(g * block)..<((g + 1) * block)]
                }
                v = repeated
                shape[0] = heads * d
            }
            tensors.append((t.name, shape, v))
        }
        let writer = try SafetensorsWriter(path: dir.file("model.safetensors"),
                                           entries: tensors.map { try SafetensorsWriter.Entry(name: $0.0, dtype: .f32, shape: $0.1) })
        for t in tensors { try t.2.withUnsafeBytes { try writer.append($0) } }
        try writer.commit()
        let (fused, linear) = try models(dir.path)
        let ids = Array((0..<64).map { ($0 * 131 + 7) % c.vocabSize })
        #expect(relL2(try fused.logits(ids), try base.logits(ids)) <= 1e-5, "repeated kv heads compute the same function")
        var awq = AWQ(model: linear, calibration: try calibration(fused), quantizer: IntQuantizer(bits: 4, groupSize: 32))
        awq.clip = false
        let r = try awq.run()
        let vo = r.log.filter { $0.mapping == "self_attn.v_proj → self_attn.o_proj" }
        #expect(vo.count == c.layers && vo.allSatisfy { $0.skipped == nil })
        let t = try awq.transformed(r)
        #expect(t.keys.contains { $0.hasSuffix("v_proj.bias") }, "v's bias is divided with its rows")
        let folded = ReferenceModel(source: try TransformedSource(base: linear.source, replacements: t, keepF32: true), config: linear.config)
        #expect(relL2(try folded.logits(ids), try fused.logits(ids)) <= 1e-5)
    }
}
