import IngotCore
import IngotFormats
import IngotForward
import IngotModel

/// Runs the reference forward pass layer by layer over the calibration set (full-precision outputs feed the next
/// layer) and records every linear input's statistics, per expert for MoE layers, plus a sample of each layer's
/// input. Memory: the set's activations `[tokens, hidden]` plus one layer's weights.
public struct Calibrator {
    public var model: ReferenceModel
    public var settings: Calibration.Settings
    public var progress: ProgressReporter = SilentProgress()

    public init(model: ReferenceModel, settings: Calibration.Settings) {
        self.model = model
        self.settings = settings
    }

    public func run(_ data: CalibrationData) throws -> Calibration {
        let c = model.config, h = c.hiddenSize
        let lengths = data.sequences.map(\.count)
        var sampleCount = 0, sampleRows = 0
        while sampleCount < lengths.count, sampleCount == 0 || sampleRows + lengths[sampleCount] <= settings.sampleTokens {
            sampleRows += lengths[sampleCount]; sampleCount += 1
        }
        let batch = SequenceBatch(lengths: lengths, model: model)
        let embed = try model.weight("model.embed_tokens.weight", [c.vocabSize, h])
        var x = [Float](repeating: 0, count: batch.rows * h)
        var r = 0
        for seq in data.sequences {
            for id in seq {
                guard id >= 0 && id < c.vocabSize else { throw ReferenceModel.Failure.tokenOutOfRange(id) }
                for k in 0..<h { x[r * h + k] = embed[id * h + k] }
                r += 1
            }
        }
        progress.begin("calibrate", total: c.layers, unit: .items)
        var layers: [Calibration.Layer] = []
        for l in 0..<c.layers {
            let w = try LayerWeights(model: model, layer: l)
            var layer = Calibration.Layer()
            layer.sample = Array(x[0..<(sampleRows * h)])
            var stats: [LinearSite: ActivationStats] = [:]
            var mlpInput: [Float] = []
            var routing: Routing?
            let observer: LinearInputObserver = { site, input, rows in
                stats[site, default: ActivationStats(width: input.count / max(rows, 1))].add(input, rows: rows)
                if site == .mlp, !w.experts.isEmpty {
                    mlpInput = input
                    routing = model.route(input, router: w.router, bias: w.routerBias, rows: rows)
                }
            }
            model.decoderLayer(&x, w, batch, observer: observer, allExpertTokens: settings.expertMode == .allTokens)
            if let routing {
                for e in w.experts.indices {
                    let routed = routing.tokens(of: e).count
                    let starved = routed < settings.minExpertTokens
                    var source: Calibration.ExpertStatistics = settings.expertMode == .allTokens ? .allTokens : .routed
                    if starved && settings.expertMode == .routed {
                        if settings.starved == .allTokens {
                            // Replace the (too few) routed rows with every token of the layer.
                            var g = ActivationStats(width: h), d = ActivationStats(width: c.expertIntermediateSize)
                            g.add(mlpInput, rows: batch.rows)
                            d.add(Kernels.swigluActivation(mlpInput, gate: w.experts[e].gate, up: w.experts[e].up, rows: batch.rows,
                                                           hidden: h, inner: c.expertIntermediateSize), rows: batch.rows)
                            stats[.expert(e)] = g; stats[.expertDown(e)] = d
                            source = .allTokens
                        } else {
                            source = .none
                        }
                    }
                    // An expert with no rows at all still gets (empty) statistics of the right width.
                    if stats[.expert(e)] == nil { stats[.expert(e)] = ActivationStats(width: h) }
                    if stats[.expertDown(e)] == nil { stats[.expertDown(e)] = ActivationStats(width: c.expertIntermediateSize) }
                    layer.experts.append(.init(routedTokens: routed, statistics: source, starved: starved))
                }
            }
            layer.sites = stats
            layers.append(layer)
            progress.update(l + 1)
        }
        progress.finish()
        var s = settings
        s.sampleTokens = sampleRows
        return Calibration(layers: layers, settings: s, sampleLengths: Array(lengths.prefix(sampleCount)), tokens: batch.rows,
                           sequences: lengths.count,
                           provenance: [("model_fingerprint", .string(try ModelFingerprint.compute(model.source))),
                                        ("data_path", .string(data.sourcePath)), ("data_sha256", .string(data.sourceSHA256))])
    }
}

/// A fingerprint of a checkpoint's contents: XXH64 over every tensor's name, dtype, shape and bytes, in name
/// order. Two checkpoints with equal fingerprints hold the same weights whatever their container.
public enum ModelFingerprint {
    public static func compute(_ source: TensorSource) throws -> String {
        var acc: [UInt8] = []
        for t in source.tensors.sorted(by: { $0.name < $1.name }) {
            let v = try source.tensor(named: t.name)
            let h = v.withBytes { XXH64.hash($0) }
            acc += Array("\(t.name)|\(t.dtype.rawValue)|\(t.shape)|".utf8)
            withUnsafeBytes(of: h.littleEndian) { acc += $0 }
        }
        return "xxh64:" + XXH64.hex(XXH64.hash(acc))
    }
}
