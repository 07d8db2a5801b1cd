import Foundation
import Testing
import IngotCore
import IngotFormats
import IngotTestSupport

/// `ingot inspect` and `ingot convert` as a user runs them: output, exit codes, one-line errors, nothing written
/// on failure.
@Suite(.serialized) struct InspectConvertCLITests {
    static func stBytes(_ header: String, _ data: [UInt8]) -> [UInt8] {
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) } + Array(header.utf8) + data
    }

    @Test func inspectShowsArchitectureCountsAndDTypes() throws {
        let r = try ingot(["inspect", fixture("tiny-moe-austen")])
        #expect(r.status == 0)
        for s in ["model_type: mixtral", "experts: 8, top-2", "tensors: 126", "parameters: 5,906,112", "BF16"] {
            #expect(r.stdout.contains(s), "missing \(s) in\n\(r.stdout)")
        }
        let j = try ingot(["inspect", fixture("tiny-moe-austen"), "--json", "--tensors"])
        let json = try JSON.parse(j.stdout)
        #expect(json["tensor_count"]?.intValue == 126)
        #expect(json["tensors"]?.arrayValue?.first?["data_offsets"]?.arrayValue?.count == 2)
    }

    @Test func convertRoundTripKeepsBytesAndCompanionFiles() throws {
        let d = TempDir()
        #expect(try ingot(["convert", fixture("tiny-moe-austen"), d.file("sharded"), "--max-shard-size", "4MB", "--quiet"]).status == 0)
        #expect(try ingot(["convert", d.file("sharded"), d.file("m.h5"), "--quiet"]).status == 0)
        #expect(try ingot(["convert", d.file("m.h5"), d.file("back"), "--quiet"]).status == 0)
        let a = try Checkpoint.open(fixture("tiny-moe-austen")), b = try Checkpoint.open(d.file("back"))
        for t in a.tensors {
            #expect(try a.tensor(named: t.name).withBytes { SHA256.hex($0) } == b.tensor(named: t.name).withBytes { SHA256.hex($0) })
        }
        #expect(FileManager.default.fileExists(atPath: d.file("sharded/model.safetensors.index.json")))
        #expect(FileManager.default.fileExists(atPath: d.file("sharded/tokenizer.json")))
        let sh = try ingot(["inspect", d.file("sharded")])
        #expect(sh.stdout.contains("safetensors (sharded) (3 files)"), "\(sh.stdout)")
    }

    @Test func destinationExistsIsRefusedUnlessForced() throws {
        let d = TempDir()
        writeBytes([1, 2, 3], to: d.file("x.safetensors"))
        let r = try ingot(["convert", fixture("tiny-moe-austen"), d.file("x.safetensors")])
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("error: ") && r.stderr.contains("destination exists"), "\(r.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: d.file("x.safetensors"))) == Data([1, 2, 3]))
        #expect(try ingot(["convert", fixture("tiny-moe-austen"), d.file("x.safetensors"), "--force", "--quiet"]).status == 0)
        #expect(try Checkpoint.open(d.file("x.safetensors")).tensors.count == 126)
    }

    /// Each bad input: exit 2, exactly one `error:` line naming the problem, nothing under the destination.
    @Test(arguments: [
        ("truncated", [UInt8]([1, 2, 3]), "truncated"),
        ("header-past-end", [UInt8]([200, 0, 0, 0, 0, 0, 0, 0, 0x7B, 0x7D]), "runs past the end"),
        ("not-json", [UInt8]([4, 0, 0, 0, 0, 0, 0, 0]) + Array("{no}".utf8), "not valid JSON"),
        ("not-utf8", [UInt8]([4, 0, 0, 0, 0, 0, 0, 0, 0x7B, 0xFF, 0xFE, 0x7D]), "not valid UTF-8"),
        ("unknown-dtype", InspectConvertCLITests.stBytes(#"{"a":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}}"#, [0]), "unknown dtype 'Q9'"),
        ("overlap", InspectConvertCLITests.stBytes(#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#, [0, 0]), "overlaps"),
        ("size-mismatch", InspectConvertCLITests.stBytes(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, [0, 0, 0, 0]), "shape × dtype size"),
        ("duplicate", InspectConvertCLITests.stBytes(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#, [0, 0]), "appears twice"),
    ])
    func badSafetensorsInput(name: String, bytes: [UInt8], message: String) throws {
        let d = TempDir()
        writeBytes(bytes, to: d.file("bad.safetensors"))
        for cmd in [["inspect", d.file("bad.safetensors")], ["convert", d.file("bad.safetensors"), d.file("out.h5")]] {
            let r = try ingot(cmd)
            #expect(r.status == 2, "\(name): \(r)")
            #expect(r.stderr.hasPrefix("error: ") && r.stderr.contains(message), "\(name): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
        }
        #expect(d.entries == ["bad.safetensors"], "left behind: \(d.entries)")
    }

    @Test func notHDF5AndEscapingIndex() throws {
        let d = TempDir()
        writeBytes(Array("plain text".utf8), to: d.file("x.h5"))
        let r = try ingot(["convert", d.file("x.h5"), d.file("out")])
        #expect(r.status == 2 && r.stderr.contains("not an HDF5 file"), "\(r.stderr)")
        try FileManager.default.createDirectory(atPath: d.file("m"), withIntermediateDirectories: true)
        writeBytes(Array(#"{"weight_map":{"a":"../../etc/x.safetensors"}}"#.utf8), to: d.file("m/model.safetensors.index.json"))
        let r2 = try ingot(["inspect", d.file("m")])
        #expect(r2.status == 2 && r2.stderr.contains("leaves the model directory"), "\(r2.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d.file("out")))
    }

    @Test func unwritableDestination() throws {
        let r = try ingot(["convert", fixture("tiny-moe-austen"), "/proc/ingot-test/out.safetensors"])
        #expect(r.status == 2 && r.stderr.hasPrefix("error: "), "\(r.stderr)")
        #expect(r.stderr.contains("/proc/ingot-test/out.safetensors"), "\(r.stderr)")
    }

    @Test func fileSizeLimitActsLikeAFullDisk() throws {
        let d = TempDir()
        // ulimit -f counts 1024-byte blocks: 2 MB is far below the 11.8 MB output.
        let r = try ingot(["convert", fixture("tiny-moe-austen"), d.file("out.safetensors"), "--quiet"], shellPrefix: "ulimit -f 2048;")
        #expect(r.status == 2, "\(r)")
        #expect(r.stderr.contains("disk full"), "\(r.stderr)")
        #expect(d.entries.isEmpty, "left behind: \(d.entries)")
    }

    @Test func realFullDiskOnTmpfsWhenMountable() throws {
        let d = TempDir()
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=1m", "tmpfs", d.path]
        mount.standardError = Pipe()
        guard (try? mount.run()) != nil else { return }
        mount.waitUntilExit()
        guard mount.terminationStatus == 0 else { return }  // not privileged here: the ulimit test covers it
        defer {
            let u = Process()
            u.executableURL = URL(fileURLWithPath: "/bin/umount")
            u.arguments = [d.path]
            try? u.run()
            u.waitUntilExit()
        }
        let r = try ingot(["convert", fixture("tiny-moe-austen"), d.file("out"), "--quiet"])
        #expect(r.status == 2 && r.stderr.contains("disk full"), "\(r.stderr)")
        #expect(d.entries.isEmpty, "left behind: \(d.entries)")
    }
}
