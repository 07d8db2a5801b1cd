import ArgumentParser
import Foundation
import IngotCalibration
import IngotCore
import IngotForward
import IngotPipeline
import IngotVerify

/// Gate options of `verify` (and recipes).
struct GateOptions: ParsableArguments {
    @Option(help: "Fail if perplexity rises by more than this.") var maxPplDelta: Double?
    @Option(help: "Fail if quantized/original perplexity exceeds this.") var maxPplRatio: Double?
    @Option(help: "Fail if the mean KL divergence exceeds this.") var maxKld: Double?
    @Option(help: "Fail if top-token agreement (0–1) is below this.") var minTop1: Double?

    var gates: Gates {
        var g = Gates()
        g.maxPplDelta = maxPplDelta; g.maxPplRatio = maxPplRatio; g.maxKLD = maxKld; g.minTop1 = minTop1
        return g
    }
}

/// `ingot verify ORIGINAL QUANTIZED --text FILE`: fidelity metrics and gates.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare a quantized model with its original on real text: perplexity, KLD, RMS Δp, top-token agreement; gate on them.",
        discussion: "Exit status: 0 every gate passed, 1 a gate failed, 2 usage or input error.")

    @Argument(help: "Original model directory or checkpoint.") var original: String
    @Argument(help: "Quantized model: .ingot, compressed-tensors, AutoAWQ or FP8 export.") var quantized: String
    @Option(help: "UTF-8 evaluation text (tokenized with the original's tokenizer.json).") var text: String?
    @Option(help: "JSON array of token ids instead of --text.") var tokensJson: String?
    @Option(help: "Window length.") var ctx = 512
    @Option(help: "Use at most this many tokens.") var maxTokens: Int?
    @OptionGroup var gate: GateOptions
    @Option(help: "Write the JSON report here.") var json: String?
    @Option(help: "Write a self-contained HTML report here.") var html: String?
    @Option(help: "Calibration file, for the expert coverage heat map in the HTML report.") var calib: String?
    @Flag(help: "No progress output.") var quiet = false
    @Flag(help: "Overwrite the --json and --html files if they exist (never an input).") var force = false

    func validate() throws {
        guard (text == nil) != (tokensJson == nil) else { throw ValidationError("give exactly one of --text or --tokens-json") }
        guard ctx >= 2 else { throw ValidationError("--ctx must be at least 2") }
        if let m = maxTokens, m < 2 { throw ValidationError("--max-tokens must be at least 2") }
    }

    func run() throws {
        let outcome: [Gates.Outcome]
        do { outcome = try execute() } catch { throw exitStatus(for: error) }
        if !outcome.allSatisfy(\.passed) { throw ExitStatus.checkFailed }
    }

    func execute() throws -> [Gates.Outcome] {
        try claimOutputs([(json, .file), (html, .file)], checkpoints: [original, quantized], files: [text, tokensJson, calib], force: force)
        let a = try OpenedModel(path: original), b = try OpenedModel(path: quantized)
        try ForwardLimits.check(a.model.config, length: ctx, sequences: 1, logits: true, option: "--ctx")
        var ids = try evaluationTokens(text: text, tokensJson: tokensJson, tokenizer: a.tokenizer ?? b.tokenizer)
        if let m = maxTokens { ids = Array(ids.prefix(m)) }
        var r = try Verification.run(original: a.model, quantized: b.model, tokens: ids, context: ctx, progress: TerminalProgress.make(quiet: quiet))
        r.weightErrors = try Verification.weightErrors(original: a.model.source, quantized: b.model.source)
        let outcome = gate.gates.check(r)
        emit(table(["metric", "value"], r.summaryRows, rightAlign: [1]))
        for g in outcome {
            emit("gate \(g.gate): \(HTMLReport.fmt(g.value)) vs limit \(HTMLReport.fmt(g.limit)): \(g.passed ? "pass" : "FAIL")")
        }
        if let path = json { try OutputFile.writeText(r.json(gates: outcome).serialized(pretty: true) + "\n", to: path, overwrite: force) }
        if let path = html {
            let coverage = try calib.map { try CalibrationArtifact.read($0).layers.map { $0.experts.map(\.routedTokens) } }
            try OutputFile.writeText(HTMLReport.render(title: "ingot verify: \(quantized) vs \(original)", result: r, gates: outcome, expertTokens: coverage), to: path, overwrite: force)
        }
        return outcome
    }
}

/// Token ids from `--text` (the model's tokenizer) or `--tokens-json` (a JSON array of ids, or of sequences).
func evaluationTokens(text: String?, tokensJson: String?, tokenizer: BPETokenizer?) throws -> [Int] {
    try IngotPipeline.evaluationTokens(text ?? tokensJson!, tokenizer: tokenizer, tokenIDs: text == nil)
}

