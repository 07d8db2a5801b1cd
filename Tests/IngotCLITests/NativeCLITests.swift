import Foundation
import Testing
import IngotCore
import IngotFormats
import IngotTestSupport

/// `pack` / `unpack` / `verify-file` / `inspect --check` on good and corrupted files, as a user runs them.
@Suite(.serialized) struct NativeCLITests {
    @Test func packUnpackRoundTripAndChecks() throws {
        let d = TempDir()
        #expect(try ingot(["pack", fixture("tiny-moe-austen"), d.file("m.ingot"), "--quiet"]).status == 0)
        let i = try ingot(["inspect", d.file("m.ingot"), "--check", "--tensors"])
        #expect(i.status == 0 && i.stdout.contains("byteplane") && i.stdout.contains("ratio"), "\(i.stdout.prefix(400))")
        #expect(try ingot(["unpack", d.file("m.ingot"), d.file("out"), "--quiet"]).status == 0)
        #expect(try ingot(["diff", fixture("tiny-moe-austen"), d.file("out")]).status == 0)
        #expect(FileManager.default.fileExists(atPath: d.file("out/tokenizer.json")))
        // thread count never changes the bytes
        #expect(try ingot(["pack", fixture("tiny-moe-austen"), d.file("t1.ingot"), "--threads", "1", "--quiet"]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: d.file("t1.ingot"))) == Data(contentsOf: URL(fileURLWithPath: d.file("m.ingot"))))
    }

    @Test func corruptedFileIsNamedAndNothingIsWritten() throws {
        let d = TempDir()
        #expect(try ingot(["pack", fixture("tiny-moe-austen"), d.file("m.ingot"), "--quiet"]).status == 0)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: d.file("m.ingot")))
        bytes[200_000] ^= 0x04  // inside a tensor chunk
        try bytes.write(to: URL(fileURLWithPath: d.file("bad.ingot")))
        let v = try ingot(["verify-file", d.file("bad.ingot")])
        #expect(v.status == 1 && v.stderr.contains("chunk") && v.stderr.contains("tensor '"), "\(v.stderr)")
        let u = try ingot(["unpack", d.file("bad.ingot"), d.file("out")])
        #expect(u.status == 2 && u.stderr.contains("fail their checksum"), "\(u.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d.file("out")))
        let p = try ingot(["pack", d.file("bad.ingot"), d.file("again.ingot")])
        #expect(p.status == 2)
        #expect(!FileManager.default.fileExists(atPath: d.file("again.ingot")))
        #expect(d.entries == ["bad.ingot", "m.ingot"], "left behind: \(d.entries)")
    }
}
