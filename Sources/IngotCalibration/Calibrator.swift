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

    /// Calibrates on `data`, or with `share` (index, count) on that share of its sequences only: statistics then
    /// stay partial (exact sums) until `CalibrationArtifact.merge` adds the shares up to what one run computes.
    public func run(_ data: CalibrationData, share: (index: Int, count: Int)? = nil) throws -> Calibration {
        let c = model.config, h = c.hiddenSize
        let all = data.sequences.map(\.count)
        try ForwardLimits.check(c, length: all.max() ?? 0, sequences: all.count, logits: false, option: "--seq-len")
        // The sample is the first sequences of the whole set, whichever share they fall in.
        var sampleCount = 0, sampleRows = 0
        while sampleCount < all.count, sampleCount == 0 || sampleRows + all[sampleCount] <= settings.sampleTokens {
            sampleRows += all[sampleCount]; sampleCount += 1
        }
        let part = share.map { Calibration.Share(index: $0.index, count: $0.count, totalSequences: all.count) }
        let mine = part?.sequences ?? all.indices
        guard !mine.isEmpty else { throw Failure.emptyShare(share: part!.index, of: part!.count, sequences: all.count) }
        let lengths = Array(all[mine])
        let localSample = max(0, min(mine.upperBound, sampleCount) - mine.lowerBound)
        let localSampleRows = lengths.prefix(localSample).reduce(0, +)
        let batch = SequenceBatch(lengths: lengths, model: model)
        var x = try model.embed(Array(data.sequences[mine]), batch)
        progress.begin("calibrate", total: c.layers, unit: .items)
        var layers: [Calibration.Layer] = []
        for l in 0..<c.layers {
            // Routed experts are read one at a time (as AWQ's searches read them), so memory does not grow with them.
            let w = try LayerWeights(model: model, layer: l, experts: false)
            let expert = { (e: Int) throws -> LayerWeights.Expert in try model.expert(e, names: w.names) }
            var layer = Calibration.Layer()
            layer.sample = Array(x[0..<(localSampleRows * h)])
            if let p = batch.state.perLayerInputs[l] { layer.perLayerInput = Array(p[0..<(localSampleRows * (p.count / max(batch.rows, 1)))]) }
            var stats: [LinearSite: ActivationStats] = [:]
            var mlpInput: [Float] = []
            var routing: Routing?
            let observer: LinearInputObserver = { site, input, rows in
                stats[site, default: ActivationStats(width: input.count / max(rows, 1))].add(input, rows: rows)
            }
            try model.decoderLayer(&x, w, batch, observer: observer, routingObserver: { mlpInput = $0; routing = $1 },
                                   allExpertTokens: settings.expertMode == .allTokens, expert: expert)
            // Down-projection input of expert e over every token (for starved experts under the all-tokens policy).
            let allTokenDown = { (e: Int) throws -> ActivationStats in
                var d = ActivationStats(width: c.expertIntermediateSize)
                d.add(model.expertActivation(mlpInput, try expert(e), rows: batch.rows), rows: batch.rows)
                return d
            }
            if let routing {
                for e in 0..<w.names.experts.count {
                    // An expert with no rows at all still gets (empty) statistics of the right width.
                    if stats[.expert(e)] == nil { stats[.expert(e)] = ActivationStats(width: h) }
                    if stats[.expertDown(e)] == nil { stats[.expertDown(e)] = ActivationStats(width: c.expertIntermediateSize) }
                    layer.experts.append(.init(routedTokens: routing.tokens(of: e).count, statistics: .routed, starved: false))
                    // A share cannot tell yet which experts are starved over the whole data: it keeps every expert's.
                    if part != nil, settings.expertMode == .routed, settings.starved == .allTokens { layer.allTokenDown[e] = try allTokenDown(e) }
                }
            }
            layer.sites = stats
            if part == nil { try Calibration.judgeExperts(&layer, settings: settings, allTokenDown: allTokenDown) }
            layers.append(layer)
            progress.update(l + 1)
        }
        progress.finish()
        var s = settings
        s.sampleTokens = localSampleRows
        var cal = Calibration(layers: layers, settings: s, sampleLengths: Array(lengths.prefix(localSample)), tokens: batch.rows,
                              sequences: lengths.count,
                              provenance: [("model_fingerprint", .string(try ModelFingerprint.compute(model.source))),
                                           ("data_path", .string(data.sourcePath)), ("data_sha256", .string(data.sourceSHA256))])
        cal.share = part
        return cal
    }

    public enum Failure: Error, CustomStringConvertible {
        case emptyShare(share: Int, of: Int, sequences: Int)
        public var description: String {
            switch self {
            case let .emptyShare(i, n, s): "share \(i)/\(n) has no sequences: the data has \(s), fewer than the \(n) shares"
            }
        }
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
