import ArgumentParser
import Foundation
import IngotCalibration
import IngotCore
import IngotForward
import IngotFormats
import IngotQuant

extension Calibration.ExpertMode: ExpressibleByArgument {}
extension Calibration.StarvedExpertPolicy: ExpressibleByArgument {}

/// Calibration options shared by `calibrate` and `quantize --data`.
struct CalibrationOptions: ParsableArguments {
    @Option(help: "Number of calibration sequences.") var samples = 128
    @Option(help: "Tokens per sequence.") var seqLen = 512
    @Option(help: "Seed of the block shuffle.") var seed: UInt64 = 42
    @Option(help: "Expert statistics from routed tokens, or from every token (routing still decides outputs).")
    var expertMode: Calibration.ExpertMode = .routed
    @Option(help: "Experts routed fewer tokens than this are starved.") var minExpertTokens = 32
    @Option(help: "Starved experts: all-token statistics, or plain round-to-nearest.") var starvedExperts: Calibration.StarvedExpertPolicy = .allTokens
    @Option(help: "Rows of each layer's input kept for AWQ and GPTQ (whole sequences): AWQ's clip search and GPTQ's Hessians use them all, AWQ's scale searches the first --search-tokens.")
    var sampleTokens = Calibration.Settings().sampleTokens

    func validate() throws {
        guard samples > 0, seqLen > 1 else { throw ValidationError("--samples must be ≥ 1 and --seq-len ≥ 2") }
        guard minExpertTokens >= 0, sampleTokens > 0 else { throw ValidationError("--min-expert-tokens must be ≥ 0 and --sample-tokens ≥ 1") }
    }

    var settings: Calibration.Settings {
        var s = Calibration.Settings()
        s.expertMode = expertMode; s.minExpertTokens = minExpertTokens; s.starved = starvedExperts; s.sampleTokens = sampleTokens
        return s
    }

    /// Loads the data and runs calibration on `opened` (on one share of the sequences with `share`).
    func calibrate(_ opened: OpenedModel, data: String, quiet: Bool, share: WorkSplit? = nil) throws -> Calibration {
        try ForwardLimits.check(opened.model.config, length: seqLen, sequences: 1, logits: false, option: "--seq-len")
        let d = try CalibrationData.load(path: data, tokenizer: opened.tokenizer, samples: samples, seqLen: seqLen, seed: seed)
        if let w = d.shortfall(samples: samples, seqLen: seqLen) { printWarning(w) }
        var c = Calibrator(model: opened.model, settings: settings)
        c.progress = TerminalProgress.make(quiet: quiet)
        var cal = try c.run(d, share: share.map { ($0.index, $0.count) })
        cal.provenance += [("seed", .int(Int(truncatingIfNeeded: seed))), ("samples", .int(samples)), ("seq_len", .int(seqLen))]
        return cal
    }
}

/// `ingot calibrate MODEL --data FILE -o CALIB.ingot`.
struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Collect per-linear (and per-expert) activation statistics for AWQ and static FP8 scales.",
        discussion: """
        DATA is plain UTF-8 text, JSONL with a "text" field, a JSON array of token ids (or of sequences), or a \
        safetensors file with an integer input_ids [sequences, length] tensor. Text is tokenized with the model's \
        tokenizer.json, concatenated, cut into --seq-len blocks, and the blocks shuffled with --seed.
        """)

    @Argument(help: "Model directory (config.json, weights, tokenizer.json) or checkpoint.") var model: String
    @Option(help: "Calibration data file.") var data: String
    @Option(name: .shortAndLong, help: "Output calibration file (.ingot).") var output: String
    @OptionGroup var calibration: CalibrationOptions
    @Option(help: ArgumentHelp("Calibrate only share i of N of the sequences into X-0000i-of-0000N.ingot; `ingot merge X.ingot` joins the shares into the file one run writes.", valueName: "i/N"))
    var shard: String?
    @Flag(help: "Print the coverage report as JSON.") var json = false
    @OptionGroup var out: OutputOptions

    func run() throws {
        do {
            let split = try shard.map { try WorkSplit(parsing: $0) }
            let path = split.map { IngotShardSet.shardName(output, index: $0.index, count: $0.count) } ?? output
            try claimOutputs([(path, .file)], checkpoints: [model], files: [data], force: out.force, foreign: out.forceForeign)
            let opened = try OpenedModel(path: model)
            let t0 = monotonicSeconds()
            let cal = try calibration.calibrate(opened, data: data, quiet: out.quiet || json, share: split)
            try CalibrationArtifact.write(cal, to: path, overwrite: out.force)
            let report = CoverageReport(cal)
            let text = split == nil ? report.text
                : "share \(split!) of the sequences: \(cal.sequences) sequences, \(cal.tokens) tokens (experts are judged when the shares are merged)"
            emit(json ? report.json.serialized(pretty: true) : text + String(format: "\nwrote %@ in %.1f s", path, monotonicSeconds() - t0))
        } catch { throw exitStatus(for: error) }
    }
}

/// Tokens per expert per layer, and every starved expert with what was done about it.
struct CoverageReport {
    let cal: Calibration
    init(_ c: Calibration) { cal = c }

    var text: String {
        var lines = ["calibration: \(cal.sequences) sequences, \(cal.tokens) tokens; sample \(cal.sampleLengths.count) sequences (\(cal.sampleRows) rows)"]
        let moe = cal.layers.enumerated().filter { !$0.element.experts.isEmpty }
        if !moe.isEmpty {
            let E = moe[0].element.experts.count
            lines.append("tokens routed to each expert (min \(cal.settings.minExpertTokens), mode \(cal.settings.expertMode.rawValue)):")
            lines.append(table(["layer"] + (0..<E).map { "e\($0)" }, moe.map { l, layer in ["\(l)"] + layer.experts.map { "\($0.routedTokens)" } },
                               rightAlign: Set(0...E)))
            let starved = cal.starvedExperts
            if starved.isEmpty {
                lines.append("no starved experts")
            } else {
                let what = cal.settings.starved == .rtn ? "quantized round-to-nearest (no smoothing, no clipping)" : "given all-token statistics"
                lines.append("\(starved.count) starved experts (fewer than \(cal.settings.minExpertTokens) routed tokens), \(what); expert (tokens):")
                for l in Set(starved.map(\.layer)).sorted() {
                    lines.append("  layer \(l): " + starved.filter { $0.layer == l }.map { "\($0.expert) (\($0.tokens))" }.joined(separator: ", "))
                }
            }
        }
        return lines.joined(separator: "\n")
    }

    var json: JSON {
        .object([
            ("tokens", .int(cal.tokens)), ("sequences", .int(cal.sequences)), ("sample_rows", .int(cal.sampleRows)),
            ("expert_mode", .string(cal.settings.expertMode.rawValue)), ("min_expert_tokens", .int(cal.settings.minExpertTokens)),
            ("expert_tokens", .array(cal.layers.map { .array($0.experts.map { .int($0.routedTokens) }) })),
            ("starved", .array(cal.starvedExperts.map { .object([("layer", .int($0.layer)), ("expert", .int($0.expert)),
                                                                  ("tokens", .int($0.tokens)), ("statistics", .string($0.statistics.rawValue))]) })),
            ("provenance", .object(cal.provenance)),
        ])
    }
}
