import ArgumentParser
import Foundation
import IngotCalibration
import IngotCore
import IngotFormats
import IngotForward
import IngotQuant

/// Schemes are named on the command line by their kebab names.
extension QuantScheme: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { all.map(\.name) }
}

extension QuantScheme.Rounding: ExpressibleByArgument {}
extension QuantScheme.Transform: ExpressibleByArgument {}

/// Quantization options shared by `quantize` and `export`.
struct QuantOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Quantization scheme: \(QuantScheme.all.map { "\($0.name) (\($0.summary))" }.joined(separator: ", ")).",
                               valueName: "scheme"))
    var scheme: QuantScheme = .rtnInt4
    @Option(help: "Input columns per scale group (INT schemes; default: the scheme's).") var groupSize: Int?
    @Flag(help: "One scale per output channel instead of groups (INT schemes).") var perChannel = false
    @Flag(help: "Symmetric INT quantization (no zero point).") var symmetric = false
    @Option(help: "Rounding convention: compressed-tensors or autoawq.") var convention: String = "compressed-tensors"
    @Option(help: "FP8 scale granularity: tensor, channel or block (128×128).") var fp8Granularity: String = "channel"
    @Option(help: "Keep matching modules in full precision (glob, or re:REGEX). Repeatable.") var ignore: [String] = []
    @Option(help: "PATTERN=SCHEME[:gN][:channel][:sym|:asym] per-layer override, e.g. 're:.*down_proj=rtn-int8'. Repeatable.")
    var override: [String] = []
    @Option(help: "Write the per-tensor report as JSON here.") var report: String?
    @Flag(help: "Fail (writing nothing) if a weight has NaN/Inf, all-zero rows or groups, denormals or out-of-range values.")
    var strict = false

    func plan() throws -> QuantizationPlan {
        if let g = groupSize, g <= 0 { throw ValidationError("--group-size must be positive") }
        var d = QuantizationPlan.Settings(scheme: scheme)
        if perChannel { d.groupSize = nil } else if let g = groupSize { d.groupSize = g }
        do { try scheme.check(groupSize: d.groupSize) } catch { throw ValidationError("--group-size: \(error)") }
        d.symmetric = symmetric
        guard let c = IntQuantizer.Convention(rawValue: convention) else {
            throw ValidationError("--convention must be compressed-tensors or autoawq")
        }
        d.convention = c
        guard let gr = QuantizationInfo.Granularity(rawValue: fp8Granularity), gr != .group else {
            throw ValidationError("--fp8-granularity must be tensor, channel or block")
        }
        d.fp8Granularity = gr
        var plan = QuantizationPlan(defaults: d)
        plan.ignore = ignore
        for o in override {
            do { try plan.addOverride(o) } catch { throw ValidationError("--override '\(o)': \(error)") }
        }
        try plan.validatePatterns()
        return plan
    }

    /// Prints a summary of what was quantized to what, and writes the JSON report when asked.
    func emitReport(_ records: [ExportRecord], quiet: Bool, force: Bool) throws {
        var counts: [String: Int] = [:]
        for r in records { counts[r.to, default: 0] += 1 }
        for r in records { if let h = r.health { printWarning("tensor '\(r.name)': \(h.summary)") } }
        if !quiet {
            emit(table(["result", "tensors"], counts.sorted { $0.key < $1.key }.map { [$0.key, String($0.value)] }, rightAlign: [1]))
        }
        if let path = report {
            let json = JSON.array(records.map { r in
                var o: [(key: String, value: JSON)] = [("name", .string(r.name)), ("shape", .array(r.shape.map { .int($0) })),
                                                       ("from", .string(r.from)), ("to", .string(r.to))]
                if let h = r.health {
                    o.append(("health", .object([("nan", .int(h.nan)), ("infinite", .int(h.infinite)),
                                                 ("first_non_finite", h.firstNonFinite.map { .int($0) } ?? .null),
                                                 ("zero_rows", .int(h.zeroRows)), ("zero_groups", .int(h.zeroGroups)),
                                                 ("denormals", .int(h.denormal)), ("beyond_fp8_range", .int(h.beyondFP8))])))
                }
                return .object(o)
            })
            try OutputFile.writeText(json.serialized(pretty: true) + "\n", to: path, overwrite: force)
        }
    }
}

/// `ingot quantize MODEL --scheme … -o OUT`: quantize into `.ingot` (quantized tensors first-class) or, for a
/// directory, the compressed-tensors layout.
struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize a checkpoint (RTN, AWQ or GPTQ INT4, INT8, FP8) into .ingot or a compressed-tensors directory.")

    @Argument(help: "Source checkpoint.") var model: String
    @Option(name: .shortAndLong, help: "Output: X.ingot, or a directory (compressed-tensors layout).") var output: String
    @Option(help: ArgumentHelp("Quantize only share i of N (layers, or experts for RTN/FP8) into X-0000i-of-0000N.ingot; `ingot merge X.ingot` joins the shares into the file one run writes.", valueName: "i/N"))
    var shard: String?
    @OptionGroup var quant: QuantOptions
    @OptionGroup var acts: ActivationAwareOptions
    @OptionGroup var out: OutputOptions

    func run() throws {
        do { try execute() } catch { throw exitStatus(for: error) }
    }

    func execute() throws {
            let split = try shard.map { try WorkSplit(parsing: $0) }
            if split != nil, !output.hasSuffix(".ingot") {
                throw ValidationError("--shard writes .ingot shards: use -o NAME.ingot, then `ingot merge` and `ingot export`")
            }
            var plan = try quant.plan()
            let main = split.map { IngotShardSet.shardName(output, index: $0.index, count: $0.count) } ?? output
            try claimOutputs([(main, output.hasSuffix(".ingot") ? .file : .directory), (quant.report, .file), (acts.awqLog, .file)],
                             checkpoints: [model], files: [acts.calib, acts.data], force: out.force, foreign: out.forceForeign)
            let (src, calibrationMeta, calibrated) = try acts.prepare(model: model, plan: &plan, scheme: quant.scheme, quiet: out.quiet,
                                                                      layerOrdered: output.hasSuffix(".ingot"))
            let dir = FileSystem.isDirectory(model) ? model : FileSystem.directoryName(model)
            let records: [ExportRecord]
            if output.hasSuffix(".ingot") {
                var job = QuantizeJob(source: src, modelDirectory: dir, plan: plan, destination: output)
                job.overwrite = out.force
                job.progress = TerminalProgress.make(quiet: out.quiet)
                job.metadata = [("source", .string(model)), ("scheme", .string(quant.scheme.name))] + calibrationMeta
                job.strict = quant.strict
                job.split = split
                job.splitExperts = try !acts.isAWQ(quant.scheme)  // an AWQ transform spans the whole layer
                records = try job.run()
                if let split, !out.quiet { emit("wrote share \(split) to \(job.outputPath)") }
            } else {
                var job = ExportJob(source: src, modelDirectory: dir, format: .compressedTensors, plan: plan, destination: output)
                job.overwrite = out.force
                job.strict = quant.strict
                job.progress = TerminalProgress.make(quiet: out.quiet)
                records = try job.run()
            }
            try acts.finish(calibrated, quiet: out.quiet, force: out.force)
            try quant.emitReport(records, quiet: out.quiet, force: out.force)
    }
}

/// `ingot export SRC --to FORMAT -o DIR`: the layouts runtimes load, from a checkpoint (quantizing) or from a
/// quantized `.ingot` (repacking the stored codes).
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export compressed-tensors, AutoAWQ GEMM or DeepSeek-style FP8 safetensors (+ config.json), or a llama.cpp GGUF file.")

    @Argument(help: "Source checkpoint or quantized .ingot.") var source: String
    @Option(help: ArgumentHelp("The runtime layout: \(RuntimeLayouts.names), or gguf.", valueName: "layout")) var to: String
    @Option(name: .shortAndLong, help: "Output directory (a .gguf file for --to gguf).") var output: String
    @Option(help: "GGUF: \(GGUFFileType.allCases.map(\.rawValue).joined(separator: ", ")) (single types as llama-quantize --pure, K_M mixes as llama-quantize).")
    var type: String?
    @Option(help: "Largest shard (e.g. 5GB).") var maxShardSize = "5GB"
    @OptionGroup var quant: QuantOptions
    @OptionGroup var acts: ActivationAwareOptions
    @OptionGroup var out: OutputOptions

    func run() throws {
        do { try execute() } catch { throw exitStatus(for: error) }
    }

    func execute() throws {
            if to == "gguf" { return try exportGGUF() }
            guard let format = RuntimeLayouts.named(to) else { throw ValidationError("--to must be one of \(RuntimeLayouts.names) or gguf") }
            var plan = format.adapt(try quant.plan())
            try claimOutputs([(output, .directory), (quant.report, .file), (acts.awqLog, .file)],
                             checkpoints: [source], files: [acts.calib, acts.data], force: out.force, foreign: out.forceForeign)
            let (src, _, calibrated) = try acts.prepare(model: source, plan: &plan, scheme: quant.scheme, quiet: out.quiet, layerOrdered: false)
            let dir = FileSystem.isDirectory(source) ? source : FileSystem.directoryName(source)
            var job = ExportJob(source: src, modelDirectory: source.hasSuffix(".ingot") ? nil : dir, format: format, plan: plan,
                                destination: output)
            job.overwrite = out.force
            job.strict = quant.strict
            job.maxShardSize = Format.parseSize(maxShardSize) ?? 5_000_000_000
            job.progress = TerminalProgress.make(quiet: out.quiet)
            if source.hasSuffix(".ingot") { job.storedCompanions = try src.storedCompanionFiles() }
            let records = try job.run()
            try acts.finish(calibrated, quiet: out.quiet, force: out.force)
            try quant.emitReport(records, quiet: out.quiet, force: out.force)
    }

    /// `--to gguf`: the checkpoint as a llama.cpp GGUF file; `--calib` makes the calibration the importance matrix.
    func exportGGUF() throws {
        guard let t = type else { throw ValidationError("--to gguf needs --type (\(GGUFFileType.allCases.map(\.rawValue).joined(separator: ", ")))") }
        guard let fileType = GGUFFileType(name: t) else {
            throw ValidationError("--type must be one of \(GGUFFileType.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(t)')")
        }
        guard acts.data == nil, try !acts.isAWQ(quant.scheme), acts.activations == "dynamic" else {
            throw ValidationError("--to gguf takes --calib (as the importance matrix) only; AWQ and static activations do not apply")
        }
        try claimOutputs([(output, .file), (quant.report, .file)], checkpoints: [source], files: [acts.calib], force: out.force)
        let src = try Checkpoint.open(source)
        var job = GGUFExportJob(source: src, modelDirectory: FileSystem.isDirectory(source) ? source : FileSystem.directoryName(source),
                                fileType: fileType, destination: output)
        if source.hasSuffix(".ingot") { job.storedCompanions = try src.storedCompanionFiles() }
        job.overwrite = out.force
        job.progress = TerminalProgress.make(quiet: out.quiet)
        if let calib = acts.calib {
            let opened = try OpenedModel(path: source)
            let cal = try CalibrationArtifact.read(calib, lazySamples: true)
            if !acts.ignoreFingerprint { try ActivationAware.checkFingerprint(cal, model: opened.model) }
            let imatrix = try GGUFImportance(calibration: cal, model: opened.model.config)
            for line in imatrix.notes { printWarning(line) }
            job.importance = { name, expert in imatrix.values(name, expert) }
        }
        let records = try job.run()
        try quant.emitReport(records, quiet: out.quiet, force: out.force)
    }
}
