import Foundation
import IngotCore
import IngotFormats
import IngotModel

/// AWQ applied layer by layer as a checkpoint is read: asking for a tensor of layer `l` runs `l`'s search (once;
/// the latest layer is cached), so quantizing holds one layer's weights and calibration sample, never the model.
/// Writers read tensors in storage order, which groups each layer's tensors.
public final class StreamingAWQSource: TensorSource, @unchecked Sendable {
    public let base: TensorSource
    public let awq: AWQ
    public let tensors: [TensorInfo]
    let layerOf: [String: Int]
    let lock = NSLock()
    var cache: (layer: Int, weights: [String: [Float]])?
    var results: [Int: AWQ.LayerResult] = [:]
    let started = monotonicSeconds()
    /// Keep every layer's weights (for writers that do not read layer by layer, e.g. safetensors exports, which
    /// order tensors by dtype): memory is then the transformed model, but no layer is searched twice.
    let retainAll: Bool
    var retained: [String: [Float]] = [:]

    public init(base: TensorSource, awq: AWQ, retainAllLayers: Bool = false) throws {
        retainAll = retainAllLayers
        try awq.checkSupported()
        self.base = base
        self.awq = awq
        let c = awq.model.config
        var layerOf: [String: Int] = [:]
        for l in 0..<c.layers {
            let n = LayerNames(config: c, layer: l) { base.info($0) != nil }
            var names = [n.inputNorm, n.postNorm, n.q, n.k, n.v, n.o] + [n.gate, n.up, n.down, n.router].compactMap { $0 }
            for e in n.experts {
                switch e {
                case let .separate(g, u, d): names += [g, u, d]
                case let .fused(gu, d, _), let .fusedTransposed(gu, d, _): names += [gu, d]
                }
            }
            for name in names where !name.isEmpty { layerOf[name] = l }
        }
        self.layerOf = layerOf
        tensors = base.tensors.map { t in
            guard layerOf[t.name] != nil else { return t }
            let dt = TransformedSource.outputType(t.dtype, keepF32: false)
            return TensorInfo(name: t.name, dtype: dt, shape: t.shape, byteCount: (ShapeMath.elementCount(t.shape) ?? 0) * (dt.byteWidth ?? 4),
                              file: t.file, fileOffset: nil)
        }
    }

    public var path: String { base.path }
    public var metadata: [(key: String, value: String)] { base.metadata }

    public func tensor(named name: String) throws -> TensorView {
        guard let l = layerOf[name], let info = tensors.first(where: { $0.name == name }) else { return try base.tensor(named: name) }
        lock.lock()
        defer { lock.unlock() }
        if retainAll, results[l] != nil {
            // already searched; its weights are retained
        } else if cache?.layer != l {
            var r = try awq.searchLayer(l)
            cache = (l, Dictionary(r.weights, uniquingKeysWith: { a, _ in a }))
            if retainAll { for (k, v) in r.weights { retained[k] = v } }
            r.weights = []  // the log is kept for the report; the weights only in the one-layer cache
            results[l] = r
        }
        guard let values = retainAll ? retained[name] : cache!.weights[name] else { return try base.tensor(named: name) }
        let buffer = TensorBuffer(uninitializedByteCount: info.byteCount)
        try values.withUnsafeBytes { src in
            try FloatCodecs.convert(src, from: .f32, to: info.dtype, into: buffer.storage, count: values.count)
        }
        return buffer.view(name: name, dtype: info.dtype, shape: info.shape, byteCount: info.byteCount)
    }

    /// The searches run so far, in layer order (complete once every tensor has been read).
    public var result: AWQ.Result {
        lock.lock()
        defer { lock.unlock() }
        return AWQ.Result(layers: results.keys.sorted().map { results[$0]! }, weights: [:], seconds: monotonicSeconds() - started)
    }
}
