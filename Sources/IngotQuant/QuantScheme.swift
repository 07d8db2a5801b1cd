import IngotCore
import IngotFormats

/// A quantization scheme, by the kebab name the CLI, recipes and bench accept: the number format of its codes,
/// its default grouping, and what calibration does before rounding. Every scheme is a `static let` listed in `all`;
/// adding one is a new constant plus its line there (and, for a new number format, a `Codes` case and its quantizer).
public struct QuantScheme: Sendable, Hashable, CustomStringConvertible {
    /// The number format of the stored codes; it picks the quantizer.
    public enum Codes: Sendable, Hashable {
        /// Integers of `bits` bits with per-group (or per-channel) scales and optional zero points.
        case int(bits: Int)
        /// FP8 values with tensor, channel or block scales.
        case fp8(FP8.Format)
        /// FP4 E2M1 values in fixed groups with power-of-two E8M0 scales (OCP MX).
        case mxfp4
        /// FP4 E2M1 values in groups of 16 with E4M3 scales under a per-tensor global scale (NVIDIA NVFP4).
        case nvfp4
        /// The weights stay as they are (`none`, for overrides).
        case kept
    }

    /// What calibration does to the weights before they are rounded.
    public enum Transform: String, Sendable, Hashable {
        /// Activation-aware scaling and clipping (AWQ), then the scheme's rounding.
        case awq
    }

    /// How the codes are rounded from the (transformed) weights.
    public enum Rounding: String, Sendable, Hashable, CaseIterable {
        /// Round to nearest, each weight on its own.
        case nearest = "rtn"
        /// GPTQ's error-compensating rounding on the calibration inputs' Hessian (`GPTQ`).
        case gptq
    }

    public let name: String
    public let codes: Codes
    /// Input columns per scale group when none is given (nil: one group per row, or the FP8 granularity decides).
    public let defaultGroupSize: Int?
    public let transform: Transform?
    /// The rounding the scheme uses unless asked otherwise (`rounding(_:)`).
    public let rounding: Rounding
    /// Whether the runtime also quantizes activations, with per-tensor scales from calibration (NVFP4's
    /// `input_global_scale`); FP8 schemes get static activations with `--activations static` instead.
    public let calibratedActivations: Bool
    /// One line for `--help` and error messages.
    public let summary: String

    public init(name: String, codes: Codes, defaultGroupSize: Int? = nil, transform: Transform? = nil, rounding: Rounding = .nearest,
                calibratedActivations: Bool = false, summary: String) {
        self.name = name; self.codes = codes; self.defaultGroupSize = defaultGroupSize; self.transform = transform
        self.rounding = rounding; self.calibratedActivations = calibratedActivations; self.summary = summary
    }

    public static let rtnInt4 = QuantScheme(name: "rtn-int4", codes: .int(bits: 4), defaultGroupSize: 128,
                                            summary: "INT4 round-to-nearest, groups of 128")
    public static let awqInt4 = QuantScheme(name: "awq-int4", codes: .int(bits: 4), defaultGroupSize: 128, transform: .awq,
                                            summary: "INT4 after AWQ (needs --calib or --data)")
    public static let gptqInt4 = QuantScheme(name: "gptq-int4", codes: .int(bits: 4), defaultGroupSize: 128, rounding: .gptq,
                                             summary: "INT4 with GPTQ's error-compensating rounding (needs --calib or --data)")
    public static let rtnInt8 = QuantScheme(name: "rtn-int8", codes: .int(bits: 8), defaultGroupSize: 128,
                                            summary: "INT8 round-to-nearest, groups of 128")
    public static let fp8E4M3 = QuantScheme(name: "fp8-e4m3", codes: .fp8(.e4m3), summary: "FP8 E4M3")
    public static let fp8E5M2 = QuantScheme(name: "fp8-e5m2", codes: .fp8(.e5m2), summary: "FP8 E5M2")
    public static let mxfp4 = QuantScheme(name: "mxfp4", codes: .mxfp4, defaultGroupSize: MXFP4Quantizer.groupSize,
                                          summary: "MXFP4: FP4 E2M1 in groups of 32 with E8M0 scales")
    public static let nvfp4a16 = QuantScheme(name: "nvfp4a16", codes: .nvfp4, defaultGroupSize: NVFP4Quantizer.groupSize,
                                             summary: "NVFP4 weights: FP4 E2M1 in groups of 16, E4M3 scales, a global scale per tensor")
    public static let nvfp4 = QuantScheme(name: "nvfp4", codes: .nvfp4, defaultGroupSize: NVFP4Quantizer.groupSize,
                                          calibratedActivations: true,
                                          summary: "NVFP4 weights and activations (static activation global scales; needs --calib or --data)")
    public static let none = QuantScheme(name: "none", codes: .kept, summary: "kept in full precision")

    /// Every scheme, in the order help texts list them.
    public static let all: [QuantScheme] = [.rtnInt4, .awqInt4, .gptqInt4, .rtnInt8, .fp8E4M3, .fp8E5M2, .mxfp4, .nvfp4a16, .nvfp4, .none]

    public init?(name: String) {
        guard let s = Self.all.first(where: { $0.name == name }) else { return nil }
        self = s
    }

    /// The scheme called `name`, or an error listing the names there are.
    public static func named(_ name: String) throws -> QuantScheme {
        guard let s = QuantScheme(name: name) else { throw Failure.unknown(name) }
        return s
    }

    /// The names, comma-separated, for help texts and errors.
    public static var names: String { all.map(\.name).joined(separator: ", ") }

    public var description: String { name }
    public static func == (a: QuantScheme, b: QuantScheme) -> Bool { a.name == b.name }
    public func hash(into h: inout Hasher) { h.combine(name) }

    /// Bits per code (0 for `none`).
    public var bits: Int {
        switch codes {
        case .int(let b): b
        case .fp8: 8
        case .mxfp4, .nvfp4: 4
        case .kept: 0
        }
    }

    /// The FP8 format of the codes, for FP8 schemes.
    public var fp8Format: FP8.Format? { if case .fp8(let f) = codes { f } else { nil } }

    /// Whether the codes are integers (group-quantized with a zero point or symmetric).
    public var isInteger: Bool { if case .int = codes { true } else { false } }

    /// Whether the format fixes the group size (the FP4 formats), so no other may be asked for.
    public var groupSizeIsFixed: Bool { codes == .mxfp4 || codes == .nvfp4 }

    /// Refuses a group size the scheme cannot have.
    public func check(groupSize: Int?) throws {
        if groupSizeIsFixed, groupSize != defaultGroupSize { throw Failure.fixedGroup(scheme: name, group: defaultGroupSize ?? 0) }
    }

    /// Whether calibration data is needed to apply the scheme.
    public var needsCalibration: Bool { transform != nil || rounding == .gptq || calibratedActivations }

    /// The rounding a run uses when `requested` is asked for (nil: the scheme's own). GPTQ rounding can follow
    /// AWQ's transform; otherwise a scheme rounds only its own way.
    public func rounding(_ requested: Rounding?) throws -> Rounding {
        guard let r = requested, r != rounding else { return rounding }
        guard r == .gptq, transform == .awq else { throw Failure.rounding(scheme: name, rounding: r.rawValue) }
        return r
    }

    /// The transform a run applies when `requested` is asked for (nil: the scheme's own). AWQ can run in front of
    /// any integer or FP4 scheme's rounding.
    public func transform(_ requested: Transform?) throws -> Transform? {
        guard let t = requested, t != transform else { return transform }
        switch codes {
        case .int, .mxfp4, .nvfp4: return t
        case .fp8, .kept: throw Failure.transform(scheme: name, transform: t.rawValue)
        }
    }

    /// The dtype the codes are stored in, in an `.ingot` file.
    public var codeDType: DType? {
        switch codes {
        case .int(let b): b == 4 ? .u4 : .u8
        case .fp8(let f): f == .e4m3 ? .f8e4m3 : .f8e5m2
        case .mxfp4, .nvfp4: .u4
        case .kept: nil
        }
    }

    /// The scheme that re-quantizes the codes an `.ingot` tensor stores (round-to-nearest of the same format).
    public static func stored(_ q: QuantizationInfo) -> QuantScheme {
        switch q.scheme {
        case .fp8E4M3: .fp8E4M3
        case .fp8E5M2: .fp8E5M2
        case .fp4E2M1: q.groupSize == NVFP4Quantizer.groupSize ? .nvfp4a16 : .mxfp4
        case .intAffine, .intSymmetric: q.bits == 4 ? .rtnInt4 : .rtnInt8
        }
    }

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case unknown(String)
        case modifier(spec: String, modifier: String)
        case wholeModel(String)
        case groupSize(spec: String)
        case rounding(scheme: String, rounding: String)
        case fixedGroup(scheme: String, group: Int)
        case transform(scheme: String, transform: String)
        public var description: String {
            switch self {
            case .unknown(let n): "unknown scheme '\(n)' (use \(QuantScheme.names))"
            case let .modifier(s, m): "'\(s)': unknown modifier '\(m)' (use gN, channel, sym or asym)"
            case .wholeModel(let n): "\(n) needs calibration over the whole model; override with a round-to-nearest scheme"
            case .groupSize(let s): "'\(s)': the group size must be positive"
            case let .rounding(s, r): "\(s) cannot round with \(r) (gptq rounding applies to awq-int4; gptq-int4 always rounds with GPTQ)"
            case let .fixedGroup(s, g): "\(s) has groups of \(g) columns, no other group size"
            case let .transform(s, t): "\(t) runs in front of integer and FP4 schemes, not \(s)"
            }
        }
    }
}

extension QuantizationPlan.Settings {
    /// `SCHEME[:gN][:channel][:sym|:asym]` over `base`: the scheme, and grouping and symmetry when given. An integer
    /// scheme keeps the base's grouping (when the base has one or is integer too); others start from their default.
    /// Schemes that transform the whole model are refused.
    public init(spec: String, base: QuantizationPlan.Settings) throws {
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let scheme = try QuantScheme.named(parts[0])
        if scheme.needsCalibration { throw QuantScheme.Failure.wholeModel(scheme.name) }
        self = base
        self.scheme = scheme
        let keepsGroup = scheme.isInteger && (base.scheme.isInteger || base.groupSize != nil)
        if !keepsGroup { groupSize = scheme.defaultGroupSize }
        for p in parts.dropFirst() {
            if p == "sym" { symmetric = true } else if p == "asym" { symmetric = false } else if p == "channel" { groupSize = nil }
            else if p.hasPrefix("g"), let n = Int(p.dropFirst()) {
                guard n > 0 else { throw QuantScheme.Failure.groupSize(spec: spec) }
                groupSize = n
            } else { throw QuantScheme.Failure.modifier(spec: spec, modifier: p) }
        }
        try scheme.check(groupSize: groupSize)
    }
}

extension QuantizationPlan {
    /// Adds a `PATTERN=SCHEME[:gN][:channel][:sym|:asym]` override (split at the last `=`), over the defaults.
    public mutating func addOverride(_ text: String) throws {
        guard let eq = text.lastIndex(of: "=") else { throw QuantScheme.Failure.modifier(spec: text, modifier: "expected PATTERN=SCHEME") }
        overrides.append((String(text[..<eq]), try Settings(spec: String(text[text.index(after: eq)...]), base: defaults)))
    }
}
