import IngotCalibration
import IngotCore
import IngotFormats
import IngotForward
import IngotModel

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
        /// GPTQ's rounding source (its `log` is complete once the writer has read every tensor).
        public var gptq: GPTQSource?
        /// Why a default (layer inputs propagated) was not applied, for the log.
        public var note: String? = nil
    }

    /// Refuses a calibration whose model fingerprint differs from `model`'s.
    public static func checkFingerprint(_ cal: Calibration, model: ReferenceModel) throws {
        guard let want = cal.provenance.first(where: { $0.key == "model_fingerprint" })?.value.stringValue else { return }
        let have = try ModelFingerprint.compute(model.source)
        guard have == want else { throw Failure.fingerprint(calibration: want, model: have) }
    }

    /// `awq`: transform the weights; `clip`, `oneSidedClip`: AWQ's clip search, with one-sided clamps for asymmetric
    /// quantizers; `searchTokens`: sample rows AWQ's scale searches run on (`AWQ.searchTokens`); `rounding`: `.gptq` rounds the plan's default-scheme linears with GPTQ (after
    /// AWQ's transform when both); `propagateError`: both work on each layer's input along the quantized path
    /// (`PropagatedInputs`) instead of the full-precision one (nil: whenever GPTQ rounds and the family allows it;
    /// the outcome's `note` says when it does not); `staticActivations`: add FP8 input scales to `plan`. `layerOrderedWriter`: the
    /// consumer reads tensors in storage order (QuantizeJob), so one layer at a time is kept.
    public static func prepare(checkpoint: TensorSource, model: ReferenceModel, calibration cal: Calibration, plan: inout QuantizationPlan,
                               awq: Bool, rounding: QuantScheme.Rounding = .nearest, gptq: GPTQ = GPTQ(), staticActivations: Bool,
                               clip: Bool = true, oneSidedClip: Bool = true, searchTokens: Int? = AWQ.defaultSearchTokens,
                               layerOrderedWriter: Bool = true, propagateError: Bool? = nil,
                               progress: ProgressReporter = SilentProgress()) throws -> Outcome {
        var meta: [(key: String, value: JSON)] = [("calibration", .object(cal.provenance + [("tokens", .int(cal.tokens))]))]
        if plan.defaults.scheme.calibratedActivations {
            plan.activationScales = try StaticActivationScales.nvfp4(model: model, calibration: cal)
            meta.append(("activations", .string("static global scales")))
        } else if staticActivations {
            let s = plan.defaults
            guard let format = s.scheme.fp8Format else { throw Failure.wrongScheme("static activations apply to FP8 schemes") }
            guard s.fp8Granularity != .block else {
                throw Failure.wrongScheme("static activations need per-tensor or per-channel FP8 weights (block FP8 runs with dynamic activations, as vLLM requires)")
            }
            plan.activationScales = try StaticActivationScales.compute(model: model, calibration: cal, format: format)
            meta.append(("activations", .string("static")))
        }
        guard awq || rounding == .gptq else { return Outcome(source: checkpoint, metadata: meta, awq: nil, gptq: nil) }
        // The searches name experts as the writer does: over linearized experts (gpt-oss) they run on that view too,
        // which decodes one expert at a time and gives the same values as the fused tensors.
        let model = checkpoint is LinearizedExperts ? ReferenceModel(source: try DequantizedSource(checkpoint), config: model.config) : model
        let s = plan.defaults
        if rounding == .gptq, s.intQuantizer == nil { throw Failure.wrongScheme("GPTQ needs an INT scheme") }
        var source = checkpoint
        var stream: StreamingAWQSource?
        // GPTQ's Hessians gain from the quantized path's inputs (SmolLM2-135M g64: held-out ppl 55.03 → 53.92),
        // AWQ's searches alone do not (48.997 → 49.07), so by default it follows GPTQ.
        var propagation: PropagatedInputs?, note: String?
        switch propagateError ?? (rounding == .gptq) {
        case true where propagateError == nil:
            do { propagation = try PropagatedInputs(model: model, calibration: cal, plan: plan) } catch let e as PropagatedInputs.Failure {
                note = "\(e); GPTQ rounds on the full-precision layer inputs"
            }
        case true: propagation = try PropagatedInputs(model: model, calibration: cal, plan: plan)
        case false: break
        }
        meta.append(("propagate_error", .bool(propagation != nil)))
        if awq {
            guard let quantizer = s.weightQuantizer else { throw Failure.wrongScheme("AWQ needs an INT or FP4 scheme") }
            var job = AWQ(model: model, calibration: cal, quantizer: quantizer)
            job.clip = clip && quantizer.clipsPerGroup
            job.oneSidedClip = oneSidedClip
            job.searchTokens = searchTokens
            job.progress = progress
            job.propagation = propagation
            meta.append(("awq", .object([("grid", .int(job.grid)), ("duo_scaling", .bool(job.duoScaling)), ("clip", .bool(job.clip)),
                                         ("one_sided_clip", .bool(job.clip && oneSidedClip && quantizer.clipsAsymmetric)),
                                         ("search_tokens", searchTokens.map { .int($0) } ?? .string("all"))])))
            stream = try StreamingAWQSource(base: checkpoint, awq: job, retainAllLayers: !layerOrderedWriter)
            source = stream!
        }
        var rounder: GPTQSource?
        if rounding == .gptq {
            rounder = try GPTQSource(base: source, model: model, calibration: cal, scheme: s.scheme, gptq: gptq, awq: stream,
                                     propagation: propagation)
            source = rounder!
            meta.append(("gptq", .object([("block_size", .int(gptq.blockSize)), ("dampening", .double(gptq.dampening)),
                                          ("act_order", .bool(gptq.actOrder))])))
        }
        return Outcome(source: source, metadata: meta, awq: stream, gptq: rounder, note: note)
    }
}
