import COpenBLAS
import Foundation
import IngotCore
import IngotModel

extension ReferenceModel {
    /// DeepSeek-V3 multi-head latent attention, as transformers computes it (eager): q from a normed low-rank
    /// latent (or directly), k/v from a normed compressed latent, one rope key shared by all heads, RoPE on the
    /// rope part only (de-interleaved first when `rope_interleave`), scores over nope+rope dims, values of
    /// `v_head_dim`.
    func latentAttentionBlock(_ x: [Float], _ w: LayerWeights, _ la: LayerWeights.Latent, _ batch: SequenceBatch,
                              observer: LinearInputObserver?, preOutput: (([Float]) -> Void)?) -> [Float] {
        let c = config, h = c.hiddenSize, H = c.heads, n = batch.rows
        let a = c.latentAttention!, nope = a.qkNopeHeadDim, rope = a.qkRopeHeadDim, vd = a.vHeadDim, qk = a.qkHeadDim, r = a.kvLoraRank
        observer?(.attention, x, n)
        let qFlat: [Float]
        if let qr = a.qLoraRank {
            let latent = Kernels.rmsNorm(Kernels.linear(x, la.qA, rows: n, inputs: h, outputs: qr), la.qANorm, rows: n, eps: c.rmsNormEps)
            observer?(.qLatent, latent, n)
            qFlat = Kernels.linear(latent, la.qB, rows: n, inputs: qr, outputs: H * qk)
        } else {
            qFlat = Kernels.linear(x, la.q, rows: n, inputs: h, outputs: H * qk)
        }
        let ckv = Kernels.linear(x, la.kvA, rows: n, inputs: h, outputs: r + rope)
        var kvLatent = [Float](repeating: 0, count: n * r)
        var kRot = [Float](repeating: 0, count: n * rope)
        for t in 0..<n {
            for i in 0..<r { kvLatent[t * r + i] = ckv[t * (r + rope) + i] }
            for i in 0..<rope { kRot[t * rope + i] = ckv[t * (r + rope) + r + i] }
        }
        kvLatent = Kernels.rmsNorm(kvLatent, la.kvANorm, rows: n, eps: c.rmsNormEps)
        observer?(.kvLatent, kvLatent, n)
        let kv = Kernels.linear(kvLatent, la.kvB, rows: n, inputs: r, outputs: H * (nope + vd))
        // Assemble q, k [n, H, qk] (nope | rope) and v [n, H, vd]; RoPE on the rope parts.
        var q = [Float](repeating: 0, count: n * H * qk), k = q
        var v = [Float](repeating: 0, count: n * H * vd)
        var qRot = [Float](repeating: 0, count: n * H * rope)
        for t in 0..<n {
            for hd in 0..<H {
                let qb = (t * H + hd) * qk, kb = (t * H + hd) * (nope + vd)
                for i in 0..<nope { q[qb + i] = qFlat[qb + i]; k[qb + i] = kv[kb + i] }
                for i in 0..<vd { v[(t * H + hd) * vd + i] = kv[kb + nope + i] }
                for i in 0..<rope { qRot[(t * H + hd) * rope + i] = qFlat[qb + nope + i] }
            }
        }
        if a.ropeInterleave {
            Kernels.deinterleave(&qRot, width: rope)
            Kernels.deinterleave(&kRot, width: rope)
        }
        for (start, len) in batch.segments {
            Kernels.applyRoPE(&qRot, heads: H, rows: start..<(start + len), d: rope, cos: batch.cos, sin: batch.sin)
            Kernels.applyRoPE(&kRot, heads: 1, rows: start..<(start + len), d: rope, cos: batch.cos, sin: batch.sin)
        }
        for t in 0..<n {
            for hd in 0..<H {
                let qb = (t * H + hd) * qk
                for i in 0..<rope { q[qb + nope + i] = qRot[(t * H + hd) * rope + i]; k[qb + nope + i] = kRot[t * rope + i] }
            }
        }
        let out = Kernels.attention(q: q, k: k, v: v, segments: batch.segments, heads: H, kvHeads: H, dk: qk, dv: vd,
                                    scale: attentionScale(qkHeadDim: qk))
        observer?(.output, out, n)
        preOutput?(out)
        return Kernels.linear(out, w.o, rows: n, inputs: H * vd, outputs: h)
    }

    /// `qk_head_dim^-0.5`, times YaRN's `mscale(factor, mscale_all_dim)²` when configured (DeepSeek-V3).
    func attentionScale(qkHeadDim: Int) -> Float {
        var s = 1 / Double(qkHeadDim).squareRoot()
        if let y = config.yarn, let all = y.mscaleAllDim, all != 0 {
            let m = YaRNMath.mscale(y.factor, all)
            s *= m * m
        }
        return Float(s)
    }
}

/// YaRN's frequency blend and attention factor (transformers `_compute_yarn_parameters`).
enum YaRNMath {
    static func mscale(_ scale: Double, _ m: Double = 1) -> Double { scale <= 1 ? 1 : 0.1 * m * log(scale) + 1 }

    /// Inverse frequencies for `dim` rotary dims, and the factor cos/sin are multiplied by.
    static func inverseFrequencies(_ y: ModelConfig.YaRN, dim: Int, base: Double) -> (inv: [Float], attention: Float) {
        let attention = y.attentionFactor ?? {
            if let m = y.mscale, let all = y.mscaleAllDim, m != 0, all != 0 { return mscale(y.factor, m) / mscale(y.factor, all) }
            return mscale(y.factor)
        }()
        func correctionDim(_ rotations: Double) -> Double {
            Double(dim) * log(Double(y.originalMaxPositions) / (rotations * 2 * Double.pi)) / (2 * log(base))
        }
        var low = correctionDim(y.betaFast), high = correctionDim(y.betaSlow)
        if y.truncate { low = floor(low); high = ceil(high) }
        low = max(low, 0); high = min(high, Double(dim - 1))
        if low == high { high += 0.001 }
        var inv = [Float](repeating: 0, count: dim / 2)
        for i in 0..<(dim / 2) {
            // transformers computes these in f32 from an f32 arange
            let pos = Float(pow(base, Double(Float(2 * i)) / Double(dim)))
            let extrapolation = 1 / pos, interpolation = 1 / (Float(y.factor) * pos)
            let ramp = Float(min(max((Double(Float(i)) - low) / (high - low), 0), 1))
            let extrapolationFactor = 1 - ramp
            inv[i] = interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor
        }
        return (inv, Float(attention))
    }
}
