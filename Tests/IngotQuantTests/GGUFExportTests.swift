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
    @Test(arguments: ["smollm2-135m", "tiny-moe-austen", "tiny-deepseekv3"]) func typesMatchLlamaQuantize(_ model: String) throws {
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

/// DeepSeek-V3 as llama.cpp's `deepseek2`: the tiny peer checkpoint (random weights, the peers' 2048-token
/// tokenizer) exported, read back, and its configuration rebuilt from the metadata alone. (Whole files: every type
/// byte-identical to llama-quantize's and llama-perplexity = Ingot's eval, by scripts/check-gguf-deepseek2.)
struct GGUFDeepSeekExportTests {
    let model = fixture("peers/models/tiny-deepseekv3")

    func export(_ type: GGUFFileType, model dir: String? = nil, config: String? = nil) throws -> (TempDir, String) {
        let d = TempDir(), path = d.file("m.gguf"), dir = dir ?? model
        var job = GGUFExportJob(source: try Checkpoint.open(dir), modelDirectory: dir, fileType: type, destination: path)
        job.storedCompanions = try ["tokenizer.json", "tokenizer_config.json"].map { ($0, try FileSystem.read(fixture("peers/models/tokenizer/\($0)"))) }
        if let config { job.storedCompanions.append(("config.json", Array(config.utf8))) }
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
        let rebuilt = try ModelConfig(json: JSON.parse(back.companionFiles()[0].bytes))
        #expect(rebuilt == (try ModelConfig.load(directory: model)))
        let g = back.gguf
        #expect(g["general.architecture"]?.stringValue == "deepseek2")
        for (k, v) in [("attention.head_count_kv", 1), ("attention.key_length", 40), ("attention.value_length", 32),
                       ("attention.key_length_mla", 24), ("attention.value_length_mla", 16), ("attention.q_lora_rank", 32),
                       ("attention.kv_lora_rank", 32), ("rope.dimension_count", 8), ("leading_dense_block_count", 1),
                       ("expert_shared_count", 1), ("expert_group_count", 2), ("expert_group_used_count", 1), ("expert_gating_func", 2)] {
            #expect(g["deepseek2.\(k)"]?.intValue == v, "\(k)")
        }
        #expect(g["deepseek2.expert_weights_scale"]?.doubleValue == 2.5 && g["deepseek2.expert_weights_norm"]?.boolValue == true)
        // kv_b_proj [4·(16 + 16), 32] split per head: k_b {16, 32, 4} is the key rows transposed, v_b {32, 16, 4} the value rows.
        let k = g.tensor("blk.0.attn_k_b.weight")!, v = g.tensor("blk.0.attn_v_b.weight")!
        #expect(k.dims == [16, 32, 4] && v.dims == [32, 16, 4] && g.tensor("blk.0.attn_kv_b.weight") == nil)
        let kv = try orig.tensor(named: "model.layers.0.self_attn.kv_b_proj.weight").floats(), ks = try g.floats(k), vs = try g.floats(v)
        // head 1, latent column 5, nope row 3; head 2, value row 7.
        #expect(ks[(1 * 32 + 5) * 16 + 3] == kv[(1 * 32 + 3) * 32 + 5])
        #expect(Array(vs[(2 * 16 + 7) * 32..<(2 * 16 + 8) * 32]) == Array(kv[(2 * 32 + 16 + 7) * 32..<(2 * 32 + 16 + 8) * 32]))
        withExtendedLifetime(d) {}
    }

    @Test func yarnRoundTrips() throws {
        let dir = fixture("deepseekv3-yarn")
        let (d, path) = try export(.f16, model: dir)
        let back = try GGUFCheckpoint(path: path)
        let g = back.gguf
        #expect(g["deepseek2.rope.scaling.type"]?.stringValue == "yarn" && g["deepseek2.rope.scaling.original_context_length"]?.intValue == 32)
        let rebuilt = try ModelConfig(json: JSON.parse(back.companionFiles()[0].bytes))
        #expect(rebuilt == (try ModelConfig.load(directory: dir)))
        withExtendedLifetime(d) {}
    }

    /// What llama.cpp's deepseek2 would compute differently is refused by name.
    @Test func unfaithfulConfigsAreRefused() throws {
        let base = try String(contentsOfFile: model + "/config.json", encoding: .utf8)
        for (from, to, expected) in [
            ("\"rope_interleave\": true", "\"rope_interleave\": false", "rope_interleave"),
            ("\"first_k_dense_replace\": 1", "\"first_k_dense_replace\": 0, \"moe_layer_freq\": 2", "leading_dense_block_count"),
            ("\"rope_type\": \"default\"", "\"rope_type\": \"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\": 32, \"mscale\": 0.5, \"mscale_all_dim\": 1.0", "mscale"),
        ] {
            #expect(base.contains(from))
            #expect { _ = try export(.f32, config: base.replacingOccurrences(of: from, with: to)) } throws: { e in
                "\(e)".contains(expected)
            }
        }
    }

    @Test func calibrationSitesBecomeTheImportance() throws {
        let opened = try OpenedModel(path: model)
        let data = CalibrationData(sequences: (0..<4).map { s in (0..<64).map { (s * 131 + $0 * 17) % 2048 } }, sourceSHA256: "", sourcePath: "ids")
        var settings = Calibration.Settings()
        settings.sampleTokens = 64
        let cal = try Calibrator(model: opened.model, settings: settings).run(data)
        let imp = try GGUFImportance(calibration: cal, model: opened.model.config)
        let sites = cal.layers[1].sites
        #expect(imp.values("blk.1.attn_q_a.weight", nil) == sites[.attention]!.meanSquares)
        #expect(imp.values("blk.1.attn_kv_a_mqa.weight", nil) == sites[.attention]!.meanSquares)
        #expect(imp.values("blk.1.attn_q_b.weight", nil) == sites[.qLatent]!.meanSquares)
        #expect(imp.values("blk.1.attn_k_b.weight", nil) == nil && imp.values("blk.1.attn_v_b.weight", nil) == nil)
        #expect(imp.notes.contains { $0.hasPrefix("attn_k_b, attn_v_b") })
        #expect(imp.values("blk.1.ffn_gate_shexp.weight", nil) == sites[.mlp]!.meanSquares)
        #expect(imp.values("blk.0.ffn_down.weight", nil) == cal.layers[0].sites[.down]!.meanSquares)
    }
}
