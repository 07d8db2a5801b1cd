import CKernels
import Foundation
import IngotCore

/// Perplexity over non-overlapping windows of `context` tokens (only full windows), each window scoring its
/// `context − 1` next-token predictions (the first token is context only), log-softmax accumulated in f64.
/// With `stride` < `context`, windows overlap and only the last `stride` predictions of each are scored after
/// the first window (sliding evaluation).
public struct PerplexityResult: Sendable {
    public struct Window: Sendable { public var start: Int; public var predictions: Int; public var nll: Double }
    public var windows: [Window] = []
    public var predictions: Int { windows.reduce(0) { $0 + $1.predictions } }
    public var nll: Double { windows.reduce(0) { $0 + $1.nll } }
    public var perplexity: Double { exp(nll / Double(max(predictions, 1))) }
    public var seconds = 0.0
    public var tokensPerSecond: Double { Double(windows.count > 0 ? windows.count * windowLength : 0) / max(seconds, 1e-9) }
    var windowLength = 0
}

public enum Perplexity {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case tooFewTokens(have: Int, need: Int)
        case badStride(Int)
        public var description: String {
            switch self {
            case let .tooFewTokens(h, n): "the text has \(h) tokens, fewer than one window of \(n)"
            case let .badStride(s): "stride \(s) must be between 1 and the context length"
            }
        }
    }

    public static func evaluate(_ model: ReferenceModel, tokens: [Int], context: Int, stride: Int? = nil,
                                progress: ProgressReporter = SilentProgress()) throws -> PerplexityResult {
        guard tokens.count >= context, context >= 2 else { throw Failure.tooFewTokens(have: tokens.count, need: context) }
        let step = stride ?? context
        guard step >= 1, step <= context else { throw Failure.badStride(step) }
        try ForwardLimits.check(model.config, length: context, sequences: min(8, tokens.count / context), logits: true, option: "--ctx")
        var result = PerplexityResult()
        result.windowLength = context
        let t0 = monotonicSeconds()
        var starts: [Int] = []
        var s = 0
        while s + context <= tokens.count { starts.append(s); s += step }
        progress.begin("eval", total: starts.count * context, unit: .tokens)
        let V = model.config.vocabSize
        let head = try model.outputHead()
        // Windows go through the layers together, a group at a time (each layer's weights decoded once per group).
        let group = 8
        var hidden: [[Float]] = []
        var logits: [Float] = []  // one buffer for every window's logits
        for (w, start) in starts.enumerated() {
            let window = Array(tokens[start..<(start + context)])
            if w % group == 0 {
                let upto = min(starts.count, w + group)
                hidden = try model.finalHidden(starts[w..<upto].map { Array(tokens[$0..<($0 + context)]) })
            }
            try model.logits(hidden: hidden[w % group], rows: context, head: head, into: &logits)
            // Score positions whose target is new: all of the first window, the last `step` of later ones.
            let firstScored = (w == 0 || step == context) ? 0 : context - 1 - step
            // −log softmax(target) per scored position, rows in parallel, summed in position order.
            let scored = firstScored..<(context - 1)
            var losses = [Double](repeating: 0, count: scored.count)
            logits.withUnsafeBufferPointer { lp in
                losses.withUnsafeMutableBufferPointer { out in
                    let p = UncheckedSendable((lp.baseAddress!, out.baseAddress!))
                    parallelFor(scored.count) { i in
                        let t = scored.lowerBound + i, row = p.value.0 + t * V
                        p.value.1[i] = ck_logsumexp(row, V) - Double(row[window[t + 1]])
                    }
                }
            }
            let nll = losses.reduce(0, +)
            result.windows.append(.init(start: start, predictions: context - 1 - firstScored, nll: nll))
            progress.update((w + 1) * context)
        }
        progress.finish()
        result.seconds = monotonicSeconds() - t0
        return result
    }
}
