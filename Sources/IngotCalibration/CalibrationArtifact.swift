import IngotCore
import IngotFormats
import IngotForward

/// `CALIB.ingot`: a calibration stored in the native container, so `quantize` can run without recalibrating,
/// on another machine. Tensors: `layers.L.input` (the sample, f32 `[rows, hidden]`), `layers.L.SITE.mean_abs`
/// and `layers.L.SITE.absmax` (f32 `[width]`). Metadata `ingot_calibration`: settings, token counts per site,
/// expert coverage, sample lengths, provenance.
public enum CalibrationArtifact {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case notACalibration(String)
        case malformed(path: String, reason: String)
        public var description: String {
            switch self {
            case .notACalibration(let p): "\(p) is not an Ingot calibration file (no 'ingot_calibration' metadata); make one with 'ingot calibrate'"
            case let .malformed(p, r): "\(p): malformed calibration: \(r)"
            }
        }
    }

    public static func write(_ cal: Calibration, to path: String, overwrite: Bool = false) throws {
        let writer = try IngotFileWriter(path: path, options: IngotFileWriter.Options(), overwrite: overwrite)
        do {
            var layersJSON: [JSON] = []
            for (l, layer) in cal.layers.enumerated() {
                try layer.sample.withUnsafeBytes {
                    try writer.addTensor(name: "layers.\(l).input", dtype: .f32, shape: [cal.sampleRows, $0.count / 4 / max(cal.sampleRows, 1)], bytes: $0)
                }
                var sites: [(key: String, value: JSON)] = []
                for (site, s) in layer.sites.sorted(by: { order($0.key) < order($1.key) }) {
                    try s.meanAbs.withUnsafeBytes { try writer.addTensor(name: "layers.\(l).\(site).mean_abs", dtype: .f32, shape: [s.width], bytes: $0) }
                    try s.absmax.withUnsafeBytes { try writer.addTensor(name: "layers.\(l).\(site).absmax", dtype: .f32, shape: [s.width], bytes: $0) }
                    sites.append(("\(site)", .int(s.tokens)))
                }
                layersJSON.append(.object([
                    ("tokens", .object(sites)),
                    ("experts", .array(layer.experts.map { .object([("routed_tokens", .int($0.routedTokens)),
                                                                     ("statistics", .string($0.statistics.rawValue)),
                                                                     ("starved", .bool($0.starved))]) })),
                ]))
            }
            let s = cal.settings
            writer.metadata = .object([
                ("created_by", .string("ingot calibrate")),
                ("ingot_calibration", .object([
                    ("version", .int(1)),
                    ("tokens", .int(cal.tokens)), ("sequences", .int(cal.sequences)),
                    ("expert_mode", .string(s.expertMode.rawValue)), ("min_expert_tokens", .int(s.minExpertTokens)),
                    ("starved_experts", .string(s.starved.rawValue)),
                    ("sample_lengths", .array(cal.sampleLengths.map { .int($0) })),
                    ("provenance", .object(cal.provenance)),
                    ("layers", .array(layersJSON)),
                ])),
            ])
            try writer.commit()
        } catch {
            writer.discard()
            throw error
        }
    }

    /// Reads a calibration. With `lazySamples`, layer samples stay in the (memory-mapped) file and are decoded one
    /// layer at a time through `Calibration.sample(layer:)`.
    public static func read(_ path: String, lazySamples: Bool = false) throws -> Calibration {
        let f = try IngotFile(path: path)
        guard let m = f.metadataJSON["ingot_calibration"] else { throw Failure.notACalibration(path) }
        func bad(_ r: String) -> Failure { .malformed(path: path, reason: r) }
        guard m["version"]?.intValue == 1 else { throw bad("unsupported version") }
        var settings = Calibration.Settings()
        guard let mode = m["expert_mode"]?.stringValue.flatMap(Calibration.ExpertMode.init(rawValue:)),
              let starved = m["starved_experts"]?.stringValue.flatMap(Calibration.StarvedExpertPolicy.init(rawValue:)),
              let minTokens = m["min_expert_tokens"]?.intValue,
              let lengths = m["sample_lengths"]?.arrayValue?.compactMap(\.intValue), lengths.allSatisfy({ $0 > 0 }),
              let tokens = m["tokens"]?.intValue, let sequences = m["sequences"]?.intValue,
              let layersJSON = m["layers"]?.arrayValue
        else { throw bad("missing or invalid settings") }
        settings.expertMode = mode; settings.starved = starved; settings.minExpertTokens = minTokens
        let rows = lengths.reduce(0, +)
        settings.sampleTokens = rows
        var layers: [Calibration.Layer] = []
        for (l, lj) in layersJSON.enumerated() {
            var layer = Calibration.Layer()
            let input = try f.tensor(named: "layers.\(l).input")
            guard input.dtype == .f32, input.shape.count == 2, input.shape[0] == rows else { throw bad("layers.\(l).input has the wrong shape") }
            if !lazySamples { layer.sample = try input.floats() }
            guard case let .object(sites)? = lj["tokens"] else { throw bad("layer \(l) has no token counts") }
            for (name, count) in sites {
                guard let site = LinearSite(name: name), let n = count.intValue, n >= 0 else { throw bad("layer \(l): bad site '\(name)'") }
                let mean = try f.tensor(named: "layers.\(l).\(name).mean_abs"), mx = try f.tensor(named: "layers.\(l).\(name).absmax")
                guard mean.dtype == .f32, mx.dtype == .f32, mean.shape.count == 1, mean.shape == mx.shape else {
                    throw bad("layer \(l) site \(name): statistics have the wrong dtype or shape")
                }
                layer.sites[site] = ActivationStats(width: mean.shape[0], tokens: n, meanAbs: try mean.floats(), absmax: try mx.floats())
            }
            for e in lj["experts"]?.arrayValue ?? [] {
                guard let t = e["routed_tokens"]?.intValue, let s = e["statistics"]?.stringValue.flatMap(Calibration.ExpertStatistics.init(rawValue:)),
                      let st = e["starved"]?.boolValue else { throw bad("layer \(l): bad expert entry") }
                layer.experts.append(.init(routedTokens: t, statistics: s, starved: st))
            }
            layers.append(layer)
        }
        let prov: [(key: String, value: JSON)]
        if case let .object(p)? = m["provenance"] { prov = p } else { prov = [] }
        var cal = Calibration(layers: layers, settings: settings, sampleLengths: lengths, tokens: tokens, sequences: sequences, provenance: prov)
        if lazySamples {
            let file = UncheckedSendable(f)
            cal.sampleLoader = { l in try file.value.tensor(named: "layers.\(l).input").floats() }
        }
        return cal
    }

    static func order(_ s: LinearSite) -> Int {
        switch s {
        case .attention: 0
        case .output: 1
        case .mlp: 2
        case .down: 3
        case .qLatent: 4
        case .kvLatent: 5
        case .sharedDown: 6
        case .expert(let e): 7 + 2 * e
        case .expertDown(let e): 8 + 2 * e
        }
    }
}
