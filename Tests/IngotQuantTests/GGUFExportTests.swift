import Foundation
import IngotCalibration
import IngotCore
import IngotFormats
import IngotForward
import IngotModel
@testable import IngotQuant
import Testing
import IngotTestSupport

/// `export --to gguf`: names, permutation, stacking and metadata checked by reading the file back as a Hugging
/// Face checkpoint; per-tensor types against llama-quantize's own choices (fixtures/gguf/llama-quantize-types.json,
/// made by scripts/check-gguf-with-llama-cpp).
struct GGUFExportTests {
    let model = fixture("tiny-moe-austen")

    func export(_ type: GGUFFileType, importance: ((String, Int?) throws -> [Float]?)? = nil) throws -> (TempDir, String) {
        let d = TempDir(), path = d.file("m.gguf")
        var job = GGUFExportJob(source: try Checkpoint.open(model), modelDirectory: model, fileType: type, destination: path)
        job.importance = importance
        try job.run()
        return (d, path)
    }

    @Test func f32RoundTripIsExact() throws {
        let (d, path) = try export(.f32)
        let back = try GGUFCheckpoint(path: path), orig = try Checkpoint.open(model)
        #expect(Set(back.tensors.map(\.name)) == Set(orig.tensors.map(\.name)))
        for t in orig.tensors {
            #expect(try back.tensor(named: t.name).floats() == orig.tensor(named: t.name).floats(), "\(t.name)")
        }
        // The configuration rebuilt from the metadata runs the same model.
        let rebuilt = try ModelConfig(json: JSON.parse(back.companionFiles()[0].bytes))
        let original = try ModelConfig.load(directory: model)
        #expect(rebuilt == original)
        // llama.cpp's names, permuted rows and stacked experts are what is stored.
        let g = back.gguf
        #expect(g["general.architecture"]?.stringValue == "llama" && g["llama.expert_count"]?.intValue == 8)
        #expect(g["tokenizer.ggml.tokens"]?.arrayValue?.count == 4096 && g["tokenizer.ggml.pre"]?.stringValue == "gpt-2")
        let q = g.tensor("blk.0.attn_q.weight")!, e = g.tensor("blk.0.ffn_gate_exps.weight")!
        #expect(q.dims == [192, 192] && e.dims == [192, 256, 8] && g.tensor("output.weight") == nil)
        let hfQ = try orig.tensor(named: "model.layers.0.self_attn.q_proj.weight").floats(), storedQ = try g.floats(q)
        // head 0: HF row 1 (a = 0, b = 1) is stored at row 2; HF row 16 (a = 1, b = 0) at row 1.
        #expect(Array(storedQ[2 * 192..<3 * 192]) == Array(hfQ[192..<2 * 192]))
        #expect(Array(storedQ[192..<2 * 192]) == Array(hfQ[16 * 192..<17 * 192]))
        withExtendedLifetime(d) {}
    }

    @Test func quantizedFileReadsBackWithinBudget() throws {
        let (d, path) = try export(.q8_0)
        let back = try GGUFCheckpoint(path: path), orig = try Checkpoint.open(model)
        for name in ["model.layers.2.self_attn.k_proj.weight", "model.layers.3.block_sparse_moe.experts.5.w2.weight"] {
            let a = try back.tensor(named: name).floats(), b = try orig.tensor(named: name).floats()
            let err = zip(a, b).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot() / b.map { $0 * $0 }.reduce(0, +).squareRoot()
            #expect(err < 0.01, "\(name): relative error \(err)")
        }
        #expect(back.details(of: "model.layers.2.self_attn.k_proj.weight") == ["blk.2.attn_k.weight", "Q8_0"])
        withExtendedLifetime(d) {}
    }

    @Test func importanceChangesTheCodes() throws {
        let (d1, plain) = try export(.q4_0)
        let (d2, weighted) = try export(.q4_0) { name, _ in name.hasSuffix("attn_output.weight") ? (0..<192).map { Float($0 % 7) + 0.1 } : nil }
        let a = try GGUFFile(path: plain), b = try GGUFFile(path: weighted)
        for t in a.tensors {
            let same = a.bytes(of: t).elementsEqual(b.bytes(of: b.tensor(t.name)!))
            #expect(same == !t.name.hasSuffix("attn_output.weight"), "\(t.name)")
        }
        withExtendedLifetime((d1, d2)) {}
    }

    /// The planner, fed llama-quantize's tensors in its loader order, picks its types.
    @Test(arguments: ["smollm2-135m", "tiny-moe-austen"]) func typesMatchLlamaQuantize(_ model: String) throws {
        let all = try JSON.parse(FileSystem.read(fixture("gguf/llama-quantize-types.json")))
        let m = try #require(all[model])
        let tensors = m["tensors"]!.arrayValue!.map { ($0.arrayValue![0].stringValue!, $0.arrayValue![1].arrayValue!.map { $0.intValue! }) }
        let ordered = tensors.sorted { a, b in
            let la = GGUFNames.split(a.0).layer ?? -1, lb = GGUFNames.split(b.0).layer ?? -1
            return la != lb ? la < lb : Array(a.0.utf8).lexicographicallyPrecedes(Array(b.0.utf8))
        }
        for (ftype, types) in m["types"]!.objectValue! {
            var p = GGUFTypePlanner(fileType: GGUFFileType(name: ftype)!, architecture: m["architecture"]!.stringValue!,
                                    layers: m["layers"]!.intValue!, experts: m["experts"]!.intValue!, heads: m["heads"]!.intValue!,
                                    kvHeads: m["kv_heads"]!.intValue!, names: tensors.map(\.0))
            for (name, dims) in ordered {
                #expect(p.type(for: name, dims: dims).name == types[name]?.stringValue, "\(model) \(ftype) \(name)")
            }
        }
    }

    @Test func calibrationBecomesTheImportanceMatrix() throws {
        let opened = try OpenedModel(path: model)
        let text = try String(contentsOfFile: fixture("texts/emma.txt"), encoding: .utf8)
        let ids = try opened.tokenizer!.encode(String(text.prefix(20_000)), addSpecialTokens: false)
        let data = CalibrationData(sequences: stride(from: 0, to: 8 * 128, by: 128).map { Array(ids[$0..<$0 + 128]) }, sourceSHA256: "", sourcePath: "emma")
        var settings = Calibration.Settings()
        settings.sampleTokens = 128
        let cal = try Calibrator(model: opened.model, settings: settings).run(data)
        let imp = try GGUFImportance(calibration: cal, model: opened.model.config)
        // attn_q's importance is the mean square of the attention input over every token.
        let site = cal.layers[1].sites[.attention]!
        #expect(imp.values("blk.1.attn_q.weight", nil) == site.meanSquares)
        #expect(site.tokens == 8 * 128)
        // Per expert: its routed tokens, and every expert of every layer has some (or a note says why not).
        for l in 0..<4 { for e in 0..<8 {
            let v = imp.values("blk.\(l).ffn_down_exps.weight", e)
            #expect(v != nil || imp.notes.contains { $0.hasPrefix("layer \(l) expert \(e):") })
        } }
        #expect(imp.values("token_embd.weight", nil) == nil)
        // Mean x² agrees with a direct computation on the stats' own definition (≥ mean|x|², Jensen).
        let ms = site.meanSquares!, ma = site.meanAbs
        #expect(zip(ms, ma).allSatisfy { $0 >= $1 * $1 * 0.999 })
    }
}
