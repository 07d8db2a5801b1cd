import Foundation
import IngotTestSupport
import IngotCalibration
import Testing

/// `--scheme gptq-int4` and `awq-int4 --rounding gptq` end to end on the trained tiny MoE: NaN-free, thread-count
/// independent, the same codes through quantize → export as through export, and on held-out text no worse than
/// round-to-nearest; bad input is one error line naming the layer, exit 2, nothing written.
@Suite struct GPTQCLITests {
    static let heldOut = fixture("texts/persuasion-heldout.txt")

    func calibrate(_ dir: TempDir, _ extra: [String] = []) throws {
        let r = try ingot(["calibrate", fixture("tiny-moe-austen"), "--data", fixture("texts/emma.txt"), "--samples", "16", "--seq-len", "128",
                           "-o", dir.file("cal.ingot"), "--quiet"] + extra)
        #expect(r.status == 0, "\(r.stderr)")
    }

    /// Perplexity and mean KLD of `q` against the original on the held-out text.
    func verify(_ dir: TempDir, _ q: String) throws -> (ppl: Double, kld: Double) {
        let r = try ingot(["verify", fixture("tiny-moe-austen"), q, "--text", Self.heldOut, "--ctx", "128", "--json", dir.file("v.json"), "--force", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file("v.json")))) as! [String: Any]
        return (j["ppl_quantized"] as! Double, (j["kld"] as! [String: Any])["mean"] as! Double)
    }

    @Test func gptqRoundingBeatsRoundToNearestOnHeldOutText() throws {
        let dir = TempDir()
        try calibrate(dir)
        let common = ["--group-size", "64", "--calib", dir.file("cal.ingot")]
        var results: [String: (ppl: Double, kld: Double)] = [:]
        for (name, args) in [("rtn", ["--scheme", "rtn-int4"]), ("gptq", ["--scheme", "gptq-int4"]),
                             ("awq+gptq", ["--scheme", "awq-int4", "--rounding", "gptq"])] {
            let r = try ingot(["quantize", fixture("tiny-moe-austen")] + args + common + ["-o", dir.file(name + ".ingot")])
            #expect(r.status == 0, "\(r.stderr)")
            if name != "rtn" { #expect(r.stderr.contains("linears rounded with GPTQ"), "\(r.stderr)") }
            results[name] = try verify(dir, dir.file(name + ".ingot"))
            #expect(results[name]!.ppl.isFinite && results[name]!.kld.isFinite, "\(name)")
        }
        // Measured (g64, emma.txt calibration, persuasion-heldout): ppl RTN 71.25, GPTQ 71.19, AWQ+GPTQ 71.19;
        // mean KLD 3.5e-3, 9.6e-4, 1.3e-3.
        for name in ["gptq", "awq+gptq"] {
            #expect(results[name]!.ppl <= results["rtn"]!.ppl, "\(name) \(results[name]!) rtn \(results["rtn"]!)")
            #expect(results[name]!.kld < results["rtn"]!.kld, "\(name) \(results[name]!) rtn \(results["rtn"]!)")
        }
        // The bytes do not depend on the worker count; export straight from the checkpoint stores the codes
        // quantize stored.
        #expect(try ingot(["quantize", fixture("tiny-moe-austen"), "--scheme", "gptq-int4"] + common
                          + ["-o", dir.file("t1.ingot"), "--threads", "1", "--quiet"]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file("t1.ingot"))) == Data(contentsOf: URL(fileURLWithPath: dir.file("gptq.ingot"))))
        #expect(try ingot(["export", fixture("tiny-moe-austen"), "--to", "compressed-tensors", "--scheme", "gptq-int4"] + common
                          + ["-o", dir.file("direct"), "--quiet"]).status == 0)
        #expect(try ingot(["export", dir.file("gptq.ingot"), "--to", "compressed-tensors", "-o", dir.file("repacked"), "--quiet"]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file("direct/model.safetensors")))
                == Data(contentsOf: URL(fileURLWithPath: dir.file("repacked/model.safetensors"))))
    }

    @Test func badInputIsOneLineNamingTheLayer() throws {
        let dir = TempDir()
        // 1 sequence of 16 tokens: fewer tokens than inputs, so XᵀX is singular without dampening.
        writeBytes(Array("[11, 400, 1200, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]".utf8), to: dir.file("ids.json"))
        #expect(try ingot(["calibrate", fixture("tiny-moe-austen"), "--data", dir.file("ids.json"), "--samples", "1", "--seq-len", "16",
                           "-o", dir.file("few.ingot"), "--quiet"]).status == 0)
        try calibrate(dir)
        var cal = try CalibrationArtifact.read(dir.file("cal.ingot"))
        cal.layers[2].sample = []
        try CalibrationArtifact.write(cal, to: dir.file("nosample.ingot"))
        for (args, message) in [
            (["--scheme", "gptq-int4", "--calib", dir.file("few.ingot"), "--gptq-dampening", "0"], "the Hessian of model.layers.0."),
            (["--scheme", "gptq-int4", "--calib", dir.file("nosample.ingot")], "layer 2 has no calibration sample"),
            (["--scheme", "awq-int4", "--rounding", "gptq", "--calib", dir.file("nosample.ingot")], "layer 2 has no calibration sample"),
            (["--scheme", "rtn-int4", "--rounding", "gptq", "--calib", dir.file("cal.ingot")], "rtn-int4 cannot round with gptq"),
            (["--scheme", "gptq-int4"], "needs calibration"),
        ] {
            let r = try ingot(["quantize", fixture("tiny-moe-austen")] + args + ["-o", dir.file("q.ingot")])
            #expect(r.status == 2, "\(args) \(r.stderr)")
            #expect(r.stderr.contains(message) && r.stderr.lowercased().components(separatedBy: "error:").count == 2, "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir.file("q.ingot")))
        }
        // A family whose linears' inputs are not captured per linear is refused by name.
        let src = fixture("families/tiny-gpt-oss")
        writeBytes(Array("[11, 40, 120, 5, 6, 7, 8, 9]".utf8), to: dir.file("ids8.json"))
        #expect(try ingot(["calibrate", src, "--data", dir.file("ids8.json"), "--samples", "1", "--seq-len", "8", "-o", dir.file("oss.ingot"),
                           "--quiet"]).status == 0)
        let r = try ingot(["quantize", src, "--scheme", "gptq-int4", "--calib", dir.file("oss.ingot"), "-o", dir.file("q.ingot")])
        #expect(r.status == 2 && r.stderr.contains("GPTQ for gpt_oss"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("q.ingot")))
    }
}
