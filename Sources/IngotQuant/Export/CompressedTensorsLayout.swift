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

    public func outputs(_ w: ExportWeight) throws -> [SafetensorsWriter.Entry] {
        let s = w.settings!, m = w.module, rows = w.shape[0], cols = w.shape[1]
        let storeType = ComputePrecision(dtype: w.dtype).dtype
        switch s.scheme.codes {
        case .int(let bits):
            let g = s.groupWidth(columns: cols), groups = (cols + g - 1) / g
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

    public func quantizationConfig(_ plan: QuantizationPlan, staticActivations: Bool, ignored: [String]) -> JSON {
        let s = plan.defaults
        if s.scheme.codes == .mxfp4 { return mxfp4Config(ignored: ignored) }
        if s.scheme.codes == .nvfp4 { return nvfp4Config(activations: staticActivations, ignored: ignored) }
        let fp8 = s.scheme.fp8Format != nil
        var weights: [(key: String, value: JSON)] = [("actorder", .null)]
        weights.append(("block_structure", fp8 && s.fp8Granularity == .block ? .array([.int(128), .int(128)]) : .null))
        weights += [("dynamic", .bool(false)),
                    ("group_size", !fp8 && s.groupSize != nil ? .int(s.groupSize!) : .null),
                    ("num_bits", .int(s.scheme.bits)), ("observer", .string("memoryless_minmax")), ("observer_kwargs", .object([])),
                    ("scale_dtype", .null),
                    ("strategy", .string(fp8 ? s.fp8Granularity.rawValue : (s.groupSize == nil ? "channel" : "group"))),
                    ("symmetric", .bool(fp8 || s.symmetric)), ("type", .string(fp8 ? "float" : "int")),
                    ("zp_dtype", !fp8 && !s.symmetric ? .string("torch.int8") : .null)]
        var inputActs: JSON = .null
        if fp8 && staticActivations {
            inputActs = .object([("actorder", .null), ("block_structure", .null), ("dynamic", .bool(false)),
                                 ("group_size", .null), ("num_bits", .int(8)), ("observer", .string("minmax")),
                                 ("observer_kwargs", .object([])), ("scale_dtype", .null), ("strategy", .string("tensor")),
                                 ("symmetric", .bool(true)), ("type", .string("float")), ("zp_dtype", .null)])
        } else if fp8 {
            let block = s.fp8Granularity == .block
            inputActs = .object([("actorder", .null), ("block_structure", .null), ("dynamic", .bool(true)),
                                 ("group_size", block ? .int(128) : .null), ("num_bits", .int(8)), ("observer", .null),
                                 ("observer_kwargs", .object([])), ("scale_dtype", .null),
                                 ("strategy", .string(block ? "group" : "token")), ("symmetric", .bool(true)),
                                 ("type", .string("float")), ("zp_dtype", .null)])
        }
        let fmt = fp8 ? "float-quantized" : "pack-quantized"
        let group = JSON.object([("format", .string(fmt)), ("input_activations", inputActs), ("output_activations", .null),
                                 ("targets", .array([.string("Linear")])), ("weights", .object(weights))])
        return .object([("config_groups", .object([("group_0", group)])), ("format", .string(fmt)),
                        ("global_compression_ratio", .null), ("ignore", .array(ignored.map { .string($0) })),
                        ("kv_cache_scheme", .null), ("quant_method", .string("compressed-tensors")),
                        ("quantization_status", .string("compressed")), ("sparsity_config", .object([])),
                        ("transform_config", .object([])), ("version", .string("0.19.0"))])
    }
}

extension CompressedTensorsLayout {
    /// llm-compressor's `MXFP4A16` preset: weight-only, groups of 32, E8M0 (`torch.uint8`) scales.
    func mxfp4Config(ignored: [String]) -> JSON {
        let weights: JSON = .object([("actorder", .null), ("block_structure", .null), ("dynamic", .bool(false)),
                                     ("group_size", .int(MXFP4Quantizer.groupSize)), ("num_bits", .int(4)),
                                     ("observer", .string("memoryless_minmax")), ("observer_kwargs", .object([])),
                                     ("scale_dtype", .string("torch.uint8")), ("strategy", .string("group")), ("symmetric", .bool(true)),
                                     ("type", .string("float")), ("zp_dtype", .null)])
        return fp4Config("mxfp4-pack-quantized", weights: weights, inputs: .null, ignored: ignored)
    }

    /// llm-compressor's `NVFP4A16` preset (weights: `tensor_group`, groups of 16, E4M3 scales), and `NVFP4` with
    /// the same arguments for the inputs (dynamic local scales, static global scale from a `static_minmax` observer).
    func nvfp4Config(activations: Bool, ignored: [String]) -> JSON {
        func args(observer: String, dynamic: JSON) -> JSON {
            .object([("actorder", .null), ("block_structure", .null), ("dynamic", dynamic),
                     ("group_size", .int(NVFP4Quantizer.groupSize)), ("num_bits", .int(4)), ("observer", .string(observer)),
                     ("observer_kwargs", .object([])), ("scale_dtype", .string("torch.float8_e4m3fn")), ("strategy", .string("tensor_group")),
                     ("symmetric", .bool(true)), ("type", .string("float")), ("zp_dtype", .null)])
        }
        return fp4Config("nvfp4-pack-quantized", weights: args(observer: "memoryless_minmax", dynamic: .bool(false)),
                         inputs: activations ? args(observer: "static_minmax", dynamic: .string("local")) : .null, ignored: ignored)
    }

    func fp4Config(_ fmt: String, weights: JSON, inputs: JSON, ignored: [String]) -> JSON {
        let group = JSON.object([("format", .string(fmt)), ("input_activations", inputs), ("output_activations", .null),
                                 ("targets", .array([.string("Linear")])), ("weights", weights)])
        return .object([("config_groups", .object([("group_0", group)])), ("format", .string(fmt)),
                        ("global_compression_ratio", .null), ("ignore", .array(ignored.map { .string($0) })),
                        ("kv_cache_scheme", .null), ("quant_method", .string("compressed-tensors")),
                        ("quantization_status", .string("compressed")), ("sparsity_config", .object([])),
                        ("transform_config", .object([])), ("version", .string("0.19.0"))])
    }
}

extension RuntimeLayout where Self == CompressedTensorsLayout {
    public static var compressedTensors: CompressedTensorsLayout { CompressedTensorsLayout() }
}
