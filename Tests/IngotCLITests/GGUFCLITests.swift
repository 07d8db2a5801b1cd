import Foundation
import Testing
import IngotCore
import IngotFormats
import IngotTestSupport

/// GGUF in and out from the command line: export, inspect, verify against the original, convert back, and one
/// clear error for a broken file.
@Suite(.serialized) struct GGUFCLITests {
    @Test func exportInspectVerifyConvert() throws {
        let d = TempDir(), gguf = d.file("m.gguf")
        let e = try ingot(["export", fixture("tiny-moe-austen"), "--to", "gguf", "--type", "Q4_K_M", "-o", gguf, "--quiet"])
        #expect(e.status == 0, "\(e)")
        let i = try ingot(["inspect", gguf, "--tensors"])
        #expect(i.status == 0 && i.stdout.contains("GGUF v3") && i.stdout.contains("blk.0.ffn_down_exps.weight[7]"), "\(i.stdout.prefix(600))")
        let v = try ingot(["verify", fixture("tiny-moe-austen"), gguf, "--text", fixture("texts/persuasion-heldout.txt"), "--ctx", "128",
                           "--max-tokens", "256", "--max-kld", "0.05", "--json", d.file("v.json")])
        #expect(v.status == 0, "\(v)")
        let kld = try JSON.parse(FileSystem.read(d.file("v.json")))["kld"]?["mean"]?.doubleValue ?? -1
        #expect(kld > 0 && kld < 0.05, "KLD \(kld)")
        #expect(try ingot(["convert", gguf, d.file("back"), "--quiet"]).status == 0)
        #expect(FileSystem.exists(d.file("back/config.json")))
        let back = try Checkpoint.open(d.file("back"))
        #expect(back.info("model.layers.1.block_sparse_moe.experts.2.w3.weight")?.shape == [256, 192])
        #expect(try ingot(["dequantize", gguf, d.file("dq.safetensors"), "--weights-only", "--quiet"]).status == 0)
        #expect(try Checkpoint.open(d.file("dq.safetensors")).tensors.count == 4 * (4 + 24) + 1, "every quantized weight and the Q6_K embeddings")
    }

    @Test func brokenFileIsOneErrorLine() throws {
        let d = TempDir(), good = d.file("m.gguf")
        #expect(try ingot(["export", fixture("tiny-moe-austen"), "--to", "gguf", "--type", "Q8_0", "-o", good, "--quiet"]).status == 0)
        let bytes = try FileSystem.read(good)
        FileManager.default.createFile(atPath: d.file("cut.gguf"), contents: Data(bytes.prefix(bytes.count - 1000)))
        let r = try ingot(["inspect", d.file("cut.gguf")])
        #expect(r.status == 2)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("error: ") && lines[0].contains("cut.gguf") && lines[0].contains("truncated"), "\(r.stderr)")
    }
}
