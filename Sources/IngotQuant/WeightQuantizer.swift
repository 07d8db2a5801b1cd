import IngotCore
import IngotFormats

/// A scheme's rounding of one `[rows, columns]` weight, as AWQ's searches fake-quantize with it: integer groups,
/// MXFP4 or NVFP4 (whose global scale is then the weight's own). `groupSize`: input columns per scale (nil: a row).
public protocol WeightQuantizer: Sendable {
    var groupSize: Int? { get }
    /// Whether AWQ's per-group clip search applies: a group's clamp sets only that group's scale.
    var clipsPerGroup: Bool { get }
    /// Whether a group's two ends set its scale and zero point independently (the clip search then clamps each
    /// end on its own too).
    var clipsAsymmetric: Bool { get }
    func quantize(_ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int, precision: ComputePrecision) -> QuantizedWeight
}

extension WeightQuantizer {
    public var clipsAsymmetric: Bool { false }
}

extension IntQuantizer: WeightQuantizer {
    public var clipsPerGroup: Bool { true }
    public var clipsAsymmetric: Bool { !symmetric }
}

extension MXFP4Quantizer: WeightQuantizer {
    public var groupSize: Int? { Self.groupSize }
    public var clipsPerGroup: Bool { true }
}

extension NVFP4Quantizer: WeightQuantizer {
    public var groupSize: Int? { Self.groupSize }
    /// No: every E4M3 group scale is relative to the global scale the weight's (or its fused group's) absmax sets,
    /// so clamping one group moves the others' scales. On tiny-moe-austen (16×128 tokens of emma.txt, held-out
    /// persuasion text) AWQ with the clip search raised the mean KLD to 4.1e-3, without it 3.2e-3 (RTN 3.5e-3).
    public var clipsPerGroup: Bool { false }

    /// With the weight's own global scale (no fused siblings: AWQ's candidates, one weight at a time).
    public func quantize(_ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int, precision: ComputePrecision) -> QuantizedWeight {
        quantize(weights, rows: rows, columns: columns, globalScale: Self.globalScale(absmax: Self.absmax(weights), precision: precision),
                 precision: precision)
    }
}

extension QuantizationPlan.Settings {
    /// The quantizer AWQ fake-quantizes these settings' weights with (nil for FP8 and kept weights).
    public var weightQuantizer: (any WeightQuantizer)? {
        switch scheme.codes {
        case .int: intQuantizer
        case .mxfp4: MXFP4Quantizer()
        case .nvfp4: NVFP4Quantizer()
        case .fp8, .kept: nil
        }
    }
}
