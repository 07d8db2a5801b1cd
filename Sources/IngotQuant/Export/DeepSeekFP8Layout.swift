import IngotCore
import IngotFormats
import IngotModel

/// DeepSeek-V3-style FP8: `weight` F8_E4M3 and `weight_scale_inv` F32 per 128×128 block, scales computed in f32;
/// activations dynamic.
public struct DeepSeekFP8Layout: RuntimeLayout {
    public init() {}
    public var name: String { "fp8" }

    /// Every quantized weight becomes 128×128-block E4M3, whatever scheme was asked for.
    public func adapt(_ plan: QuantizationPlan) -> QuantizationPlan {
        var p = plan
        p.defaults = QuantizationPlan.Settings(scheme: .fp8E4M3)
        p.defaults.fp8Granularity = .block
        return p
    }

    public func outputs(_ w: ExportWeight) throws -> [SafetensorsWriter.Entry] {
        guard w.settings!.scheme == .fp8E4M3 else { throw unsupported(w, "scheme \(w.settings!.scheme) cannot be exported as \(name)") }
        let rows = w.shape[0], cols = w.shape[1]
        return [try .init(name: w.module + ".weight", dtype: .f8e4m3, shape: [rows, cols]),
                try .init(name: w.module + ".weight_scale_inv", dtype: .f32, shape: [(rows + 127) / 128, (cols + 127) / 128])]
    }

    public func rounding(_ w: ExportWeight) -> (quantizer: IntQuantizer, precision: ComputePrecision)? { nil }

    public func quantize(_ values: UnsafeBufferPointer<Float>, _ w: ExportWeight) throws -> QuantizedWeight {
        FP8Quantizer(format: .e4m3, granularity: .block).quantize(values, rows: w.shape[0], columns: w.shape[1], precision: .f32)
    }

    public func package(_ q: QuantizedWeight, _ w: ExportWeight) throws -> [[UInt8]] {
        guard q.granularity == .block, q.scheme == .fp8E4M3 else { throw unsupported(w, "DeepSeek FP8 needs 128×128-block E4M3 weights") }
        return [q.codes, Packing.floatBytes(q.scales, as: .f32)]
    }

    /// vLLM's `Fp8Config` reads `ignored_layers`: the linears kept in full precision besides `lm_head`, when any.
    public func quantizationConfig(_ m: ExportedModules) throws -> JSON {
        try m.requireOneScheme(name)
        var kv: [(key: String, value: JSON)] = [("activation_scheme", .string("dynamic")), ("fmt", .string("e4m3"))]
        let kept = m.ignored.filter { $0 != WeightNames.outputHead }
        if !kept.isEmpty { kv.append(("ignored_layers", .array(kept.map { .string($0) }))) }
        kv += [("quant_method", .string("fp8")), ("weight_block_size", .array([.int(128), .int(128)]))]
        return .object(kv)
    }
}

extension RuntimeLayout where Self == DeepSeekFP8Layout {
    public static var fp8: DeepSeekFP8Layout { DeepSeekFP8Layout() }
}
