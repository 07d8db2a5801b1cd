import Foundation
import Testing
import IngotCore
import IngotFormats
import IngotTestSupport

/// `ingot quantize` / `ingot export` / `ingot dequantize` as a user runs them.
@Suite(.serialized) struct QuantizeExportCLITests {
    @Test func quantizeToIngotThenExportEveryLayout() throws {
        let d = TempDir()
        let r = try ingot(["quantize", fixture("tiny-moe-austen"), "--scheme", "rtn-int4", "--group-size", "64", "-o", d.file("q.ingot"),
                           "--report", d.file("report.json")])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("int4 asym g64") && r.stdout.contains("112"), "\(r.stdout)")
        let report = try JSON.parse(FileSystem.read(d.file("report.json")))
        #expect(report.arrayValue?.count == 126)
        #expect(try ingot(["verify-file", d.file("q.ingot")]).status == 0)
        for to in ["compressed-tensors", "autoawq"] {
            let e = try ingot(["export", d.file("q.ingot"), "--to", to, "-o", d.file(to), "--quiet"])
            #expect(e.status == 0, "\(to): \(e)")
            let cfg = try JSON.parse(FileSystem.read(d.file(to + "/config.json")))
            #expect(cfg["quantization_config"]?["quant_method"]?.stringValue == (to == "autoawq" ? "awq" : "compressed-tensors"))
            #expect(FileManager.default.fileExists(atPath: d.file(to + "/tokenizer.json")))
        }
        // The three dequantize to the same weights.
        for src in [d.file("q.ingot"), d.file("compressed-tensors"), d.file("autoawq")] {
            #expect(try ingot(["dequantize", src, d.file(FileSystem.baseName(src) + ".dq.safetensors"), "--weights-only", "--quiet"]).status == 0)
        }
        let a = try Checkpoint.open(d.file("q.ingot.dq.safetensors")), b = try Checkpoint.open(d.file("compressed-tensors.dq.safetensors"))
        let n = "model.layers.2.self_attn.v_proj.weight"
        #expect(try a.tensor(named: n).floats() == b.tensor(named: n).floats())
    }

    /// `--scheme nvfp4` (weights and static activation global scales) on llm-compressor's own calibration rows:
    /// every weight tensor byte-identical to its `NVFP4` preset's, the input global scales within one bf16 step (its
    /// observer sees bf16 activations, Ingot's reference forward pass f32), the same `quantization_config`; and
    /// the `.ingot` route gives the same export.
    @Test func nvfp4MatchesLLMCompressorWithStaticActivations() throws {
        let d = TempDir()
        let model = fixture("peers/models/tiny-llama")
        let c = try ingot(["calibrate", model, "--data", fixture("peers/data/calib_text.safetensors"), "--samples", "32", "--seq-len", "128",
                           "-o", d.file("cal.ingot"), "--quiet"])
        #expect(c.status == 0, "\(c)")
        let e = try ingot(["export", model, "--to", "compressed-tensors", "--scheme", "nvfp4", "--calib", d.file("cal.ingot"), "-o", d.file("ct"), "--quiet"])
        #expect(e.status == 0, "\(e)")
        let q = try ingot(["quantize", model, "--scheme", "nvfp4", "--calib", d.file("cal.ingot"), "-o", d.file("q.ingot"), "--quiet"])
        #expect(q.status == 0, "\(q)")
        #expect(try ingot(["export", d.file("q.ingot"), "--to", "compressed-tensors", "-o", d.file("via"), "--quiet"]).status == 0)
        let ours = try Checkpoint.open(d.file("ct")), via = try Checkpoint.open(d.file("via"))
        let theirs = try Checkpoint.open(fixture("peers/llmc/tiny-llama-nvfp4"))
        #expect(Set(ours.tensors.map(\.name)) == Set(theirs.tensors.map(\.name)))
        #expect(Set(via.tensors.map(\.name)) == Set(theirs.tensors.map(\.name)))
        var scales = 0
        for t in theirs.tensors {
            let a = try theirs.tensor(named: t.name), b = try ours.tensor(named: t.name)
            #expect(try b.withBytes { x in try via.tensor(named: t.name).withBytes { x.elementsEqual($0) } }, "\(t.name): .ingot route differs")
            if t.name.hasSuffix(".input_global_scale") {
                let x = try a.floats()[0], y = try b.floats()[0]
                #expect(abs(x - y) <= x / 128, "\(t.name): \(y) vs llm-compressor \(x)")
                scales += 1
            } else {
                #expect(a.withBytes { x in b.withBytes { x.elementsEqual($0) } }, "\(t.name) differs")
            }
        }
        #expect(scales == 14)
        let q1 = try JSON.parse(FileSystem.read(d.file("ct/config.json")))["quantization_config"]
        let q2 = try JSON.parse(FileSystem.read(fixture("peers/llmc/tiny-llama-nvfp4/config.json")))["quantization_config"]
        #expect(canonicalJSON(q1) == canonicalJSON(q2))
    }

    /// `--ignore` and `--override` reach the runtime config: ignored linears are listed in `ignore` (vLLM would
    /// otherwise look for their quantized tensors), an override gets its own config group targeting its modules by
    /// name (mixed formats say `mixed-precision`), and the layouts that hold one scheme refuse overrides by name but
    /// list ignored linears (AutoAWQ `modules_to_not_convert`, DeepSeek FP8 `ignored_layers`).
    @Test func ignoreAndOverridesReachTheRuntimeConfig() throws {
        let d = TempDir()
        let model = fixture("peers/models/tiny-llama")
        let e = try ingot(["export", model, "--to", "compressed-tensors", "--scheme", "rtn-int4", "--group-size", "32", "--ignore", "re:.*\\.q_proj",
                           "--override", "*.down_proj=fp8-e4m3", "-o", d.file("ct"), "--quiet"])
        #expect(e.status == 0, "\(e)")
        let q = try JSON.parse(FileSystem.read(d.file("ct/config.json")))["quantization_config"]!
        let ignore = q["ignore"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(Set(ignore) == ["lm_head", "model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj"], "\(ignore)")
        #expect(q["format"]?.stringValue == "mixed-precision")
        #expect(q["config_groups"]?["group_0"]?["targets"]?.arrayValue?.compactMap(\.stringValue) == ["Linear"])
        #expect(q["config_groups"]?["group_0"]?["format"]?.stringValue == "pack-quantized")
        let g1 = q["config_groups"]?["group_1"]
        #expect(g1?["targets"]?.arrayValue?.compactMap(\.stringValue) == ["model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"])
        #expect(g1?["format"]?.stringValue == "float-quantized" && g1?["weights"]?["num_bits"]?.intValue == 8)
        let ct = try Checkpoint.open(d.file("ct"))
        #expect(ct.info("model.layers.0.self_attn.q_proj.weight")?.dtype == .bf16)
        #expect(ct.info("model.layers.1.mlp.down_proj.weight")?.dtype == .f8e4m3)
        // The same from the .ingot.
        #expect(try ingot(["quantize", model, "--scheme", "rtn-int4", "--group-size", "32", "--ignore", "re:.*\\.q_proj",
                           "--override", "*.down_proj=fp8-e4m3", "-o", d.file("q.ingot"), "--quiet"]).status == 0)
        #expect(try ingot(["export", d.file("q.ingot"), "--to", "compressed-tensors", "-o", d.file("via"), "--quiet"]).status == 0)
        let v = try JSON.parse(FileSystem.read(d.file("via/config.json")))["quantization_config"]
        #expect(canonicalJSON(v) == canonicalJSON(q))
        // One-scheme layouts.
        let a = try ingot(["export", model, "--to", "autoawq", "--scheme", "rtn-int4", "--group-size", "32", "--override", "*.down_proj=rtn-int4:g64",
                           "-o", d.file("awq")])
        #expect(a.status == 2 && a.stderr.contains("autoawq holds one scheme for the whole model"), "\(a.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d.file("awq")))
        #expect(try ingot(["export", model, "--to", "autoawq", "--scheme", "rtn-int4", "--group-size", "32", "--ignore", "re:.*\\.q_proj",
                           "-o", d.file("awq"), "--quiet"]).status == 0)
        let aq = try JSON.parse(FileSystem.read(d.file("awq/config.json")))["quantization_config"]
        #expect(aq?["modules_to_not_convert"]?.arrayValue?.compactMap(\.stringValue) == ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj"])
    }

    /// compressed-tensors reshapes a row into whole groups: a weight narrower than the group is exported per channel
    /// (the same codes, in a config group of its own), and a width the group does not divide is refused by name.
    @Test func groupsCompressedTensorsCannotReadAreNotWritten() throws {
        let d = TempDir()
        let model = fixture("peers/models/tiny-llama")   // hidden 64, intermediate 192
        let e = try ingot(["export", model, "--to", "compressed-tensors", "--scheme", "rtn-int4", "--group-size", "64", "-o", d.file("ct"), "--quiet"])
        #expect(e.status == 0, "\(e)")
        let q = try JSON.parse(FileSystem.read(d.file("ct/config.json")))["quantization_config"]
        #expect(q?["config_groups"]?["group_0"]?["weights"]?["strategy"]?.stringValue == "channel")   // 12 of 14 are 64 wide
        #expect(q?["config_groups"]?["group_1"]?["weights"]?["group_size"]?.intValue == 64)
        #expect(q?["config_groups"]?["group_1"]?["targets"]?.arrayValue?.count == 2)              // the down_projs, 192 wide
        let r = try ingot(["export", model, "--to", "compressed-tensors", "--scheme", "rtn-int4", "--group-size", "128", "-o", d.file("bad")])
        #expect(r.status == 2 && r.stderr.contains("input width 192 to be a multiple of the group size 128"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d.file("bad")))
    }

    @Test func fp8BlockExportsForDeepSeekStyleRuntimes() throws {
        let d = TempDir()
        #expect(try ingot(["export", fixture("tiny-moe-austen-fused"), "--to", "fp8", "-o", d.file("fp8"), "--quiet"]).status == 0)
        let s = try Checkpoint.open(d.file("fp8"))
        #expect(s.info("model.layers.0.mlp.experts.3.gate_proj.weight")?.dtype == .f8e4m3, "fused experts are split per expert")
        #expect(s.info("model.layers.0.mlp.experts.3.gate_proj.weight_scale_inv")?.dtype == .f32)
        #expect(s.info("model.layers.0.mlp.gate.weight")?.dtype == .bf16, "router kept")
    }

    @Test(arguments: [
        (["quantize", "MODEL", "--scheme", "rtn-int3", "-o", "OUT/x.ingot"], "'rtn-int3' is invalid for '--scheme"),
        (["quantize", "MODEL", "--group-size", "0", "-o", "OUT/x.ingot"], "--group-size must be positive"),
        (["quantize", "MODEL", "--scheme", "mxfp4", "--group-size", "64", "-o", "OUT/x.ingot"], "mxfp4 has groups of 32"),
        (["quantize", "MODEL", "--override", "nonsense", "-o", "OUT/x.ingot"], "expected PATTERN=SCHEME"),
        (["export", "MODEL", "--to", "exl2", "-o", "OUT/x"], "--to must be"),
        (["export", "MODEL", "--to", "gguf", "-o", "OUT/x"], "--to gguf needs --type"),
        (["export", "MODEL", "--to", "autoawq", "--group-size", "100", "-o", "OUT/x"], "AutoAWQ GEMM needs"),
    ])
    func badArguments(args: [String], message: String) throws {
        let d = TempDir()
        let a = args.map { $0 == "MODEL" ? fixture("tiny-moe-austen") : $0.replacingOccurrences(of: "OUT", with: d.path) }
        let r = try ingot(a)
        #expect(r.status != 0)
        #expect(r.stderr.contains(message), "\(r.stderr)")
        #expect(d.entries.isEmpty, "left behind: \(d.entries)")
    }
}

/// Weights with NaN, Inf, zero rows, denormals: reported per tensor, never NaN scales; `--strict` fails.
@Suite(.serialized) struct BadWeightsCLITests {
    func badCheckpoint(_ d: TempDir) throws -> String {
        var w = [Float](repeating: 0.01, count: 64 * 64)
        w[17] = .nan
        w[99] = .infinity
        for c in 0..<64 { w[64 * 5 + c] = 0 }   // an all-zero row
        w[64 * 9 + 3] = 1e-41                   // a denormal
        let p = d.file("bad.safetensors")
        let entry = try SafetensorsWriter.Entry(name: "model.layers.0.mlp.up_proj.weight", dtype: .f32, shape: [64, 64])
        let writer = try SafetensorsWriter(path: p, entries: [entry])
        try w.withUnsafeBytes { try writer.append($0) }
        try writer.commit()
        return p
    }

    @Test func reportedThenStrictFails() throws {
        let d = TempDir()
        let p = try badCheckpoint(d)
        let r = try ingot(["quantize", p, "--scheme", "rtn-int4", "--group-size", "32", "-o", d.file("q.ingot")])
        #expect(r.status == 0, "\(r)")
        #expect(r.stderr.contains("1 NaN, 1 infinite, first non-finite at index 17, 1 all-zero rows, 2 all-zero groups, 1 denormals"), "\(r.stderr)")
        let dq = try ingot(["dequantize", d.file("q.ingot"), d.file("dq.safetensors"), "--quiet"])
        #expect(dq.status == 0)
        let w = try Checkpoint.open(d.file("dq.safetensors")).tensor(named: "model.layers.0.mlp.up_proj.weight").floats()
        #expect(w.allSatisfy { $0.isFinite }, "no NaN after quantization")
        let s = try ingot(["export", p, "--to", "compressed-tensors", "--strict", "-o", d.file("strict")])
        #expect(s.status == 1 && s.stderr.contains("(--strict)"), "\(s)")
        #expect(!FileManager.default.fileExists(atPath: d.file("strict")))
    }
}

/// `ingot eval` on the original, the quantized .ingot and its compressed-tensors export.
@Suite(.serialized) struct EvalCLITests {
    @Test func quantizedLayoutsEvaluateIdentically() throws {
        let d = TempDir()
        #expect(try ingot(["quantize", fixture("tiny-moe-austen"), "--scheme", "rtn-int4", "--group-size", "64", "-o", d.file("q.ingot"), "--quiet"]).status == 0)
        #expect(try ingot(["export", d.file("q.ingot"), "--to", "compressed-tensors", "-o", d.file("ct"), "--quiet"]).status == 0)
        func ppl(_ m: String) throws -> Double {
            let r = try ingot(["eval", m, "--text", fixture("texts/persuasion.txt"), "--ctx", "128", "--max-tokens", "512", "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            return try JSON.parse(r.stdout)["perplexity"]?.doubleValue ?? .nan
        }
        let original = try ppl(fixture("tiny-moe-austen")), native = try ppl(d.file("q.ingot")), ct = try ppl(d.file("ct"))
        #expect(native == ct, "\(native) vs \(ct)")
        #expect(native > original && native < original * 1.1, "INT4 g64 costs a little: \(original) → \(native)")
        let bad = try ingot(["eval", fixture("tiny-moe-austen"), "--text", fixture("texts/persuasion.txt"), "--ctx", "1"])
        #expect(bad.status == 2)
    }
}
