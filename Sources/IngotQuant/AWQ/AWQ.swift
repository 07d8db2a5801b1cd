import COpenBLAS
import Foundation
import IngotCalibration
import IngotCore
import IngotFormats
import IngotForward
import IngotModel

/// Activation-aware weight quantization (AWQ), driven by the mappings each family declares
/// (`ModelConfig.awqRecipe`, `AWQMapping`); nothing here names a family. For each decoder layer, on the calibration
/// sample of its full-precision input:
/// 1. every mapping searches a scale over the grid ratios plus identity (duo scaling; loss = MSE of the inspected
///    block's or linear's output with the balance weights fake-quantized as `Q(W·s)/s`), on the original weights and
///    the sample's first `searchTokens` rows;
/// 2. the winners are recorded as a `LayerTransform` (smoothing op ÷ s, balance and scaled-only columns × s);
/// 3. the clip search picks a clamp for each group of every quantized linear but q/k, on its transformed weights
///    and the inputs it will then see, over the whole sample.
///
/// The transform is applied to the checkpoint's tensors as they are read (`StreamingAWQSource`) and quantized by
/// the plain group quantizer. Routed experts are loaded one at a time everywhere (the search at the MoE output
/// evaluates every candidate on an expert before loading the next), so memory does not grow with the experts.
/// Per-expert mappings run on the expert's own tokens; starved experts follow the calibration's policy (all-token
/// statistics, or round-to-nearest).
public struct AWQ {
    public var model: ReferenceModel
    public var calibration: Calibration
    /// The scheme's quantizer the weights will be rounded with (integer groups, MXFP4 or NVFP4).
    public var quantizer: any WeightQuantizer
    public var grid = 20
    public var duoScaling = true
    public var clip = true
    /// The clip search also clamps each end of a group on its own when the quantizer is asymmetric.
    public var oneSidedClip = true
    /// Bytes of candidate outputs held at once by a block search; more candidates than fit are evaluated in
    /// chunks (routed experts are then read once per chunk).
    public var candidateMemory = 512 << 20
    /// Rows of the sample the shared scale searches evaluate candidates on: the leading whole sequences up to this
    /// many (at least one); nil: every row. The clip search always takes every row: it scores candidates on each
    /// group's Gram matrix, built once, so more rows cost little there, and they are what it gains from (SmolLM2-135M
    /// g64, 32 × 512 tokens: held-out ppl 48.68 with 4096 rows for both, 48.42 with the searches on 4096 and the
    /// clip on all 16384, 48.41 with all for both in 5.4× the time). Per-expert searches take the expert's routed
    /// rows of the whole sample.
    public var searchTokens: Int? = AWQ.defaultSearchTokens
    public static let defaultSearchTokens = 4096
    /// `searchTokens` from a user's value (`--search-tokens`, recipe `search_tokens`): 0 means every row.
    public static func searchTokens(option n: Int) -> Int? { n == 0 ? nil : n }
    public var progress: ProgressReporter = SilentProgress()
    /// Layer inputs along the quantized path instead of the calibration sample (nil: the full-precision sample).
    public var propagation: PropagatedInputs?

    public init(model: ReferenceModel, calibration: Calibration, quantizer: any WeightQuantizer) {
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

    /// Searches every layer; `transformed` gives the resulting weights.
    public func run() throws -> Result {
        try checkSupported()
        guard propagation == nil else {
            throw Failure.unsupported("AWQ on propagated inputs runs through StreamingAWQSource (it reads each layer's transformed weights)")
        }
        let t0 = monotonicSeconds()
        var layers: [LayerResult] = []
        progress.begin("awq", total: model.config.layers, unit: .items)
        for l in 0..<model.config.layers {
            layers.append(try searchLayer(l))
            progress.update(l + 1)
        }
        progress.finish()
        return Result(layers: layers, seconds: monotonicSeconds() - t0)
    }

    /// One layer's outcome: its transform, search log and clip errors.
    public struct LayerResult: Sendable {
        public var layer: Int
        public var transform: LayerTransform
        public var log: [MappingLog]
        public var clipBefore: Double, clipAfter: Double, clipCount: Int
    }

    /// Searches and clips one decoder layer (layers are independent given the calibration sample).
    public func searchLayer(_ l: Int) throws -> LayerResult {
        try checkSupported()
        BLAS.useSingleThreadedKernels()
        var layer = try LayerSearch(awq: self, layer: l)
        try layer.run()
        return LayerResult(layer: l, transform: layer.transform, log: layer.log, clipBefore: layer.clipBefore,
                           clipAfter: layer.clipAfter, clipCount: layer.clipCount)
    }

    func checkSupported() throws {
        let c = model.config
        guard calibration.layers.count == c.layers else {
            throw Failure.mismatch("it has \(calibration.layers.count) layers, the model \(c.layers)")
        }
        for l in 0..<c.layers where c.awqRecipe(layer: l).mappings.isEmpty {
            throw Failure.unsupported("AWQ: \(c.family.rawValue) declares no AWQ mappings for layer \(l); use rtn-int4 or FP8")
        }
    }

    /// Refuses tensors the transform cannot be applied to in place: gpt-oss's fused experts interleave gate and up
    /// columns, so they are transformed through their per-expert view (`LinearizedExperts`, what quantizers read).
    static func checkAddressable(_ n: LayerNames) throws {
        if case .fusedTransposed(let gu, _, _)? = n.experts.first {
            throw Failure.unsupported("AWQ: \(gu) interleaves gate and up; read the checkpoint through LinearizedExperts (per-expert linears)")
        }
    }

    /// `Q(w)` dequantized, in the weight's storage precision.
    func fakeQuantize(_ w: [Float], rows: Int, columns: Int, precision: ComputePrecision) -> [Float] {
        w.withUnsafeBufferPointer { quantizer.quantize($0, rows: rows, columns: columns, precision: precision).dequantized() }
    }

    /// Every tensor the searches of `r` change, transformed, in f32 (for whole-model use: tests, small models).
    public func transformed(_ r: Result) throws -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for layer in r.layers { for (k, v) in try transformed(layer) { out[k] = v } }
        return out
    }

    /// The tensors of `names`' layer as `transform` changes them, in f32 (norms and linears scaled and clipped).
    public func transformed(_ r: LayerResult) throws -> [String: [Float]] {
        let names = LayerNames(config: model.config, layer: r.layer) { model.source.info($0) != nil }
        try Self.checkAddressable(names)
        var out: [String: [Float]] = [:]
        for name in r.transform.tensorNames(names: names, config: model.config) {
            guard let info = model.source.info(name) else { continue }
            var v = try model.source.tensor(named: name).floats()
            r.transform.apply(tensor: name, values: &v, names: names, config: model.config, columns: info.shape.last ?? 1)
            out[name] = v
        }
        return out
    }
}

/// The search state of one decoder layer.
struct LayerSearch {
    let awq: AWQ
    let l: Int
    let cal: Calibration.Layer
    let recipe: AWQLayerRecipe
    /// The layer's weights without routed experts (those are loaded one at a time).
    let w: LayerWeights
    let batch: SequenceBatch
    let precision: ComputePrecision
    /// Inputs of every non-expert site on the sample, and the MoE routing.
    var inputs: [LinearSite: [Float]] = [:]
    var routing: Routing?
    /// The routed experts' input over every token.
    var expertInput: [Float] = []
    /// What each module's input is divided by once folded (`module`/expert → s).
    var inputDivisor: [LayerTransform.Key: [Float]] = [:]
    var transform = LayerTransform()
    var log: [AWQ.MappingLog] = []
    var clipBefore = 0.0, clipAfter = 0.0, clipCount = 0
    var m: ReferenceModel { awq.model }
    var n: Int { batch.rows }
    /// The leading sequences the scale searches run on (`AWQ.searchTokens`), and their rows.
    let searchBatch: SequenceBatch
    var searchRows: Int { searchBatch.rows }

    init(awq: AWQ, layer: Int) throws {
        self.awq = awq
        l = layer
        cal = awq.calibration.layers[layer]
        recipe = awq.model.config.awqRecipe(layer: layer)
        let capture = try LayerCapture(model: awq.model, calibration: awq.calibration, layer: layer, recipe: recipe,
                                       input: awq.propagation?.input(layer: layer))
        w = capture.weights
        batch = capture.batch
        precision = capture.precision
        inputs = capture.inputs
        routing = capture.routing
        expertInput = capture.expertInput
        if let limit = awq.searchTokens, limit < capture.batch.rows {
            var lengths: [Int] = []
            var rows = 0
            for seg in capture.batch.segments where lengths.isEmpty || rows + seg.length <= limit {
                lengths.append(seg.length); rows += seg.length
            }
            searchBatch = SequenceBatch(lengths: lengths, model: awq.model)
        } else {
            searchBatch = capture.batch
        }
    }

    /// The first `searchRows` rows of a `[n, width]` matrix.
    func searchPrefix(_ x: [Float]) -> [Float] {
        searchRows == n ? x : Array(x[0..<(x.count / max(n, 1) * searchRows)])
    }

    func fq(_ x: [Float], _ rows: Int, _ cols: Int) -> [Float] { awq.fakeQuantize(x, rows: rows, columns: cols, precision: precision) }

    func stats(_ site: LinearSite) throws -> ActivationStats {
        guard let s = cal.sites[site] else { throw AWQ.Failure.mismatch("layer \(l) has no statistics for \(site)") }
        return s
    }

    func expert(_ e: Int) throws -> LayerWeights.Expert { try m.expert(e, names: w.names) }

    /// The original weight of a non-expert module, or of expert `e`'s.
    func weight(_ module: String, expert e: Int?, in ex: LayerWeights.Expert? = nil) -> [Float]? {
        AWQMapping.isExpertTemplate(module) ? ex?[module: module] : w[module: module]
    }

    func skip(_ mp: AWQMapping, expert: Int? = nil, tokens: Int = 0, _ why: String) -> AWQ.MappingLog {
        AWQ.MappingLog(layer: l, mapping: mp.label, expert: expert, tokens: tokens, rtnLoss: 0, ratio0Loss: 0, bestLoss: 0, bestRatio: nil,
                       skipped: why)
    }

    mutating func run() throws {
        let experts = routing == nil ? 0 : m.config.experts
        for mp in recipe.mappings where !mp.perExpert { try searchShared(mp) }
        // Routed experts, one at a time: per-expert mappings, then the clip of the expert's linears.
        for e in 0..<experts { try searchExpert(e) }
        for module in recipe.linears where !AWQMapping.isExpertTemplate(module) { try clipLinear(module, expert: nil, ex: nil, inputs: inputs) }
    }

    // MARK: mappings over the whole layer

    /// A mapping searched once for the layer (its balance may include every routed expert, then streamed).
    mutating func searchShared(_ mp: AWQMapping) throws {
        let c = m.config
        guard let site = LinearSite(inputOf: mp.inspect), let x = inputs[site] else {
            log.append(skip(mp, "the forward pass has no input for '\(mp.inspect)' in this layer")); return
        }
        let columns = x.count / max(n, 1)
        let expertBalance = mp.balance.filter(AWQMapping.isExpertTemplate)
        guard expertBalance.isEmpty || routing != nil else { log.append(skip(mp, "no routed experts in this layer")); return }
        for b in mp.balance + mp.scaledOnly where !AWQMapping.isExpertTemplate(b) {
            guard let wb = w[module: b] else { log.append(skip(mp, "no '\(b)' in this layer")); return }
            guard wb.count % columns == 0 else { log.append(skip(mp, "'\(b)' does not take the \(columns)-wide input of '\(mp.inspect)'")); return }
        }
        guard let sw = w[module: mp.smooth], let smoothWidth = outputWidth(mp.smooth, sw) else {
            log.append(skip(mp, "no smoothing op '\(mp.smooth)' in this layer")); return
        }
        guard smoothWidth == columns else {
            log.append(skip(mp, "\(mp.smooth) gives \(smoothWidth) channels, \(mp.balance.joined(separator: ",")) take \(columns)"
                            + (mp.requiresMatchingShapes ? " (grouped-query attention)" : "")))
            return
        }
        if let why = unaddressableBias(mp.smooth, expert: nil) { log.append(skip(mp, why)); return }
        let xMean = try stats(site).meanAbs
        // w_mean over every quantized balance weight, experts streamed.
        var wMean = AWQScales.WeightMean(columns: columns, groupSize: awq.quantizer.groupSize)
        if awq.duoScaling {
            for b in mp.balance where !AWQMapping.isExpertTemplate(b) { wMean.add(w[module: b]!) }
            if !expertBalance.isEmpty {
                for e in 0..<c.experts {
                    let ex = try expert(e)
                    for b in expertBalance { wMean.add(ex[module: b]!) }
                }
            }
        }
        let candidates = candidates(xMean: xMean, wMean: awq.duoScaling ? wMean.mean : nil)
        let balance = Set(mp.balance)
        let losses: [Double]
        let xs = searchPrefix(x)
        var searchRouting = routing
        if searchRows < n { searchRouting?.chosen.removeLast(n - searchRows) }
        if site == LinearSite(inputOf: mp.balance[0]), mp.balance.count == 1, mp.inspect == mp.balance[0] {
            losses = linearLosses(xs, w[module: mp.inspect]!, columns: columns, candidates: candidates, rows: searchRows)
        } else {
            // Variant 0 is full precision (the reference), variant k ≥ 1 candidate k − 1.
            let outBytes = searchRows * c.hiddenSize * 4
            let chunk = max(2, awq.candidateMemory / max(outBytes, 1))
            var outputs: [[Float]] = []
            var reference: [Float] = []
            var all: [Double] = []
            var start = 0
            let total = candidates.count + 1
            while start < total {
                let count = min(chunk, total - start)
                let base = start
                outputs = try m.evaluate(block: mp.inspect, input: xs, weights: w, batch: searchBatch, variants: count, routing: searchRouting,
                                         expert: { try self.expert($0) }) { k, module, _, weights in
                    let g = base + k
                    guard g > 0, balance.contains(module) else { return }
                    let s = candidates[g - 1]
                    weights = fq(scaled(weights, s), weights.count / s.count, s.count).dividingColumns(s)
                }
                if base == 0 { reference = outputs[0] }
                for (k, o) in outputs.enumerated() where base + k > 0 { all.append(AWQScales.mse(o, reference)) }
                outputs = []
                start += count
            }
            losses = all
        }
        let (best, lg) = pick(mp.label, expert: nil, tokens: searchRows, candidates: candidates, losses: losses)
        log.append(lg)
        fold(mp, best, expert: nil)
    }

    /// Why a smoothing linear's rows cannot be divided: its bias is stored interleaved with another linear's (the
    /// bias must be divided with the rows for the function to stay the same). nil when it can.
    func unaddressableBias(_ smooth: String, expert e: Int?) -> String? {
        guard LinearSite(inputOf: smooth, expert: e) != nil, !w.names.bias(module: smooth, expert: e, config: m.config).addressable else { return nil }
        return "\(smooth)'s bias is interleaved with another linear's in the checkpoint: its rows cannot be divided alone"
    }

    /// Output channels of a smoothing op: a norm's width, or a linear's rows.
    func outputWidth(_ module: String, _ weight: [Float]) -> Int? {
        guard let site = LinearSite(inputOf: module) else { return weight.count }  // a norm: its weight is its width
        guard let x = inputs[site], !x.isEmpty else { return nil }
        let inWidth = x.count / max(n, 1)
        return inWidth > 0 && weight.count % inWidth == 0 ? weight.count / inWidth : nil
    }

    /// Records a mapping's winning scale.
    mutating func fold(_ mp: AWQMapping, _ s: [Float], expert e: Int?) {
        if LinearSite(inputOf: mp.smooth, expert: e) == nil {
            transform.norms[mp.smooth] = (s, mp.normOffset)
        } else {
            transform.update(.init(mp.smooth, e)) { $0.rowDivisor = s }
        }
        for b in mp.balance + mp.scaledOnly {
            transform.update(.init(b, e)) { $0.columnScale = s }
            inputDivisor[.init(b, e)] = s
        }
    }

    // MARK: routed experts

    /// Expert `e`: its per-expert mappings on its own tokens, then the clip of its linears.
    mutating func searchExpert(_ e: Int) throws {
        let info = e < cal.experts.count ? cal.experts[e] : Calibration.Expert(routedTokens: 0, statistics: .none, starved: true)
        let perExpert = recipe.mappings.filter(\.perExpert)
        let rows: [Int]
        switch info.statistics {
        case .none:
            for mp in perExpert { log.append(skip(mp, expert: e, tokens: info.routedTokens, "starved (\(info.routedTokens) routed tokens): round-to-nearest")) }
            return
        case .allTokens: rows = Array(0..<n)
        case .routed: rows = routing!.tokens(of: e)
        }
        if rows.isEmpty {
            for mp in perExpert { log.append(skip(mp, expert: e, "no routed tokens in the calibration sample: round-to-nearest")) }
            return
        }
        guard !expertInput.isEmpty else { return }
        let ex = try expert(e)
        let xe = m.expertInputs(Kernels.gatherRows(expertInput, rows, width: m.config.hiddenSize), rows: rows.count, expert: e, ex)
        for mp in perExpert {
            guard let site = LinearSite(inputOf: mp.inspect, expert: e), let x = xe[site], mp.balance == [mp.inspect],
                  let wb = ex[module: mp.inspect] else {
                log.append(skip(mp, expert: e, tokens: rows.count, "per-expert mappings are searched on one balance linear, inspected itself"))
                continue
            }
            let columns = x.count / rows.count
            guard let smooth = ex[module: mp.smooth], let smoothIn = LinearSite(inputOf: mp.smooth, expert: e).flatMap({ xe[$0] }),
                  smooth.count / max(smoothIn.count / rows.count, 1) == columns else {
                log.append(skip(mp, expert: e, tokens: rows.count, "\(mp.smooth) does not give the \(columns) channels \(mp.inspect) takes"))
                continue
            }
            if let why = unaddressableBias(mp.smooth, expert: e) { log.append(skip(mp, expert: e, tokens: rows.count, why)); continue }
            let xMean = try stats(site).meanAbs
            var wMean = AWQScales.WeightMean(columns: columns, groupSize: awq.quantizer.groupSize)
            if awq.duoScaling { wMean.add(wb) }
            let candidates = candidates(xMean: xMean, wMean: awq.duoScaling ? wMean.mean : nil)
            let losses = linearLosses(x, wb, columns: columns, candidates: candidates, rows: rows.count)
            let (best, lg) = pick(mp.label, expert: e, tokens: rows.count, candidates: candidates, losses: losses)
            log.append(lg)
            fold(mp, best, expert: e)
        }
        for module in recipe.linears where AWQMapping.isExpertTemplate(module) {
            try clipLinear(module, expert: e, ex: ex, inputs: xe, rows: rows.count)
        }
    }

    // MARK: search pieces

    /// Identity, then the grid ratios i/(grid−1).
    func candidates(xMean: [Float], wMean: [Float]?) -> [[Float]] {
        [[Float](repeating: 1, count: xMean.count)] + (0..<awq.grid).map { i in
            AWQScales.candidate(ratio: awq.grid > 1 ? Float(i) / Float(awq.grid - 1) : 0, xMean: xMean, wMean: wMean)
        }
    }

    /// Losses of a single linear's output `x·Wᵀ` under each candidate (in parallel, picked in order).
    func linearLosses(_ x: [Float], _ wb: [Float], columns: Int, candidates: [[Float]], rows: Int? = nil) -> [Double] {
        let r = rows ?? n, outputs = wb.count / columns
        let reference = Kernels.linear(x, wb, rows: r, inputs: columns, outputs: outputs)
        var losses = [Double](repeating: .infinity, count: candidates.count)
        losses.withUnsafeMutableBufferPointer { out in
            let o = UncheckedSendable(out)
            parallelFor(candidates.count) { k in
                let s = candidates[k]
                let q = fq(scaled(wb, s), outputs, columns).dividingColumns(s)
                o.value[k] = AWQScales.mse(Kernels.linear(x, q, rows: r, inputs: columns, outputs: outputs), reference)
            }
        }
        return losses
    }

    /// The lowest loss (first in order on ties) and its log line.
    func pick(_ label: String, expert: Int?, tokens: Int, candidates: [[Float]], losses: [Double]) -> ([Float], AWQ.MappingLog) {
        var bestIndex = 0
        for k in 1..<losses.count where losses[k] < losses[bestIndex] { bestIndex = k }
        let rtn = losses[0], ratio0 = losses.count > 1 ? losses[1] : rtn
        let bestRatio: Float? = bestIndex == 0 ? nil : (awq.grid > 1 ? Float(bestIndex - 1) / Float(awq.grid - 1) : 0)
        return (candidates[bestIndex], AWQ.MappingLog(layer: l, mapping: label, expert: expert, tokens: tokens, rtnLoss: rtn, ratio0Loss: ratio0,
                                                      bestLoss: losses[bestIndex], bestRatio: bestRatio))
    }

    /// The clip search of one linear on its transformed weights and the inputs it sees after folding.
    mutating func clipLinear(_ module: String, expert e: Int?, ex: LayerWeights.Expert?, inputs from: [LinearSite: [Float]], rows: Int? = nil) throws {
        guard awq.clip, awq.quantizer.clipsPerGroup, !AWQLayerRecipe.clipSkipped(module), let site = LinearSite(inputOf: module, expert: e), var x = from[site],
              var wt = weight(module, expert: e, in: ex) else { return }
        let r = rows ?? n
        guard r > 0 else { return }
        let columns = x.count / r
        if let d = inputDivisor[.init(module, e)] ?? inputDivisor[.init(module)] { x = AWQScales.divideColumns(x, by: d) }
        transform.apply(module: module, expert: e, to: &wt, columns: columns)
        let g = awq.quantizer.groupSize ?? columns
        let result = AWQClip.search(wt, rows: wt.count / columns, columns: columns, groupSize: g, inputs: x, tokens: r,
                                    asymmetric: awq.oneSidedClip && awq.quantizer.clipsAsymmetric) { fq($0, $1, $2) }
        transform.update(.init(module, e)) { $0.clip = result.steps; $0.clipGroupSize = g }
        clipBefore += result.before; clipAfter += result.after; clipCount += 1
    }

    func scaled(_ x: [Float], _ s: [Float]) -> [Float] {
        var y = x
        AWQScales.scaleColumns(&y, by: s)
        return y
    }
}

extension Array where Element == Float {
    /// `self[·, c] / s[c]` for a row-major matrix with `s.count` columns.
    func dividingColumns(_ s: [Float]) -> [Float] { AWQScales.divideColumns(self, by: s) }
}
