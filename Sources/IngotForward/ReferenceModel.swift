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
        let c = config, n = tokens.count, h = c.hiddenSize
        let embed = try weight("model.embed_tokens.weight", [c.vocabSize, h])
        var x = [Float](repeating: 0, count: n * h)
        for (t, id) in tokens.enumerated() {
            guard id >= 0 && id < c.vocabSize else { throw Failure.tokenOutOfRange(id) }
            for k in 0..<h { x[t * h + k] = embed[id * h + k] }
        }
        let (cosT, sinT) = rope(n)
        for l in 0..<c.layers {
            let p = "model.layers.\(l)."
            // attention block
            var hN = Kernels.rmsNorm(x, try weight(p + "input_layernorm.weight", [h]), rows: n, eps: c.rmsNormEps)
            let attn = try attention(&hN, layer: l, n: n, cos: cosT, sin: sinT)
            for k in x.indices { x[k] += attn[k] }
            // MLP block
            hN = Kernels.rmsNorm(x, try weight(p + "post_attention_layernorm.weight", [h]), rows: n, eps: c.rmsNormEps)
            let mlp = c.isMoE && !c.denseLayers.contains(l) ? try moe(hN, layer: l, n: n) : try denseMLP(hN, layer: l, n: n)
            for k in x.indices { x[k] += mlp[k] }
        }
        let normed = Kernels.rmsNorm(x, try weight("model.norm.weight", [h]), rows: n, eps: c.rmsNormEps)
        let head = source.info("lm_head.weight") != nil || !c.tieWordEmbeddings
            ? try weight("lm_head.weight", [c.vocabSize, h]) : embed
        return Kernels.linear(normed, head, rows: n, inputs: h, outputs: c.vocabSize)
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

    func attention(_ x: inout [Float], layer l: Int, n: Int, cos: [Float], sin: [Float]) throws -> [Float] {
        let c = config, h = c.hiddenSize, d = c.headDim, H = c.heads, KV = c.kvHeads
        let p = "model.layers.\(l).self_attn."
        var q = Kernels.linear(x, try weight(p + "q_proj.weight", [H * d, h]), rows: n, inputs: h, outputs: H * d)
        var k = Kernels.linear(x, try weight(p + "k_proj.weight", [KV * d, h]), rows: n, inputs: h, outputs: KV * d)
        let v = Kernels.linear(x, try weight(p + "v_proj.weight", [KV * d, h]), rows: n, inputs: h, outputs: KV * d)
        if c.qkNorm {
            q = Kernels.rmsNorm(q, try weight(p + "q_norm.weight", [d]), rows: n * H, eps: c.rmsNormEps)
            k = Kernels.rmsNorm(k, try weight(p + "k_norm.weight", [d]), rows: n * KV, eps: c.rmsNormEps)
        }
        Kernels.applyRoPE(&q, heads: H, n: n, d: d, cos: cos, sin: sin)
        Kernels.applyRoPE(&k, heads: KV, n: n, d: d, cos: cos, sin: sin)
        var out = [Float](repeating: 0, count: n * H * d)
        let scale = 1 / Float(d).squareRoot()
        out.withUnsafeMutableBufferPointer { o in
            let oo = UncheckedSendable(o)
            parallelFor(H) { head in
                Kernels.attentionHead(q: q, k: k, v: v, head: head, kvHead: head / (H / KV), heads: H, kvHeads: KV, n: n, d: d,
                                      scale: scale, out: oo.value.baseAddress!)
            }
        }
        return Kernels.linear(out, try weight(p + "o_proj.weight", [h, H * d]), rows: n, inputs: H * d, outputs: h)
    }

    func denseMLP(_ x: [Float], layer l: Int, n: Int) throws -> [Float] {
        let c = config, h = c.hiddenSize, i = c.intermediateSize, p = "model.layers.\(l).mlp."
        return Kernels.swiglu(x, gate: try weight(p + "gate_proj.weight", [i, h]), up: try weight(p + "up_proj.weight", [i, h]),
                              down: try weight(p + "down_proj.weight", [h, i]), rows: n, hidden: h, inner: i)
    }

    func moe(_ x: [Float], layer l: Int, n: Int) throws -> [Float] {
        let c = config, h = c.hiddenSize, E = c.experts, K = c.expertsPerToken
        let logits = Kernels.linear(x, try weight(routerName(l), [E, h]), rows: n, inputs: h, outputs: E)
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
            let w = try expertWeights(l, e)
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

    /// Rotary embedding in place on `[n, heads, d]` (half-split rotation, `rotate_half`).
    static func applyRoPE(_ x: inout [Float], heads: Int, n: Int, d: Int, cos: [Float], sin: [Float]) {
        let half = d / 2
        for t in 0..<n {
            for hd in 0..<heads {
                let base = (t * heads + hd) * d
                for i in 0..<half {
                    let a = x[base + i], b = x[base + i + half]
                    x[base + i] = a * cos[t * d + i] - b * sin[t * d + i]
                    x[base + i + half] = b * cos[t * d + i + half] + a * sin[t * d + i + half]
                }
            }
        }
    }

    /// Causal softmax attention for one head: scores = q·kᵀ·scale (sgemm), softmax in f32, · v (sgemm).
    static func attentionHead(q: [Float], k: [Float], v: [Float], head: Int, kvHead: Int, heads: Int, kvHeads: Int,
                              n: Int, d: Int, scale: Float, out: UnsafeMutablePointer<Float>) {
        var qh = [Float](repeating: 0, count: n * d), kh = qh, vh = qh
        for t in 0..<n {
            for i in 0..<d {
                qh[t * d + i] = q[(t * heads + head) * d + i]
                kh[t * d + i] = k[(t * kvHeads + kvHead) * d + i]
                vh[t * d + i] = v[(t * kvHeads + kvHead) * d + i]
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
        for t in 0..<n { for i in 0..<d { out[(t * heads + head) * d + i] = o[t * d + i] } }
    }

    /// down(silu(gate(x)) · up(x)).
    static func swiglu(_ x: [Float], gate: [Float], up: [Float], down: [Float], rows: Int, hidden: Int, inner: Int) -> [Float] {
        var g = linear(x, gate, rows: rows, inputs: hidden, outputs: inner)
        let u = linear(x, up, rows: rows, inputs: hidden, outputs: inner)
        for i in g.indices { let a = g[i]; g[i] = a / (1 + expf(-a)) * u[i] }
        return linear(g, down, rows: rows, inputs: inner, outputs: hidden)
    }
}
