import Foundation
import Testing
import IngotTestSupport

@Suite struct CalibrateCLITests {
    /// Three tokens leave experts without routed tokens: the coverage report names them and what was done.
    @Test func coverageReportNamesStarvedExperts() throws {
        let dir = TempDir()
        writeBytes(Array("[11, 400, 1200]".utf8), to: dir.file("ids.json"))
        let r = try ingot(["calibrate", fixture("tiny-moe-austen"), "--data", dir.file("ids.json"), "--samples", "1", "--seq-len", "3",
                           "--min-expert-tokens", "1", "--starved-experts", "rtn", "-o", dir.file("c.ingot"), "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("starved experts") && r.stdout.contains("round-to-nearest") && r.stdout.contains("layer 0:"), "\(r.stdout)")
        let j = try ingot(["calibrate", fixture("tiny-moe-austen"), "--data", dir.file("ids.json"), "--samples", "1", "--seq-len", "3",
                           "-o", dir.file("c2.ingot"), "--json", "--quiet"])
        let report = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as! [String: Any]
        #expect((report["expert_tokens"] as? [[Int]])?.count == 4)
        #expect(((report["starved"] as? [Any])?.count ?? 0) > 0)
        // A quantize with this calibration warns once and still writes a valid file.
        let q = try ingot(["quantize", fixture("tiny-moe-austen"), "--scheme", "awq-int4", "--group-size", "64", "--calib", dir.file("c.ingot"),
                           "-o", dir.file("q.ingot"), "--quiet"])
        #expect(q.status == 0, "\(q.stderr)")
        #expect(q.stderr.components(separatedBy: "warning:").count == 2, "\(q.stderr)")
        #expect(try ingot(["verify-file", dir.file("q.ingot")]).status == 0)
    }

    @Test func calibrationErrorsAreNamed() throws {
        let dir = TempDir()
        writeBytes(Array("{\"text\": 3}\n".utf8), to: dir.file("bad.jsonl"))
        writeBytes(Array("Emma Woodhouse, handsome, clever, and rich.".utf8), to: dir.file("short.txt"))
        for (args, message) in [
            (["calibrate", fixture("tiny-moe-austen"), "--data", dir.file("bad.jsonl"), "-o", dir.file("c.ingot")], "bad.jsonl:1: no string field 'text'"),
            (["calibrate", fixture("tiny-moe-austen"), "--data", dir.file("short.txt"), "--seq-len", "256", "-o", dir.file("c.ingot")], "fewer than one sequence"),
            (["calibrate", fixture("tiny-moe-austen"), "--data", fixture("texts/persuasion-heldout.txt"), "--seq-len", "100000", "-o", dir.file("c.ingot")],
             "--seq-len 100000 exceeds max_position_embeddings 512"),
            (["quantize", fixture("tiny-moe-austen"), "--scheme", "awq-int4", "-o", dir.file("q.ingot")], "needs calibration"),
            (["quantize", fixture("tiny-moe-austen"), "--scheme", "fp8-e4m3", "--fp8-granularity", "block", "--activations", "static",
              "--data", fixture("texts/persuasion-heldout.txt"), "-o", dir.file("q.ingot")], "dynamic activations"),
        ] {
            let r = try ingot(args)
            #expect(r.status == 2, "\(args)")
            #expect(r.stderr.contains(message), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir.file("c.ingot")) && !FileManager.default.fileExists(atPath: dir.file("q.ingot")))
        }
        // The wrong model's calibration is refused.
        writeBytes(Array("[11, 400, 1200, 5, 6, 7, 8, 9]".utf8), to: dir.file("ids.json"))
        #expect(try ingot(["calibrate", fixture("tiny-moe-austen-fused"), "--data", dir.file("ids.json"), "--samples", "1", "--seq-len", "8",
                           "-o", dir.file("other.ingot"), "--quiet"]).status == 0)
        let r = try ingot(["quantize", fixture("tiny-moe-austen"), "--scheme", "awq-int4", "--calib", dir.file("other.ingot"), "-o", dir.file("q.ingot")])
        #expect(r.status == 2 && r.stderr.contains("different checkpoint"), "\(r.stderr)")
    }
}
