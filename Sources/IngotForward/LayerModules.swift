import Foundation
import IngotCore
import IngotModel

/// A decoder layer's modules by path (`self_attn.q_proj`, `mlp.experts.*.up_proj`, `self_attn`, `mlp`; see
/// `AWQMapping`): where each one's input is observed, its weights in a `LayerWeights`, and blocks evaluated under
/// weight variants. This is what lets searches (AWQ, GPTQ) run any family's declared mappings without naming it.
extension LinearSite {
    /// The input site of `module`: a linear's input, or a block's (`self_attn`, `mlp`). Expert paths need `expert`.
    /// nil for a path this forward pass does not compute.
    public init?(inputOf module: String, expert: Int? = nil) {
        switch module {
        case "self_attn", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.q_a_proj", "self_attn.kv_a_proj_with_mqa",
             "self_attn.gate_proj":
            self = .attention
        case "self_attn.o_proj": self = .output
        case "self_attn.q_b_proj": self = .qLatent
        case "self_attn.kv_b_proj": self = .kvLatent
        case "mlp", "mlp.gate_proj", "mlp.up_proj", "mlp.gate", "mlp.router", "mlp.shared_experts.gate_proj", "mlp.shared_experts.up_proj",
             "mlp.shared_expert.gate_proj", "mlp.shared_expert.up_proj", "mlp.shared_expert_gate": self = .mlp
        case "mlp.down_proj": self = .down
        case "mlp.shared_experts.down_proj", "mlp.shared_expert.down_proj": self = .sharedDown
        case "linear_attn", "linear_attn.in_proj_qkvz", "linear_attn.in_proj_ba", "linear_attn.in_proj_qkv", "linear_attn.in_proj_z",
             "linear_attn.in_proj_b", "linear_attn.in_proj_a": self = .attention
        case "linear_attn.out_proj": self = .output
        case "mlp.experts": self = .moe
        case "per_layer_input_gate": self = .perLayerGate
        case "per_layer_projection": self = .perLayerProjection
        case "mlp.experts.*.gate_proj", "mlp.experts.*.up_proj":
            guard let expert else { return nil }
            self = .expert(expert)
        case "mlp.experts.*.down_proj":
            guard let expert else { return nil }
            self = .expertDown(expert)
        default: return nil
        }
    }
}

extension LayerWeights {
    /// The f32 weight of a non-expert module (linear or norm) by path; nil when the layer has none.
    public subscript(module m: String) -> [Float]? {
        get {
            guard let p = Self.keyPath(m, self) else { return nil }
            return self[keyPath: p]
        }
        set {
            guard let p = Self.keyPath(m, self), let v = newValue else { return }
            self[keyPath: p] = v
        }
    }

    static func keyPath(_ m: String, _ w: LayerWeights) -> WritableKeyPath<LayerWeights, [Float]>? {
        let latent = w.latent != nil, shared = w.shared != nil, linear = w.linearAttention != nil, sandwich = w.attentionOutputNorm != nil
        let p: WritableKeyPath<LayerWeights, [Float]>? = switch m {
        case "input_layernorm": \.inputNorm
        // with sandwich norms the MLP's input norm is pre_feedforward_layernorm
        case "post_attention_layernorm": sandwich ? \.attentionOutputNorm! : \.postNorm
        case "pre_feedforward_layernorm" where sandwich: \.postNorm
        case "self_attn.gate_proj" where w.attentionGate != nil: \.attentionGate!
        case "self_attn.q_proj": latent ? \.latent!.q : \.q
        case "self_attn.k_proj": \.k
        case "self_attn.v_proj": \.v
        case "self_attn.o_proj": \.o
        case "self_attn.q_a_proj" where latent: \.latent!.qA
        case "self_attn.q_a_layernorm" where latent: \.latent!.qANorm
        case "self_attn.q_b_proj" where latent: \.latent!.qB
        case "self_attn.kv_a_proj_with_mqa" where latent: \.latent!.kvA
        case "self_attn.kv_a_layernorm" where latent: \.latent!.kvANorm
        case "self_attn.kv_b_proj" where latent: \.latent!.kvB
        case "mlp.gate_proj": \.gate
        case "mlp.up_proj": \.up
        case "mlp.down_proj": \.down
        case "mlp.gate", "mlp.router": \.router  // gpt-oss names its router mlp.router
        case "mlp.shared_experts.gate_proj" where shared: \.shared!.gate
        case "mlp.shared_experts.up_proj" where shared: \.shared!.up
        case "mlp.shared_experts.down_proj" where shared: \.shared!.down
        // Qwen3-Next / Qwen3.5: one gated shared expert, Gated DeltaNet projections.
        case "mlp.shared_expert.gate_proj" where shared: \.shared!.gate
        case "mlp.shared_expert.up_proj" where shared: \.shared!.up
        case "mlp.shared_expert.down_proj" where shared: \.shared!.down
        case "mlp.shared_expert_gate" where w.sharedGate != nil: \.sharedGate!
        case "linear_attn.in_proj_qkvz" where linear: \.linearAttention!.qkvz
        case "linear_attn.in_proj_ba" where linear: \.linearAttention!.ba
        case "linear_attn.in_proj_qkv" where linear: \.linearAttention!.qkv
        case "linear_attn.in_proj_z" where linear: \.linearAttention!.z
        case "linear_attn.in_proj_b" where linear: \.linearAttention!.b
        case "linear_attn.in_proj_a" where linear: \.linearAttention!.a
        case "linear_attn.out_proj" where linear: \.linearAttention!.out
        // Gemma 4: the experts' own input norm and the per-layer input's linears.
        case "pre_feedforward_layernorm_2" where w.gemma4 != nil: \.gemma4!.preExpertNorm
        case "per_layer_input_gate" where w.gemma4 != nil: \.gemma4!.perLayerGate
        case "per_layer_projection" where w.gemma4 != nil: \.gemma4!.perLayerProjection
        default: nil
        }
        guard let p, !w[keyPath: p].isEmpty else { return nil }
        return p
    }

    /// The linears of the attention block, by path (those this layer has).
    var attentionModules: [String] {
        ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.gate_proj", "self_attn.q_a_proj", "self_attn.q_b_proj",
         "self_attn.kv_a_proj_with_mqa", "self_attn.kv_b_proj", "self_attn.o_proj"].filter { Self.keyPath($0, self) != nil }
    }
}

extension LayerWeights.Expert {
    /// Paths of a routed expert's linears, and of the shared expert's.
    public static let routedModules = ["mlp.experts.*.gate_proj", "mlp.experts.*.up_proj", "mlp.experts.*.down_proj"]
    public static let sharedModules = ["mlp.shared_experts.gate_proj", "mlp.shared_experts.up_proj", "mlp.shared_experts.down_proj"]

    /// The shared expert's linears as `config` names them (`mlp.shared_expert.*` for Qwen's gated one).
    public static func sharedModules(_ c: ModelConfig) -> [String] {
        c.sharedExpertGate ? ["mlp.shared_expert.gate_proj", "mlp.shared_expert.up_proj", "mlp.shared_expert.down_proj"] : sharedModules
    }

    /// The weight of `module` (a routed- or shared-expert path, by its last component).
    public subscript(module m: String) -> [Float]? {
        get {
            switch m.split(separator: ".").last {
            case "gate_proj": gate
            case "up_proj": up
            case "down_proj": down
            default: nil
            }
        }
        set {
            guard let v = newValue else { return }
            switch m.split(separator: ".").last {
            case "gate_proj": gate = v
            case "up_proj": up = v
            case "down_proj": down = v
            default: break
            }
        }
    }
}

extension ReferenceModel {
    /// The f32 weight of `module` (a path; expert paths with `expert`) in layer `names`, decoding only its slice of a
    /// fused 3-D expert tensor. `shape` is the module's 2-D (or 1-D) shape.
    public func weight(module: String, expert: Int? = nil, names: LayerNames, shape: [Int]) throws -> [Float] {
        guard let ref = names.tensor(module: module, expert: expert, config: config) else {
            throw Failure.missingTensor("model.layers.\(names.layer).\(module)")
        }
        return try weight(ref, shape: shape)
    }

    /// The f32 values of a tensor or of its slice, checked to hold `shape`'s element count.
    public func weight(_ ref: TensorRef, shape: [Int]) throws -> [Float] {
        guard let range = ref.slice else { return try weight(ref.name, shape) }
        guard source.info(ref.name) != nil else { throw Failure.missingTensor(ref.name) }
        let v = try source.tensor(named: ref.name)
        guard v.dtype.isFloatingPoint else { throw Failure.notFloat(ref.name, v.dtype) }
        guard let width = v.dtype.byteWidth, range.lowerBound >= 0, range.upperBound <= v.elementCount,
              range.count == ShapeMath.elementCount(shape) else {
            throw Failure.badShape(ref.name + " (a slice)", [range.count], expected: [ShapeMath.elementCount(shape) ?? -1],
                                   fields: fieldNames(expected: shape, actual: []))
        }
        return try v.withBytes { b in
            try FloatCodecs.decodeToF32(UnsafeRawBufferPointer(rebasing: b[(range.lowerBound * width)..<(range.upperBound * width)]),
                                        dtype: v.dtype, count: range.count)
        }
    }

    /// Routed expert `e` of layer `names` (one expert's weights and biases; a fused tensor is read only for its slice).
    public func expert(_ e: Int, names: LayerNames) throws -> LayerWeights.Expert {
        let h = config.hiddenSize, i = config.expertIntermediateSize
        var x: LayerWeights.Expert
        if e < names.experts.count, case let .fusedTransposed(gu, d, index) = names.experts[e] {
            // gpt-oss: expert `index`'s block of gate_up_proj [E, H, 2I] (gate at even columns) and down_proj [E, I, H].
            let g = try weight(TensorRef(name: gu, slice: (index * h * 2 * i)..<((index + 1) * h * 2 * i)), shape: [h, 2 * i])
            let dn = try weight(TensorRef(name: d, slice: (index * i * h)..<((index + 1) * i * h)), shape: [i, h])
            x = LayerWeights.Expert(gate: [Float](repeating: 0, count: i * h), up: [Float](repeating: 0, count: i * h),
                                    down: [Float](repeating: 0, count: h * i))
            for r in 0..<i {
                for k in 0..<h {
                    x.gate[r * h + k] = g[k * 2 * i + 2 * r]
                    x.up[r * h + k] = g[k * 2 * i + 2 * r + 1]
                    x.down[k * i + r] = dn[r * h + k]
                }
            }
        } else {
            x = LayerWeights.Expert(gate: try weight(module: "mlp.experts.*.gate_proj", expert: e, names: names, shape: [i, h]),
                                    up: try weight(module: "mlp.experts.*.up_proj", expert: e, names: names, shape: [i, h]),
                                    down: try weight(module: "mlp.experts.*.down_proj", expert: e, names: names, shape: [h, i]))
        }
        guard e < names.expertBiases.count else { return x }
        switch names.expertBiases[e] {
        case let .separate(g, u, d):
            x.gateBias = try weight(g, [i]); x.upBias = try weight(u, [i]); x.downBias = try weight(d, [h])
        case let .fusedInterleaved(gu, d, index):
            let row = try weight(TensorRef(name: gu, slice: (index * 2 * i)..<((index + 1) * 2 * i)), shape: [2 * i])
            x.gateBias = (0..<i).map { row[2 * $0] }
            x.upBias = (0..<i).map { row[2 * $0 + 1] }
            x.downBias = try weight(TensorRef(name: d, slice: (index * h)..<((index + 1) * h)), shape: [h])
        }
        return x
    }

    /// Changes a module's weights for one variant: `(variant, module path, expert, weights)`.
    public typealias WeightVariant = (_ variant: Int, _ module: String, _ expert: Int?, _ weights: inout [Float]) -> Void

    /// The output of block `block` on its input `x` under `variants` weight variants, each
    /// obtained by letting `transform` change every linear of the block before it runs. Variants run in parallel
    /// (in order of index, so results do not depend on the core count).
    ///
    /// Blocks: `self_attn`, `linear_attn`; `mlp`, the dense MLP when the layer has one, else its MoE block;
    /// `mlp.experts`, the MoE block (routed and shared experts) on the experts' input, also where a dense MLP runs
    /// beside it (Gemma 4).
    ///
    /// MoE blocks take `routing` (fixed: routers are never varied) and load routed experts one at a time through
    /// `expert`, evaluating every variant on an expert before loading the next: memory is one expert's weights per
    /// variant in flight plus the `variants` outputs, whatever the number of experts.
    public func evaluate(block: String, input x: [Float], weights w: LayerWeights, batch: SequenceBatch, variants: Int,
                         routing: Routing?, expert: (Int) throws -> LayerWeights.Expert, transform: WeightVariant) throws -> [[Float]] {
        let c = config, h = c.hiddenSize, n = batch.rows
        var outputs = [[Float]](repeating: [], count: variants)
        func parallelVariants(_ body: (Int) -> [Float]) {
            outputs.withUnsafeMutableBufferPointer { o in
                let out = UncheckedSendable(o.baseAddress!)
                parallelFor(variants) { k in out.value[k] = body(k) }
            }
        }
        switch block {
        case "linear_attn":
            let modules = ["linear_attn.in_proj_qkvz", "linear_attn.in_proj_ba", "linear_attn.in_proj_qkv", "linear_attn.in_proj_z",
                           "linear_attn.in_proj_b", "linear_attn.in_proj_a", "linear_attn.out_proj"].filter { w[module: $0] != nil }
            guard !modules.isEmpty else { throw Failure.unsupportedBlock(block) }
            parallelVariants { k in
                var t = w
                for m in modules { transform(k, m, nil, &t[module: m]!) }
                return gatedDeltaNetBlock(x, t.linearAttention!, batch)
            }
        case "self_attn":
            let modules = w.attentionModules
            parallelVariants { k in
                var t = w
                for m in modules { transform(k, m, nil, &t[module: m]!) }
                return attentionBlock(x, t, batch, storesSharedKV: false)
            }
        case "mlp" where routing == nil || !w.gate.isEmpty:
            parallelVariants { k in
                var g = w.gate, u = w.up, d = w.down
                transform(k, "mlp.gate_proj", nil, &g); transform(k, "mlp.up_proj", nil, &u); transform(k, "mlp.down_proj", nil, &d)
                return mlpBlock(x, gate: g, up: u, down: d, rows: n)
            }
        case "mlp", "mlp.experts":
            guard let routing else { throw Failure.unsupportedBlock(block) }
            for k in 0..<variants { outputs[k] = [Float](repeating: 0, count: n * h) }
            for e in 0..<c.experts {
                let tokens = routing.tokens(of: e)
                if tokens.isEmpty { continue }
                let ex = try expert(e)
                let xs = Kernels.gatherRows(x, tokens, width: h)
                outputs.withUnsafeMutableBufferPointer { o in
                    let out = UncheckedSendable(o.baseAddress!)
                    parallelFor(variants) { k in
                        var t = ex
                        for m in LayerWeights.Expert.routedModules { transform(k, m, e, &t[module: m]!) }
                        let y = expertBlock(xs, t, rows: tokens.count, downSite: .expertDown(e))
                        routing.accumulate(y, expert: e, tokens: tokens, into: &out.value[k], width: h)
                    }
                }
            }
            if let sh = w.shared {
                // A gated shared expert (Qwen3-Next) is scaled per token by sigmoid(shared_expert_gate · x).
                let sharedGate = w.sharedGate.map { g in Kernels.linear(x, g, rows: n, inputs: h, outputs: 1).map { 1 / (1 + expf(-$0)) } }
                outputs.withUnsafeMutableBufferPointer { o in
                    let out = UncheckedSendable(o.baseAddress!)
                    parallelFor(variants) { k in
                        var t = sh
                        for m in LayerWeights.Expert.sharedModules(c) { transform(k, m, nil, &t[module: m]!) }
                        let y = mlpBlock(x, gate: t.gate, up: t.up, down: t.down, rows: n, inner: t.down.count / max(h, 1))
                        if let gate = sharedGate {
                            for r in 0..<n { for i in 0..<h { out.value[k][r * h + i] += gate[r] * y[r * h + i] } }
                        } else {
                            for i in 0..<(n * h) { out.value[k][i] += y[i] }
                        }
                    }
                }
            }
        default:
            throw Failure.unsupportedBlock(block)
        }
        return outputs
    }
}

extension ReferenceModel {
    /// The inputs of routed expert `e`'s linears for its rows `x` (`[rows, hidden]` of the MoE input).
    public func expertInputs(_ x: [Float], rows: Int, expert e: Int, _ w: LayerWeights.Expert) -> [LinearSite: [Float]] {
        [.expert(e): x,
         .expertDown(e): expertActivation(x, w, rows: rows)]
    }
}
