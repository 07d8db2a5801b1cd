import Foundation
import IngotCalibration
import IngotCore
import IngotFormats
import IngotForward
import IngotModel

/// A source that rounds some of its linears itself: `QuantizeJob` and `ExportJob` store the codes it gives (with
/// the scales and zero points of the job's own quantizer) instead of rounding those weights to nearest.
public protocol RoundedWeightSource: TensorSource {
    /// `values` (the weight `ref`, `[rows, columns]`, as this source gives it; `ref.slice` for one expert of a fused
    /// tensor) rounded with `quantizer`'s group parameters, or nil when this source leaves the weight to the job.
    /// `settings` are the plan's for the weight.
    func rounded(_ values: [Float], of ref: TensorRef, rows: Int, columns: Int, settings: QuantizationPlan.Settings,
                 quantizer: IntQuantizer, precision: ComputePrecision) throws -> QuantizedWeight?
}

/// GPTQ rounding of every linear the family's recipe lists (`ModelConfig.awqRecipe(layer:).linears`), over `base`
/// (the checkpoint, or AWQ's transformed weights). Each linear's Hessian `XᵀX` is built from the inputs it sees on
/// the calibration sample of its layer (`LayerCapture`): a routed expert's from its routed tokens only, and a
/// starved expert's as the calibration says (all tokens, or round-to-nearest, `Calibration.Expert.statistics`).
/// After AWQ a linear's inputs are the captured ones divided by its column scale, which is what the transformed
/// layer computes. Layers are captured once, in the order the writer reads them; one expert's inputs are held at a
/// time.
public final class GPTQSource: RoundedWeightSource, @unchecked Sendable {
    public let base: TensorSource
    public let gptq: GPTQ
    let model: ReferenceModel
    let calibration: Calibration
    /// The scheme this source rounds; weights overridden to other schemes are left to the job.
    let scheme: QuantScheme
    let awq: StreamingAWQSource?
    /// Every rounded linear: its tensor (or slice), layer, module path and expert.
    let modules: [TensorRef: (layer: Int, module: String, expert: Int?)]
    /// Layer inputs along the quantized path (nil: the calibration sample).
    let propagation: PropagatedInputs?
    /// The propagation's lock when there is one (advancing a layer rounds it through this source).
    let lock: NSRecursiveLock
    var capture: (layer: Int, value: LayerCapture)?
    /// The current routed expert's linear inputs and token count.
    var expertInputs: (layer: Int, expert: Int, inputs: [LinearSite: [Float]], tokens: Int)?
    /// Hessians of the current layer (and expert), with the column scale their inputs were divided by.
    var hessians: [LinearSite: (divisor: [Float]?, h: [Double])] = [:]
    var entries: [Entry] = []
    /// (layer, module, expert) of every entry: a linear rounded again (the propagation rounds a layer before the
    /// writer reads it) is logged once.
    var recorded: Set<String> = []

    /// How one linear was rounded.
    public struct Entry: Sendable {
        public var layer: Int
        public var module: String
        public var expert: Int?
        /// Calibration tokens of its Hessian.
        public var tokens: Int
        /// Why it was rounded to nearest instead (starved experts); nil when GPTQ rounded it.
        public var nearest: String?
    }

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case noLinears(String)
        public var description: String {
            switch self {
            case .noLinears(let r): r
            }
        }
    }

    public init(base: TensorSource, model: ReferenceModel, calibration: Calibration, scheme: QuantScheme, gptq: GPTQ,
                awq: StreamingAWQSource? = nil, propagation: PropagatedInputs? = nil) throws {
        let c = model.config
        guard calibration.layers.count == c.layers else {
            throw AWQ.Failure.mismatch("it has \(calibration.layers.count) layers, the model \(c.layers)")
        }
        var modules: [TensorRef: (layer: Int, module: String, expert: Int?)] = [:]
        for l in 0..<c.layers {
            let recipe = c.awqRecipe(layer: l)
            guard !recipe.mappings.isEmpty, !recipe.linears.isEmpty else {
                throw Failure.noLinears("GPTQ: \(c.family.rawValue) declares no linears for layer \(l) (ModelConfig.awqRecipe); use rtn-int4 or FP8")
            }
            let names = LayerNames(config: c, layer: l) { base.info($0) != nil }
            for module in recipe.linears {
                let experts: [Int?] = AWQMapping.isExpertTemplate(module) ? Array(0..<names.experts.count) : [nil]
                for e in experts { if let r = names.tensor(module: module, expert: e, config: c) { modules[r] = (l, module, e) } }
            }
        }
        self.base = base
        self.model = model
        self.calibration = calibration
        self.scheme = scheme
        self.gptq = gptq
        self.awq = awq
        self.modules = modules
        self.propagation = propagation
        lock = propagation?.lock ?? NSRecursiveLock()
        propagation?.rounder = self
    }

    public var path: String { base.path }
    public var tensors: [TensorInfo] { base.tensors }
    public var metadata: [(key: String, value: String)] { base.metadata }
    public func tensor(named name: String) throws -> TensorView { try base.tensor(named: name) }

    /// Every linear rounded so far, in the order the writer asked for them.
    public var log: [Entry] {
        lock.lock()
        defer { lock.unlock() }
        return entries
    }

    /// One line: how many linears GPTQ rounded, and the starved experts' linears rounded to nearest, by name.
    public var summary: String {
        let all = log
        let nearest = all.filter { $0.nearest != nil }
        var line = "gptq: \(all.count - nearest.count) linears rounded with GPTQ, \(nearest.count) to nearest"
        if !nearest.isEmpty {
            var experts: [String] = []
            for e in nearest {
                let name = "layer \(e.layer) expert \(e.expert.map(String.init) ?? "-")"
                if experts.last != name { experts.append(name) }
            }
            line += " (starved experts: " + experts.joined(separator: ", ") + ")"
        }
        return line
    }

    public func rounded(_ values: [Float], of ref: TensorRef, rows: Int, columns: Int, settings: QuantizationPlan.Settings,
                        quantizer: IntQuantizer, precision: ComputePrecision) throws -> QuantizedWeight? {
        guard settings.scheme == scheme, let (l, module, e) = modules[ref] else { return nil }
        lock.lock()
        defer { lock.unlock() }
        let cap = try layer(l)
        guard let site = LinearSite(inputOf: module, expert: e) else { return nil }
        let x: [Float], tokens: Int
        if let e {
            let info = e < calibration.layers[l].experts.count ? calibration.layers[l].experts[e]
                : Calibration.Expert(routedTokens: 0, statistics: .none, starved: true)
            guard let (inputs, n) = try inputsOf(expert: e, info: info, layer: l, capture: cap), let xe = inputs[site] else {
                record(Entry(layer: l, module: module, expert: e, tokens: info.routedTokens,
                             nearest: "starved (\(info.routedTokens) routed tokens)"))
                return nil
            }
            x = xe; tokens = n
        } else {
            guard let xs = cap.inputs[site] else { return nil }
            x = xs; tokens = cap.rows
        }
        guard tokens > 0, x.count == tokens * columns else {
            throw AWQ.Failure.mismatch("layer \(l): \(module) takes \(columns) inputs, its calibration input has \(x.count / max(tokens, 1))")
        }
        let divisor = try awq.flatMap { try Self.columnScale($0.layerResult(l).transform, module: module, expert: e) }
        let h: [Double]
        if let cached = hessians[site], cached.divisor == divisor { h = cached.h } else {
            let xs = divisor.map { AWQScales.divideColumns(x, by: $0) } ?? x
            h = GPTQ.hessian(xs, tokens: tokens, columns: columns)
            hessians[site] = (divisor, h)
        }
        var grid: [Float]?, target = values
        if let awq, ref.slice == nil, let u = try awq.unclipped(named: ref.name), u.count == values.count {
            // After AWQ: the clipped weights set the grid, the scaled weights before the clip are rounded.
            grid = values
            target = u
        } else if awq == nil, gptq.clipSearch, !AWQLayerRecipe.clipSkipped(module) {
            let steps = AWQClip.search(values, rows: rows, columns: columns, groupSize: quantizer.groupSize, hessian: h, tokens: tokens,
                                       asymmetric: gptq.oneSidedClip && !quantizer.symmetric) { v, r, c in
                v.withUnsafeBufferPointer { quantizer.quantize($0, rows: r, columns: c, precision: precision).dequantized() }
            }.steps
            var clipped = values
            AWQClip.clamp(&clipped, rows: rows, columns: columns, groupSize: quantizer.groupSize ?? columns, steps: steps)
            grid = clipped
        }
        let q = try gptq.quantize(target, rows: rows, columns: columns, hessian: h, quantizer: quantizer, precision: precision, name: ref.name,
                                  gridFrom: grid)
        record(Entry(layer: l, module: module, expert: e, tokens: tokens, nearest: nil))
        return q
    }

    func record(_ e: Entry) {
        if recorded.insert("\(e.layer)/\(e.module)/\(e.expert ?? -1)").inserted { entries.append(e) }
    }

    /// Layer `l`'s capture (the previous layer's is dropped).
    func layer(_ l: Int) throws -> LayerCapture {
        if let c = capture, c.layer == l { return c.value }
        // First: reaching layer l on the quantized path rounds the layers before it through this source.
        let input = try propagation?.input(layer: l)
        capture = nil
        expertInputs = nil
        hessians = [:]
        // The previous layer's buffers are free now; hand their pages back before this layer's (HeapPolicy).
        HeapTrimmer.trim()
        let c = try LayerCapture(model: model, calibration: calibration, layer: l, recipe: model.config.awqRecipe(layer: l), input: input)
        capture = (l, c)
        return c
    }

    /// Routed expert `e`'s linear inputs and their token count, or nil when the expert is rounded to nearest
    /// (starved under the round-to-nearest policy, or no routed token in the sample).
    func inputsOf(expert e: Int, info: Calibration.Expert, layer l: Int, capture cap: LayerCapture) throws -> ([LinearSite: [Float]], Int)? {
        if let x = expertInputs, x.layer == l, x.expert == e { return (x.inputs, x.tokens) }
        guard !cap.expertInput.isEmpty, let routing = cap.routing else { return nil }
        let rows: [Int]
        switch info.statistics {
        case .none: return nil
        case .allTokens: rows = Array(0..<cap.rows)
        case .routed: rows = routing.tokens(of: e)
        }
        guard !rows.isEmpty else { return nil }
        for site in hessians.keys { if case .expert = site { hessians[site] = nil } else if case .expertDown = site { hessians[site] = nil } }
        let ex = try model.expert(e, names: cap.weights.names)
        let inputs = model.expertInputs(Kernels.gatherRows(cap.expertInput, rows, width: model.config.hiddenSize), rows: rows.count, expert: e, ex)
        expertInputs = (l, e, inputs, rows.count)
        return (inputs, rows.count)
    }

    /// The scale AWQ multiplied the linear's input columns by (the template's and the expert's own), nil if none.
    static func columnScale(_ t: LayerTransform, module: String, expert: Int?) -> [Float]? {
        let keys = expert == nil ? [LayerTransform.Key(module)] : [LayerTransform.Key(module), LayerTransform.Key(module, expert)]
        var s: [Float]?
        for k in keys {
            guard let c = t.linears[k]?.columnScale else { continue }
            s = s.map { zip($0, c).map { $0 * $1 } } ?? c
        }
        return s
    }
}
