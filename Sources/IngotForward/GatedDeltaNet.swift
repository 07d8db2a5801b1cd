import Foundation
import IngotCore
import IngotModel

extension LayerWeights {
    /// Loads a Gated DeltaNet's weights in the checkpoint's layout.
    static func linearAttention(_ m: ReferenceModel, _ n: LayerNames.LinearAttention, _ g: ModelConfig.GatedDeltaNet) throws -> LinearAttention {
        let h = m.config.hiddenSize, Hv = g.valueHeads
        var w = LinearAttention(conv: try m.weight(n.conv, [g.convDim, 1, g.convKernel]), aLog: try m.weight(n.aLog, [Hv]),
                                dtBias: try m.weight(n.dtBias, [Hv]), norm: try m.weight(n.norm, [g.valueHeadDim]),
                                out: try m.weight(n.out, [h, g.valueDim]))
        switch n.projections {
        case let .split(qkv, z, b, a):
            w.qkv = try m.weight(qkv, [g.convDim, h]); w.z = try m.weight(z, [g.valueDim, h])
            w.b = try m.weight(b, [Hv, h]); w.a = try m.weight(a, [Hv, h])
        case let .fused(qkvz, ba):
            w.qkvz = try m.weight(qkvz, [2 * g.keyDim + 2 * g.valueDim, h]); w.ba = try m.weight(ba, [2 * Hv, h])
        }
        return w
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
        var mixed: [Float], z: [Float], b: [Float], a: [Float]
        if w.qkvz.isEmpty {
            mixed = Kernels.linear(x, w.qkv, rows: n, inputs: h, outputs: C)
            z = Kernels.linear(x, w.z, rows: n, inputs: h, outputs: g.valueDim)
            b = Kernels.linear(x, w.b, rows: n, inputs: h, outputs: Hv)
            a = Kernels.linear(x, w.a, rows: n, inputs: h, outputs: Hv)
        } else {
            // Qwen3-Next's per-key-head groups → all q, all k, all v (conv channels), z, b, a.
            let Hk = g.keyHeads, wide = 2 * g.keyDim + 2 * g.valueDim, group = 2 * dk + 2 * r * dv
            let qkvz = Kernels.linear(x, w.qkvz, rows: n, inputs: h, outputs: wide)
            let ba = Kernels.linear(x, w.ba, rows: n, inputs: h, outputs: 2 * Hv)
            mixed = [Float](repeating: 0, count: n * C); z = [Float](repeating: 0, count: n * g.valueDim)
            b = [Float](repeating: 0, count: n * Hv); a = b
            for t in 0..<n {
                for k in 0..<Hk {
                    let src = t * wide + k * group
                    for i in 0..<dk {
                        mixed[t * C + k * dk + i] = qkvz[src + i]
                        mixed[t * C + g.keyDim + k * dk + i] = qkvz[src + dk + i]
                    }
                    for i in 0..<(r * dv) {
                        mixed[t * C + 2 * g.keyDim + k * r * dv + i] = qkvz[src + 2 * dk + i]
                        z[t * g.valueDim + k * r * dv + i] = qkvz[src + 2 * dk + r * dv + i]
                    }
                    for i in 0..<r {
                        b[t * Hv + k * r + i] = ba[t * 2 * Hv + k * 2 * r + i]
                        a[t * Hv + k * r + i] = ba[t * 2 * Hv + k * 2 * r + r + i]
                    }
                }
            }
        }

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
