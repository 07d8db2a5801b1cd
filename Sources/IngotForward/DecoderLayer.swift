import COpenBLAS
import Foundation
import IngotCore
import IngotModel

/// The input of a group of linears that share it: what calibration observes and AWQ smooths.
public enum LinearSite: Hashable, Sendable, CustomStringConvertible {
    /// q, k, v (the input norm's output); in linear-attention layers, in_proj_* (the same input).
    case attention
    /// o_proj (the attention heads' output, gated when the config says so); in linear-attention layers out_proj.
    case output
    /// gate, up and the router, shared experts' gate/up and `shared_expert_gate` (the post-attention norm's output;
    /// in MoE layers every token).
    case mlp
    /// down_proj (silu(gate)·up).
    case down
    /// Expert e's gate and up: only the tokens routed to it (or every token in all-token calibration).
    case expert(Int)
    /// Expert e's down_proj.
    case expertDown(Int)
    /// MLA: q_b_proj (the normed q latent) and kv_b_proj (the normed kv latent).
    case qLatent, kvLatent
    /// Shared experts' down_proj.
    case sharedDown
    /// Gemma 4: per_layer_input_gate (the residual stream after the MLP) and per_layer_projection.
    case perLayerGate, perLayerProjection
    /// The routed experts' input over every token where it is not the MLP's (Gemma 4's MoE block beside the MLP
    /// reads its own norm of the residual stream, pre_feedforward_layernorm_2).
    case moe

    public var description: String {
        switch self {
        case .attention: "attention"
        case .output: "o_proj"
        case .mlp: "mlp"
        case .down: "down_proj"
        case .expert(let e): "expert.\(e)"
        case .expertDown(let e): "expert.\(e).down_proj"
        case .qLatent: "q_b_proj"
        case .kvLatent: "kv_b_proj"
        case .sharedDown: "shared_experts.down_proj"
        case .perLayerGate: "per_layer_input_gate"
        case .perLayerProjection: "per_layer_projection"
        case .moe: "moe"
        }
    }
}

/// Receives the input rows `[rows, width]` of every linear-layer group as the forward pass computes them.
public typealias LinearInputObserver = (_ site: LinearSite, _ input: [Float], _ rows: Int) -> Void

/// Receives an MoE block's expert input (every token) and its routing.
public typealias RoutingObserver = (_ expertInput: [Float], _ routing: Routing) -> Void

/// What one forward pass carries from layer to layer besides the hidden states (Gemma 4): each layer's per-layer
/// input `[rows, perLayerInputSize]` and the k/v of the layers later layers share.
public final class ForwardState: @unchecked Sendable {
    public var perLayerInputs: [Int: [Float]] = [:]
    public var sharedKV: [Int: (k: [Float], v: [Float])] = [:]
    public init() {}
}

/// Several sequences packed as rows of one matrix: linears run over all rows, attention and RoPE per sequence.
public struct SequenceBatch: Sendable {
    /// (first row, length) of each sequence.
    public let segments: [(start: Int, length: Int)]
    public let rows: Int
    let cos: [Float], sin: [Float]
    /// cos/sin `[positions, dim]` of each distinct per-layer rotary.
    let tables: [ModelConfig.Rotary: (cos: [Float], sin: [Float])]
    public let state = ForwardState()

    public init(lengths: [Int], model: ReferenceModel) {
        var s: [(Int, Int)] = [], r = 0
        for n in lengths { s.append((r, n)); r += n }
        segments = s
        rows = r
        let longest = lengths.max() ?? 0
        (cos, sin) = model.rope(longest)
        var t: [ModelConfig.Rotary: (cos: [Float], sin: [Float])] = [:]
        for l in 0..<model.config.layers {
            if let ro = model.rotary(layer: l), t[ro] == nil { t[ro] = Kernels.ropeTables(ro, positions: longest) }
        }
        tables = t
    }
}

/// MoE routing of a batch: for each token, its top-k experts and their (renormalised) weights.
public struct Routing: Sendable {
    public var chosen: [[(expert: Int, weight: Float)]]

    /// Rows routed to expert `e`, ascending.
    public func tokens(of e: Int) -> [Int] {
        chosen.indices.filter { t in chosen[t].contains { $0.expert == e } }
    }

    /// `out[t] += weight(t, e) · y[r]` for the `r`-th of `tokens` (expert `e`'s output rows `[tokens.count, width]`).
    public func accumulate(_ y: [Float], expert e: Int, tokens: [Int], into out: inout [Float], width h: Int) {
        for (r, t) in tokens.enumerated() {
            let g = chosen[t].first { $0.expert == e }!.weight
            for k in 0..<h { out[t * h + k] += g * y[r * h + k] }
        }
    }
}

/// One decoder layer's weights decoded to f32, with the names they came from.
public struct LayerWeights: Sendable {
    public struct Expert: Sendable {
        public var gate: [Float], up: [Float], down: [Float]
        /// Biases of gate, up and down (gpt-oss), else nil.
        public var gateBias: [Float]? = nil, upBias: [Float]? = nil, downBias: [Float]? = nil
        public init(gate: [Float], up: [Float], down: [Float]) { self.gate = gate; self.up = up; self.down = down }
    }
    /// MLA weights (DeepSeek-V3).
    public struct Latent: Sendable {
        public var qA: [Float] = [], qANorm: [Float] = [], qB: [Float] = [], q: [Float] = []
        public var kvA: [Float], kvANorm: [Float], kvB: [Float]
    }
    /// Gated DeltaNet weights, input projections as the checkpoint stores them.
    public struct LinearAttention: Sendable {
        /// Qwen3-Next: `in_proj_qkvz` and `in_proj_ba`, rows grouped per key head (`[q_g, k_g, v_g…, z_g…]`,
        /// `[b_g…, a_g…]`); empty in the split layout.
        public var qkvz: [Float] = [], ba: [Float] = []
        /// Qwen3.5: `[q | k | v]` rows (`conv_dim × hidden`), z (`value_dim × hidden`), b and a (`value_heads × hidden`);
        /// empty in the fused layout.
        public var qkv: [Float] = [], z: [Float] = [], b: [Float] = [], a: [Float] = []
        /// `[conv_dim, kernel]`, `[value_heads]` ×2, `[value_head_dim]`, `[hidden, value_dim]`.
        public var conv: [Float], aLog: [Float], dtBias: [Float], norm: [Float], out: [Float]
    }
    public var names: LayerNames
    /// Norm weights as multipliers: `1 + w` for zero-centred norms (`ModelConfig.normWeightOffset`).
    public var inputNorm: [Float], postNorm: [Float]
    public var q: [Float] = [], k: [Float] = [], v: [Float] = [], o: [Float] = []
    /// Gemma 4's extras, decoded.
    public struct Gemma4: Sendable {
        public var perLayerGate: [Float] = [], perLayerProjection: [Float] = [], perLayerNorm: [Float] = []
        public var layerScalar: Float = 1
        public var routerScale: [Float] = [], routerExpertScale: [Float] = []
        public var preExpertNorm: [Float] = [], postMLPNorm: [Float] = [], postExpertNorm: [Float] = []
    }
    /// Sandwich norms on the attention and MLP outputs.
    public var attentionOutputNorm: [Float]?, mlpOutputNorm: [Float]?
    /// Muse's `self_attn.gate_proj` `[heads · head_dim, hidden]`.
    public var attentionGate: [Float]?
    public var gemma4: Gemma4?
    /// Attention biases (`attention_bias`), nil when absent.
    public var qBias: [Float]?, kBias: [Float]?, vBias: [Float]?, oBias: [Float]?
    /// Per-head sink logits (gpt-oss).
    public var sinks: [Float]?
    public var qNorm: [Float]?, kNorm: [Float]?
    public var latent: Latent?
    public var linearAttention: LinearAttention?
    public var routerBias: [Float]?
    public var shared: Expert?
    /// `[hidden]`: the shared expert's output × sigmoid(sharedGate·x).
    public var sharedGate: [Float]?
    public var gate: [Float] = [], up: [Float] = [], down: [Float] = []
    public var router: [Float] = []
    public var experts: [Expert] = []

    /// `experts: false` leaves `experts` empty (load them one at a time with `ReferenceModel.expert`).
    public init(model m: ReferenceModel, layer l: Int, experts loadExperts: Bool = true) throws {
        let c = m.config, h = c.hiddenSize, d = c.headDim(layer: l), H = c.heads, KV = c.kvHeads(layer: l)
        let n = LayerNames(config: c, layer: l) { m.source.info($0) != nil }
        names = n
        inputNorm = try m.normWeight(n.inputNorm, [h])
        postNorm = try m.normWeight(n.postNorm, [h])
        if let a = n.attentionOutputNorm { attentionOutputNorm = try m.normWeight(a, [h]) }
        if let a = n.mlpOutputNorm { mlpOutputNorm = try m.normWeight(a, [h]) }
        if let g = n.attentionGate { attentionGate = try m.weight(g, [H * d, h]) }
        if let ln = n.linearAttention, let g = c.linearAttention {
            linearAttention = try Self.linearAttention(m, ln, g)
        } else if let la = c.latentAttention, let ln = n.latent {
            let qk = la.qkHeadDim
            var lw = Latent(kvA: try m.weight(ln.kvA, [la.kvLoraRank + la.qkRopeHeadDim, h]), kvANorm: try m.weight(ln.kvANorm, [la.kvLoraRank]),
                            kvB: try m.weight(ln.kvB, [H * (la.qkNopeHeadDim + la.vHeadDim), la.kvLoraRank]))
            if let r = la.qLoraRank, let qA = ln.qA, let qAN = ln.qANorm, let qB = ln.qB {
                lw.qA = try m.weight(qA, [r, h]); lw.qANorm = try m.weight(qAN, [r]); lw.qB = try m.weight(qB, [H * qk, r])
            } else if let q = ln.q {
                lw.q = try m.weight(q, [H * qk, h])
            }
            latent = lw
            o = try m.weight(n.o, [h, H * la.vHeadDim])
        } else {
            let gated = c.attentionOutputGate == .inQueryProjection ? 2 : 1
            q = try m.weight(n.q, [H * d * gated, h]); o = try m.weight(n.o, [h, H * d])
            if !n.k.isEmpty { k = try m.weight(n.k, [KV * d, h]) }  // Gemma 4: none in kv-shared layers
            if !n.v.isEmpty { v = try m.weight(n.v, [KV * d, h]) }  // none in those and in its k = v layers
        }
        if let qn = n.qNorm { qNorm = try m.normWeight(qn, [d]) }
        if let kn = n.kNorm { kNorm = try m.normWeight(kn, [d]) }
        if let b = n.qBias { qBias = try m.weight(b, [H * d]) }
        if let b = n.kBias { kBias = try m.weight(b, [KV * d]) }
        if let b = n.vBias { vBias = try m.weight(b, [KV * d]) }
        if let b = n.oBias { oBias = try m.weight(b, [h]) }
        if let s = n.sinks { sinks = try m.weight(s, [H]) }
        if let g = n.gate, let u = n.up, let dn = n.down {
            let i = c.intermediateSize(layer: l)
            gate = try m.weight(g, [i, h]); up = try m.weight(u, [i, h]); down = try m.weight(dn, [h, i])
        }
        if let r = n.router { router = try m.weight(r, [c.experts, h]) }
        if let b = n.routerBias { routerBias = try m.weight(b, [c.experts]) }
        let i = c.expertIntermediateSize
        if let s = n.shared {
            let si = c.sharedExpertIntermediateSize
            shared = Expert(gate: try m.weight(s.gate, [si, h]), up: try m.weight(s.up, [si, h]), down: try m.weight(s.down, [h, si]))
        }
        if let g = n.sharedGate { sharedGate = try m.weight(g, [1, h]) }
        var fused: (gu: [Float], dn: [Float])?
        for e in n.experts where loadExperts {
            switch e {
            case let .separate(g, u, dn):
                experts.append(Expert(gate: try m.weight(g, [i, h]), up: try m.weight(u, [i, h]), down: try m.weight(dn, [h, i])))
            case let .fused(gu, dn, x):
                if fused == nil { fused = (try m.weight(gu, [c.experts, 2 * i, h]), try m.weight(dn, [c.experts, h, i])) }
                let b = x * 2 * i * h
                experts.append(Expert(gate: Array(fused!.gu[b..<(b + i * h)]), up: Array(fused!.gu[(b + i * h)..<(b + 2 * i * h)]),
                                      down: Array(fused!.dn[(x * h * i)..<((x + 1) * h * i)])))
            case let .fusedTransposed(gu, dn, x):
                if fused == nil { fused = (try m.weight(gu, [c.experts, h, 2 * i]), try m.weight(dn, [c.experts, i, h])) }
                var e = Expert(gate: [Float](repeating: 0, count: i * h), up: [Float](repeating: 0, count: i * h),
                               down: [Float](repeating: 0, count: h * i))
                let g = x * h * 2 * i, d0 = x * i * h
                for r in 0..<i {
                    for k in 0..<h {
                        e.gate[r * h + k] = fused!.gu[g + k * 2 * i + 2 * r]
                        e.up[r * h + k] = fused!.gu[g + k * 2 * i + 2 * r + 1]
                        e.down[k * i + r] = fused!.dn[d0 + r * h + k]
                    }
                }
                experts.append(e)
            }
        }
        if let e = n.gemma4 {
            var g = Gemma4()
            if m.source.info(e.layerScalar) != nil { g.layerScalar = try m.weight(e.layerScalar, [1])[0] }
            if let pg = e.perLayerGate, let pp = e.perLayerProjection, let pn = e.perLayerNorm, let p = c.gemma4?.perLayerInputSize {
                g.perLayerGate = try m.weight(pg, [p, h]); g.perLayerProjection = try m.weight(pp, [h, p]); g.perLayerNorm = try m.weight(pn, [h])
            }
            if let rs = e.routerScale, let re = e.routerExpertScale, let a = e.preExpertNorm, let b = e.postMLPNorm, let cc = e.postExpertNorm {
                g.routerScale = try m.weight(rs, [h]); g.routerExpertScale = try m.weight(re, [c.experts])
                g.preExpertNorm = try m.weight(a, [h]); g.postMLPNorm = try m.weight(b, [h]); g.postExpertNorm = try m.weight(cc, [h])
            }
            gemma4 = g
        }
        var fusedBias: (gu: [Float], dn: [Float])?
        for (x, b) in n.expertBiases.enumerated() where x < experts.count {
            switch b {
            case let .separate(g, u, dn):
                experts[x].gateBias = try m.weight(g, [i]); experts[x].upBias = try m.weight(u, [i]); experts[x].downBias = try m.weight(dn, [h])
            case let .fusedInterleaved(gu, dn, e):
                if fusedBias == nil { fusedBias = (try m.weight(gu, [c.experts, 2 * i]), try m.weight(dn, [c.experts, h])) }
                experts[x].gateBias = (0..<i).map { fusedBias!.gu[e * 2 * i + 2 * $0] }
                experts[x].upBias = (0..<i).map { fusedBias!.gu[e * 2 * i + 2 * $0 + 1] }
                experts[x].downBias = Array(fusedBias!.dn[(e * h)..<((e + 1) * h)])
            }
        }
    }
}

extension LayerWeights {
    /// Experts back in gpt-oss's fused layout: `gate_up_proj [E, H, 2I]` (gate at even columns), `down_proj [E, I, H]`.
    public static func fusedTransposedTensors(_ experts: [Expert], hidden h: Int, inner i: Int) -> (gateUp: [Float], down: [Float]) {
        var gu = [Float](repeating: 0, count: experts.count * h * 2 * i), dn = [Float](repeating: 0, count: experts.count * i * h)
        for (x, e) in experts.enumerated() {
            let g = x * h * 2 * i, d0 = x * i * h
            for r in 0..<i {
                for k in 0..<h {
                    gu[g + k * 2 * i + 2 * r] = e.gate[r * h + k]
                    gu[g + k * 2 * i + 2 * r + 1] = e.up[r * h + k]
                    dn[d0 + r * h + k] = e.down[k * i + r]
                }
            }
        }
        return (gu, dn)
    }
}

extension ReferenceModel {
    /// One decoder layer in place on `x` (`[batch.rows, hidden]`), reporting linear inputs to `observer` and an
    /// MoE block's expert input and routing to `routingObserver`.
    /// `allExpertTokens`: observers also see every expert run on every token (the layer output still uses routing).
    public func decoderLayer(_ x: inout [Float], _ w: LayerWeights, _ batch: SequenceBatch, observer: LinearInputObserver? = nil,
                             routingObserver: RoutingObserver? = nil, allExpertTokens: Bool = false) {
        decoderLayer(&x, w, batch, observer: observer, routingObserver: routingObserver, allExpertTokens: allExpertTokens,
                     expertsInMemory: true, expert: { w.experts[$0] })
    }

    /// The same with routed experts supplied one at a time by `expert` (loaded on demand, so a layer's experts need
    /// not all be in memory).
    public func decoderLayer(_ x: inout [Float], _ w: LayerWeights, _ batch: SequenceBatch, observer: LinearInputObserver? = nil,
                             routingObserver: RoutingObserver? = nil, allExpertTokens: Bool = false, expertsInMemory: Bool = false,
                             expert: (Int) throws -> LayerWeights.Expert) rethrows {
        let c = config, n = batch.rows
        let hN = Kernels.rmsNorm(x, w.inputNorm, rows: n, eps: c.rmsNormEps)
        var attn = tokenMixer(hN, w, batch, observer: observer)
        if let on = w.attentionOutputNorm { attn = Kernels.rmsNorm(attn, on, rows: n, eps: c.outputNormEps) }
        for k in x.indices { x[k] += attn[k] }
        let h2 = Kernels.rmsNorm(x, w.postNorm, rows: n, eps: c.rmsNormEps)
        observer?(.mlp, h2, n)
        var mlp: [Float]
        if let g = w.gemma4, !w.router.isEmpty {
            // Gemma 4: the MLP and the MoE block side by side, each with its own output norm; the router and the
            // experts' norm read the residual stream.
            let dense = Kernels.rmsNorm(mlpBlock(h2, gate: w.gate, up: w.up, down: w.down, rows: n, observer: observer),
                                        g.postMLPNorm, rows: n, eps: c.rmsNormEps)
            let r = route(x, router: w.router, rows: n, routerScale: g.routerScale, expertScale: g.routerExpertScale)
            let ex = Kernels.rmsNorm(x, g.preExpertNorm, rows: n, eps: c.rmsNormEps)
            observer?(.moe, ex, n)
            routingObserver?(ex, r)
            mlp = Kernels.rmsNorm(try moeBlock(ex, w, routing: r, observer: observer, allExpertTokens: allExpertTokens,
                                               expertsInMemory: expertsInMemory, expert: expert),
                                  g.postExpertNorm, rows: n, eps: c.rmsNormEps)
            for k in mlp.indices { mlp[k] += dense[k] }
        } else if let r = routing(h2, w) {
            routingObserver?(h2, r)
            mlp = try moeBlock(h2, w, routing: r, observer: observer, allExpertTokens: allExpertTokens, expertsInMemory: expertsInMemory,
                               expert: expert)
        } else {
            mlp = mlpBlock(h2, gate: w.gate, up: w.up, down: w.down, rows: n, observer: observer)
        }
        if let on = w.mlpOutputNorm { mlp = Kernels.rmsNorm(mlp, on, rows: n, eps: c.outputNormEps) }
        for k in x.indices { x[k] += mlp[k] }
        if let g = w.gemma4 {
            if let p = c.gemma4?.perLayerInputSize, p > 0 {
                perLayerInput(&x, g, layer: w.names.layer, width: p, batch, observer: observer)
            }
            if g.layerScalar != 1 { for k in x.indices { x[k] *= g.layerScalar } }
        }
    }

    /// The routing of normed MoE input `x` by the layer's router (nil in dense layers).
    public func routing(_ x: [Float], _ w: LayerWeights) -> Routing? {
        w.router.isEmpty ? nil : route(x, router: w.router, bias: w.routerBias, rows: x.count / max(config.hiddenSize, 1))
    }

    /// The layer's token mixer on normed input: its linear attention, or self-attention.
    public func tokenMixer(_ x: [Float], _ w: LayerWeights, _ batch: SequenceBatch, observer: LinearInputObserver? = nil,
                           preOutput: ((_ heads: [Float]) -> Void)? = nil) -> [Float] {
        if let la = w.linearAttention { return gatedDeltaNetBlock(x, la, batch, observer: observer, preOutput: preOutput) }
        return attentionBlock(x, w, batch, observer: observer, preOutput: preOutput)
    }

    /// Gemma 4: stores in `batch.state` the k/v that layer `src` gives the later layers sharing them, computed from
    /// `input`, its layer input on `batch` (what a later layer replayed on its own needs from it).
    public func storeSharedKV(layer src: Int, input: [Float], _ batch: SequenceBatch) throws {
        let w = try LayerWeights(model: self, layer: src, experts: false)
        _ = attentionBlock(Kernels.rmsNorm(input, w.inputNorm, rows: batch.rows, eps: config.rmsNormEps), w, batch)
    }

    /// Gemma 4's per-layer input: `x += norm(projection(act(gate(x)) ⊙ perLayerInputs[layer]))`.
    func perLayerInput(_ x: inout [Float], _ g: LayerWeights.Gemma4, layer l: Int, width p: Int, _ batch: SequenceBatch,
                       observer: LinearInputObserver?) {
        let c = config, h = c.hiddenSize, n = batch.rows
        guard let pli = batch.state.perLayerInputs[l] else { preconditionFailure("layer \(l) has no per-layer input on this batch") }
        observer?(.perLayerGate, x, n)
        var a = Kernels.linear(x, g.perLayerGate, rows: n, inputs: h, outputs: p)
        Kernels.activate(&a, c.activation)
        for i in a.indices { a[i] *= pli[i] }
        observer?(.perLayerProjection, a, n)
        let y = Kernels.rmsNorm(Kernels.linear(a, g.perLayerProjection, rows: n, inputs: p, outputs: h), g.perLayerNorm, rows: n, eps: c.rmsNormEps)
        for k in x.indices { x[k] += y[k] }
    }

    /// Self-attention on normed input `[rows, hidden]`: q/k/v, optional q/k(/v) norms, the layer's rotary (none,
    /// partial, proportional), causal GQA (sliding windows, sinks; Gemma 4's shared kv), optional sigmoid output
    /// gate (in q_proj, or Muse's gate_proj), o_proj. `weights` override q/k/v/o (AWQ's candidates); `preOutput`
    /// receives o_proj's input. `storesSharedKV: false` leaves `batch.state` alone (blocks evaluated in parallel).
    public func attentionBlock(_ x: [Float], _ w: LayerWeights, _ batch: SequenceBatch, observer: LinearInputObserver? = nil,
                               preOutput: ((_ heads: [Float]) -> Void)? = nil, storesSharedKV: Bool = true) -> [Float] {
        if let la = w.latent { return latentAttentionBlock(x, w, la, batch, observer: observer, preOutput: preOutput) }
        let c = config, l = w.names.layer, h = c.hiddenSize, d = c.headDim(layer: l), H = c.heads, KV = c.kvHeads(layer: l), n = batch.rows
        observer?(.attention, x, n)
        var q: [Float], gate: [Float] = []
        if c.attentionOutputGate == .inQueryProjection {
            // q_proj rows are [query | gate] per head.
            let qg = Kernels.linear(x, w.q, rows: n, inputs: h, outputs: 2 * H * d)
            q = [Float](repeating: 0, count: n * H * d); gate = q
            for r in 0..<(n * H) {
                for i in 0..<d { q[r * d + i] = qg[2 * r * d + i]; gate[r * d + i] = qg[2 * r * d + d + i] }
            }
        } else {
            q = Kernels.linear(x, w.q, rows: n, inputs: h, outputs: H * d)
        }
        if let b = w.qBias { Kernels.addBias(&q, b) }
        if c.scalelessQKNorm {
            q = Kernels.rmsNorm(q, nil, width: d, rows: n * H, eps: c.rmsNormEps)
        } else if let qn = w.qNorm {
            q = Kernels.rmsNorm(q, qn, rows: n * H, eps: c.rmsNormEps)
        }
        if c.queryScale != 1 { for i in q.indices { q[i] *= c.queryScale } }
        let rotary = rotary(layer: l)
        let table = rotary.flatMap { r in batch.tables[r].map { (dim: r.dim, cos: $0.cos, sin: $0.sin) } }
        var k: [Float], v: [Float]
        if let src = c.gemma4?.kvSource[l] {
            guard let shared = batch.state.sharedKV[src] else { preconditionFailure("layer \(l) shares the kv of layer \(src), which has not run on this batch") }
            (k, v) = shared
        } else {
            k = Kernels.linear(x, w.k, rows: n, inputs: h, outputs: KV * d)
            if let b = w.kBias { Kernels.addBias(&k, b) }
            if w.v.isEmpty {
                v = k  // Gemma 4's k = v layers: v is k_proj's output before k_norm
            } else {
                v = Kernels.linear(x, w.v, rows: n, inputs: h, outputs: KV * d)
                if let b = w.vBias { Kernels.addBias(&v, b) }
            }
            if c.scalelessQKNorm {
                k = Kernels.rmsNorm(k, nil, width: d, rows: n * KV, eps: c.rmsNormEps)
            } else if let kn = w.kNorm {
                k = Kernels.rmsNorm(k, kn, rows: n * KV, eps: c.rmsNormEps)
            }
            if c.valueNorm { v = Kernels.rmsNorm(v, nil, width: d, rows: n * KV, eps: c.rmsNormEps) }
            if let table {
                for (start, len) in batch.segments {
                    Kernels.applyRoPE(&k, heads: KV, rows: start..<(start + len), d: table.dim, stride: d, cos: table.cos, sin: table.sin)
                }
            }
            if storesSharedKV, c.gemma4?.kvSource.values.contains(l) == true { batch.state.sharedKV[l] = (k, v) }
        }
        if let table {
            for (start, len) in batch.segments {
                Kernels.applyRoPE(&q, heads: H, rows: start..<(start + len), d: table.dim, stride: d, cos: table.cos, sin: table.sin)
            }
        }
        var out = Kernels.attention(q: q, k: k, v: v, segments: batch.segments, heads: H, kvHeads: KV, dk: d, dv: d,
                                    scale: c.attentionScale ?? 1 / Float(d).squareRoot(), window: c.attentionWindow(l), sinks: w.sinks)
        if let g = w.attentionGate { gate = Kernels.linear(x, g, rows: n, inputs: h, outputs: H * d) }
        if !gate.isEmpty {
            for i in out.indices { out[i] *= 1 / (1 + expf(-gate[i])) }
        }
        observer?(.output, out, n)
        preOutput?(out)
        var y = Kernels.linear(out, w.o, rows: n, inputs: H * d, outputs: h)
        if let b = w.oBias { Kernels.addBias(&y, b) }
        return y
    }

    /// SwiGLU MLP `down(silu(gate·x) ⊙ up·x)`; `site` names the down input for observers.
    public func mlpBlock(_ x: [Float], gate: [Float], up: [Float], down: [Float], rows n: Int, inner: Int? = nil,
                         observer: LinearInputObserver? = nil, downSite: LinearSite = .down) -> [Float] {
        let h = config.hiddenSize, i = inner ?? (down.count / max(h, 1))
        let act = Kernels.swigluActivation(x, gate: gate, up: up, rows: n, hidden: h, inner: i, activation: config.activation)
        observer?(downSite, act, n)
        return Kernels.linear(act, down, rows: n, inputs: i, outputs: h)
    }

    /// Softmax routing: top-k experts per token (ties to the lower index), renormalised when the config says so.
    /// gpt-oss (`softmaxOfTopK`): bias added to the logits, softmax over the top-k logits.
    /// Gemma 4: `x` is the residual stream, normed without weights, times `routerScale` and 1/√hidden before the
    /// router; each chosen weight times `expertScale` of its expert.
    public func route(_ x: [Float], router: [Float], bias: [Float]? = nil, rows n: Int, routerScale: [Float]? = nil,
                      expertScale: [Float]? = nil) -> Routing {
        let c = config, E = c.experts, K = c.expertsPerToken, h = c.hiddenSize
        if case .gemma4 = c.routing, let routerScale, let expertScale {
            var xs = Kernels.rmsNorm(x, nil, width: h, rows: n, eps: c.rmsNormEps)
            let root = 1 / Float(h).squareRoot()
            for r in 0..<n { for k in 0..<h { xs[r * h + k] = xs[r * h + k] * routerScale[k] * root } }
            let logits = Kernels.linear(xs, router, rows: n, inputs: h, outputs: E)
            return Routing(chosen: (0..<n).map { t in
                let row = logits[(t * E)..<((t + 1) * E)]
                let m = row.max()!
                let ex = row.map { expf($0 - m) }
                let sum = ex.reduce(0, +)
                let top = ex.map { $0 / sum }.enumerated()
                    .sorted { $0.element > $1.element || ($0.element == $1.element && $0.offset < $1.offset) }.prefix(K)
                let norm = top.reduce(0) { $0 + $1.element }
                return top.map { ($0.offset, $0.element / norm * expertScale[$0.offset]) }
            })
        }
        var logits = Kernels.linear(x, router, rows: n, inputs: c.hiddenSize, outputs: E)
        if case .softmaxOfTopK = c.routing {
            if let bias { Kernels.addBias(&logits, bias) }
            return Routing(chosen: (0..<n).map { t in
                let top = logits[(t * E)..<((t + 1) * E)].enumerated()
                    .sorted { $0.element > $1.element || ($0.element == $1.element && $0.offset < $1.offset) }.prefix(K)
                let m = top.first!.element
                let ex = top.map { expf($0.element - m) }
                let sum = ex.reduce(0, +)
                return zip(top, ex).map { ($0.offset, $1 / sum) }
            })
        }
        if case let .sigmoidGroupLimited(groups, topkGroup, factor) = c.routing {
            return Routing(chosen: (0..<n).map { t in
                Kernels.sigmoidGroupLimitedTopK(Array(logits[(t * E)..<((t + 1) * E)]), bias: bias ?? [Float](repeating: 0, count: E),
                                               groups: groups, topkGroup: topkGroup, k: K, normalize: c.normalizeTopK, scale: factor)
            })
        }
        var chosen = [[(expert: Int, weight: Float)]](repeating: [], count: n)
        for t in 0..<n {
            let row = logits[(t * E)..<((t + 1) * E)]
            let m = row.max()!
            let ex = row.map { expf($0 - m) }
            let sum = ex.reduce(0, +)
            let probs = ex.map { $0 / sum }
            let top = probs.enumerated().sorted { $0.element > $1.element || ($0.element == $1.element && $0.offset < $1.offset) }.prefix(K)
            let norm = c.normalizeTopK ? top.reduce(0) { $0 + $1.element } : 1
            chosen[t] = top.map { ($0.offset, $0.element / norm) }
        }
        return Routing(chosen: chosen)
    }

    /// One expert on its rows: the config's activation (SwiGLU, or gpt-oss's clamped one with biases), then down.
    public func expertBlock(_ x: [Float], _ w: LayerWeights.Expert, rows n: Int, observer: LinearInputObserver? = nil,
                            downSite: LinearSite) -> [Float] {
        let h = config.hiddenSize, i = config.expertIntermediateSize
        let act = expertActivation(x, w, rows: n)
        observer?(downSite, act, n)
        var y = Kernels.linear(act, w.down, rows: n, inputs: i, outputs: h)
        if let b = w.downBias { Kernels.addBias(&y, b) }
        return y
    }

    /// The input of an expert's down_proj for rows `x`.
    public func expertActivation(_ x: [Float], _ w: LayerWeights.Expert, rows n: Int) -> [Float] {
        let h = config.hiddenSize, i = config.expertIntermediateSize
        switch config.expertActivation {
        case .swiglu:
            if w.gateBias == nil && w.upBias == nil {
                return Kernels.swigluActivation(x, gate: w.gate, up: w.up, rows: n, hidden: h, inner: i, activation: config.activation)
            }
            var g = Kernels.linear(x, w.gate, rows: n, inputs: h, outputs: i), u = Kernels.linear(x, w.up, rows: n, inputs: h, outputs: i)
            if let b = w.gateBias { Kernels.addBias(&g, b) }
            if let b = w.upBias { Kernels.addBias(&u, b) }
            for k in g.indices { let a = g[k]; g[k] = a / (1 + expf(-a)) * u[k] }
            return g
        case let .clampedSwiGLU(alpha, limit):
            var g = Kernels.linear(x, w.gate, rows: n, inputs: h, outputs: i), u = Kernels.linear(x, w.up, rows: n, inputs: h, outputs: i)
            if let b = w.gateBias { Kernels.addBias(&g, b) }
            if let b = w.upBias { Kernels.addBias(&u, b) }
            Kernels.clampedSwiGLU(&g, u, alpha: alpha, limit: limit)
            return g
        }
    }

    /// Mixture of experts on `x` with the given routing; `experts` overrides the layer's experts (AWQ candidates).
    public func moeBlock(_ x: [Float], _ lw: LayerWeights, routing: Routing, experts: [LayerWeights.Expert]? = nil,
                         observer: LinearInputObserver? = nil, allExpertTokens: Bool = false) -> [Float] {
        let ex = experts ?? lw.experts
        return moeBlock(x, lw, routing: routing, observer: observer, allExpertTokens: allExpertTokens, expertsInMemory: true,
                        expert: { ex[$0] })
    }

    /// Mixture of experts with the routed experts supplied one at a time by `expert` (`config.experts` of them).
    /// `expertsInMemory`: `expert` only hands out weights already loaded (safe from any thread, costs no memory),
    /// so without an observer the experts run side by side, one per worker, each on its own tokens: one parallel
    /// loop per layer instead of three small ones per expert. Their outputs are summed in expert order as in the
    /// serial loop, so the result is bitwise the same.
    public func moeBlock(_ x: [Float], _ lw: LayerWeights, routing: Routing, observer: LinearInputObserver? = nil,
                         allExpertTokens: Bool = false, expertsInMemory: Bool = false,
                         expert: (Int) throws -> LayerWeights.Expert) rethrows -> [Float] {
        let c = config, h = c.hiddenSize, n = x.count / max(h, 1), I = c.expertIntermediateSize
        var out = [Float](repeating: 0, count: n * h)
        if expertsInMemory, observer == nil, Parallelism.resolvedWorkers > 1 {
            let active = (0..<c.experts).filter { !routing.tokens(of: $0).isEmpty }
            let weights = try active.map { try expert($0) }  // already in memory: no copies
            var outputs = [[Float]](repeating: [], count: active.count)
            outputs.withUnsafeMutableBufferPointer { ys in
                let ys = UncheckedSendable(ys)
                parallelFor(active.count) { j in
                    let e = active[j], tokens = routing.tokens(of: e)
                    ys.value[j] = expertBlock(Kernels.gatherRows(x, tokens, width: h), weights[j], rows: tokens.count, downSite: .expertDown(e))
                }
            }
            for (j, e) in active.enumerated() { routing.accumulate(outputs[j], expert: e, tokens: routing.tokens(of: e), into: &out, width: h) }
        } else {
        for e in 0..<c.experts {
            let tokens = routing.tokens(of: e)
            if tokens.isEmpty && observer == nil { continue }
            let w = try expert(e)
            if allExpertTokens, let observer {
                observer(.expert(e), x, n)
                observer(.expertDown(e), expertActivation(x, w, rows: n), n)
            }
            let xs = Kernels.gatherRows(x, tokens, width: h)
            if !allExpertTokens { observer?(.expert(e), xs, tokens.count) }
            if tokens.isEmpty { continue }
            let y = expertBlock(xs, w, rows: tokens.count, observer: allExpertTokens ? nil : observer, downSite: .expertDown(e))
            routing.accumulate(y, expert: e, tokens: tokens, into: &out, width: h)
        }
        }
        if let sh = lw.shared {
            let y = mlpBlock(x, gate: sh.gate, up: sh.up, down: sh.down, rows: n, inner: sh.down.count / max(h, 1),
                             observer: observer, downSite: .sharedDown)
            if let g = lw.sharedGate {
                let logit = Kernels.linear(x, g, rows: n, inputs: h, outputs: 1)
                for t in 0..<n {
                    let s = 1 / (1 + expf(-logit[t]))
                    for k in 0..<h { out[t * h + k] += s * y[t * h + k] }
                }
            } else {
                for k in out.indices { out[k] += y[k] }
            }
        }
        return out
    }
}
