import Foundation
import IngotCore
import IngotFormats
import IngotForward
import IngotModel

/// Fidelity of a quantized model against its original, computed online over windows of real text (no logit
/// dump), with the metrics llama.cpp's `llama-perplexity --kl-divergence` reports.
public struct VerifyResult: Sendable {
    public var tokens = 0
    public var windows = 0
    public var context = 0
    /// Σ −log p(target) of each model (f64).
    public var nllOriginal = 0.0, nllQuantized = 0.0
    /// KL(P_original ‖ P_quantized) per scored token.
    public var kld: [Double] = []
    /// p_quantized(target) − p_original(target) per scored token.
    public var deltaP: [Double] = []
    /// Tokens where both models' argmax agree.
    public var sameTop = 0
    public var seconds = 0.0
    /// Per quantized weight: relative L2 reconstruction error ‖Ŵ − W‖ / ‖W‖.
    public var weightErrors: [(name: String, relL2: Double)] = []

    public var predictions: Int { kld.count }
    public var pplOriginal: Double { exp(nllOriginal / Double(max(predictions, 1))) }
    public var pplQuantized: Double { exp(nllQuantized / Double(max(predictions, 1))) }
    public var pplDelta: Double { pplQuantized - pplOriginal }
    public var pplRatio: Double { pplQuantized / pplOriginal }
    public var meanKLD: Double { kld.reduce(0, +) / Double(max(kld.count, 1)) }
    public var rmsDeltaP: Double { (deltaP.reduce(0) { $0 + $1 * $1 } / Double(max(deltaP.count, 1))).squareRoot() }
    public var top1Agreement: Double { Double(sameTop) / Double(max(predictions, 1)) }

    /// The q-quantile of the per-token KL divergences (nearest rank).
    public func kldQuantile(_ q: Double) -> Double {
        guard !kld.isEmpty else { return 0 }
        let s = kld.sorted()
        return s[min(s.count - 1, max(0, Int((q * Double(s.count - 1)).rounded())))]
    }
}

public enum Verification {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case tooFewTokens(have: Int, need: Int)
        case configMismatch(String)
        public var description: String {
            switch self {
            case let .tooFewTokens(h, n): "the text has \(h) tokens, fewer than one window of \(n)"
            case .configMismatch(let r): "the two models differ in architecture: \(r)"
            }
        }
    }

    /// Runs both models over non-overlapping windows of `context` tokens (a group of windows at a time, each
    /// layer's weights decoded once per group) and accumulates the metrics.
    public static func run(original: ReferenceModel, quantized: ReferenceModel, tokens: [Int], context: Int,
                           progress: ProgressReporter = SilentProgress()) throws -> VerifyResult {
        let a = original.config, b = quantized.config
        guard a.vocabSize == b.vocabSize, a.hiddenSize == b.hiddenSize, a.layers == b.layers else {
            throw Failure.configMismatch("vocab \(a.vocabSize)/\(b.vocabSize), hidden \(a.hiddenSize)/\(b.hiddenSize), layers \(a.layers)/\(b.layers)")
        }
        guard tokens.count >= context, context >= 2 else { throw Failure.tooFewTokens(have: tokens.count, need: context) }
        try ForwardLimits.check(a, length: context, sequences: 8, logits: true, option: "--ctx")
        let t0 = monotonicSeconds()
        var r = VerifyResult()
        r.context = context
        let starts = Array(stride(from: 0, through: tokens.count - context, by: context))
        let V = a.vocabSize
        let headA = try original.outputHead(), headB = try quantized.outputHead()
        progress.begin("verify", total: starts.count * context, unit: .tokens)
        let group = 8
        var la: [Float] = [], lb: [Float] = []  // each window's logits, buffers reused across windows
        for g in stride(from: 0, to: starts.count, by: group) {
            let windows = starts[g..<min(starts.count, g + group)].map { Array(tokens[$0..<($0 + context)]) }
            let ha = try original.finalHidden(windows), hb = try quantized.finalHidden(windows)
            for (k, window) in windows.enumerated() {
                try original.logits(hidden: ha[k], rows: context, head: headA, into: &la)
                try quantized.logits(hidden: hb[k], rows: context, head: headB, into: &lb)
                var rows = [TokenMetrics](repeating: TokenMetrics(), count: context - 1)
                rows.withUnsafeMutableBufferPointer { out in
                    let o = UncheckedSendable(out)
                    la.withUnsafeBufferPointer { pa in
                        lb.withUnsafeBufferPointer { pb in
                            let (pa, pb) = (UncheckedSendable(pa), UncheckedSendable(pb))
                            parallelFor(context - 1) { t in
                                o.value[t] = TokenMetrics(UnsafeBufferPointer(rebasing: pa.value[(t * V)..<((t + 1) * V)]),
                                                          UnsafeBufferPointer(rebasing: pb.value[(t * V)..<((t + 1) * V)]),
                                                          target: window[t + 1])
                            }
                        }
                    }
                }
                for m in rows {
                    r.nllOriginal += m.nllA; r.nllQuantized += m.nllB
                    r.kld.append(m.kld); r.deltaP.append(m.deltaP)
                    if m.sameTop { r.sameTop += 1 }
                }
                r.windows += 1
                r.tokens += context
                progress.update(r.tokens)
            }
        }
        progress.finish()
        r.seconds = monotonicSeconds() - t0
        return r
    }

    /// Relative L2 error of every weight the quantized checkpoint changed (2-D tensors present in both).
    public static func weightErrors(original: TensorSource, quantized: TensorSource) throws -> [(name: String, relL2: Double)] {
        var out: [(String, Double)] = []
        let names = Set(quantized.tensors.map(\.name))
        for t in original.tensors where t.shape.count == 2 {
            let qn = names.contains(t.name) ? t.name : WeightNames.llmCompressorName(t.name)
            guard names.contains(qn), let qi = quantized.info(qn), qi.shape == t.shape else { continue }
            let w = try original.tensor(named: t.name).floats(), q = try quantized.tensor(named: qn).floats()
            var num = 0.0, den = 0.0
            for i in w.indices { let d = Double(q[i]) - Double(w[i]); num += d * d; den += Double(w[i]) * Double(w[i]) }
            if num == 0 { continue }
            out.append((t.name, den > 0 ? (num / den).squareRoot() : .infinity))
        }
        return out
    }
}

/// One position's comparison: both log-softmaxes in f64.
struct TokenMetrics {
    var nllA = 0.0, nllB = 0.0, kld = 0.0, deltaP = 0.0, sameTop = false

    init() {}

    init(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, target: Int) {
        var ma = -Float.infinity, mb = -Float.infinity, ia = 0, ib = 0
        for i in 0..<a.count {
            if a[i] > ma { ma = a[i]; ia = i }
            if b[i] > mb { mb = b[i]; ib = i }
        }
        var sa = 0.0, sb = 0.0
        for i in 0..<a.count { sa += exp(Double(a[i] - ma)); sb += exp(Double(b[i] - mb)) }
        let lza = Double(ma) + log(sa), lzb = Double(mb) + log(sb)
        var kl = 0.0
        for i in 0..<a.count {
            let lpa = Double(a[i]) - lza, lpb = Double(b[i]) - lzb
            kl += exp(lpa) * (lpa - lpb)
        }
        nllA = lza - Double(a[target]); nllB = lzb - Double(b[target])
        kld = max(kl, 0)
        deltaP = exp(-nllB) - exp(-nllA)
        sameTop = ia == ib
    }
}
