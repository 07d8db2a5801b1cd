import Foundation
import IngotCalibration
import IngotCore
import IngotFormats
import IngotQuant
import IngotVerify
import Yams

/// A pipeline recipe (YAML): source, calibration, quantization scheme and overrides, exports, verification gates.
/// Paths are relative to the recipe file. Unknown keys are errors, so a typo never silently changes a release.
///
/// ```yaml
/// source: ../fixtures/tiny-moe-austen
/// output: out/tiny-moe-awq
/// calibration: {data: ../fixtures/texts/emma.txt, samples: 64, seq_len: 256, seed: 42}
/// quantize:
///   scheme: awq-int4          # a QuantScheme name: rtn-int4 | awq-int4 | gptq-int4 | rtn-int8 | fp8-e4m3 | …
///   transform: awq            # AWQ in front of any integer or FP4 scheme (awq-int4 implies it)
///   rounding: gptq            # after awq-int4's transform: rtn (default) or gptq
///   propagate_error: true     # AWQ / GPTQ on the quantized path's layer inputs (default: when GPTQ rounds)
///   clip: true                # the clip search (AWQ's, and GPTQ's group scales); symmetric_clip: true for AutoAWQ's clamps only
///   search_tokens: 4096       # sample rows AWQ's scale searches run on (0: all); the clip takes the whole sample
///   group_size: 64
///   ignore: ["re:.*layers\\.0\\..*"]
///   overrides: [{pattern: "re:.*down_proj", scheme: rtn-int8}]
/// exports: [compressed-tensors, autoawq]
/// verify:
///   text: heldout.txt
///   ctx: 256
///   gates: {max_ppl_delta: 1.0, max_kld: 0.01, min_top1: 0.9}
/// ```
public struct Recipe: Sendable {
    public struct CalibrationStep: Sendable {
        public var data: String
        public var samples = 128, seqLen = 512
        public var seed: UInt64 = 42
        public var settings = Calibration.Settings()
    }

    public struct QuantizeStep: Sendable {
        public var scheme: QuantScheme = .rtnInt4
        public var plan: QuantizationPlan
        public var activations = "dynamic"
        public var clip = true
        /// The clip search with symmetric clamps only (no one-sided pairs).
        public var symmetricClip = false
        public var rounding: QuantScheme.Rounding = .nearest
        /// AWQ's searches and GPTQ's Hessians on the quantized path's layer inputs (`PropagatedInputs`).
        public var propagateError: Bool?
        /// Sample rows AWQ's scale searches run on (nil: every row; `AWQ.searchTokens`).
        public var searchTokens: Int? = AWQ.defaultSearchTokens
        /// A transform asked for in front of the scheme's rounding (nil: the scheme's own).
        public var transform: QuantScheme.Transform?
        public var awq: Bool { (transform ?? scheme.transform) == .awq }
        /// Whether the step reads the calibration (AWQ, GPTQ rounding or static activations).
        public var usesCalibration: Bool { scheme.needsCalibration || awq || rounding == .gptq || activations == "static" }
    }

    public struct VerifyStep: Sendable {
        public var text: String
        public var ctx = 512
        public var maxTokens: Int?
        public var gates = Gates()
    }

    public var path: String
    public var source: String
    public var output: String
    public var calibration: CalibrationStep?
    public var quantize: QuantizeStep
    public var exports: [any RuntimeLayout] = []
    public var verify: VerifyStep?
    /// The recipe as parsed (canonical JSON), for hashing and the manifest.
    public var json: JSON

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case yaml(path: String, reason: String)
        case field(path: String, field: String, reason: String)
        public var description: String {
            switch self {
            case let .yaml(p, r): "\(p): not valid YAML: \(r)"
            case let .field(p, f, r): "\(p): '\(f)' \(r)"
            }
        }
    }

    public static func load(path: String) throws -> Recipe {
        try parse(yaml: String(decoding: try FileSystem.read(path, limit: 1 << 20), as: UTF8.self), path: path)
    }

    /// Parses recipe text; `path` names it in errors and anchors relative paths.
    public static func parse(yaml text: String, path: String) throws -> Recipe {
        try checkNesting(text, path: path)
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            // Yams' message continues with the offending line and a caret: the first line says it.
            throw Failure.yaml(path: path, reason: "\(error)".split(separator: "\n").first.map(String.init) ?? "cannot parse")
        }
        guard let node else { throw Failure.yaml(path: path, reason: "empty document") }
        var budget = maxNodes
        try checkSize(node, path: path, budget: &budget, depth: 0)
        return try Recipe(json: try toJSON(node, path: path, at: "recipe"), path: path)
    }

    /// Most values a recipe may hold once aliases are expanded (a real one has under a hundred).
    static let maxNodes = 10_000

    /// Aliases share one composed node, but converting expands every use: an alias bomb (each level referring to
    /// the previous one ten times) would allocate without bound. Counts the expanded values first, stopping at
    /// the budget, so the cost is bounded whatever the document.
    static func checkSize(_ n: Node, path: String, budget: inout Int, depth: Int) throws {
        budget -= 1
        guard budget >= 0 else {
            throw Failure.yaml(path: path, reason: "expands to more than \(maxNodes) values (aliases?); a recipe is much smaller")
        }
        guard depth <= 32 else { throw Failure.yaml(path: path, reason: "nested deeper than a recipe can be (over 32 levels)") }
        switch n {
        case .mapping(let m): for (k, v) in m { try checkSize(k, path: path, budget: &budget, depth: depth + 1); try checkSize(v, path: path, budget: &budget, depth: depth + 1) }
        case .sequence(let seq): for v in seq { try checkSize(v, path: path, budget: &budget, depth: depth + 1) }
        default: break
        }
    }

    /// Yams loads nested collections recursively, so deep nesting overflows the stack (found by fuzzing):
    /// recipes are shallow, and anything deeper than 32 brackets or indented past 128 columns is refused first.
    static func checkNesting(_ text: String, path: String) throws {
        var depth = 0, maxDepth = 0, column = 0, atLineStart = true
        for b in text.utf8 {
            switch b {
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1; maxDepth = max(maxDepth, depth)
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth = max(0, depth - 1)
            default: break
            }
            if b == UInt8(ascii: "\n") { atLineStart = true; column = 0; continue }
            if atLineStart && (b == UInt8(ascii: " ") || b == UInt8(ascii: "-") || b == UInt8(ascii: "\t")) { column += 1 } else { atLineStart = false }
            if maxDepth > 32 || column > 128 {
                throw Failure.yaml(path: path, reason: "nested deeper than a recipe can be (over 32 levels or 128 columns of indentation)")
            }
        }
    }

    /// YAML → JSON (mapping order kept; scalars resolved by their YAML tag).
    static func toJSON(_ n: Node, path: String, at: String) throws -> JSON {
        switch n {
        case .mapping(let m):
            var kv: [(key: String, value: JSON)] = []
            for (k, v) in m {
                guard let key = k.string else { throw Failure.field(path: path, field: at, reason: "has a non-string key") }
                guard !kv.contains(where: { $0.key == key }) else { throw Failure.field(path: path, field: at + "." + key, reason: "appears twice") }
                kv.append((key, try toJSON(v, path: path, at: at + "." + key)))
            }
            return .object(kv)
        case .sequence(let s): return .array(try s.enumerated().map { try toJSON($1, path: path, at: "\(at)[\($0)]") })
        case .scalar(let s):
            // Scalars are resolved here (YAML 1.2 core schema: null, booleans, decimal numbers), not by Yams'
            // constructors: its YAML 1.1 base-60 integers ("1:11:11") trap on overflow (found by fuzzing).
            let t = s.string
            guard s.style == .plain else { return .string(t) }
            switch t {
            case "", "~", "null", "Null", "NULL": return .null
            case "true", "True", "TRUE": return .bool(true)
            case "false", "False", "FALSE": return .bool(false)
            default: break
            }
            if let i = Int(t) { return .number(Double(i), text: String(i)) }
            if t.allSatisfy({ "0123456789+-.eE".contains($0) }), let d = Double(t), d.isFinite { return .number(d, text: t) }
            return .string(t)
        @unknown default: throw Failure.field(path: path, field: at, reason: "holds a YAML node recipes do not support")
        }
    }

    public init(json j: JSON, path: String) throws {
        self.path = path
        json = j
        func bad(_ f: String, _ r: String) -> Failure { .field(path: path, field: f, reason: r) }
        func keys(_ o: JSON?, _ at: String, _ allowed: Set<String>) throws -> JSON? {
            guard let o else { return nil }
            guard let kv = o.objectValue else { throw bad(at, "must be a mapping") }
            if let k = kv.first(where: { !allowed.contains($0.key) }) {
                throw bad(at + "." + k.key, "is not a recipe field (allowed: \(allowed.sorted().joined(separator: ", ")))")
            }
            return o
        }
        func str(_ o: JSON, _ k: String, _ at: String) throws -> String? {
            guard let v = o[k], !v.isNull else { return nil }
            guard let s = v.stringValue else { throw bad(at + "." + k, "must be a string") }
            return s
        }
        func int(_ o: JSON, _ k: String, _ at: String, min: Int = 1) throws -> Int? {
            guard let v = o[k], !v.isNull else { return nil }
            guard let i = v.intValue, i >= min else { throw bad(at + "." + k, "must be an integer ≥ \(min)") }
            return i
        }
        func num(_ o: JSON, _ k: String, _ at: String) throws -> Double? {
            guard let v = o[k], !v.isNull else { return nil }
            guard let d = v.doubleValue, d.isFinite else { throw bad(at + "." + k, "must be a number") }
            return d
        }
        func bool(_ o: JSON, _ k: String, _ at: String) throws -> Bool? {
            guard let v = o[k], !v.isNull else { return nil }
            guard let b = v.boolValue else { throw bad(at + "." + k, "must be true or false") }
            return b
        }
        let root = try keys(j, "recipe", ["source", "output", "calibration", "quantize", "exports", "verify"])!
        guard let src = try str(root, "source", "recipe") else { throw bad("source", "is required") }
        guard let out = try str(root, "output", "recipe") else { throw bad("output", "is required") }
        source = src
        output = out
        if let c = try keys(root["calibration"], "calibration", ["data", "samples", "seq_len", "seed", "expert_mode", "min_expert_tokens",
                                                                 "starved_experts", "sample_tokens"]) {
            guard let data = try str(c, "data", "calibration") else { throw bad("calibration.data", "is required") }
            var step = CalibrationStep(data: data)
            step.samples = try int(c, "samples", "calibration") ?? step.samples
            step.seqLen = try int(c, "seq_len", "calibration", min: 2) ?? step.seqLen
            step.seed = UInt64(try int(c, "seed", "calibration", min: 0) ?? 42)
            if let m = try str(c, "expert_mode", "calibration") {
                guard let v = Calibration.ExpertMode(rawValue: m) else { throw bad("calibration.expert_mode", "must be routed or all-tokens") }
                step.settings.expertMode = v
            }
            step.settings.minExpertTokens = try int(c, "min_expert_tokens", "calibration", min: 0) ?? step.settings.minExpertTokens
            if let m = try str(c, "starved_experts", "calibration") {
                guard let v = Calibration.StarvedExpertPolicy(rawValue: m) else { throw bad("calibration.starved_experts", "must be all-tokens or rtn") }
                step.settings.starved = v
            }
            step.settings.sampleTokens = try int(c, "sample_tokens", "calibration") ?? step.settings.sampleTokens
            calibration = step
        }
        guard let q = try keys(root["quantize"], "quantize", ["scheme", "group_size", "symmetric", "convention", "fp8_granularity",
                                                              "activations", "clip", "symmetric_clip", "search_tokens", "transform", "rounding", "propagate_error", "ignore", "overrides"]) else {
            throw bad("quantize", "is required")
        }
        /// The step's (or an override's, over `base`) settings from its keys.
        func settings(_ o: JSON, _ at: String, base: QuantizationPlan.Settings?) throws -> QuantizationPlan.Settings {
            let name = try str(o, "scheme", at) ?? QuantScheme.rtnInt4.name
            var s: QuantizationPlan.Settings
            do {
                s = try base.map { try QuantizationPlan.Settings(spec: name, base: $0) } ?? QuantizationPlan.Settings(scheme: try .named(name))
            } catch let e as QuantScheme.Failure {
                if case .wholeModel = e { throw bad(at + ".scheme", "\(e)") }
                throw bad(at + ".scheme", "must be one of \(QuantScheme.names)")
            }
            if let g = o["group_size"] { s.groupSize = g.isNull ? nil : try int(o, "group_size", at) }
            do { try s.scheme.check(groupSize: s.groupSize) } catch { throw bad(at + ".group_size", "\(error)") }
            s.symmetric = try bool(o, "symmetric", at) ?? s.symmetric
            if let c = try str(o, "convention", at) {
                guard let v = IntQuantizer.Convention(rawValue: c) else { throw bad(at + ".convention", "must be compressed-tensors or autoawq") }
                s.convention = v
            }
            if let g = try str(o, "fp8_granularity", at) {
                guard let v = QuantizationInfo.Granularity(rawValue: g), v != .group else { throw bad(at + ".fp8_granularity", "must be tensor, channel or block") }
                s.fp8Granularity = v
            }
            return s
        }
        let defaults = try settings(q, "quantize", base: nil)
        var plan = QuantizationPlan(defaults: defaults)
        if let ig = q["ignore"] {
            guard let a = ig.arrayValue, a.allSatisfy({ $0.stringValue != nil }) else { throw bad("quantize.ignore", "must be a list of patterns") }
            plan.ignore = a.compactMap(\.stringValue)
        }
        if let ov = q["overrides"] {
            guard let a = ov.arrayValue else { throw bad("quantize.overrides", "must be a list of {pattern, scheme, …}") }
            for (i, o) in a.enumerated() {
                let at = "quantize.overrides[\(i)]"
                guard let o = try keys(o, at, ["pattern", "scheme", "group_size", "symmetric", "convention", "fp8_granularity"]),
                      let p = try str(o, "pattern", at) else { throw bad(at + ".pattern", "is required") }
                plan.overrides.append((p, try settings(o, at, base: defaults)))
            }
        }
        do { try plan.validatePatterns() } catch let e as QuantizationPlan.BadPattern {
            throw Failure.field(path: path, field: e.origin == "--ignore" ? "quantize.ignore" : "quantize.overrides", reason: "pattern '\(e.pattern)': \(e.reason)")
        }
        var qs = QuantizeStep(scheme: defaults.scheme, plan: plan)
        if let a = try str(q, "activations", "quantize") {
            guard a == "dynamic" || a == "static" else { throw bad("quantize.activations", "must be dynamic or static") }
            qs.activations = a
        }
        qs.clip = try bool(q, "clip", "quantize") ?? true
        qs.symmetricClip = try bool(q, "symmetric_clip", "quantize") ?? false
        if !qs.clip, qs.symmetricClip { throw bad("quantize.symmetric_clip", "contradicts clip: false (no clip search at all)") }
        let rounding = try str(q, "rounding", "quantize").map {
            guard let r = QuantScheme.Rounding(rawValue: $0) else { throw bad("quantize.rounding", "must be rtn or gptq") }
            return r
        }
        do { qs.rounding = try qs.scheme.rounding(rounding) } catch { throw bad("quantize.rounding", "\(error)") }
        let transform = try str(q, "transform", "quantize").map {
            guard let t = QuantScheme.Transform(rawValue: $0) else { throw bad("quantize.transform", "must be awq") }
            return t
        }
        do { qs.transform = try qs.scheme.transform(transform) } catch { throw bad("quantize.transform", "\(error)") }
        qs.propagateError = try bool(q, "propagate_error", "quantize")
        guard qs.propagateError != true || qs.awq || qs.rounding == .gptq else {
            throw bad("quantize.propagate_error", "applies to AWQ and GPTQ (awq-int4, gptq-int4, transform: awq, rounding: gptq)")
        }
        if let t = try int(q, "search_tokens", "quantize", min: 0) {
            guard qs.awq else { throw bad("quantize.search_tokens", "applies to AWQ (awq-int4, transform: awq)") }
            qs.searchTokens = AWQ.searchTokens(option: t)
        }
        quantize = qs
        if qs.usesCalibration && calibration == nil {
            throw bad("calibration", "is required by \(qs.scheme.needsCalibration || qs.awq ? qs.scheme.name + (qs.awq && qs.scheme.transform == nil ? " with transform awq" : "") : "static activations")")
        }
        if let e = root["exports"] {
            guard let a = e.arrayValue else { throw bad("exports", "must be a list") }
            exports = try a.enumerated().map { i, v in
                guard let s = v.stringValue, let f = RuntimeLayouts.named(s) else {
                    throw bad("exports[\(i)]", "must be one of \(RuntimeLayouts.names)")
                }
                return f
            }
        }
        if let v = try keys(root["verify"], "verify", ["text", "ctx", "max_tokens", "gates"]) {
            guard let t = try str(v, "text", "verify") else { throw bad("verify.text", "is required") }
            var step = VerifyStep(text: t)
            step.ctx = try int(v, "ctx", "verify", min: 2) ?? step.ctx
            step.maxTokens = try int(v, "max_tokens", "verify")
            if let g = try keys(v["gates"], "verify.gates", ["max_ppl_delta", "max_ppl_ratio", "max_kld", "min_top1"]) {
                step.gates.maxPplDelta = try num(g, "max_ppl_delta", "verify.gates")
                step.gates.maxPplRatio = try num(g, "max_ppl_ratio", "verify.gates")
                step.gates.maxKLD = try num(g, "max_kld", "verify.gates")
                step.gates.minTop1 = try num(g, "min_top1", "verify.gates")
            }
            verify = step
        }
    }

    /// A path from the recipe, resolved against the recipe file's directory.
    public func resolve(_ p: String) -> String {
        p.hasPrefix("/") ? p : FileSystem.directoryName(path) + "/" + p
    }
}
