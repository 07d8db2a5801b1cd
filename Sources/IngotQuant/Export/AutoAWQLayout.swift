import IngotCore
import IngotFormats
import IngotModel

/// AutoAWQ GEMM: `qweight [in, out/8]` and `qzeros [groups, out/8]` int32 (eight 4-bit codes per word, packed along
/// the output dimension in AutoAWQ's interleaved order), `scales [groups, out]` f16; AutoAWQ's own fp16 rounding.
public struct AutoAWQLayout: RuntimeLayout {
    public init() {}
    public var name: String { "autoawq" }

    public func adapt(_ plan: QuantizationPlan) -> QuantizationPlan {
        var p = plan
        p.defaults.convention = .autoawq
        return p
    }

    public func outputs(_ w: ExportWeight) throws -> [SafetensorsWriter.Entry] {
        let s = w.settings!, m = w.module, rows = w.shape[0], cols = w.shape[1]
        guard s.scheme.codes == .int(bits: 4) else { throw unsupported(w, "scheme \(s.scheme) cannot be exported as \(name)") }
        let g = s.groupWidth(columns: cols)
        guard rows % 8 == 0, cols % g == 0 else {
            throw unsupported(w, "AutoAWQ GEMM needs out % 8 == 0 and in % group == 0 (shape \(ShapeMath.describe(w.shape)), group \(g))")
        }
        return [try .init(name: m + ".qweight", dtype: .i32, shape: [cols, rows / 8]),
                try .init(name: m + ".qzeros", dtype: .i32, shape: [cols / g, rows / 8]),
                try .init(name: m + ".scales", dtype: .f16, shape: [cols / g, rows])]
    }

    public func rounding(_ w: ExportWeight) -> (quantizer: IntQuantizer, precision: ComputePrecision)? {
        (IntQuantizer(bits: 4, groupSize: w.settings!.groupSize, symmetric: false, convention: .autoawq), .f16)
    }

    public func quantize(_ values: UnsafeBufferPointer<Float>, _ w: ExportWeight) throws -> QuantizedWeight {
        let (quantizer, precision) = rounding(w)!
        return quantizer.quantize(values, rows: w.shape[0], columns: w.shape[1], precision: precision)
    }

    public func package(_ q: QuantizedWeight, _ w: ExportWeight) throws -> [[UInt8]] {
        let rows = w.shape[0], cols = w.shape[1]
        guard q.bits == 4, q.granularity == .group else { throw unsupported(w, "AutoAWQ GEMM holds 4-bit group-quantized weights only") }
        let zeros = q.zeros ?? [UInt8](repeating: UInt8(q.codeOffset), count: rows * q.scaleColumns)
        let groups = q.scaleColumns
        var scalesT = [Float](repeating: 0, count: groups * rows)
        for r in 0..<rows { for g in 0..<groups { scalesT[g * rows + r] = q.scales[r * groups + g] } }
        return [Packing.bytes(Packing.awqWeight(q.codes, rows: rows, columns: cols)),
                Packing.bytes(Packing.awqZeros(zeros, rows: rows, groups: groups)),
                Packing.floatBytes(scalesT, as: .f16)]
    }

    /// `modules_to_not_convert`: the linears kept in full precision besides `lm_head` (AutoAWQ never converts it).
    public func quantizationConfig(_ m: ExportedModules) throws -> JSON {
        try m.requireOneScheme(name)
        let kept = m.ignored.filter { $0 != WeightNames.outputHead }
        return .object([("bits", .int(4)), ("group_size", .int(m.main.groupSize ?? -1)),
                 ("modules_to_not_convert", kept.isEmpty ? .null : .array(kept.map { .string($0) })),
                 ("quant_method", .string("awq")), ("version", .string("gemm")), ("zero_point", .bool(true))])
    }
}

extension RuntimeLayout where Self == AutoAWQLayout {
    public static var autoawq: AutoAWQLayout { AutoAWQLayout() }
}
