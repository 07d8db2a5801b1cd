import IngotCore
import IngotFormats
import IngotModel

/// llm-compressor / compressed-tensors, which vLLM and transformers read: `pack-quantized` INT4/INT8
/// (`weight_packed` int32 along the input dimension, `weight_scale`, `weight_zero_point` packed along dim 0,
/// `weight_shape`), `float-quantized` FP8 (`weight`, `weight_scale`, optional static `input_scale`) and
/// `mxfp4-pack-quantized` (`weight_packed` U8, two E2M1 codes per byte, low nibble first; `weight_scale` U8 E8M0) and
/// `nvfp4-pack-quantized` (the same codes, `weight_scale` F8_E4M3 per 16 columns, `weight_global_scale` F32 [1],
/// and with static activations `input_global_scale` F32 [1]).
public struct CompressedTensorsLayout: RuntimeLayout {
    public init() {}
    public var name: String { "compressed-tensors" }

    public func exportedName(_ name: String) -> String { WeightNames.llmCompressorName(name) }

    /// An integer group at least as wide as the row is one scale per row: compressed-tensors reads that as
    /// `channel` (its group reshape needs the width to be a multiple of the group), and the codes are the same.
    public func settings(_ s: QuantizationPlan.Settings, columns: Int) -> QuantizationPlan.Settings {
        guard s.scheme.isInteger, let g = s.groupSize, g >= columns else { return s }
        var c = s
        c.groupSize = nil
        return c
    }

    public func outputs(_ w: ExportWeight) throws -> [SafetensorsWriter.Entry] {
        let s = w.settings!, m = w.module, rows = w.shape[0], cols = w.shape[1]
        let storeType = ComputePrecision(dtype: w.dtype).dtype
        switch s.scheme.codes {
        case .int(let bits):
            let g = s.groupWidth(columns: cols), groups = (cols + g - 1) / g
            guard cols % g == 0 else {
                throw unsupported(w, "compressed-tensors needs the input width \(cols) to be a multiple of the group size \(g) (a ragged last group is .ingot-only); choose a group size that divides \(cols)")
            }
            var e = [try SafetensorsWriter.Entry(name: m + ".weight_packed", dtype: .i32, shape: [rows, (cols * bits + 31) / 32]),
                     try .init(name: m + ".weight_scale", dtype: storeType, shape: [rows, groups])]
            if !s.symmetric { e.append(try .init(name: m + ".weight_zero_point", dtype: .i32, shape: [(rows * bits + 31) / 32, groups])) }
            e.append(try .init(name: m + ".weight_shape", dtype: .i64, shape: [2]))
            return e
        case .fp8:
            let sc = s.fp8Granularity == .block ? [(rows + 127) / 128, (cols + 127) / 128] : s.fp8Granularity == .channel ? [rows, 1] : [1]
            var e = [try SafetensorsWriter.Entry(name: m + ".weight", dtype: s.scheme.codeDType!, shape: [rows, cols]),
                     try .init(name: m + ".weight_scale", dtype: storeType, shape: sc)]
            if w.inputScale != nil { e.append(try .init(name: m + ".input_scale", dtype: .f32, shape: [1])) }
            return e
        case .mxfp4:
            guard cols % 2 == 0 else { throw unsupported(w, "FP4 rows must have an even number of columns") }
            return [try .init(name: m + ".weight_packed", dtype: .u8, shape: [rows, cols / 2]),
                    try .init(name: m + ".weight_scale", dtype: .u8, shape: [rows, (cols + 31) / 32])]
        case .nvfp4:
            guard cols % 2 == 0 else { throw unsupported(w, "FP4 rows must have an even number of columns") }
            var e = [try SafetensorsWriter.Entry(name: m + ".weight_packed", dtype: .u8, shape: [rows, cols / 2]),
                     try .init(name: m + ".weight_scale", dtype: .f8e4m3, shape: [rows, (cols + 15) / 16]),
                     try .init(name: m + ".weight_global_scale", dtype: .f32, shape: [1])]
            if w.inputScale != nil { e.append(try .init(name: m + ".input_global_scale", dtype: .f32, shape: [1])) }
            return e
        case .kept:
            throw unsupported(w, "scheme \(s.scheme) cannot be exported as \(name)")
        }
    }

    /// compressed-tensors' own arithmetic, whatever convention the plan asked for.
    public func rounding(_ w: ExportWeight) -> (quantizer: IntQuantizer, precision: ComputePrecision)? {
        var s = w.settings!
        s.convention = .compressedTensors
        return s.intQuantizer.map { ($0, ComputePrecision(dtype: w.dtype)) }
    }

    public func quantize(_ values: UnsafeBufferPointer<Float>, _ w: ExportWeight) throws -> QuantizedWeight {
        var s = w.settings!
        s.convention = .compressedTensors
        return try QuantizeJob.quantize(values, rows: w.shape[0], columns: w.shape[1], dtype: w.dtype, settings: s, globalScale: w.globalScale)
    }

    public func package(_ q: QuantizedWeight, _ w: ExportWeight) throws -> [[UInt8]] {
        let rows = w.shape[0], cols = w.shape[1]
        switch w.settings!.scheme.codes {
        case .int(let bits):
            let packed = bits == 4 ? Packing.compressedTensors(q.codes, rows: rows, columns: cols)
                : Packing.packBytes(q.codes, rows: rows, columns: cols)
            var out = [Packing.bytes(packed), Packing.floatBytes(q.scales, as: q.scaleDType)]
            if let z = q.zeros {
                out.append(Packing.bytes(bits == 4 ? Packing.compressedTensorsZeros(z, rows: rows, groups: q.scaleColumns)
                                         : Packing.packBytesDim0(z, rows: rows, columns: q.scaleColumns)))
            }
            out.append(Packing.bytes([Int64(rows), Int64(cols)]))
            return out
        case .mxfp4:
            return [Packing.nibbles(q.codes, rows: rows, columns: cols), Packing.scaleBytes(q.scales, as: .u8)]
        case .nvfp4:
            guard let g = q.globalScale, q.scaleDType == .f8e4m3 else { throw unsupported(w, "NVFP4 needs E4M3 group scales and a global scale") }
            return [Packing.nibbles(q.codes, rows: rows, columns: cols), Packing.floatBytes(q.scales, as: .f8e4m3), Packing.floatBytes([g], as: .f32)]
                + (w.inputScale.map { [Packing.floatBytes([$0], as: .f32)] } ?? [])
        default:
            return [q.codes, Packing.floatBytes(q.scales, as: q.scaleDType)] + (w.inputScale.map { [Packing.floatBytes([$0], as: .f32)] } ?? [])
        }
    }

    /// One config group per settings: the main one targets `Linear`, each override its modules by exact name
    /// (compressed-tensors prefers exact names over class targets); the format is `mixed-precision` when the groups'
    /// formats differ.
    public func quantizationConfig(_ m: ExportedModules) throws -> JSON {
        var groups: [(key: String, value: JSON)] = [], formats: [String] = []
        for (k, (s, targets)) in ([(m.main, ["Linear"])] + m.others).enumerated() {
            let (fmt, weights, inputs) = Self.describe(s, staticActivations: m.staticActivations)
            formats.append(fmt)
            groups.append(("group_\(k)", .object([("format", .string(fmt)), ("input_activations", inputs), ("output_activations", .null),
                                                 ("targets", .array(targets.map { .string($0) })), ("weights", weights)])))
        }
        let fmt = Set(formats).count == 1 ? formats[0] : "mixed-precision"
        return .object([("config_groups", .object(groups)), ("format", .string(fmt)),
                        ("global_compression_ratio", .null), ("ignore", .array(m.ignored.map { .string($0) })),
                        ("kv_cache_scheme", .null), ("quant_method", .string("compressed-tensors")),
                        ("quantization_status", .string("compressed")), ("sparsity_config", .object([])),
                        ("transform_config", .object([])), ("version", .string("0.19.0"))])
    }

    /// The compressed-tensors format and weight / input-activation arguments of one settings, as llm-compressor's
    /// presets write them (`W4A16[_ASYM]` with a group size, `FP8[_DYNAMIC|_BLOCK]`, `MXFP4A16`, `NVFP4A16`, `NVFP4`).
    static func describe(_ s: QuantizationPlan.Settings, staticActivations: Bool) -> (format: String, weights: JSON, inputs: JSON) {
        func args(bits: Int, type: String, strategy: String, group: Int?, symmetric: Bool, dynamic: JSON = .bool(false),
                  observer: String? = "memoryless_minmax", scaleDType: String? = nil, block: Bool = false, zp: Bool = false) -> JSON {
            .object([("actorder", .null), ("block_structure", block ? .array([.int(128), .int(128)]) : .null), ("dynamic", dynamic),
                     ("group_size", group.map { .int($0) } ?? .null), ("num_bits", .int(bits)), ("observer", observer.map { .string($0) } ?? .null),
                     ("observer_kwargs", .object([])), ("scale_dtype", scaleDType.map { .string($0) } ?? .null), ("strategy", .string(strategy)),
                     ("symmetric", .bool(symmetric)), ("type", .string(type)), ("zp_dtype", zp ? .string("torch.int8") : .null)])
        }
        switch s.scheme.codes {
        case .mxfp4:
            return ("mxfp4-pack-quantized", args(bits: 4, type: "float", strategy: "group", group: MXFP4Quantizer.groupSize, symmetric: true,
                                                 scaleDType: "torch.uint8"), .null)
        case .nvfp4:
            func nv(_ observer: String, _ dynamic: JSON) -> JSON {
                args(bits: 4, type: "float", strategy: "tensor_group", group: NVFP4Quantizer.groupSize, symmetric: true, dynamic: dynamic,
                     observer: observer, scaleDType: "torch.float8_e4m3fn")
            }
            return ("nvfp4-pack-quantized", nv("memoryless_minmax", .bool(false)),
                    staticActivations ? nv("static_minmax", .string("local")) : .null)
        case .fp8:
            let block = s.fp8Granularity == .block
            let weights = args(bits: 8, type: "float", strategy: s.fp8Granularity.rawValue, group: nil, symmetric: true, block: block)
            let inputs = staticActivations
                ? args(bits: 8, type: "float", strategy: "tensor", group: nil, symmetric: true, observer: "minmax")
                : args(bits: 8, type: "float", strategy: block ? "group" : "token", group: block ? 128 : nil, symmetric: true,
                       dynamic: .bool(true), observer: nil)
            return ("float-quantized", weights, inputs)
        case .int, .kept:
            return ("pack-quantized", args(bits: s.scheme.bits, type: "int", strategy: s.groupSize == nil ? "channel" : "group",
                                           group: s.groupSize, symmetric: s.symmetric, zp: !s.symmetric), .null)
        }
    }
}

extension RuntimeLayout where Self == CompressedTensorsLayout {
    public static var compressedTensors: CompressedTensorsLayout { CompressedTensorsLayout() }
}
