import IngotCore
import IngotFormats
import IngotForward

/// `CALIB.ingot`: a calibration stored in the native container, so `quantize` can run without recalibrating,
/// on another machine. Tensors: `layers.L.input` (the sample, f32 `[rows, hidden]`; Gemma 4 also
/// `layers.L.per_layer_input`, `[rows, perLayerInputSize]`), `layers.L.SITE.mean_abs`
/// and `layers.L.SITE.absmax` (f32 `[width]`). Metadata `ingot_calibration`: settings, token counts per site,
/// expert coverage, sample lengths, provenance.
public enum CalibrationArtifact {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case notACalibration(String)
        case malformed(path: String, reason: String)
        case isShare(path: String, index: Int, count: Int)
        case shareMismatch(path: String, reason: String)
        public var description: String {
            switch self {
            case .notACalibration(let p): "\(p) is not an Ingot calibration file (no 'ingot_calibration' metadata); make one with 'ingot calibrate'"
            case let .malformed(p, r): "\(p): malformed calibration: \(r)"
            case let .isShare(p, i, n): "\(p) is share \(i)/\(n) of a split calibration: join the shares with 'ingot merge' first"
            case let .shareMismatch(p, r): "\(p): cannot merge: \(r)"
            }
        }
    }

    /// Writes `cal` to `path`. A share (`cal.share`) also stores its exact sums and all-token expert statistics,
    /// which `merge` needs; a whole calibration does not.
    public static func write(_ cal: Calibration, to path: String, overwrite: Bool = false) throws {
        let writer = try IngotFileWriter(path: path, options: IngotFileWriter.Options(), overwrite: overwrite,
                                         shard: cal.share.map { ($0.index, $0.count) } ?? (1, 1))
        func addExact(_ name: String, _ st: ActivationStats) throws {
            guard cal.share != nil else { return }
            for (suffix, sums) in [(".exact_sum", st.exactSum), (".exact_sum_sq", st.exactSumSquares)] where suffix == ".exact_sum" || st.hasSquares {
                var words: [Int64] = []
                words.reserveCapacity(2 * st.width)
                for v in sums { words.append(Int64(truncatingIfNeeded: v)); words.append(Int64(truncatingIfNeeded: v >> 64)) }
                try words.withUnsafeBytes { try writer.addTensor(name: name + suffix, dtype: .i64, shape: [st.width, 2], bytes: $0) }
            }
        }
        do {
            var layersJSON: [JSON] = []
            for (l, layer) in cal.layers.enumerated() {
                try layer.sample.withUnsafeBytes {
                    try writer.addTensor(name: "layers.\(l).input", dtype: .f32, shape: [cal.sampleRows, $0.count / 4 / max(cal.sampleRows, 1)], bytes: $0)
                }
                if !layer.perLayerInput.isEmpty {
                    try layer.perLayerInput.withUnsafeBytes {
                        try writer.addTensor(name: "layers.\(l).per_layer_input", dtype: .f32,
                                             shape: [cal.sampleRows, $0.count / 4 / max(cal.sampleRows, 1)], bytes: $0)
                    }
                }
                var sites: [(key: String, value: JSON)] = []
                for (site, s) in layer.sites.sorted(by: { order($0.key) < order($1.key) }) {
                    try s.meanAbs.withUnsafeBytes { try writer.addTensor(name: "layers.\(l).\(site).mean_abs", dtype: .f32, shape: [s.width], bytes: $0) }
                    try s.absmax.withUnsafeBytes { try writer.addTensor(name: "layers.\(l).\(site).absmax", dtype: .f32, shape: [s.width], bytes: $0) }
                    if let q = s.meanSquares {
                        try q.withUnsafeBytes { try writer.addTensor(name: "layers.\(l).\(site).mean_sq", dtype: .f32, shape: [s.width], bytes: $0) }
                    }
                    try addExact("layers.\(l).\(site)", s)
                    sites.append(("\(site)", .int(s.tokens)))
                }
                for (e, s) in layer.allTokenDown.sorted(by: { $0.key < $1.key }) {
                    let name = "layers.\(l).expert.\(e).down_proj.all_tokens"
                    try s.absmax.withUnsafeBytes { try writer.addTensor(name: name + ".absmax", dtype: .f32, shape: [s.width], bytes: $0) }
                    try addExact(name, s)
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
                ] + (cal.share.map { sh in
                    [("share", JSON.object([("shard", .int(sh.index)), ("of", .int(sh.count)),
                                            ("sequences", .array([.int(sh.sequences.lowerBound), .int(sh.sequences.upperBound)])),
                                            ("total_sequences", .int(sh.totalSequences))]))]
                } ?? []))),
            ])
            try writer.commit()
        } catch {
            writer.discard()
            throw error
        }
    }

    /// Reads a calibration. With `lazySamples`, layer samples stay in the (memory-mapped) file and are decoded one
    /// layer at a time through `Calibration.sample(layer:)`.
    /// `allowShare`: also read a share of a split calibration (for `merge`); otherwise a share is refused.
    public static func read(_ path: String, lazySamples: Bool = false, allowShare: Bool = false) throws -> Calibration {
        let f = try IngotFile(path: path)
        guard let m = f.metadataJSON["ingot_calibration"] else { throw Failure.notACalibration(path) }
        func bad(_ r: String) -> Failure { .malformed(path: path, reason: r) }
        guard m["version"]?.intValue == 1 else { throw bad("unsupported version") }
        var share: Calibration.Share?
        if let sh = m["share"] {
            guard let i = sh["shard"]?.intValue, let n = sh["of"]?.intValue, let total = sh["total_sequences"]?.intValue,
                  let r = sh["sequences"]?.arrayValue?.compactMap(\.intValue), r.count == 2, 0 <= r[0], r[0] < r[1], r[1] <= total,
                  (1...max(1, n)).contains(i), f.shard.index == i, f.shard.count == n
            else { throw bad("invalid 'share' entry") }
            guard allowShare else { throw Failure.isShare(path: path, index: i, count: n) }
            share = Calibration.Share(index: i, count: n, sequences: r[0]..<r[1], totalSequences: total)
        }
        func exact(_ name: String, width: Int, suffix: String = ".exact_sum") throws -> [Int128]? {
            guard share != nil else { return nil }
            if suffix != ".exact_sum", f.entry(name + suffix) == nil { return nil }
            let t = try f.tensor(named: name + suffix)
            guard t.dtype == .i64, t.shape == [width, 2] else { throw bad("\(name).exact_sum has the wrong dtype or shape") }
            return try t.withBytes { b in
                (0..<width).map { c in
                    let lo = b.loadUnaligned(fromByteOffset: 16 * c, as: UInt64.self)
                    let hi = b.loadUnaligned(fromByteOffset: 16 * c + 8, as: Int64.self)
                    return Int128(hi) << 64 | Int128(lo)
                }
            }
        }
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
            if f.entry("layers.\(l).per_layer_input") != nil {
                let p = try f.tensor(named: "layers.\(l).per_layer_input")
                guard p.dtype == .f32, p.shape.count == 2, p.shape[0] == rows else { throw bad("layers.\(l).per_layer_input has the wrong shape") }
                layer.perLayerInput = try p.floats()
            }
            guard case let .object(sites)? = lj["tokens"] else { throw bad("layer \(l) has no token counts") }
            for (name, count) in sites {
                guard let site = LinearSite(name: name), let n = count.intValue, n >= 0 else { throw bad("layer \(l): bad site '\(name)'") }
                let mean = try f.tensor(named: "layers.\(l).\(name).mean_abs"), mx = try f.tensor(named: "layers.\(l).\(name).absmax")
                guard mean.dtype == .f32, mx.dtype == .f32, mean.shape.count == 1, mean.shape == mx.shape else {
                    throw bad("layer \(l) site \(name): statistics have the wrong dtype or shape")
                }
                var meanSq: [Float]? = nil
                if f.entry("layers.\(l).\(name).mean_sq") != nil {
                    let q = try f.tensor(named: "layers.\(l).\(name).mean_sq")
                    guard q.dtype == .f32, q.shape == mean.shape else { throw bad("layer \(l) site \(name): mean_sq has the wrong dtype or shape") }
                    meanSq = try q.floats()
                }
                layer.sites[site] = ActivationStats(width: mean.shape[0], tokens: n, meanAbs: try mean.floats(), absmax: try mx.floats(),
                                                    exactSum: try exact("layers.\(l).\(name)", width: mean.shape[0]), meanSquares: meanSq,
                                                    exactSumSquares: try exact("layers.\(l).\(name)", width: mean.shape[0], suffix: ".exact_sum_sq"))
            }
            for e in lj["experts"]?.arrayValue ?? [] {
                guard let t = e["routed_tokens"]?.intValue, let s = e["statistics"]?.stringValue.flatMap(Calibration.ExpertStatistics.init(rawValue:)),
                      let st = e["starved"]?.boolValue else { throw bad("layer \(l): bad expert entry") }
                layer.experts.append(.init(routedTokens: t, statistics: s, starved: st))
            }
            if share != nil {
                for e in layer.experts.indices {
                    let name = "layers.\(l).expert.\(e).down_proj.all_tokens"
                    guard f.entry(name + ".absmax") != nil else { continue }
                    let mx = try f.tensor(named: name + ".absmax")
                    guard mx.dtype == .f32, mx.shape.count == 1 else { throw bad("\(name).absmax has the wrong dtype or shape") }
                    let w = mx.shape[0]
                    layer.allTokenDown[e] = ActivationStats(width: w, tokens: tokens, meanAbs: [], absmax: try mx.floats(),
                                                            exactSum: try exact(name, width: w),
                                                            exactSumSquares: try exact(name, width: w, suffix: ".exact_sum_sq"))
                }
            }
            layers.append(layer)
        }
        let prov: [(key: String, value: JSON)]
        if case let .object(p)? = m["provenance"] { prov = p } else { prov = [] }
        var cal = Calibration(layers: layers, settings: settings, sampleLengths: lengths, tokens: tokens, sequences: sequences, provenance: prov)
        cal.share = share
        if lazySamples {
            let file = UncheckedSendable(f)
            cal.sampleLoader = { l in try file.value.tensor(named: "layers.\(l).input").floats() }
        }
        return cal
    }

    /// Joins the shares of a split calibration (`calibrate --shard i/N`, files in share order) into the file one
    /// run over all the data writes, byte for byte: exact sums and token counts add up, samples concatenate, and
    /// starved experts are judged on the whole data's counts.
    @discardableResult
    public static func merge(_ paths: [String], into destination: String, overwrite: Bool = false) throws -> Calibration {
        let shares = try paths.map { try read($0, allowShare: true) }
        guard let first = shares.first else { throw Failure.shareMismatch(path: destination, reason: "no shares") }
        var next = 0
        for (k, c) in shares.enumerated() {
            func mismatch(_ r: String) -> Failure { .shareMismatch(path: paths[k], reason: r) }
            guard let sh = c.share else { throw mismatch("it is not a share of a split calibration") }
            guard sh.index == k + 1, sh.count == shares.count, sh.totalSequences == first.share!.totalSequences else {
                throw mismatch("it is share \(sh.index)/\(sh.count) of \(sh.totalSequences) sequences; expected \(k + 1)/\(shares.count) of \(first.share!.totalSequences)")
            }
            guard sh.sequences.lowerBound == next else { throw mismatch("its sequences start at \(sh.sequences.lowerBound), expected \(next)") }
            next = sh.sequences.upperBound
            var a = c.settings, b = first.settings
            a.sampleTokens = 0; b.sampleTokens = 0
            guard a == b, JSON.object(c.provenance) == JSON.object(first.provenance) else {
                throw mismatch("its settings or provenance (model, data, seed) differ from share 1's")
            }
            guard c.layers.count == first.layers.count,
                  zip(c.layers, first.layers).allSatisfy({ $0.experts.count == $1.experts.count && Set($0.sites.keys) == Set($1.sites.keys) })
            else { throw mismatch("its layers, sites or experts differ from share 1's") }
        }
        guard next == first.share!.totalSequences else {
            throw Failure.shareMismatch(path: paths.last!, reason: "the shares cover \(next) of \(first.share!.totalSequences) sequences")
        }
        var layers: [Calibration.Layer] = []
        for l in first.layers.indices {
            var layer = first.layers[l]
            for c in shares.dropFirst() {
                let other = c.layers[l]
                for (site, st) in other.sites { layer.sites[site]!.merge(st) }
                for (e, st) in other.allTokenDown { layer.allTokenDown[e]?.merge(st) }
                for e in layer.experts.indices { layer.experts[e].routedTokens += other.experts[e].routedTokens }
                layer.sample += other.sample
                layer.perLayerInput += other.perLayerInput
            }
            let down = layer.allTokenDown
            layer.allTokenDown = [:]
            try Calibration.judgeExperts(&layer, settings: first.settings) { e in
                guard let d = down[e] else { throw Failure.shareMismatch(path: paths[0], reason: "layer \(l) expert \(e) has no all-token statistics") }
                return d
            }
            layers.append(layer)
        }
        var settings = first.settings
        settings.sampleTokens = shares.reduce(0) { $0 + $1.sampleRows }
        let merged = Calibration(layers: layers, settings: settings, sampleLengths: shares.flatMap(\.sampleLengths),
                                 tokens: shares.reduce(0) { $0 + $1.tokens }, sequences: shares.reduce(0) { $0 + $1.sequences },
                                 provenance: first.provenance)
        try write(merged, to: destination, overwrite: overwrite)
        return merged
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
        case .perLayerGate: -2
        case .perLayerProjection: -1
        case .moe: -3
        case .expert(let e): 7 + 2 * e
        case .expertDown(let e): 8 + 2 * e
        }
    }
}
