import Foundation
import IngotCore
import IngotFormats
import IngotModel

/// Which weights get quantized, by what: defaults plus ignore lists and per-layer overrides, matched on module
/// names (the tensor name without `.weight`) by glob (`*`, `?`) or by regular expression with a `re:` prefix, as
/// llm-compressor spells them.
public struct QuantizationPlan: Sendable {
    /// How one weight is quantized.
    public struct Settings: Sendable, Equatable {
        public var scheme: QuantScheme
        /// Input columns per scale group (nil: one group per row); starts at the scheme's default.
        public var groupSize: Int?
        public var symmetric = false
        public var convention: IntQuantizer.Convention = .compressedTensors
        public var fp8Granularity: QuantizationInfo.Granularity = .channel
        public init(scheme: QuantScheme) {
            self.scheme = scheme
            groupSize = scheme.defaultGroupSize
        }

        /// Input columns per scale group of a weight `columns` wide.
        public func groupWidth(columns: Int) -> Int { groupSize ?? columns }

        /// The INT quantizer of these settings (nil for FP8 and kept weights).
        public var intQuantizer: IntQuantizer? {
            guard case .int(let bits) = scheme.codes else { return nil }
            return IntQuantizer(bits: bits, groupSize: groupSize, symmetric: symmetric, convention: convention)
        }
    }

    public var defaults: Settings
    /// Modules never quantized (in addition to the built-in rules).
    public var ignore: [String] = []
    /// (pattern, settings): the first matching override wins.
    public var overrides: [(pattern: String, settings: Settings)] = []
    /// Static activation scales by weight tensor name: FP8 `<module>.input_scale`, or NVFP4's
    /// `<module>.input_global_scale`; empty = dynamic.
    public var activationScales: [String: Float] = [:]

    public init(defaults: Settings) { self.defaults = defaults }

    /// Settings for a tensor, or nil when it stays as is (only `TensorRole.linear` weights are quantized: embeddings,
    /// `lm_head`, norms, routers, shared-expert gates, linear attention's decay projections and state parameters,
    /// and vision towers stay).
    public func settings(for name: String, shape: [Int]) -> Settings? {
        guard TensorRole(name: name, shape: shape) == .linear, let module = WeightNames.module(of: name) else { return nil }
        if ignore.contains(where: { Self.matches($0, module) }) { return nil }
        let s = overrides.first { Self.matches($0.pattern, module) }?.settings ?? defaults
        return s.scheme == .none ? nil : s
    }

    /// A pattern that is not a valid regular expression or glob, named with where it came from.
    public struct BadPattern: Error, CustomStringConvertible, Equatable {
        public let pattern: String, origin: String, reason: String
        public var description: String { "\(origin) '\(pattern)': \(reason)" }
    }

    /// Checks every ignore and override pattern (an invalid one would otherwise match nothing, silently).
    public func validatePatterns() throws {
        for p in ignore { try Self.validate(p, origin: "--ignore") }
        for o in overrides { try Self.validate(o.pattern, origin: "--override") }
    }

    public static func validate(_ pattern: String, origin: String) throws {
        guard !pattern.isEmpty, pattern != "re:" else { throw BadPattern(pattern: pattern, origin: origin, reason: "empty pattern") }
        if pattern.hasPrefix("re:") {
            do { _ = try NSRegularExpression(pattern: String(pattern.dropFirst(3))) } catch {
                throw BadPattern(pattern: pattern, origin: origin, reason: "not a valid regular expression")
            }
        } else if pattern.filter({ $0 == "[" }).count != pattern.filter({ $0 == "]" }).count {
            throw BadPattern(pattern: pattern, origin: origin, reason: "unbalanced [ ] in the glob")
        }
    }

    /// `re:` regular expression (searched anywhere, as llm-compressor's `re.match` from the start), else a glob
    /// over the whole name; a pattern with neither wildcard nor prefix also matches as a name suffix (`lm_head`).
    public static func matches(_ pattern: String, _ name: String) -> Bool {
        if pattern.hasPrefix("re:") {
            guard let re = try? NSRegularExpression(pattern: String(pattern.dropFirst(3))) else { return false }
            let r = re.firstMatch(in: name, range: NSRange(name.startIndex..., in: name))
            return r?.range.location == 0
        }
        if !pattern.contains("*") && !pattern.contains("?") {
            return name == pattern || name.hasSuffix("." + pattern)
        }
        return fnmatch(pattern, name, 0) == 0
    }
}
