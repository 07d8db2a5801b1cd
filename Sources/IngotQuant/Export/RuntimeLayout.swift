import IngotCore
import IngotFormats

/// A layout a runtime loads: the tensors one quantized weight becomes (names, dtypes, shapes, packing), the
/// arithmetic that runtime's quantizer uses, and the `quantization_config` its `config.json` carries. One file per
/// layout; `RuntimeLayouts.all` registers them by the name `--to` and recipes use.
public protocol RuntimeLayout: Sendable {
    /// The name `ingot export --to` and recipes' `exports` use.
    var name: String { get }
    /// The plan as this runtime needs it (its rounding convention, or the one scheme it holds).
    func adapt(_ plan: QuantizationPlan) -> QuantizationPlan
    /// The name a source weight is exported under.
    func exportedName(_ name: String) -> String
    /// The settings a weight `columns` wide is exported with (the same codes, described as this runtime can read them).
    func settings(_ s: QuantizationPlan.Settings, columns: Int) -> QuantizationPlan.Settings
    /// The output tensors of one quantized weight, in write order.
    func outputs(_ w: ExportWeight) throws -> [SafetensorsWriter.Entry]
    /// The integer quantizer (and its compute precision) this runtime rounds `w` with, nil for non-integer codes.
    /// Sources that round weights themselves (GPTQ) use its group parameters, so their codes match the layout.
    func rounding(_ w: ExportWeight) -> (quantizer: IntQuantizer, precision: ComputePrecision)?
    /// Quantizes `values` (`w.shape`) with the runtime's own arithmetic.
    func quantize(_ values: UnsafeBufferPointer<Float>, _ w: ExportWeight) throws -> QuantizedWeight
    /// The bytes of each output tensor of a quantized weight (same order as `outputs`).
    func package(_ q: QuantizedWeight, _ w: ExportWeight) throws -> [[UInt8]]
    /// The `quantization_config` block describing what the export's weights became; a layout that cannot
    /// describe them (several schemes where it holds one) refuses.
    func quantizationConfig(_ m: ExportedModules) throws -> JSON
}

/// What an export's weights became, for its `quantization_config`: the settings most quantized weights share
/// (`main`), the modules quantized otherwise (per-module overrides, by settings, in first-seen order), the linears
/// kept in full precision that a runtime would otherwise treat as quantizable (`ignored`), and whether input scales
/// are static.
public struct ExportedModules: Sendable {
    public var main: QuantizationPlan.Settings
    public var others: [(settings: QuantizationPlan.Settings, modules: [String])] = []
    public var ignored: [String] = []
    public var staticActivations = false

    public init(main: QuantizationPlan.Settings, others: [(settings: QuantizationPlan.Settings, modules: [String])] = [],
                ignored: [String] = [], staticActivations: Bool = false) {
        self.main = main; self.others = others; self.ignored = ignored; self.staticActivations = staticActivations
    }

    /// Groups quantized modules by settings: the most common (ties: `preferred`, then first seen) becomes `main`.
    public init(_ modules: [(module: String, settings: QuantizationPlan.Settings)], preferred: QuantizationPlan.Settings,
                ignored: [String], staticActivations: Bool) {
        var order: [QuantizationPlan.Settings] = [], members: [[String]] = []
        for (m, s) in modules {
            if let i = order.firstIndex(of: s) { members[i].append(m) } else { order.append(s); members.append([m]) }
        }
        let top = members.map(\.count).max() ?? 0
        let tied = order.indices.filter { members[$0].count == top }
        let best = tied.first { order[$0] == preferred } ?? tied.first
        self.init(main: best.map { order[$0] } ?? preferred,
                  others: order.indices.filter { $0 != best }.map { (order[$0], members[$0]) },
                  ignored: ignored, staticActivations: staticActivations)
    }

    /// The refusal of a layout that holds one scheme for the whole model.
    func requireOneScheme(_ layout: String) throws {
        guard let o = others.first else { return }
        throw ExportJob.Failure.unsupported(tensor: o.modules[0], reason: "\(layout) holds one scheme for the whole model; this module is \(ExportJob.describe(o.settings)), the others \(ExportJob.describe(main)) (export it as compressed-tensors, or drop the override)")
    }
}

extension RuntimeLayout {
    public func adapt(_ plan: QuantizationPlan) -> QuantizationPlan { plan }
    public func exportedName(_ name: String) -> String { name }
    public func settings(_ s: QuantizationPlan.Settings, columns: Int) -> QuantizationPlan.Settings { s }
    public func quantize(_ values: UnsafeBufferPointer<Float>, _ w: ExportWeight) throws -> QuantizedWeight {
        try QuantizeJob.quantize(values, rows: w.shape[0], columns: w.shape[1], dtype: w.dtype, settings: w.settings!)
    }

    /// The refusal for a weight this layout cannot hold.
    func unsupported(_ w: ExportWeight, _ reason: String) -> ExportJob.Failure { .unsupported(tensor: w.name, reason: reason) }
}

/// Every runtime layout, by name.
public enum RuntimeLayouts {
    public static let all: [any RuntimeLayout] = [CompressedTensorsLayout(), AutoAWQLayout(), DeepSeekFP8Layout()]

    public static func named(_ name: String) -> (any RuntimeLayout)? { all.first { $0.name == name } }

    /// The names, comma-separated, for help texts and errors.
    public static var names: String { all.map(\.name).joined(separator: ", ") }
}

/// A weight as the exporter sees it: a 2-D slice of a source tensor under the name it is exported as.
public struct ExportWeight: Sendable {
    /// Exported tensor name (ends in `.weight` for linears).
    public let name: String
    public let source: String
    public let dtype: DType
    public let shape: [Int]
    /// Slice of the source tensor (fused experts).
    public let byteOffset: Int
    public let byteCount: Int
    /// nil: kept as it is.
    public let settings: QuantizationPlan.Settings?
    /// Set when the source (an `.ingot` file) already holds this weight quantized: it is repacked, not requantized.
    public var stored: QuantizationInfo? = nil
    /// The static activation scale of the weight's input, when the plan has one (NVFP4: its input global scale).
    public var inputScale: Float? = nil
    /// NVFP4's global scale for the weight (shared with the weights vLLM fuses with it).
    public var globalScale: Float? = nil

    /// The module name (the exported name without `.weight`).
    public var module: String { String(name.dropLast(7)) }
}
