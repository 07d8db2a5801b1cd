import Foundation
import IngotTestSupport
import Testing

/// The output discipline (`Destinations`) as a user meets it: `--force` replaces only directories Ingot wrote,
/// concurrent writers to one destination (exactly one wins), and temporaries removed on SIGTERM.
@Suite struct OutputDisciplineCLITests {
    @Test func forceReplacesOnlyDirectoriesIngotWrote() throws {
        let d = TempDir()
        let out = d.file("out")
        #expect(try ingot(["convert", fixture("tiny-moe-austen"), out, "--quiet"]).status == 0)
        #expect(FileManager.default.fileExists(atPath: out + "/.ingot-output.json"))
        #expect(try ingot(["convert", fixture("tiny-moe-austen"), out, "--force", "--quiet"]).status == 0, "Ingot's own directory is replaced")
        writeBytes(Array("mine".utf8), to: out + "/notes.txt")
        let r = try ingot(["convert", fixture("tiny-moe-austen"), out, "--force", "--quiet"])
        #expect(r.status == 2 && r.stderr.contains("notes.txt") && r.stderr.contains("--force-foreign"), "\(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: out + "/notes.txt"))
        #expect(try ingot(["convert", fixture("tiny-moe-austen"), out, "--force", "--force-foreign", "--quiet"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: out + "/notes.txt"))
        #expect(d.entries == ["out"], "left behind: \(d.entries)")
    }

    @Test func concurrentWritersToOneDestinationExactlyOneWins() throws {
        let d = TempDir()
        let args = ["pack", fixture("tiny-moe-austen"), d.file("o.ingot"), "--level", "19", "--quiet"]
        final class Results: @unchecked Sendable { let lock = NSLock(); var all: [CLIResult?] = [nil, nil] }
        let box = Results()
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            let r = try? ingot(args)
            box.lock.lock(); box.all[i] = r; box.lock.unlock()
        }
        let results = box.all
        let statuses = results.compactMap { $0?.status }.sorted()
        #expect(statuses == [0, 2], "\(results.map { $0?.stderr ?? "-" })")
        let loser = results.first { $0?.status == 2 }??.stderr ?? ""
        #expect(loser.contains("another ingot process is writing") || loser.contains("destination exists"), "\(loser)")
        #expect(d.entries == ["o.ingot"], "left behind: \(d.entries)")
    }

    @Test func sigtermRemovesTemporariesAndLocks() throws {
        let d = TempDir()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ingotBinary)
        p.arguments = ["pack", fixture("tiny-moe-austen"), d.file("o.ingot"), "--level", "22", "--chunk-size", "64KiB", "--threads", "1", "--quiet"]
        try p.run()
        // Wait until the temporary exists (the work has started), then interrupt.
        let deadline = Date().addingTimeInterval(30)
        while p.isRunning, !d.entries.contains(where: { $0.contains(".ingot-tmp-") }), Date() < deadline { usleep(20_000) }
        p.terminate()
        p.waitUntilExit()
        #expect(p.terminationStatus == 128 + SIGTERM, "exit \(p.terminationStatus): finished before the signal?")
        #expect(d.entries.isEmpty, "left behind: \(d.entries)")
    }
}
