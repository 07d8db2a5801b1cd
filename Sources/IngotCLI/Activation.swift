import ArgumentParser
import Foundation
import IngotCalibration
import IngotCore
import IngotFormats
import IngotForward
import IngotQuant

/// Calibration-driven options of `quantize` and `export`: `--scheme awq-int4` / `gptq-int4`, `--rounding gptq` and
/// `--activations static`.
struct ActivationAwareOptions: ParsableArguments {
    @Option(help: "Calibration file from 'ingot calibrate' (for awq-int4 and --activations static).") var calib: String?
    @Option(help: "Calibrate in-process on this data instead of --calib.") var data: String?
    @Option(help: "FP8 activations: dynamic (per token, at runtime) or static (per-tensor input_scale from calibration).")
    var activations = "dynamic"
    @Flag(help: "Without the clip search (AWQ's, and GPTQ's choice of group scales without AWQ: plain min/max).") var noClip = false
    @Flag(help: "Clip search with AutoAWQ's symmetric clamps only (both ends of a group to ±absmax·(1 − i/20)), also for GPTQ's group scales; default with an asymmetric quantizer: also every pair of one-sided clamps.")
    var symmetricClip = false
    @Option(help: "Transform before rounding: awq (activation-aware scaling and clipping) in front of any integer or FP4 scheme (rtn-int4, rtn-int8, mxfp4, nvfp4a16, nvfp4); awq-int4 implies it.")
    var transform: QuantScheme.Transform?
    @Option(help: "Rounding after awq-int4's transform: rtn (to nearest) or gptq (error-compensating, on the calibration inputs' Hessian). gptq-int4 always rounds with gptq.")
    var rounding: QuantScheme.Rounding?
    @Option(help: "GPTQ: Hessian dampening, a fraction of its mean diagonal.") var gptqDampening = 0.01
    @Flag(inversion: .prefixedNo, help: "GPTQ: round columns by decreasing Hessian diagonal (static act-order, groups kept; llm-compressor's default).")
    var gptqActOrder = true
    @Flag(inversion: .prefixedNo, help: "AWQ's searches and GPTQ's Hessians on each layer's input along the quantized model's path (the layers before it quantized), as llm-compressor's sequential pipeline, instead of the full-precision input. Default: on when GPTQ rounds (where the family allows it), off for AWQ alone.")
    var propagateError: Bool?
    @Option(help: "AWQ: rows of the calibration sample its scale searches run on, the leading whole sequences (0: every row). Its clip search, and GPTQ, use the whole sample (calibrate's --sample-tokens). Default: 4096.")
    var searchTokens: Int?
    @Option(help: "Write AWQ's per-mapping losses as JSON here.") var awqLog: String?
    @Flag(help: "Use a calibration made for a different checkpoint (fingerprints differ).") var ignoreFingerprint = false
    @OptionGroup var calibration: CalibrationOptions

    func validate() throws {
        guard activations == "dynamic" || activations == "static" else { throw ValidationError("--activations must be dynamic or static") }
        guard calib == nil || data == nil else { throw ValidationError("give --calib or --data, not both") }
        guard gptqDampening >= 0, gptqDampening.isFinite else { throw ValidationError("--gptq-dampening must be a finite number ≥ 0") }
        if let searchTokens, searchTokens < 0 { throw ValidationError("--search-tokens must be ≥ 0 (0: every sample row), got \(searchTokens)") }
    }

    /// Loads (or computes) the calibration for `model`, checking it was made for this checkpoint.
    func loadCalibration(_ opened: OpenedModel, quiet: Bool) throws -> Calibration {
        if let data { return try calibration.calibrate(opened, data: data, quiet: quiet) }
        guard let calib else { throw ValidationError("this scheme needs calibration: --calib CALIB.ingot (from 'ingot calibrate') or --data FILE") }
        let cal = try CalibrationArtifact.read(calib, lazySamples: true)
        if !ignoreFingerprint { try ActivationAware.checkFingerprint(cal, model: opened.model) }
        return cal
    }

    /// The source to quantize: the checkpoint itself, or AWQ's transformed weights and/or GPTQ's rounding (computed
    /// layer by layer as the writer reads them; call `finish` afterwards for the summary and log).
    func prepare(model: String, plan: inout QuantizationPlan, scheme: QuantScheme, quiet: Bool, layerOrdered: Bool) throws
        -> (source: TensorSource, metadata: [(key: String, value: JSON)], outcome: ActivationAware.Outcome?) {
        let awq = try isAWQ(scheme)
        let rounding = try scheme.rounding(self.rounding)
        let src = try OpenedModel.quantizationSource(path: model)
        if propagateError == true, !(awq || rounding == .gptq) {
            throw ValidationError("--propagate-error applies to AWQ and GPTQ (awq-int4, gptq-int4, --transform awq, --rounding gptq)")
        }
        if noClip || symmetricClip, !(awq || rounding == .gptq) {
            throw ValidationError("--\(noClip ? "no-clip" : "symmetric-clip") applies to AWQ and GPTQ (awq-int4, gptq-int4, --transform awq, --rounding gptq)")
        }
        if noClip, symmetricClip { throw ValidationError("--no-clip and --symmetric-clip contradict each other: pick one") }
        if searchTokens != nil, !awq { throw ValidationError("--search-tokens applies to AWQ (awq-int4, --transform awq)") }
        guard awq || rounding == .gptq || activations == "static" || scheme.calibratedActivations else { return (src, [], nil) }
        let opened = try OpenedModel(path: model)
        let cal = try loadCalibration(opened, quiet: quiet)
        let o = try ActivationAware.prepare(checkpoint: src, model: opened.model, calibration: cal, plan: &plan, awq: awq, rounding: rounding,
                                            gptq: { var g = GPTQ(dampening: gptqDampening, actOrder: gptqActOrder); g.clipSearch = !noClip; g.oneSidedClip = !symmetricClip; return g }(),
                                            staticActivations: activations == "static", clip: !noClip, oneSidedClip: !symmetricClip,
                                            searchTokens: searchTokens.map(AWQ.searchTokens(option:)) ?? AWQ.defaultSearchTokens, layerOrderedWriter: layerOrdered,
                                            propagateError: propagateError)
        if let note = o.note { printWarning(note) }
        let starved = cal.starvedExperts
        if !starved.isEmpty {
            printWarning("\(starved.count) experts had fewer than \(cal.settings.minExpertTokens) routed calibration tokens " +
                         "(listed by 'ingot calibrate'); " + (cal.settings.starved == .rtn ? "they are quantized round-to-nearest" : "they use all-token statistics"))
        }
        return (o.source, o.metadata, o)
    }

    /// Whether AWQ transforms the weights before `scheme` rounds them (the scheme's own transform or `--transform`).
    func isAWQ(_ scheme: QuantScheme) throws -> Bool {
        do { return try scheme.transform(transform) == .awq } catch { throw ValidationError("--transform: \(error)") }
    }

    /// After the writer finished: AWQ's and GPTQ's summary lines and `--awq-log`.
    func finish(_ outcome: ActivationAware.Outcome?, quiet: Bool, force: Bool) throws {
        if let stream = outcome?.awq {
            let r = stream.result
            if !quiet { emitAWQSummary(r) }
            if let path = awqLog { try OutputFile.writeText(r.json.serialized(pretty: true) + "\n", to: path, overwrite: force) }
        }
        if let gptq = outcome?.gptq, !quiet { FileHandle.standardError.write(Data((gptq.summary + "\n").utf8)) }
    }

    func emitAWQSummary(_ r: AWQ.Result) {
        let searched = r.log.filter { $0.skipped == nil }
        let reduce = searched.map { $0.rtnLoss > 0 ? $0.bestLoss / $0.rtnLoss : 1 }
        let mean = reduce.reduce(0, +) / Double(max(reduce.count, 1))
        FileHandle.standardError.write(Data(String(format: "awq: %d mappings searched (%d skipped) in %.1f s; best/round-to-nearest loss mean %.3f; clip error %.3g -> %.3g\n",
                                                   searched.count, r.log.count - searched.count, r.seconds, mean, r.clipError.before, r.clipError.after).utf8))
    }
}

