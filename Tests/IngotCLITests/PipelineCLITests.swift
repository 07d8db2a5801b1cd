import Foundation
import Testing
import IngotTestSupport

/// `ingot run` end to end on the tiny Llama fixture (token-id calibration and evaluation data).
@Suite(.serialized) struct PipelineCLITests {
    func recipe(in dir: TempDir, output: String = "out", minTop1: Double = 0.5, name: String = "recipe.yaml") -> String {
        let text = """
        source: \(fixture("peers/models/tiny-llama"))
        output: \(output)
        calibration: {data: \(fixture("peers/data/calib_text.safetensors")), samples: 32, seq_len: 128}
        quantize:
          scheme: awq-int4
          group_size: 32
          overrides: [{pattern: "re:.*down_proj", scheme: rtn-int8}]
        exports: [compressed-tensors]
        verify:
          text: \(fixture("peers/data/eval_text.safetensors"))
          ctx: 128
          gates: {max_ppl_ratio: 1.5, min_top1: \(minTop1)}
        """
        let path = dir.file(name)
        writeBytes(Array(text.utf8), to: path)
        return path
    }

    @Test func passingRunWritesManifestAndResumesAsNoOp() throws {
        let dir = TempDir()
        let r = try ingot(["run", recipe(in: dir), "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        for f in ["calibration.ingot", "model.ingot", "compressed-tensors/model.safetensors", "verify.json", "verify.html", "ingot-manifest.json"] {
            #expect(FileManager.default.fileExists(atPath: dir.file("out/" + f)), "\(f)")
        }
        #expect(r.stdout.contains("same top p"))
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file("out/ingot-manifest.json")))) as! [String: Any]
        #expect(manifest["passed"] as? Bool == true)
        #expect((manifest["artifacts"] as? [[String: Any]])?.count ?? 0 >= 6)
        #expect(try ingot(["verify-file", dir.file("out")]).status == 0)
        // Nothing changed: every stage is skipped.
        let again = try ingot(["run", recipe(in: dir), "--quiet"])
        #expect(again.status == 0)
        #expect(!again.stderr.contains("status=start"), "\(again.stderr)")
        // A tampered artifact is caught by verify-file, and the next run redoes the stage that wrote it.
        let html = dir.file("out/verify.html")
        writeBytes(Array("tampered".utf8), to: html)
        #expect(try ingot(["verify-file", dir.file("out")]).status == 1)
        let redo = try ingot(["run", recipe(in: dir), "--quiet"])
        #expect(redo.stderr.contains("stage=verify status=start") && !redo.stderr.contains("stage=quantize status=start"), "\(redo.stderr)")
    }

    @Test func failingGateExitsOneAndRecordsIt() throws {
        let dir = TempDir()
        let r = try ingot(["run", recipe(in: dir, minTop1: 0.9999), "--quiet"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("gate min-top1") && r.stdout.contains("FAIL"))
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file("out/ingot-manifest.json")))) as! [String: Any]
        #expect(manifest["passed"] as? Bool == false)
    }

    @Test func badRecipesAreNamedErrors() throws {
        let dir = TempDir()
        for (text, message) in [("source: x\noutput: y\nquantize: {scheme: awq-int4}\n", "calibration"),
                                ("source: x\noutput: y\nquantize: {scheme: rtn-int4, group_sise: 3}\n", "group_sise"),
                                ("source: x\noutput: y\nquantize: {scheme: int3}\n", "scheme"),
                                ("source: x\noutput: y\nquantize: {scheme: rtn-int4, rounding: gptq}\n", "'quantize.rounding' rtn-int4 cannot round with gptq"),
                                ("source: x\noutput: y\nquantize: {scheme: gptq-int4}\n", "calibration"),
                                ("source: [unclosed\n", "YAML")] {
            writeBytes(Array(text.utf8), to: dir.file("bad.yaml"))
            let r = try ingot(["run", dir.file("bad.yaml")])
            #expect(r.status == 2)
            #expect(r.stderr.contains(message), "\(r.stderr)")
        }
    }

    /// Killed mid-run (after calibration, during quantization), the rerun skips what finished, leaves no
    /// temporaries, and produces the same bytes as an uninterrupted run.
    @Test func resumeAfterKillGivesIdenticalBytes() throws {
        let clean = TempDir(), killed = TempDir()
        #expect(try ingot(["run", recipe(in: clean), "--quiet"]).status == 0)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ingotBinary)
        p.arguments = ["run", recipe(in: killed), "--quiet"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let stamp = killed.file("out/.ingot-run/calibrate.json")
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: stamp) && p.isRunning && Date() < deadline { usleep(2000) }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(!FileManager.default.fileExists(atPath: killed.file("out/ingot-manifest.json")))
        let r = try ingot(["run", recipe(in: killed), "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("stage=calibrate status=skipped"), "\(r.stderr)")
        for f in ["calibration.ingot", "model.ingot", "compressed-tensors/model.safetensors", "compressed-tensors/config.json"] {
            #expect(FileManager.default.contents(atPath: clean.file("out/" + f)) == FileManager.default.contents(atPath: killed.file("out/" + f)), "\(f)")
        }
        let leftovers = FileManager.default.enumerator(atPath: killed.file("out"))?.compactMap { $0 as? String }.filter { $0.contains("ingot-tmp") } ?? []
        #expect(leftovers.isEmpty, "\(leftovers)")
    }
}
