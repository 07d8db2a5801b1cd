import COpenBLAS
import Foundation
import IngotCore
import IngotFormats
import IngotModel

/// Reference CPU forward pass of a decoder-only transformer (Llama/Mistral, Mixtral, Qwen3-MoE): fp32
/// activations, weights decoded to f32 per use, `cblas_sgemm` for every matrix product, eager attention as HF
/// transformers computes it. Memory: one layer's weights and activations at a time plus the weights' mmap.
public final class ReferenceModel: @unchecked Sendable {
    public let config: ModelConfig
    public let source: TensorSource

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case missingTensor(String)
        case badShape(String, [Int])
        case tokenOutOfRange(Int)
        public var description: String {
            switch self {
            case .missingTensor(let n): "checkpoint has no tensor '\(n)' (or its fused-expert equivalent)"
            case let .badShape(n, s): "tensor '\(n)' has an unexpected shape \(ShapeMath.describe(s))"
            case .tokenOutOfRange(let t): "token id \(t) is outside the vocabulary"
            }
        }
    }

    public init(source: TensorSource, config: ModelConfig) {
        self.source = source
        self.config = config
    }

    /// Opens a model directory (config.json + weights).
    public convenience init(directory: String) throws {
        try self.init(source: Checkpoint.open(directory), config: ModelConfig.load(directory: directory))
    }

    // MARK: weights

    func weight(_ name: String, _ shape: [Int]) throws -> [Float] {
        guard source.info(name) != nil else { throw Failure.missingTensor(name) }
        let v = try source.tensor(named: name)
        guard v.shape == shape else { throw Failure.badShape(name, v.shape) }
        return try v.floats()
    }

    /// Expert `e`'s gate, up and down weights, from per-expert tensors or fused 3-D tensors.
    func expertWeights(_ layer: Int, _ e: Int) throws -> (gate: [Float], up: [Float], down: [Float]) {
        let c = config, h = c.hiddenSize, i = c.expertIntermediateSize
        let p = "model.layers.\(layer)."
        let (g, u, d) = c.family == .mixtral
            ? ("block_sparse_moe.experts.\(e).w1.weight", "block_sparse_moe.experts.\(e).w3.weight", "block_sparse_moe.experts.\(e).w2.weight")
            : ("mlp.experts.\(e).gate_proj.weight", "mlp.experts.\(e).up_proj.weight", "mlp.experts.\(e).down_proj.weight")
        if source.info(p + g) != nil {
            return (try weight(p + g, [i, h]), try weight(p + u, [i, h]), try weight(p + d, [h, i]))
        }
        // llm-compressor's names for Mixtral experts (w1/w3/w2 → gate_proj/up_proj/down_proj)
        let q = p + "block_sparse_moe.experts.\(e)."
        if c.family == .mixtral, source.info(q + "gate_proj.weight") != nil {
            return (try weight(q + "gate_proj.weight", [i, h]), try weight(q + "up_proj.weight", [i, h]), try weight(q + "down_proj.weight", [h, i]))
        }
        // transformers 5 fused layout: gate_up_proj [E, 2I, H] (gate rows first), down_proj [E, H, I]
        let gu = try weight(p + "mlp.experts.gate_up_proj", [c.experts, 2 * i, h])
        let dn = try weight(p + "mlp.experts.down_proj", [c.experts, h, i])
        let base = e * 2 * i * h
        return (Array(gu[base..<(base + i * h)]), Array(gu[(base + i * h)..<(base + 2 * i * h)]),
                Array(dn[(e * h * i)..<((e + 1) * h * i)]))
    }

    func routerName(_ layer: Int) -> String {
        let p = "model.layers.\(layer)."
        if config.family == .mixtral, source.info(p + "block_sparse_moe.gate.weight") != nil { return p + "block_sparse_moe.gate.weight" }
        return p + "mlp.gate.weight"
    }

    // MARK: forward

    /// Logits `[tokens, vocab]` (row-major) for one sequence, positions 0..<n.
    public func logits(_ tokens: [Int]) throws -> [Float] {
        try logits(hidden: finalHidden([tokens])[0], rows: tokens.count)
    }

    /// Final normed hidden states `[n, hidden]` of each sequence, computed layer by layer over the whole batch so
    /// each layer's weights are decoded once (memory: one layer's weights plus the batch's activations).
    public func finalHidden(_ batch: [[Int]]) throws -> [[Float]] {
        let c = config, h = c.hiddenSize
        let embed = try weight("model.embed_tokens.weight", [c.vocabSize, h])
        // All sequences' rows in one matrix: every linear layer is one sgemm over the whole batch; only
        // attention (and RoPE positions) work per sequence.
        let rows = batch.reduce(0) { $0 + $1.count }
        var starts: [Int] = []
        var x = [Float](repeating: 0, count: rows * h)
        var r = 0
        for tokens in batch {
            starts.append(r)
            for id in tokens {
                guard id >= 0 && id < c.vocabSize else { throw Failure.tokenOutOfRange(id) }
                for k in 0..<h { x[r * h + k] = embed[id * h + k] }
                r += 1
            }
        }
        let maxLen = batch.map(\.count).max() ?? 0
        let (cosT, sinT) = rope(maxLen)
        let segments = zip(starts, batch.map(\.count)).map { ($0, $1) }
        for l in 0..<c.layers {
            let w = try LayerWeights(model: self, layer: l)
            var hN = Kernels.rmsNorm(x, w.inputNorm, rows: rows, eps: c.rmsNormEps)
            let attn = attention(&hN, w, rows: rows, segments: segments, cos: cosT, sin: sinT)
            for k in x.indices { x[k] += attn[k] }
            hN = Kernels.rmsNorm(x, w.postNorm, rows: rows, eps: c.rmsNormEps)
            let mlp = try w.experts.isEmpty ? denseMLP(hN, w, n: rows) : moe(hN, w, n: rows)
            for k in x.indices { x[k] += mlp[k] }
        }
        let norm = try weight("model.norm.weight", [h])
        let normed = Kernels.rmsNorm(x, norm, rows: rows, eps: c.rmsNormEps)
        return segments.map { Array(normed[($0.0 * h)..<(($0.0 + $0.1) * h)]) }
    }

    /// The output head (lm_head, or the tied embedding).
    public func outputHead() throws -> [Float] {
        let c = config
        return source.info("lm_head.weight") != nil || !c.tieWordEmbeddings
            ? try weight("lm_head.weight", [c.vocabSize, c.hiddenSize]) : try weight("model.embed_tokens.weight", [c.vocabSize, c.hiddenSize])
    }

    /// Logits `[rows, vocab]` from final hidden states.
    public func logits(hidden: [Float], rows: Int, head: [Float]? = nil) throws -> [Float] {
        Kernels.linear(hidden, try head ?? outputHead(), rows: rows, inputs: config.hiddenSize, outputs: config.vocabSize)
    }

    /// One decoder layer's weights, decoded to f32 once.
    struct LayerWeights {
        var inputNorm: [Float], postNorm: [Float]
        var q: [Float], k: [Float], v: [Float], o: [Float]
        var qNorm: [Float]?, kNorm: [Float]?
        var gate: [Float] = [], up: [Float] = [], down: [Float] = []
        var router: [Float] = []
        var experts: [(gate: [Float], up: [Float], down: [Float])] = []

        init(model m: ReferenceModel, layer l: Int) throws {
            let c = m.config, h = c.hiddenSize, d = c.headDim, H = c.heads, KV = c.kvHeads
            let p = "model.layers.\(l)."
            inputNorm = try m.weight(p + "input_layernorm.weight", [h])
            postNorm = try m.weight(p + "post_attention_layernorm.weight", [h])
            q = try m.weight(p + "self_attn.q_proj.weight", [H * d, h])
            k = try m.weight(p + "self_attn.k_proj.weight", [KV * d, h])
            v = try m.weight(p + "self_attn.v_proj.weight", [KV * d, h])
            o = try m.weight(p + "self_attn.o_proj.weight", [h, H * d])
            if c.qkNorm {
                qNorm = try m.weight(p + "self_attn.q_norm.weight", [d])
                kNorm = try m.weight(p + "self_attn.k_norm.weight", [d])
            }
            if c.isMoE && !c.denseLayers.contains(l) {
                router = try m.weight(m.routerName(l), [c.experts, h])
                experts = try (0..<c.experts).map { try m.expertWeights(l, $0) }
            } else {
                let i = c.intermediateSize
                gate = try m.weight(p + "mlp.gate_proj.weight", [i, h])
                up = try m.weight(p + "mlp.up_proj.weight", [i, h])
                down = try m.weight(p + "mlp.down_proj.weight", [h, i])
            }
        }
    }

    /// cos/sin tables `[n, headDim]` for default RoPE, computed in f32 as transformers does.
    func rope(_ n: Int) -> ([Float], [Float]) {
        let d = config.headDim
        let inv = (0..<(d / 2)).map { i in 1 / powf(config.ropeTheta, Float(2 * i) / Float(d)) }
        var c = [Float](repeating: 0, count: n * d), s = c
        for t in 0..<n {
            for i in 0..<(d / 2) {
                let a = Float(t) * inv[i]
                c[t * d + i] = cosf(a); c[t * d + i + d / 2] = cosf(a)
                s[t * d + i] = sinf(a); s[t * d + i + d / 2] = sinf(a)
            }
        }
        return (c, s)
    }

    /// Attention over `rows` rows made of independent sequences (`segments`: start row, length).
    func attention(_ x: inout [Float], _ w: LayerWeights, rows n: Int, segments: [(Int, Int)], cos: [Float], sin: [Float]) -> [Float] {
        let c = config, h = c.hiddenSize, d = c.headDim, H = c.heads, KV = c.kvHeads
        var q = Kernels.linear(x, w.q, rows: n, inputs: h, outputs: H * d)
        var k = Kernels.linear(x, w.k, rows: n, inputs: h, outputs: KV * d)
        let v = Kernels.linear(x, w.v, rows: n, inputs: h, outputs: KV * d)
        if let qn = w.qNorm, let kn = w.kNorm {
            q = Kernels.rmsNorm(q, qn, rows: n * H, eps: c.rmsNormEps)
            k = Kernels.rmsNorm(k, kn, rows: n * KV, eps: c.rmsNormEps)
        }
        for (start, len) in segments {
            Kernels.applyRoPE(&q, heads: H, rows: start..<(start + len), d: d, cos: cos, sin: sin)
            Kernels.applyRoPE(&k, heads: KV, rows: start..<(start + len), d: d, cos: cos, sin: sin)
        }
        var out = [Float](repeating: 0, count: n * H * d)
        let scale = 1 / Float(d).squareRoot()
        // Heads run one after another: each head's products are sgemm calls that already use every core
        // (nesting a parallel loop over heads only made OpenBLAS's threads fight for the cores).
        out.withUnsafeMutableBufferPointer { o in
            for (start, len) in segments {
                for head in 0..<H {
                    Kernels.attentionHead(q: q, k: k, v: v, rows: start..<(start + len), head: head, kvHead: head / (H / KV),
                                          heads: H, kvHeads: KV, d: d, scale: scale, out: o.baseAddress!)
                }
            }
        }
        return Kernels.linear(out, w.o, rows: n, inputs: H * d, outputs: h)
    }

    func denseMLP(_ x: [Float], _ w: LayerWeights, n: Int) throws -> [Float] {
        Kernels.swiglu(x, gate: w.gate, up: w.up, down: w.down, rows: n, hidden: config.hiddenSize, inner: config.intermediateSize)
    }

    func moe(_ x: [Float], _ lw: LayerWeights, n: Int) throws -> [Float] {
        let c = config, h = c.hiddenSize, E = c.experts, K = c.expertsPerToken
        let logits = Kernels.linear(x, lw.router, rows: n, inputs: h, outputs: E)
        // softmax over experts, top-k, optional renormalisation (per token, in f32)
        var chosen = [[(expert: Int, weight: Float)]](repeating: [], count: n)
        for t in 0..<n {
            let row = Array(logits[(t * E)..<((t + 1) * E)])
            let m = row.max()!
            let ex = row.map { expf($0 - m) }
            let sum = ex.reduce(0, +)
            let probs = ex.map { $0 / sum }
            let top = probs.enumerated().sorted { $0.element > $1.element || ($0.element == $1.element && $0.offset < $1.offset) }.prefix(K)
            let norm = c.normalizeTopK ? top.reduce(0) { $0 + $1.element } : 1
            chosen[t] = top.map { ($0.offset, $0.element / norm) }
        }
        var out = [Float](repeating: 0, count: n * h)
        for e in 0..<E {
            let tokens = (0..<n).filter { t in chosen[t].contains { $0.expert == e } }
            if tokens.isEmpty { continue }
            var xs = [Float](repeating: 0, count: tokens.count * h)
            for (r, t) in tokens.enumerated() { for k in 0..<h { xs[r * h + k] = x[t * h + k] } }
            let w = lw.experts[e]
            let y = Kernels.swiglu(xs, gate: w.gate, up: w.up, down: w.down, rows: tokens.count, hidden: h, inner: c.expertIntermediateSize)
            for (r, t) in tokens.enumerated() {
                let g = chosen[t].first { $0.expert == e }!.weight
                for k in 0..<h { out[t * h + k] += g * y[r * h + k] }
            }
        }
        return out
    }
}

/// The numeric kernels of the forward pass.
enum Kernels {
    /// y[rows, outputs] = x[rows, inputs] · Wᵀ (W row-major [outputs, inputs]).
    static func linear(_ x: [Float], _ w: [Float], rows: Int, inputs: Int, outputs: Int) -> [Float] {
        var y = [Float](repeating: 0, count: rows * outputs)
        if rows == 0 { return y }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outputs), Int32(inputs), 1, x, Int32(inputs),
                    w, Int32(inputs), 0, &y, Int32(outputs))
        return y
    }

    /// RMSNorm over rows of width `w.count`, as transformers computes it in f32.
    static func rmsNorm(_ x: [Float], _ w: [Float], rows: Int, eps: Float) -> [Float] {
        let d = w.count
        var y = [Float](repeating: 0, count: x.count)
        for r in 0..<rows {
            var ss: Float = 0
            for k in 0..<d { ss += x[r * d + k] * x[r * d + k] }
            let inv = 1 / (ss / Float(d) + eps).squareRoot()
            for k in 0..<d { y[r * d + k] = w[k] * (x[r * d + k] * inv) }
        }
        return y
    }

    /// Rotary embedding in place on rows `rows` of `[·, heads, d]`; positions count from the first row.
    static func applyRoPE(_ x: inout [Float], heads: Int, rows: Range<Int>, d: Int, cos: [Float], sin: [Float]) {
        let half = d / 2
        for row in rows {
            let t = row - rows.lowerBound
            for hd in 0..<heads {
                let base = (row * heads + hd) * d
                for i in 0..<half {
                    let a = x[base + i], b = x[base + i + half]
                    x[base + i] = a * cos[t * d + i] - b * sin[t * d + i]
                    x[base + i + half] = b * cos[t * d + i + half] + a * sin[t * d + i + half]
                }
            }
        }
    }

    /// Causal softmax attention for one head: scores = q·kᵀ·scale (sgemm), softmax in f32, · v (sgemm).
    static func attentionHead(q: [Float], k: [Float], v: [Float], rows: Range<Int>, head: Int, kvHead: Int, heads: Int, kvHeads: Int,
                              d: Int, scale: Float, out: UnsafeMutablePointer<Float>) {
        let n = rows.count, r0 = rows.lowerBound
        var qh = [Float](repeating: 0, count: n * d), kh = qh, vh = qh
        for t in 0..<n {
            for i in 0..<d {
                qh[t * d + i] = q[((r0 + t) * heads + head) * d + i]
                kh[t * d + i] = k[((r0 + t) * kvHeads + kvHead) * d + i]
                vh[t * d + i] = v[((r0 + t) * kvHeads + kvHead) * d + i]
            }
        }
        var s = [Float](repeating: 0, count: n * n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(d), 1, qh, Int32(d), kh, Int32(d), 0, &s, Int32(n))
        for t in 0..<n {
            var m = -Float.infinity
            for j in 0...t { s[t * n + j] *= scale; m = max(m, s[t * n + j]) }
            var sum: Float = 0
            for j in 0...t { let e = expf(s[t * n + j] - m); s[t * n + j] = e; sum += e }
            for j in 0...t { s[t * n + j] /= sum }
            for j in (t + 1)..<max(n, t + 1) { s[t * n + j] = 0 }
        }
        var o = [Float](repeating: 0, count: n * d)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(d), Int32(n), 1, s, Int32(n), vh, Int32(d), 0, &o, Int32(d))
        for t in 0..<n { for i in 0..<d { out[((r0 + t) * heads + head) * d + i] = o[t * d + i] } }
    }

    /// down(silu(gate(x)) · up(x)).
    static func swiglu(_ x: [Float], gate: [Float], up: [Float], down: [Float], rows: Int, hidden: Int, inner: Int) -> [Float] {
        var g = linear(x, gate, rows: rows, inputs: hidden, outputs: inner)
        let u = linear(x, up, rows: rows, inputs: hidden, outputs: inner)
        for i in g.indices { let a = g[i]; g[i] = a / (1 + expf(-a)) * u[i] }
        return linear(g, down, rows: rows, inputs: inner, outputs: hidden)
    }
}
