import ArgumentParser
import Foundation
import IngotCore
import IngotPipeline

/// `ingot run RECIPE.yaml`: the whole pipeline from one recipe.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a recipe: calibrate → quantize (.ingot) → exports → verify → ingot-manifest.json.",
        discussion: """
        Stages whose outputs exist and match their inputs' hashes are skipped (a killed run resumes); --force redoes \
        them. Exit status: 0 done and every gate passed, 1 a verification gate failed, 2 usage or input error.
        """)

    @Argument(help: "Recipe file (YAML).") var recipe: String
    @Option(name: .shortAndLong, help: "Output directory (overrides the recipe's 'output').") var output: String?
    @Flag(help: "Redo every stage.") var force = false
    @Flag(help: "No progress bars (stage log lines still print).") var quiet = false
    @OptionGroup var parallelism: ThreadOptions

    func run() throws {
        let outcome: PipelineRun.Outcome
        do {
            var r = try Recipe.load(path: recipe)
            if let output { r.output = output.hasPrefix("/") ? output : FileManager.default.currentDirectoryPath + "/" + output }
            var job = PipelineRun(recipe: r)
            job.force = force
            job.progress = { _ in TerminalProgress.make(quiet: quiet) }
            job.log = { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
            outcome = try job.run()
        } catch { throw exitStatus(for: error) }
        emit(table(["stage", "status", "seconds"], outcome.stages.map { [$0.name, $0.skipped ? "skipped (up to date)" : "done", String(format: "%.2f", $0.seconds)] },
                   rightAlign: [2]))
        let report = outcome.manifestPath.isEmpty ? nil : FileSystem.directoryName(outcome.manifestPath) + "/verify.json"
        if let report, FileSystem.exists(report), let j = try? JSON.parse(FileSystem.read(report), rejectDuplicateKeys: false) {
            func f(_ k: String, _ fmt: String, _ scale: Double = 1) -> String { j[k]?.doubleValue.map { String(format: fmt, $0 * scale) } ?? "-" }
            emit(table(["verify", "value"], [["perplexity original", f("ppl_original", "%.4f")], ["perplexity quantized", f("ppl_quantized", "%.4f")],
                                             ["ppl delta", f("ppl_delta", "%.4f")], ["mean KLD", j["kld"]?["mean"]?.doubleValue.map { String(format: "%.6f", $0) } ?? "-"],
                                             ["RMS Δp", f("rms_delta_p", "%.3f %%", 100)], ["same top p", f("same_top_p", "%.3f %%", 100)]], rightAlign: [1]))
        }
        for g in outcome.gates { emit(String(format: "gate %@: %.6g vs limit %.6g: %@", g.gate, g.value, g.limit, g.passed ? "pass" : "FAIL")) }
        emit("manifest: \(outcome.manifestPath)")
        if !outcome.passed { throw ExitStatus.checkFailed }
    }
}
