import Foundation
import IngotCore
import IngotFormats
import IngotModel

/// AWQ applied layer by layer as a checkpoint is read: asking for a tensor of layer `l` runs `l`'s search (once;
/// the latest layer's transform is cached) and applies the transform to that tensor alone, so quantizing holds one
/// layer's calibration sample and search state and one tensor's weights, never the layer's experts or the model.
/// Writers read tensors in storage order, which groups each layer's tensors.
public final class StreamingAWQSource: TensorSource, @unchecked Sendable {
    public let base: TensorSource
    public let awq: AWQ
    public let tensors: [TensorInfo]
    let layerOf: [String: Int]
    let names: [LayerNames]
    /// The propagation's lock when AWQ runs on propagated inputs (advancing a layer reads this source).
    let lock: NSRecursiveLock
    var cache: AWQ.LayerResult?
    var results: [Int: AWQ.LayerResult] = [:]
    let started = monotonicSeconds()
    /// Keep every layer's transform (for writers that do not read layer by layer, e.g. safetensors exports, which
    /// order tensors by dtype): no layer is searched twice; the transforms are small.
    let retainAll: Bool

    /// With `awq.propagation`, every layer's transform is kept (the propagation runs layers in order, the writer
    /// may read them in another) and the propagation reads its layers' weights from this source.
    public init(base: TensorSource, awq: AWQ, retainAllLayers: Bool = false) throws {
        retainAll = retainAllLayers || awq.propagation != nil
        lock = awq.propagation?.lock ?? NSRecursiveLock()
        try awq.checkSupported()
        self.base = base
        self.awq = awq
        let c = awq.model.config
        var layerOf: [String: Int] = [:]
        var names: [LayerNames] = []
        for l in 0..<c.layers {
            let n = LayerNames(config: c, layer: l) { base.info($0) != nil }
            try AWQ.checkAddressable(n)
            names.append(n)
            let recipe = c.awqRecipe(layer: l)
            let modules = Set(recipe.linears + recipe.mappings.flatMap { [$0.smooth] + $0.balance + $0.scaledOnly })
            let smoothing = Set(recipe.mappings.map(\.smooth))
            for module in modules {
                let experts: [Int?] = AWQMapping.isExpertTemplate(module) ? Array(0..<n.experts.count) : [nil]
                for e in experts {
                    if let r = n.tensor(module: module, expert: e, config: c) { layerOf[r.name] = l }
                    // a smoothing linear's bias is divided with its rows
                    if smoothing.contains(module), let b = n.bias(module: module, expert: e, config: c).ref { layerOf[b.name] = l }
                }
            }
        }
        self.layerOf = layerOf
        self.names = names
        tensors = base.tensors.map { t in
            guard layerOf[t.name] != nil else { return t }
            let dt = TransformedSource.outputType(t.dtype, keepF32: false)
            return TensorInfo(name: t.name, dtype: dt, shape: t.shape, byteCount: (ShapeMath.elementCount(t.shape) ?? 0) * (dt.byteWidth ?? 4),
                              file: t.file, fileOffset: nil)
        }
        awq.propagation?.weights = self
    }

    public var path: String { base.path }
    public var metadata: [(key: String, value: String)] { base.metadata }

    public func tensor(named name: String) throws -> TensorView {
        try transformed(name, clip: true) ?? base.tensor(named: name)
    }

    /// A tensor with AWQ's scales folded in but not its clip, in f32 with the output's rounding (GPTQ after AWQ
    /// rounds these, on the grid of the clipped weights); nil for a tensor AWQ does not transform.
    public func unclipped(named name: String) throws -> [Float]? {
        try transformed(name, clip: false)?.floats()
    }

    /// Layer tensor `name` as AWQ's transform writes it (clipped or not), in the output dtype; nil outside the layers.
    private func transformed(_ name: String, clip: Bool) throws -> TensorView? {
        guard let l = layerOf[name], let info = tensors.first(where: { $0.name == name }) else { return nil }
        let result = try layerResult(l)
        var values = try base.tensor(named: name).floats()
        result.transform.apply(tensor: name, values: &values, names: names[l], config: awq.model.config, columns: info.shape.last ?? 1, clip: clip)
        let buffer = TensorBuffer(uninitializedByteCount: info.byteCount)
        try values.withUnsafeBytes { src in
            try FloatCodecs.convert(src, from: .f32, to: info.dtype, into: buffer.storage, count: values.count)
        }
        return buffer.view(name: name, dtype: info.dtype, shape: info.shape, byteCount: info.byteCount)
    }

    /// Layer `l`'s search, run on first use (the latest layer's transform is cached; every layer's with
    /// `retainAllLayers`).
    public func layerResult(_ l: Int) throws -> AWQ.LayerResult {
        try awq.propagation?.advance(to: l)
        lock.lock()
        defer { lock.unlock() }
        if let r = cache, r.layer == l { return r }
        if let r = results[l], retainAll { return r }
        let r = try awq.searchLayer(l)
        // The search's buffers are free now; hand their pages back before the next layer's (HeapPolicy).
        HeapTrimmer.trim()
        cache = r
        var logged = r
        if !retainAll { logged.transform = LayerTransform() }  // the log is kept for the report; the transform only in the cache
        results[l] = logged
        return r
    }

    /// The searches run so far, in layer order (complete once every tensor has been read).
    public var result: AWQ.Result {
        lock.lock()
        defer { lock.unlock() }
        return AWQ.Result(layers: results.keys.sorted().map { results[$0]! }, seconds: monotonicSeconds() - started)
    }
}
