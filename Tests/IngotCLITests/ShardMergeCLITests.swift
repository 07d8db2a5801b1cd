import Foundation
import Testing

/// `quantize --shard i/N` in N separate processes, then `ingot merge`: the merged file must be the bytes of one run.
@Suite(.serialized) struct ShardMergeCLITests {
    /// Starts every command at once (as a job array would) and waits for all of them.
    func concurrently(_ commands: [[String]]) throws -> [Int32] {
        let processes = try commands.map { args -> Process in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: ingotBinary)
            p.arguments = args
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        return processes.map { $0.waitUntilExit(); return $0.terminationStatus }
    }

    func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    @Test func rtnSplitByExpertsMergesToTheSingleRunBytes() throws {
        let dir = TempDir()
        let model = fixture("tiny-moe-austen")
        #expect(try ingot(["quantize", model, "-o", dir.file("one.ingot"), "--group-size", "64", "--quiet"]).status == 0)
        let statuses = try concurrently((1...3).map {
            ["quantize", model, "-o", dir.file("split.ingot"), "--group-size", "64", "--shard", "\($0)/3", "--quiet"]
        })
        #expect(statuses == [0, 0, 0])
        // Every shard got work (layers and experts spread over all three).
        for i in 1...3 {
            let r = try ingot(["inspect", dir.file("split-0000\(i)-of-00003.ingot")])
            #expect(r.status == 0 && !r.stdout.contains("tensors: 0\n"), "\(r.stdout)")
        }
        // The unmerged set already reads as one model.
        let set = try ingot(["inspect", dir.file("split.ingot")])
        let single = try ingot(["inspect", dir.file("one.ingot")])
        #expect(set.stdout.contains("tensors: 350") && single.stdout.contains("tensors: 350"), "\(set.stdout)")
        let merged = try ingot(["merge", dir.file("split.ingot"), "--quiet"])
        #expect(merged.status == 0, "\(merged.stderr)")
        #expect(try bytes(dir.file("split.ingot")) == bytes(dir.file("one.ingot")))
    }

    @Test func awqSplitByLayersMergesToTheSingleRunBytes() throws {
        let dir = TempDir()
        let model = fixture("peers/models/tiny-llama")
        #expect(try ingot(["calibrate", model, "--data", fixture("peers/data/calib_text.safetensors"), "--samples", "8",
                           "--seq-len", "64", "-o", dir.file("cal.ingot"), "--quiet"]).status == 0)
        let common = ["--scheme", "awq-int4", "--group-size", "32", "--calib", dir.file("cal.ingot"), "--quiet"]
        #expect(try ingot(["quantize", model, "-o", dir.file("one.ingot")] + common).status == 0)
        let statuses = try concurrently((1...2).map { ["quantize", model, "-o", dir.file("split.ingot"), "--shard", "\($0)/2"] + common })
        #expect(statuses == [0, 0])
        for i in 1...2 {  // one layer each
            let r = try ingot(["inspect", dir.file("split-0000\(i)-of-00002.ingot")])
            #expect(r.stdout.contains("U4  "), "\(r.stdout)")
        }
        #expect(try ingot(["merge", dir.file("split-00002-of-00002.ingot"), "-o", dir.file("merged.ingot"), "--quiet"]).status == 0)
        #expect(try bytes(dir.file("merged.ingot")) == bytes(dir.file("one.ingot")))
    }

    @Test func sizeSplitPackMergesToTheSingleFilePack() throws {
        let dir = TempDir()
        let model = fixture("tiny-moe-austen")
        #expect(try ingot(["pack", model, dir.file("one.ingot"), "--quiet"]).status == 0)
        #expect(try ingot(["pack", model, dir.file("split.ingot"), "--max-shard-size", "1MB", "--quiet"]).status == 0)
        #expect(dir.entries.filter { $0.hasPrefix("split-0000") }.count >= 3, "\(dir.entries)")
        #expect(try ingot(["merge", dir.file("split.ingot"), "--quiet"]).status == 0)
        #expect(try bytes(dir.file("split.ingot")) == bytes(dir.file("one.ingot")))
    }

    @Test func mismatchedOrIncompleteSetsAreRefused() throws {
        let dir = TempDir()
        let model = fixture("tiny-moe-austen")
        for (i, g) in [(1, "64"), (2, "128")] {
            #expect(try ingot(["quantize", model, "-o", dir.file("mixed.ingot"), "--group-size", g, "--shard", "\(i)/2", "--quiet"]).status == 0)
        }
        let mixed = try ingot(["merge", dir.file("mixed.ingot")])
        #expect(mixed.status == 2 && mixed.stderr.contains("different runs"), "\(mixed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("mixed.ingot")))

        #expect(try ingot(["quantize", model, "-o", dir.file("gap.ingot"), "--shard", "1/3", "--quiet"]).status == 0)
        let gap = try ingot(["merge", dir.file("gap.ingot")])
        #expect(gap.status == 2 && gap.stderr.contains("gap-00002-of-00003.ingot"), "\(gap.stderr)")

        for bad in ["0/2", "3/2", "1", "a/b", "1/0"] {
            let r = try ingot(["quantize", model, "-o", dir.file("x.ingot"), "--shard", bad])
            #expect(r.status == 2 && r.stderr.contains("shard"), "\(bad): \(r.stderr)")
        }
        let dirOut = try ingot(["quantize", model, "-o", dir.file("ct"), "--shard", "1/2"])
        #expect(dirOut.status != 0 && dirOut.stderr.contains("--shard writes .ingot shards"), "\(dirOut.stderr)")
        #expect(try ingot(["merge", dir.file("nothing.ingot")]).status != 0)
    }
}

import IngotCalibration
import IngotForward
import IngotTestSupport

/// `calibrate --shard i/N` over the data, then `ingot merge`.
@Suite(.serialized) struct CalibrationShareCLITests {
    func calibrate(_ dir: TempDir, _ extra: [String]) throws -> CLIResult {
        try ingot(["calibrate", fixture("tiny-moe-austen"), "--data", fixture("texts/emma.txt"), "--samples", "16", "--seq-len", "128",
                   "--min-expert-tokens", "200", "--sample-tokens", "700", "--quiet"] + extra)
    }

    func maxRelativeDifference(_ a: [Float], _ b: [Float]) -> Float {
        let scale = max(a.map(abs).max() ?? 0, 1e-30)
        return zip(a, b).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
    }

    @Test func mergedSharesMatchOneRun() throws {
        let dir = TempDir()
        #expect(try calibrate(dir, ["-o", dir.file("one.ingot")]).status == 0)
        for i in 1...3 { #expect(try calibrate(dir, ["-o", dir.file("split.ingot"), "--shard", "\(i)/3"]).status == 0) }
        let shareUse = try ingot(["quantize", fixture("tiny-moe-austen"), "--scheme", "awq-int4", "--calib", dir.file("split-00001-of-00003.ingot"),
                                  "-o", dir.file("x.ingot")])
        #expect(shareUse.status == 2 && shareUse.stderr.contains("share 1/3"), "\(shareUse.stderr)")
        let merged = try ingot(["merge", dir.file("split.ingot")])
        #expect(merged.status == 0 && merged.stdout.contains("starved experts"), "\(merged.stderr)")
        #expect(try ingot(["merge", dir.file("split.ingot"), "-o", dir.file("again.ingot"), "--quiet"]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file("again.ingot"))) == Data(contentsOf: URL(fileURLWithPath: dir.file("split.ingot"))))

        let one = try CalibrationArtifact.read(dir.file("one.ingot")), m = try CalibrationArtifact.read(dir.file("split.ingot"))
        #expect(m.tokens == one.tokens && m.sequences == one.sequences && m.sampleLengths == one.sampleLengths)
        #expect(m.layers.map { $0.experts } == one.layers.map { $0.experts }, "routing counts and starved experts")
        #expect(!one.starvedExperts.isEmpty)
        // Statistics are summed exactly, so where the forward pass gives the same bits (layer 0 before the experts;
        // shares start at multiples of 128 rows, so every row keeps its place in the 64-row product tiles) the merged
        // statistics are bit-identical.
        for site in [LinearSite.attention, .output, .mlp] { #expect(m.layers[0].sites[site] == one.layers[0].sites[site], "\(site)") }
        // Elsewhere an expert's matrix products group different tokens in each share, which moves last bits.
        for (a, b) in zip(one.layers, m.layers) {
            #expect(maxRelativeDifference(a.sample, b.sample) < 1e-5)
            for (site, s) in a.sites {
                let t = try #require(b.sites[site])
                #expect(s.tokens == t.tokens)
                #expect(maxRelativeDifference(s.meanAbs, t.meanAbs) < 1e-5 && maxRelativeDifference(s.absmax, t.absmax) < 1e-5, "\(site)")
            }
        }
    }

    @Test func sharesOfDifferentRunsAreRefused() throws {
        let dir = TempDir()
        #expect(try calibrate(dir, ["-o", dir.file("mixed.ingot"), "--shard", "1/2"]).status == 0)
        #expect(try calibrate(dir, ["-o", dir.file("mixed.ingot"), "--shard", "2/2", "--seed", "7"]).status == 0)
        let r = try ingot(["merge", dir.file("mixed.ingot")])
        #expect(r.status == 2 && r.stderr.contains("provenance"), "\(r.stderr)")
        let tooMany = try calibrate(dir, ["-o", dir.file("t.ingot"), "--shard", "1/17"])
        #expect(tooMany.status == 2 && tooMany.stderr.contains("no sequences"), "\(tooMany.stderr)")
    }
}
