import COpenBLAS
import Foundation
import IngotCalibration
import IngotCore
import IngotFormats
import IngotForward
import IngotModel

/// Activation-aware weight quantization (AWQ), MoE-aware. For each decoder layer, on the calibration sample of
/// its full-precision input:
/// 1. every mapping of `ModelConfig.awqMappings` searches a scale over 20 grid ratios plus identity (duo scaling;
///    loss = MSE of the inspected block's output with the balance weights fake-quantized as `Q(W·s)/s`);
/// 2. the best scale is folded (smoothing op ÷ s, balance columns × s; MoE routers' columns too, so routing is
///    unchanged);
/// 3. the clip search clamps each group of every linear but q/k.
///
/// The result is a set of transformed weights, quantized afterwards by the plain group quantizer. MoE: gate/up
/// share one scale searched at the MoE block output with routing; up → down is searched per expert on its own
/// tokens. Starved experts follow the calibration's policy (all-token statistics, or round-to-nearest).
public struct AWQ {
    public var model: ReferenceModel
    public var calibration: Calibration
    /// The INT scheme the weights will be quantized with (bits, group size, symmetry, convention).
    public var quantizer: IntQuantizer
    public var grid = 20
    public var duoScaling = true
    public var clip = true
    public var progress: ProgressReporter = SilentProgress()

    public init(model: ReferenceModel, calibration: Calibration, quantizer: IntQuantizer) {
        self.model = model
        self.calibration = calibration
        self.quantizer = quantizer
    }

    /// One mapping's search, as llm-compressor logs it.
    public struct MappingLog: Sendable {
        public var layer: Int
        public var mapping: String
        public var expert: Int?
        public var tokens: Int
        /// Loss with the weights quantized unsmoothed (round-to-nearest).
        public var rtnLoss: Double
        /// Loss of the first grid point (ratio 0), llm-compressor's "initial error".
        public var ratio0Loss: Double
        public var bestLoss: Double
        /// Winning ratio; nil when identity won.
        public var bestRatio: Float?
        /// Why the mapping was not searched (the weights are then plain round-to-nearest).
        public var skipped: String?
    }

    public struct Result {
        public var layers: [LayerResult]
        /// Transformed f32 weights by tensor name (norms and routers scaled; linears scaled and clipped).
        public var weights: [String: [Float]]
        public var seconds: Double
        public var log: [MappingLog] { layers.flatMap(\.log) }
        /// Mean clip-search error before and after, over every clipped linear.
        public var clipError: (before: Double, after: Double) {
            let n = Double(max(layers.reduce(0) { $0 + $1.clipCount }, 1))
            return (layers.reduce(0) { $0 + $1.clipBefore } / n, layers.reduce(0) { $0 + $1.clipAfter } / n)
        }
    }

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case mismatch(String)
        case unsupported(String)
        public var description: String {
            switch self {
            case .mismatch(let r): "calibration does not fit the model: \(r)"
            case .unsupported(let r): r
            }
        }
    }

    public func run() throws -> Result {
        try checkSupported()
        let c = model.config
        let t0 = monotonicSeconds()
        var weights: [String: [Float]] = [:]
        var layers: [LayerResult] = []
        progress.begin("awq", total: c.layers, unit: .items)
        for l in 0..<c.layers {
            let r = try searchLayer(l)
            for (k, v) in r.weights { weights[k] = v }
            layers.append(r)
            progress.update(l + 1)
        }
        progress.finish()
        return Result(layers: layers, weights: weights, seconds: monotonicSeconds() - t0)
    }

    /// One layer's outcome: its transformed tensors, search log and clip errors.
    public struct LayerResult: Sendable {
        public var layer: Int
        public var weights: [(String, [Float])]
        public var log: [MappingLog]
        public var clipBefore: Double, clipAfter: Double, clipCount: Int
    }

    /// Searches, folds and clips one decoder layer (layers are independent given the calibration sample).
    public func searchLayer(_ l: Int) throws -> LayerResult {
        try checkSupported()
        BLAS.useSingleThreadedKernels()
        var layer = try LayerSearch(awq: self, layer: l)
        try layer.run()
        return LayerResult(layer: l, weights: layer.transformedWeights(), log: layer.log, clipBefore: layer.clipBefore,
                           clipAfter: layer.clipAfter, clipCount: layer.clipCount)
    }

    func checkSupported() throws {
        let c = model.config
        guard calibration.layers.count == c.layers else {
            throw Failure.mismatch("it has \(calibration.layers.count) layers, the model \(c.layers)")
        }
        if c.latentAttention != nil || c.sharedExperts > 0 {
            // DeepSeek's MLA mappings (input norm → q_a/kv_a, q_a_layernorm → q_b, kv_a_layernorm → kv_b) and
            // shared-expert balancing are not implemented yet: refuse rather than quantize half-smoothed.
            throw Failure.unsupported("AWQ for \(c.family.rawValue) (latent attention / shared experts) is not implemented; use rtn-int4 or FP8")
        }
        if c.attentionBias || c.expertBias || c.expertActivation != .swiglu {
            // Smoothing v → o and up → down would have to scale the biases of v and up, and the expert search
            // assumes SwiGLU: refuse until the mappings engine covers them.
            throw Failure.unsupported("AWQ for \(c.family.rawValue) (biased linears / clamped SwiGLU experts) is not implemented; use rtn-int4 or FP8")
        }
        if c.linearAttention != nil || c.attentionOutputGate != .none || c.normWeightOffset != 0 {
            // Qwen3-Next / Qwen3.5 mappings are declared (ModelConfig.awqMappings) but this search does not run them.
            throw Failure.unsupported("AWQ for \(c.family.rawValue) (linear attention, gated attention, zero-centred norms) is not implemented; use rtn-int4 or FP8")
        }
    }

    /// `Q(w)` dequantized, in the weight's storage precision.
    func fakeQuantize(_ w: [Float], rows: Int, columns: Int, precision: ComputePrecision) -> [Float] {
        w.withUnsafeBufferPointer { quantizer.quantize($0, rows: rows, columns: columns, precision: precision).dequantized() }
    }
}

/// The search state of one decoder layer.
struct LayerSearch {
    let awq: AWQ
    let l: Int
    let cal: Calibration.Layer
    let original: LayerWeights
    var w: LayerWeights
    let batch: SequenceBatch
    let sample: [Float]
    let precision: ComputePrecision
    var log: [AWQ.MappingLog] = []
    var clipBefore = 0.0, clipAfter = 0.0, clipCount = 0
    var m: ReferenceModel { awq.model }

    init(awq: AWQ, layer: Int) throws {
        self.awq = awq
        l = layer
        cal = awq.calibration.layers[layer]
        original = try LayerWeights(model: awq.model, layer: layer)
        w = original
        batch = SequenceBatch(lengths: awq.calibration.sampleLengths, model: awq.model)
        let h = awq.model.config.hiddenSize
        sample = try awq.calibration.sample(layer: layer)
        guard sample.count == batch.rows * h else {
            throw AWQ.Failure.mismatch("layer \(layer)'s sample has \(sample.count) values, expected \(batch.rows) × \(h)")
        }
        precision = ComputePrecision(dtype: awq.model.source.info(original.names.q)?.dtype ?? .f32)
    }

    func fq(_ x: [Float], _ rows: Int, _ cols: Int) -> [Float] { awq.fakeQuantize(x, rows: rows, columns: cols, precision: precision) }

    func stats(_ site: LinearSite) throws -> ActivationStats {
        guard let s = cal.sites[site] else { throw AWQ.Failure.mismatch("layer \(l) has no statistics for \(site)") }
        return s
    }

    /// Grid search: identity, then ratios i/(grid−1). `evaluate(s)` returns the block output with the balance
    /// weights fake-quantized under scale `s`.
    func search(_ mapping: String, expert: Int? = nil, tokens: Int, xMean: [Float], balance: [[Float]], columns: Int,
                reference: [Float], evaluate: ([Float]) -> [Float]) -> (scale: [Float], log: AWQ.MappingLog) {
        let wMean = awq.duoScaling ? AWQScales.weightMean(balance, columns: columns, groupSize: awq.quantizer.groupSize) : nil
        // Candidate 0 is identity (round-to-nearest), then ratios i/(grid−1). Candidates run in parallel, each on
        // one core (single-threaded sgemm inside), and the winner is picked in order: the same on any core count.
        let candidates = [[Float](repeating: 1, count: columns)] + (0..<awq.grid).map { i in
            AWQScales.candidate(ratio: awq.grid > 1 ? Float(i) / Float(awq.grid - 1) : 0, xMean: xMean, wMean: wMean)
        }
        var losses = [Double](repeating: .infinity, count: candidates.count)
        losses.withUnsafeMutableBufferPointer { out in
            let o = UncheckedSendable(out)
            parallelFor(candidates.count) { k in o.value[k] = AWQScales.mse(evaluate(candidates[k]), reference) }
        }
        var bestIndex = 0
        for k in 1..<candidates.count where losses[k] < losses[bestIndex] { bestIndex = k }
        let best = candidates[bestIndex], rtn = losses[0], ratio0 = losses.count > 1 ? losses[1] : rtn, bestLoss = losses[bestIndex]
        let bestRatio: Float? = bestIndex == 0 ? nil : (awq.grid > 1 ? Float(bestIndex - 1) / Float(awq.grid - 1) : 0)
        return (best, AWQ.MappingLog(layer: l, mapping: mapping, expert: expert, tokens: tokens, rtnLoss: rtn, ratio0Loss: ratio0,
                                     bestLoss: bestLoss, bestRatio: bestRatio))
    }

    mutating func clip(_ path: WritableKeyPath<LayerWeights, [Float]>, rows: Int, columns: Int, inputs: [Float], tokens: Int) {
        guard awq.clip, tokens > 0 else { return }
        var weight = w[keyPath: path]
        defer { w[keyPath: path] = weight }
        let e = AWQClip.apply(&weight, rows: rows, columns: columns, groupSize: awq.quantizer.groupSize, inputs: inputs, tokens: tokens) {
            fq($0, $1, $2)
        }
        clipBefore += e.before; clipAfter += e.after; clipCount += 1
    }

    mutating func run() throws {
        let c = m.config, h = c.hiddenSize, d = c.headDim, H = c.heads, KV = c.kvHeads, n = batch.rows
        let x = sample
        let mappings = c.awqMappings(layer: l)

        // input_layernorm → q, k, v (loss at the attention output)
        let hN = Kernels.rmsNorm(x, original.inputNorm, rows: n, eps: c.rmsNormEps)
        var heads: [Float] = []
        let attn = m.attentionBlock(hN, original, batch, preOutput: { heads = $0 })
        let (sA, logA) = search(mappings[0].label, tokens: n, xMean: try stats(.attention).meanAbs, balance: [original.q, original.k, original.v],
                                columns: h, reference: attn) { s in
            var t = original
            t.q = fq(scaled(original.q, s), H * d, h).dividingColumns(s)
            t.k = fq(scaled(original.k, s), KV * d, h).dividingColumns(s)
            t.v = fq(scaled(original.v, s), KV * d, h).dividingColumns(s)
            return m.attentionBlock(hN, t, batch)
        }
        log.append(logA)
        for k in w.inputNorm.indices { w.inputNorm[k] /= sA[k] }
        AWQScales.scaleColumns(&w.q, by: sA); AWQScales.scaleColumns(&w.k, by: sA); AWQScales.scaleColumns(&w.v, by: sA)

        // v → o, only without GQA (shapes equal)
        var sO = [Float](repeating: 1, count: H * d)
        if KV * d == h && H * d == h {
            let ref = Kernels.linear(heads, original.o, rows: n, inputs: H * d, outputs: h)
            let (s, lg) = search(mappings[1].label, tokens: n, xMean: try stats(.output).meanAbs, balance: [original.o], columns: H * d,
                                 reference: ref) { s in
                Kernels.linear(heads, fq(scaled(original.o, s), h, H * d).dividingColumns(s), rows: n, inputs: H * d, outputs: h)
            }
            sO = s
            log.append(lg)
            AWQScales.divideRows(&w.v, by: s); AWQScales.scaleColumns(&w.o, by: s)
        } else {
            log.append(.init(layer: l, mapping: mappings[1].label, tokens: n, rtnLoss: 0, ratio0Loss: 0, bestLoss: 0, bestRatio: nil,
                             skipped: "v_proj \(KV * d)×\(h) and o_proj \(h)×\(H * d) differ (grouped-query attention)"))
        }
        clip(\.v, rows: KV * d, columns: h, inputs: AWQScales.divideColumns(hN, by: sA), tokens: n)
        clip(\.o, rows: h, columns: H * d, inputs: AWQScales.divideColumns(heads, by: sO), tokens: n)

        // post_attention_layernorm → gate, up (dense) or router + every expert's gate, up (MoE)
        var x1 = x
        for k in x1.indices { x1[k] += attn[k] }
        let h2 = Kernels.rmsNorm(x1, original.postNorm, rows: n, eps: c.rmsNormEps)
        if original.experts.isEmpty {
            try denseMLP(h2, label: mappings[2].label, downLabel: mappings[3].label)
        } else {
            try moe(h2, label: mappings[2].label, downLabel: mappings[3].label)
        }
    }

    mutating func denseMLP(_ h2: [Float], label: String, downLabel: String) throws {
        let c = m.config, h = c.hiddenSize, I = c.intermediateSize, n = batch.rows
        let ref = m.mlpBlock(h2, gate: original.gate, up: original.up, down: original.down, rows: n)
        let (s, lg) = search(label, tokens: n, xMean: try stats(.mlp).meanAbs, balance: [original.gate, original.up], columns: h, reference: ref) { s in
            m.mlpBlock(h2, gate: fq(scaled(original.gate, s), I, h).dividingColumns(s), up: fq(scaled(original.up, s), I, h).dividingColumns(s),
                       down: original.down, rows: n)
        }
        log.append(lg)
        for k in w.postNorm.indices { w.postNorm[k] /= s[k] }
        AWQScales.scaleColumns(&w.gate, by: s); AWQScales.scaleColumns(&w.up, by: s)
        let act = Kernels.swigluActivation(h2, gate: original.gate, up: original.up, rows: n, hidden: h, inner: I)
        let sD = try searchDown(act, rows: n, down: original.down, xMean: try stats(.down).meanAbs, label: downLabel, expert: nil)
        AWQScales.divideRows(&w.up, by: sD); AWQScales.scaleColumns(&w.down, by: sD)
        let hS = AWQScales.divideColumns(h2, by: s)
        clip(\.gate, rows: I, columns: h, inputs: hS, tokens: n)
        clip(\.up, rows: I, columns: h, inputs: hS, tokens: n)
        clip(\.down, rows: h, columns: I, inputs: AWQScales.divideColumns(act, by: sD), tokens: n)
    }

    /// up → down on the down_proj output.
    mutating func searchDown(_ act: [Float], rows n: Int, down: [Float], xMean: [Float], label: String, expert: Int?) throws -> [Float] {
        let h = m.config.hiddenSize, I = act.count / max(n, 1)
        let ref = Kernels.linear(act, down, rows: n, inputs: I, outputs: h)
        let (s, lg) = search(label, expert: expert, tokens: n, xMean: xMean, balance: [down], columns: I, reference: ref) { s in
            Kernels.linear(act, fq(scaled(down, s), h, I).dividingColumns(s), rows: n, inputs: I, outputs: h)
        }
        log.append(lg)
        return s
    }

    mutating func moe(_ h2: [Float], label: String, downLabel: String) throws {
        let c = m.config, h = c.hiddenSize, I = c.expertIntermediateSize, n = batch.rows, E = original.experts.count
        let routing = m.route(h2, router: original.router, bias: original.routerBias, rows: n)
        let ref = m.moeBlock(h2, original, routing: routing)
        let balance = original.experts.flatMap { [$0.gate, $0.up] }
        let (s, lg) = search(label, tokens: n, xMean: try stats(.mlp).meanAbs, balance: balance, columns: h, reference: ref) { s in
            var experts = original.experts
            for e in experts.indices {
                experts[e].gate = fq(scaled(original.experts[e].gate, s), I, h).dividingColumns(s)
                experts[e].up = fq(scaled(original.experts[e].up, s), I, h).dividingColumns(s)
            }
            return m.moeBlock(h2, original, routing: routing, experts: experts)
        }
        log.append(lg)
        // Fold into the norm; the router's columns take the scale so it sees the same logits.
        for k in w.postNorm.indices { w.postNorm[k] /= s[k] }
        AWQScales.scaleColumns(&w.router, by: s)
        for e in 0..<E { AWQScales.scaleColumns(&w.experts[e].gate, by: s); AWQScales.scaleColumns(&w.experts[e].up, by: s) }
        let hS = AWQScales.divideColumns(h2, by: s)
        for e in 0..<E {
            let info = e < cal.experts.count ? cal.experts[e] : Calibration.Expert(routedTokens: 0, statistics: .none, starved: true)
            let routed = routing.tokens(of: e)
            let rows: [Int]
            switch info.statistics {
            case .none:
                log.append(.init(layer: l, mapping: downLabel, expert: e, tokens: info.routedTokens, rtnLoss: 0, ratio0Loss: 0, bestLoss: 0,
                                 bestRatio: nil, skipped: "starved (\(info.routedTokens) routed tokens): round-to-nearest"))
                continue
            case .allTokens: rows = Array(0..<n)
            case .routed: rows = routed
            }
            if rows.isEmpty {
                log.append(.init(layer: l, mapping: downLabel, expert: e, tokens: 0, rtnLoss: 0, ratio0Loss: 0, bestLoss: 0, bestRatio: nil,
                                 skipped: "no routed tokens in the calibration sample: round-to-nearest"))
                continue
            }
            let xe = Kernels.gatherRows(h2, rows, width: h)
            let ex = original.experts[e]
            let act = Kernels.swigluActivation(xe, gate: ex.gate, up: ex.up, rows: rows.count, hidden: h, inner: I)
            let sD = try searchDown(act, rows: rows.count, down: ex.down, xMean: try stats(.expertDown(e)).meanAbs, label: downLabel, expert: e)
            AWQScales.divideRows(&w.experts[e].up, by: sD); AWQScales.scaleColumns(&w.experts[e].down, by: sD)
            let xs = Kernels.gatherRows(hS, rows, width: h)
            clip(\.experts[e].gate, rows: I, columns: h, inputs: xs, tokens: rows.count)
            clip(\.experts[e].up, rows: I, columns: h, inputs: xs, tokens: rows.count)
            clip(\.experts[e].down, rows: h, columns: I, inputs: AWQScales.divideColumns(act, by: sD), tokens: rows.count)
        }
    }

    func scaled(_ x: [Float], _ s: [Float]) -> [Float] {
        var y = x
        AWQScales.scaleColumns(&y, by: s)
        return y
    }

    /// The transformed tensors by checkpoint name (fused expert tensors rebuilt whole).
    func transformedWeights() -> [(String, [Float])] {
        let n = w.names
        var out: [(String, [Float])] = [(n.inputNorm, w.inputNorm), (n.postNorm, w.postNorm), (n.q, w.q), (n.k, w.k), (n.v, w.v), (n.o, w.o)]
        if let g = n.gate, let u = n.up, let d = n.down { out += [(g, w.gate), (u, w.up), (d, w.down)] }
        if let r = n.router { out.append((r, w.router)) }
        var fused: (gu: String, dn: String)?, transposed: (gu: String, dn: String)?
        for (e, x) in n.experts.enumerated() {
            switch x {
            case let .separate(g, u, d): out += [(g, w.experts[e].gate), (u, w.experts[e].up), (d, w.experts[e].down)]
            case let .fused(gu, dn, _): fused = (gu, dn)
            case let .fusedTransposed(gu, dn, _): transposed = (gu, dn)
            }
        }
        if let f = fused {
            out.append((f.gu, w.experts.flatMap { $0.gate + $0.up }))
            out.append((f.dn, w.experts.flatMap(\.down)))
        }
        if let f = transposed {
            let t = LayerWeights.fusedTransposedTensors(w.experts, hidden: m.config.hiddenSize, inner: m.config.expertIntermediateSize)
            out += [(f.gu, t.gateUp), (f.dn, t.down)]
        }
        return out
    }
}

extension Array where Element == Float {
    /// `self[·, c] / s[c]` for a row-major matrix with `s.count` columns.
    func dividingColumns(_ s: [Float]) -> [Float] { AWQScales.divideColumns(self, by: s) }
}
