import Foundation
import IngotCore

/// Fidelity thresholds a CI or release job gates on; unset gates are not checked.
public struct Gates: Sendable, Equatable {
    public var maxPplDelta: Double?
    public var maxPplRatio: Double?
    public var maxKLD: Double?
    public var minTop1: Double?
    public init() {}

    public struct Outcome: Sendable, Equatable {
        public var gate: String
        public var limit: Double
        public var value: Double
        public var passed: Bool
        public init(gate: String, limit: Double, value: Double, passed: Bool) {
            self.gate = gate; self.limit = limit; self.value = value; self.passed = passed
        }
    }

    /// Every set gate against `r`. NaN values fail.
    public func check(_ r: VerifyResult) -> [Outcome] {
        var out: [Outcome] = []
        func upper(_ name: String, _ limit: Double?, _ v: Double) { if let limit { out.append(.init(gate: name, limit: limit, value: v, passed: v <= limit)) } }
        upper("max-ppl-delta", maxPplDelta, r.pplDelta)
        upper("max-ppl-ratio", maxPplRatio, r.pplRatio)
        upper("max-kld", maxKLD, r.meanKLD)
        if let m = minTop1 { out.append(.init(gate: "min-top1", limit: m, value: r.top1Agreement, passed: r.top1Agreement >= m)) }
        return out
    }
}

extension VerifyResult {
    /// The machine-readable report (`--json`).
    public func json(gates: [Gates.Outcome]) -> JSON {
        func d(_ x: Double) -> JSON { x.isFinite ? .double(x) : .null }
        return .object([
            ("passed", .bool(gates.allSatisfy(\.passed))),
            ("tokens", .int(tokens)), ("predictions", .int(predictions)), ("windows", .int(windows)), ("context", .int(context)),
            ("ppl_original", d(pplOriginal)), ("ppl_quantized", d(pplQuantized)), ("ppl_delta", d(pplDelta)),
            ("ppl_ratio", d(pplRatio)), ("ln_ppl_ratio", d(log(pplRatio))),
            ("kld", .object([("mean", d(meanKLD)), ("median", d(kldQuantile(0.5))), ("p90", d(kldQuantile(0.9))),
                             ("p95", d(kldQuantile(0.95))), ("p99", d(kldQuantile(0.99))), ("max", d(kldQuantile(1))),
                             ("min", d(kldQuantile(0)))])),
            ("rms_delta_p", d(rmsDeltaP)), ("same_top_p", d(top1Agreement)),
            ("seconds", d(seconds)),
            ("gates", .array(gates.map { .object([("gate", .string($0.gate)), ("limit", d($0.limit)), ("value", d($0.value)),
                                                  ("passed", .bool($0.passed))]) })),
            ("weights", .array(weightErrors.map { .object([("name", .string($0.name)), ("rel_l2", d($0.relL2))]) })),
        ])
    }

    /// The summary table (llama.cpp's names in parentheses).
    public var summaryRows: [[String]] {
        func f(_ x: Double, _ p: Int = 4) -> String { String(format: "%.\(p)f", x) }
        return [
            ["perplexity (original)", f(pplOriginal)], ["perplexity (quantized)", f(pplQuantized)],
            ["ppl delta", f(pplDelta)], ["ppl ratio", f(pplRatio, 5)], ["ln ppl ratio", f(log(pplRatio), 5)],
            ["mean KLD", String(format: "%.6f", meanKLD)], ["KLD median / p99 / max", String(format: "%.5f / %.5f / %.5f", kldQuantile(0.5), kldQuantile(0.99), kldQuantile(1))],
            ["RMS Δp", String(format: "%.3f %%", rmsDeltaP * 100)], ["same top p", String(format: "%.3f %%", top1Agreement * 100)],
            ["scored tokens", "\(predictions) (\(windows) windows of \(context))"],
        ]
    }
}
