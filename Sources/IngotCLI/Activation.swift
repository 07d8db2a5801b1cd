import ArgumentParser
import Foundation
import IngotCalibration
import IngotCore
import IngotFormats
import IngotQuant

/// Calibration-driven options of `quantize` and `export`: `--scheme awq-int4` and `--activations static`.
struct ActivationAwareOptions: ParsableArguments {
    @Option(help: "Calibration file from 'ingot calibrate' (for awq-int4 and --activations static).") var calib: String?
    @Option(help: "Calibrate in-process on this data instead of --calib.") var data: String?
    @Option(help: "FP8 activations: dynamic (per token, at runtime) or static (per-tensor input_scale from calibration).")
    var activations = "dynamic"
    @Flag(help: "AWQ without the clip search.") var noClip = false
    @Option(help: "Write AWQ's per-mapping losses as JSON here.") var awqLog: String?
    @Flag(help: "Use a calibration made for a different checkpoint (fingerprints differ).") var ignoreFingerprint = false
    @OptionGroup var calibration: CalibrationOptions

    func validate() throws {
        guard activations == "dynamic" || activations == "static" else { throw ValidationError("--activations must be dynamic or static") }
        guard calib == nil || data == nil else { throw ValidationError("give --calib or --data, not both") }
    }

    /// Loads (or computes) the calibration for `model`, checking it was made for this checkpoint.
    func loadCalibration(_ opened: OpenedModel, quiet: Bool) throws -> Calibration {
        if let data { return try calibration.calibrate(opened, data: data, quiet: quiet) }
        guard let calib else { throw ValidationError("this scheme needs calibration: --calib CALIB.ingot (from 'ingot calibrate') or --data FILE") }
        let cal = try CalibrationArtifact.read(calib)
        if !ignoreFingerprint, let want = cal.provenance.first(where: { $0.key == "model_fingerprint" })?.value.stringValue {
            let have = try ModelFingerprint.compute(opened.model.source)
            guard have == want else {
                throw ValidationError("\(calib) was made for a different checkpoint (fingerprint \(want), this model \(have)); --ignore-fingerprint to use it anyway")
            }
        }
        return cal
    }

    /// The source to quantize: the checkpoint itself, or AWQ's transformed weights.
    func prepare(model: String, plan: inout QuantizationPlan, awq: Bool, quiet: Bool) throws -> (TensorSource, [(key: String, value: JSON)]) {
        let src = try Checkpoint.open(model)
        let needsCalibration = awq || activations == "static"
        guard needsCalibration else { return (src, []) }
        if activations == "static" {
            guard plan.defaults.scheme == .fp8E4M3 || plan.defaults.scheme == .fp8E5M2 else {
                throw ValidationError("--activations static applies to FP8 schemes")
            }
            guard plan.defaults.fp8Granularity != .block else {
                throw ValidationError("--activations static needs per-tensor or per-channel weights (block FP8 runs with dynamic activations, as vLLM requires)")
            }
        }
        let opened = try OpenedModel(path: model)
        let cal = try loadCalibration(opened, quiet: quiet)
        var meta: [(key: String, value: JSON)] = [("calibration", .object(cal.provenance + [("tokens", .int(cal.tokens))]))]
        if activations == "static" {
            plan.activationScales = try StaticActivationScales.compute(model: opened.model, calibration: cal, format: plan.defaults.scheme == .fp8E4M3 ? .e4m3 : .e5m2)
            meta.append(("activations", .string("static")))
            return (src, meta)
        }
        guard plan.defaults.scheme == .rtnInt4 || plan.defaults.scheme == .rtnInt8 else { throw ValidationError("AWQ needs an INT scheme") }
        var job = AWQ(model: opened.model, calibration: cal,
                      quantizer: IntQuantizer(bits: plan.defaults.scheme == .rtnInt4 ? 4 : 8, groupSize: plan.defaults.groupSize,
                                              symmetric: plan.defaults.symmetric, convention: plan.defaults.convention))
        job.clip = !noClip
        job.progress = TerminalProgress.make(quiet: quiet)
        let result = try job.run()
        if !quiet { emitAWQSummary(result) }
        if let path = awqLog {
            let f = try OutputFile(path: path, overwrite: true)
            try f.write(AWQReport.json(result).serialized(pretty: true) + "\n")
            try f.commit()
        }
        for s in cal.starvedExperts {
            printWarning("layer \(s.layer) expert \(s.expert): \(s.tokens) routed calibration tokens; " +
                         (s.statistics == .none ? "quantized round-to-nearest" : "smoothed with all-token statistics"))
        }
        meta += [("awq", .object([("grid", .int(job.grid)), ("duo_scaling", .bool(job.duoScaling)), ("clip", .bool(job.clip))]))]
        return (try TransformedSource(base: src, replacements: result.weights), meta)
    }

    func emitAWQSummary(_ r: AWQ.Result) {
        let searched = r.log.filter { $0.skipped == nil }
        let reduce = searched.map { $0.rtnLoss > 0 ? $0.bestLoss / $0.rtnLoss : 1 }
        let mean = reduce.reduce(0, +) / Double(max(reduce.count, 1))
        FileHandle.standardError.write(Data(String(format: "awq: %d mappings searched (%d skipped) in %.1f s; best/round-to-nearest loss mean %.3f; clip error %.3g -> %.3g\n",
                                                   searched.count, r.log.count - searched.count, r.seconds, mean, r.clipError.before, r.clipError.after).utf8))
    }
}

/// AWQ's per-mapping log as JSON (llm-compressor logs initial and best error per mapping).
enum AWQReport {
    static func json(_ r: AWQ.Result) -> JSON {
        .object([
            ("seconds", .double(r.seconds)),
            ("clip_error", .object([("before", .double(r.clipError.before)), ("after", .double(r.clipError.after))])),
            ("mappings", .array(r.log.map { m in
                .object([("layer", .int(m.layer)), ("mapping", .string(m.mapping)), ("expert", m.expert.map { .int($0) } ?? .null),
                         ("tokens", .int(m.tokens)), ("rtn_loss", .double(m.rtnLoss)), ("ratio0_loss", .double(m.ratio0Loss)),
                         ("best_loss", .double(m.bestLoss)), ("best_ratio", m.bestRatio.map { .double(Double($0)) } ?? .null),
                         ("skipped", m.skipped.map { .string($0) } ?? .null)])
            })),
        ])
    }
}
