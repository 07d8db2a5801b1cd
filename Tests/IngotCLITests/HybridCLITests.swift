import Foundation
import Testing
import IngotCore
import IngotTestSupport

/// The pipeline on the hybrid linear-attention models (fixtures/families/tiny-qwen3-next, tiny-qwen3.5-moe):
/// `eval --tokens-json` perplexity equal to transformers' to 1e-5 relative, then calibrate, RTN INT4, FP8, AWQ INT4,
/// compressed-tensors export (state parameters, conv, norms, routers, gates, decay projections and the vision tower
/// kept) and verify; a config option Ingot cannot compute is one error line naming it.
struct HybridCLITests {
    static let models = ["tiny-qwen3-next", "tiny-qwen3.5-moe"]

    static func reference(_ model: String) throws -> (tokens: String, ctx: Int, perplexity: Double) {
        let ref = try JSON.parse(FileSystem.read(fixture("families/\(model)/reference.json")))
        return (fixture("families/\(model)/eval_tokens.json"), ref["ctx"]!.intValue!, ref["perplexity"]!.doubleValue!)
    }

    @Test(arguments: models)
    func evalPerplexityMatchesTransformers(model: String) throws {
        let t = try Self.reference(model)
        let r = try ingot(["eval", fixture("families/" + model), "--tokens-json", t.tokens, "--ctx", "\(t.ctx)", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let ppl = try JSON.parse(r.stdout)["perplexity"]!.doubleValue!
        #expect(abs(ppl / t.perplexity - 1) <= 1e-5, "\(model): \(ppl) vs transformers \(t.perplexity)")
    }

    @Test(arguments: models)
    func calibrateQuantizeExportVerify(model: String) throws {
        let d = TempDir(), src = fixture("families/" + model)
        let t = try Self.reference(model)
        let prefix = model == "tiny-qwen3-next" ? "model.layers." : "model.language_model.layers."
        let linear = model == "tiny-qwen3-next" ? 0 : 1  // a linear-attention layer
        var r = try ingot(["calibrate", src, "--data", t.tokens, "-o", d.file("cal.ingot"), "--samples", "4", "--seq-len", "64", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        // AWQ runs the family's declared mappings (linear attention: input norm → in_proj_*, no mapping into out_proj).
        for (scheme, extra) in [("rtn-int4", ["--group-size", "8"]), ("fp8-e4m3", []), ("awq-int4", ["--group-size", "8", "--calib", d.file("cal.ingot")])] {
            r = try ingot(["quantize", src, "--scheme", scheme, "-o", d.file("\(scheme).ingot"), "--report", d.file("\(scheme).json"), "--quiet"] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            // What stays in full precision, by role.
            let report = try JSON.parse(FileSystem.read(d.file("\(scheme).json"))).arrayValue!
            let kept = Set(report.filter { $0["to"]?.stringValue?.hasSuffix("(kept)") == true }.compactMap { $0["name"]?.stringValue })
            let p = prefix + "\(linear)."
            let mustKeep = ["linear_attn.A_log", "linear_attn.dt_bias", "linear_attn.conv1d.weight", "linear_attn.norm.weight",
                            "mlp.gate.weight", "mlp.shared_expert_gate.weight", "input_layernorm.weight"].map { p + $0 }
                + (model == "tiny-qwen3-next" ? [p + "linear_attn.in_proj_ba.weight"]
                    : [p + "linear_attn.in_proj_a.weight", p + "linear_attn.in_proj_b.weight", "model.visual.blocks.0.attn.qkv.weight"])
            for name in mustKeep { #expect(kept.contains(name), "\(model) \(scheme): \(name) quantized") }
            let quantized = Set(report.map { $0["name"]!.stringValue! }).subtracting(kept)
            let largeInput = model == "tiny-qwen3-next" ? ["in_proj_qkvz"] : ["in_proj_qkv", "in_proj_z"]
            for name in largeInput + ["out_proj"] { #expect(quantized.contains(p + "linear_attn.\(name).weight"), "\(model): \(name) kept") }
            #expect(quantized.contains(p + "mlp.shared_expert.down_proj.weight"))

            r = try ingot(["export", d.file("\(scheme).ingot"), "--to", "compressed-tensors", "-o", d.file(scheme), "--quiet"])
            #expect(r.status == 0, "\(r.stderr)")
            let config = try JSON.parse(FileSystem.read(d.file(scheme + "/config.json")))
            let ignore = Set(config["quantization_config"]?["ignore"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            for name in mustKeep where name.hasSuffix("gate.weight") || name.contains("in_proj_") || name.contains("visual") {
                #expect(ignore.contains(String(name.dropLast(7))), "\(model) \(scheme): \(name) not in ignore \(ignore)")
            }
            for q in [d.file("\(scheme).ingot"), d.file(scheme)] {
                r = try ingot(["verify", src, q, "--tokens-json", t.tokens, "--ctx", "\(t.ctx)", "--json", d.file("v.json"), "--force", "--quiet"])
                #expect(r.status == 0, "\(r.stderr)")
                let v = try JSON.parse(FileSystem.read(d.file("v.json")))
                let ratio = v["ppl_ratio"]!.doubleValue!, kld = v["kld"]!["mean"]!.doubleValue!
                #expect(abs(ratio - 1) < 0.01 && kld < 0.001, "\(model) \(scheme) \(q): ppl ratio \(ratio), KLD \(kld)")
            }
        }
    }

    @Test func inspectReadsTheTextConfig() throws {
        let r = try ingot(["inspect", fixture("families/tiny-qwen3.5-moe")])
        #expect(r.status == 0 && r.stdout.contains("layers: 4") && r.stdout.contains("experts: 6, top-3, 1 shared"), "\(r.stdout)")
    }

    @Test func unsupportedOptionIsOneLineNamingIt() throws {
        let d = TempDir(), src = fixture("families/tiny-qwen3.5-moe")
        try FileManager.default.createDirectory(atPath: d.file("m"), withIntermediateDirectories: true)
        for f in ["model.safetensors", "tokenizer.json"] { try FileManager.default.copyItem(atPath: src + "/" + f, toPath: d.file("m/" + f)) }
        var text = String(decoding: try FileSystem.read(src + "/config.json"), as: UTF8.self)
        text = text.replacingOccurrences(of: "\"linear_attention\",\n      \"full_attention\"", with: "\"linear_attention\",\n      \"chunked_attention\"")
        try Data(text.utf8).write(to: URL(fileURLWithPath: d.file("m/config.json")))
        let r = try ingot(["eval", d.file("m"), "--tokens-json", fixture("families/tiny-qwen3.5-moe/eval_tokens.json"), "--ctx", "128"])
        #expect(r.status == 2)
        #expect(r.stderr == "error: \(d.file("m/config.json")): text_config.layer_types[3] = \"chunked_attention\" is not supported\n", "\(r.stderr)")
    }
}
