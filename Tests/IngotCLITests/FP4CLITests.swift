import Foundation
import IngotTestSupport
import Testing

/// MXFP4 and NVFP4 as a user runs them on the trained tiny MoE: AWQ's transform in front of them lowers the held-out
/// KLD, the bytes do not depend on the worker count, the `.ingot` route exports what the direct export writes, and
/// `verify` gates them like any other scheme.
@Suite struct FP4CLITests {
    static let model = fixture("tiny-moe-austen")

    func kld(_ dir: TempDir, _ q: String) throws -> Double {
        let r = try ingot(["verify", Self.model, q, "--text", fixture("texts/persuasion-heldout.txt"), "--ctx", "128",
                           "--json", dir.file("v.json"), "--force", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file("v.json")))) as! [String: Any]
        return (j["kld"] as! [String: Any])["mean"] as! Double
    }

    @Test(arguments: ["mxfp4", "nvfp4a16"])
    func awqInFrontOfFP4LowersHeldOutKLD(scheme: String) throws {
        let dir = TempDir()
        let c = try ingot(["calibrate", Self.model, "--data", fixture("texts/emma.txt"), "--samples", "16", "--seq-len", "128",
                           "-o", dir.file("cal.ingot"), "--quiet"])
        #expect(c.status == 0, "\(c.stderr)")
        #expect(try ingot(["quantize", Self.model, "--scheme", scheme, "-o", dir.file("rtn.ingot"), "--quiet"]).status == 0)
        let a = try ingot(["quantize", Self.model, "--scheme", scheme, "--transform", "awq", "--calib", dir.file("cal.ingot"),
                           "-o", dir.file("awq.ingot")])
        #expect(a.status == 0, "\(a.stderr)")
        #expect(a.stderr.contains("awq:"), "\(a.stderr)")
        let rtn = try kld(dir, dir.file("rtn.ingot")), awq = try kld(dir, dir.file("awq.ingot"))
        #expect(awq < rtn, "\(scheme): KLD with AWQ \(awq), without \(rtn)")
        #expect(try ingot(["quantize", Self.model, "--scheme", scheme, "--transform", "awq", "--calib", dir.file("cal.ingot"),
                           "-o", dir.file("t1.ingot"), "--threads", "1", "--quiet"]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file("t1.ingot"))) == Data(contentsOf: URL(fileURLWithPath: dir.file("awq.ingot"))))
        #expect(try ingot(["export", Self.model, "--to", "compressed-tensors", "--scheme", scheme, "--transform", "awq",
                           "--calib", dir.file("cal.ingot"), "-o", dir.file("direct"), "--quiet"]).status == 0)
        #expect(try ingot(["export", dir.file("awq.ingot"), "--to", "compressed-tensors", "-o", dir.file("repacked"), "--quiet"]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file("direct/model.safetensors")))
                == Data(contentsOf: URL(fileURLWithPath: dir.file("repacked/model.safetensors"))))
    }

    @Test func transformIsRefusedWhereItCannotRun() throws {
        let dir = TempDir()
        let r = try ingot(["quantize", Self.model, "--scheme", "fp8-e4m3", "--transform", "awq", "-o", dir.file("q.ingot")])
        #expect(r.status == 2 && r.stderr.contains("awq runs in front of integer and FP4 schemes, not fp8-e4m3"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("q.ingot")))
        let n = try ingot(["quantize", Self.model, "--scheme", "nvfp4", "-o", dir.file("q.ingot")])
        #expect(n.status == 2 && n.stderr.contains("needs calibration"), "\(n.stderr)")
    }
}
