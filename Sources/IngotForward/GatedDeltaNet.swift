import Foundation
import IngotCore
import IngotModel

extension LayerWeights {
    /// Loads a Gated DeltaNet's weights, reordering Qwen3-Next's per-key-head groups of `in_proj_qkvz`
    /// (`[q_g, k_g, v_g…, z_g…]`) and `in_proj_ba` (`[b_g…, a_g…]`) into the split layout (all q, all k, all v; z;
    /// b; a) — a permutation of rows, so every output is the same dot product.
    static func linearAttention(_ m: ReferenceModel, _ n: LayerNames.LinearAttention, _ g: ModelConfig.GatedDeltaNet) throws -> LinearAttention {
        let h = m.config.hiddenSize, dk = g.keyHeadDim, dv = g.valueHeadDim, Hk = g.keyHeads, Hv = g.valueHeads, r = Hv / Hk
        var qkv: [Float], z: [Float], b: [Float], a: [Float]
        switch n.projections {
        case let .split(qkvName, zName, bName, aName):
            qkv = try m.weight(qkvName, [g.convDim, h]); z = try m.weight(zName, [g.valueDim, h])
            b = try m.weight(bName, [Hv, h]); a = try m.weight(aName, [Hv, h])
        case let .fused(qkvzName, baName):
            let fused = try m.weight(qkvzName, [2 * g.keyDim + 2 * g.valueDim, h]), ba = try m.weight(baName, [2 * Hv, h])
            qkv = [Float](repeating: 0, count: g.convDim * h); z = [Float](repeating: 0, count: g.valueDim * h)
            b = [Float](repeating: 0, count: Hv * h); a = b
            /// Copies `count` rows from `src` row `from` to `dst` row `to`.
            func rows(_ src: [Float], _ from: Int, _ dst: inout [Float], _ to: Int, _ count: Int) {
                for i in 0..<(count * h) { dst[to * h + i] = src[from * h + i] }
            }
            let group = 2 * dk + 2 * r * dv
            for k in 0..<Hk {
                let base = k * group
                rows(fused, base, &qkv, k * dk, dk)
                rows(fused, base + dk, &qkv, g.keyDim + k * dk, dk)
                rows(fused, base + 2 * dk, &qkv, 2 * g.keyDim + k * r * dv, r * dv)
                rows(fused, base + 2 * dk + r * dv, &z, k * r * dv, r * dv)
                rows(ba, k * 2 * r, &b, k * r, r)
                rows(ba, k * 2 * r + r, &a, k * r, r)
            }
        }
        return LinearAttention(qkv: qkv, z: z, b: b, a: a, conv: try m.weight(n.conv, [g.convDim, 1, g.convKernel]),
                               aLog: try m.weight(n.aLog, [Hv]), dtBias: try m.weight(n.dtBias, [Hv]),
                               norm: try m.weight(n.norm, [dv]), out: try m.weight(n.out, [h, g.valueDim]))
    }
}

extension ReferenceModel {
    /// Gated DeltaNet on normed input `[rows, hidden]`, per sequence, as transformers' Qwen3-Next computes it:
    /// q/k/v through a causal depthwise conv and silu; q and k L2-normalised (eps 1e-6), q scaled by dk^-1/2, each
    /// key head shared by `value_heads / key_heads` value heads; per token and value head the state
    /// `S [dk, dv]` decays by `exp(g)`, `g = −exp(A_log)·softplus(a + dt_bias)`, takes the delta-rule write
    /// `k ⊗ β(v − Sᵀk)`, `β = sigmoid(b)`, and outputs `Sᵀq`; then RMSNorm per head times `w ⊙ silu(z)`, out_proj.
    /// The recurrence is computed token by token (transformers' chunked form is the same sums regrouped).
    /// `preOutput` receives out_proj's input.
    public func gatedDeltaNetBlock(_ x: [Float], _ w: LayerWeights.LinearAttention, _ batch: SequenceBatch,
                                   observer: LinearInputObserver? = nil, preOutput: ((_ heads: [Float]) -> Void)? = nil) -> [Float] {
        let c = config, g = c.linearAttention!, h = c.hiddenSize, n = batch.rows
        let dk = g.keyHeadDim, dv = g.valueHeadDim, Hv = g.valueHeads, r = g.valueHeads / g.keyHeads, C = g.convDim, K = g.convKernel
        observer?(.attention, x, n)
        let mixed = Kernels.linear(x, w.qkv, rows: n, inputs: h, outputs: C)
        let z = Kernels.linear(x, w.z, rows: n, inputs: h, outputs: g.valueDim)
        let b = Kernels.linear(x, w.b, rows: n, inputs: h, outputs: Hv)
        let a = Kernels.linear(x, w.a, rows: n, inputs: h, outputs: Hv)

        // Causal depthwise conv over each sequence (zero history), then silu.
        var conv = [Float](repeating: 0, count: n * C)
        for (start, len) in batch.segments {
            for t in 0..<len {
                let row = start + t
                for ch in 0..<C {
                    var s: Float = 0
                    for j in max(0, K - 1 - t)..<K { s += w.conv[ch * K + j] * mixed[(row - (K - 1) + j) * C + ch] }
                    conv[row * C + ch] = s / (1 + expf(-s))
                }
            }
        }

        // The delta rule, one (sequence, value head) pair per task.
        var core = [Float](repeating: 0, count: n * g.valueDim)
        let pairs = batch.segments.count * Hv
        let qScale = 1 / Float(dk).squareRoot()
        core.withUnsafeMutableBufferPointer { o in
            let out = UncheckedSendable(o.baseAddress!)
            parallelFor(pairs) { p in
                let (start, len) = batch.segments[p / Hv], head = p % Hv, kh = head / r
                let decayRate = expf(w.aLog[head])
                var state = [Float](repeating: 0, count: dk * dv)
                var q = [Float](repeating: 0, count: dk), k = q, delta = [Float](repeating: 0, count: dv)
                for row in start..<(start + len) {
                    let base = row * C
                    var qq: Float = 0, kk: Float = 0
                    for i in 0..<dk {
                        q[i] = conv[base + kh * dk + i]; k[i] = conv[base + g.keyDim + kh * dk + i]
                        qq += q[i] * q[i]; kk += k[i] * k[i]
                    }
                    let qn = 1 / (qq + 1e-6).squareRoot(), kn = 1 / (kk + 1e-6).squareRoot()
                    for i in 0..<dk { q[i] = q[i] * qn * qScale; k[i] *= kn }
                    let decay = expf(-decayRate * Self.softplus(a[row * Hv + head] + w.dtBias[head]))
                    let beta = 1 / (1 + expf(-b[row * Hv + head]))
                    let v = base + 2 * g.keyDim + head * dv
                    state.withUnsafeMutableBufferPointer { s in
                        for i in 0..<(dk * dv) { s[i] *= decay }
                        for j in 0..<dv { delta[j] = 0 }
                        for i in 0..<dk {
                            let ki = k[i]
                            for j in 0..<dv { delta[j] += s[i * dv + j] * ki }
                        }
                        for j in 0..<dv { delta[j] = (conv[v + j] - delta[j]) * beta }
                        let y = out.value + row * g.valueDim + head * dv
                        for j in 0..<dv { y[j] = 0 }
                        for i in 0..<dk {
                            let ki = k[i], qi = q[i]
                            for j in 0..<dv {
                                s[i * dv + j] += ki * delta[j]
                                y[j] += s[i * dv + j] * qi
                            }
                        }
                    }
                }
            }
        }

        // RMSNorm over each head's dv values, × w ⊙ silu(z).
        for rh in 0..<(n * Hv) {
            let o = rh * dv
            var ss: Float = 0
            for j in 0..<dv { ss += core[o + j] * core[o + j] }
            let inv = 1 / (ss / Float(dv) + c.rmsNormEps).squareRoot()
            for j in 0..<dv {
                let zz = z[o + j]
                core[o + j] = w.norm[j] * (core[o + j] * inv) * (zz / (1 + expf(-zz)))
            }
        }
        observer?(.output, core, n)
        preOutput?(core)
        return Kernels.linear(core, w.out, rows: n, inputs: g.valueDim, outputs: h)
    }

    /// torch's softplus (β 1, threshold 20).
    static func softplus(_ x: Float) -> Float { x > 20 ? x : log1pf(expf(x)) }
}
