import IngotCore
import IngotForward
import IngotModel

/// What AWQ decided for one decoder layer, small enough to keep while the weights stream: per norm a divisor,
/// per linear a column scale, a row divisor and clip steps. Applied to the checkpoint's own tensors when they are
/// read (`apply`), so no transformed weight is held longer than the writer needs it.
public struct LayerTransform: Sendable {
    /// A module, per expert when `expert` is set; `expert == nil` on an expert template (`mlp.experts.*.…`) means
    /// every expert.
    public struct Key: Hashable, Sendable {
        public var module: String
        public var expert: Int?
        public init(_ module: String, _ expert: Int? = nil) {
            self.module = module
            self.expert = expert
        }
    }

    public struct Linear: Sendable {
        /// `W[:, c] *= columnScale[c]` (balance layer of a mapping).
        public var columnScale: [Float]?
        /// `W[r, :] /= rowDivisor[r − (rows − count)]` on the last `count` rows (smoothing linear of a mapping).
        public var rowDivisor: [Float]?
        /// Clip step per (row, input group): the row-group is clamped to `±absmax·(1 − step/AWQClip.grid)`.
        public var clip: [UInt8]?
        public var clipGroupSize = 0
    }

    public var norms: [String: (divisor: [Float], offset: Float)] = [:]
    public var linears: [Key: Linear] = [:]

    public init() {}

    mutating func update(_ key: Key, _ body: (inout Linear) -> Void) {
        var t = linears[key] ?? Linear()
        body(&t)
        linears[key] = t
    }

    /// The linear's weights `[rows, columns]` transformed: scaled (template's and the expert's own), then clipped
    /// (unless `clip` is false).
    public func apply(module: String, expert: Int?, to w: inout [Float], columns: Int, clip: Bool = true) {
        let keys = expert == nil ? [Key(module)] : [Key(module), Key(module, expert)]
        let rows = w.count / max(columns, 1)
        for k in keys {
            guard let t = linears[k] else { continue }
            if let s = t.columnScale { AWQScales.scaleColumns(&w, by: s) }
            if let d = t.rowDivisor {
                let first = rows - d.count
                for r in 0..<d.count { for c in 0..<columns { w[(first + r) * columns + c] /= d[r] } }
            }
        }
        for k in keys where clip {
            guard let t = linears[k], let steps = t.clip else { continue }
            AWQClip.clamp(&w, rows: rows, columns: columns, groupSize: t.clipGroupSize, steps: steps)
        }
    }

    /// A norm weight transformed: `(w + offset) / s − offset`.
    public func apply(norm module: String, to w: inout [Float]) {
        guard let (s, offset) = norms[module] else { return }
        for i in w.indices { w[i] = (w[i] + offset) / s[i] - offset }
    }

    /// A smoothing linear's bias `[rows]` transformed: its last `rowDivisor.count` entries divided with the rows.
    public func apply(biasOf module: String, expert: Int?, to b: inout [Float]) {
        let keys = expert == nil ? [Key(module)] : [Key(module), Key(module, expert)]
        for k in keys {
            guard let d = linears[k]?.rowDivisor else { continue }
            let first = b.count - d.count
            for r in 0..<d.count { b[first + r] /= d[r] }
        }
    }

    /// Every tensor of the layer this transform changes, with each module (and expert) stored in it:
    /// `(tensor ref, module, expert, bias)`; `bias` marks a smoothing linear's bias (divided with its rows).
    func touched(names: LayerNames, config c: ModelConfig) -> [(ref: TensorRef, module: String, expert: Int?, bias: Bool)] {
        var out: [(TensorRef, String, Int?, Bool)] = []
        for m in norms.keys { if let r = names.tensor(module: m, config: c) { out.append((r, m, nil, false)) } }
        var seen = Set<Key>()
        for (k, t) in linears {
            let expanded: [Key] = AWQMapping.isExpertTemplate(k.module) && k.expert == nil
                ? (0..<names.experts.count).map { Key(k.module, $0) } : [k]
            for x in expanded where seen.insert(x).inserted {
                if let r = names.tensor(module: x.module, expert: x.expert, config: c) { out.append((r, x.module, x.expert, false)) }
            }
            if t.rowDivisor != nil {
                for x in expanded {
                    if let r = names.bias(module: x.module, expert: x.expert, config: c).ref { out.append((r, x.module, x.expert, true)) }
                }
            }
        }
        // A bias reached from both the template and an expert's own key is listed once.
        var unique = Set<TensorRef>()
        return out.filter { !$0.3 || unique.insert($0.0).inserted }
    }

    /// Applies the transform to tensor `name` of the layer (`values` in f32, the whole tensor), slice by slice.
    public func apply(tensor name: String, values: inout [Float], names: LayerNames, config c: ModelConfig, columns: Int, clip: Bool = true) {
        for (ref, module, expert, bias) in touched(names: names, config: c) where ref.name == name {
            if norms[module] != nil && !bias { apply(norm: module, to: &values); continue }
            guard let range = ref.slice else {
                if bias { apply(biasOf: module, expert: expert, to: &values) } else { apply(module: module, expert: expert, to: &values, columns: columns, clip: clip) }
                continue
            }
            var part = Array(values[range])
            if bias { apply(biasOf: module, expert: expert, to: &part) } else { apply(module: module, expert: expert, to: &part, columns: columns, clip: clip) }
            values.replaceSubrange(range, with: part)
        }
    }

    /// Names of the tensors this transform changes.
    public func tensorNames(names: LayerNames, config c: ModelConfig) -> Set<String> {
        Set(touched(names: names, config: c).map(\.ref.name))
    }
}
