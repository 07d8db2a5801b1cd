import IngotCalibration
import IngotCore
import IngotFormats
import IngotForward

/// The calibration-driven step between reading a checkpoint and quantizing it: AWQ's weight transform, or
/// static FP8 activation scales added to the plan.
public enum ActivationAware {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case wrongScheme(String)
        case fingerprint(calibration: String, model: String)
        public var description: String {
            switch self {
            case .wrongScheme(let r): r
            case let .fingerprint(c, m): "the calibration was made for a different checkpoint (fingerprint \(c), this model \(m))"
            }
        }
    }

    public struct Outcome {
        /// What to quantize: the checkpoint, or AWQ's transformed weights over it.
        public var source: TensorSource
        /// Provenance for the output's metadata.
        public var metadata: [(key: String, value: JSON)]
        /// AWQ's streaming source (its `result` is complete once the writer has read every tensor).
        public var awq: StreamingAWQSource?
    }

    /// Refuses a calibration whose model fingerprint differs from `model`'s.
    public static func checkFingerprint(_ cal: Calibration, model: ReferenceModel) throws {
        guard let want = cal.provenance.first(where: { $0.key == "model_fingerprint" })?.value.stringValue else { return }
        let have = try ModelFingerprint.compute(model.source)
        guard have == want else { throw Failure.fingerprint(calibration: want, model: have) }
    }

    /// `awq`: transform the weights; `staticActivations`: add FP8 input scales to `plan`. `layerOrderedWriter`:
    /// the consumer reads tensors in storage order (QuantizeJob), so one layer at a time is kept.
    public static func prepare(checkpoint: TensorSource, model: ReferenceModel, calibration cal: Calibration, plan: inout QuantizationPlan,
                               awq: Bool, staticActivations: Bool, clip: Bool = true, layerOrderedWriter: Bool = true,
                               progress: ProgressReporter = SilentProgress()) throws -> Outcome {
        var meta: [(key: String, value: JSON)] = [("calibration", .object(cal.provenance + [("tokens", .int(cal.tokens))]))]
        if staticActivations {
            let s = plan.defaults
            guard let format = s.scheme.fp8Format else { throw Failure.wrongScheme("static activations apply to FP8 schemes") }
            guard s.fp8Granularity != .block else {
                throw Failure.wrongScheme("static activations need per-tensor or per-channel FP8 weights (block FP8 runs with dynamic activations, as vLLM requires)")
            }
            plan.activationScales = try StaticActivationScales.compute(model: model, calibration: cal, format: format)
            meta.append(("activations", .string("static")))
        }
        guard awq else { return Outcome(source: checkpoint, metadata: meta, awq: nil) }
        let s = plan.defaults
        guard case .int(let bits) = s.scheme.codes else { throw Failure.wrongScheme("AWQ needs an INT scheme") }
        var job = AWQ(model: model, calibration: cal, quantizer: IntQuantizer(bits: bits, groupSize: s.groupSize,
                                                                              symmetric: s.symmetric, convention: s.convention))
        job.clip = clip
        job.progress = progress
        meta.append(("awq", .object([("grid", .int(job.grid)), ("duo_scaling", .bool(job.duoScaling)), ("clip", .bool(clip))])))
        let stream = try StreamingAWQSource(base: checkpoint, awq: job, retainAllLayers: !layerOrderedWriter)
        return Outcome(source: stream, metadata: meta, awq: stream)
    }
}
