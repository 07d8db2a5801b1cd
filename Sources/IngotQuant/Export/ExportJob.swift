import IngotCore
import IngotFormats
import IngotModel

/// Layouts that runtimes load.
public enum ExportFormat: String, Sendable, CaseIterable {
    /// llm-compressor / compressed-tensors: `pack-quantized` (INT4/INT8) or `float-quantized` (FP8), vLLM and
    /// transformers read it.
    case compressedTensors = "compressed-tensors"
    /// AutoAWQ GEMM (`qweight`/`qzeros`/`scales`).
    case autoawq
    /// DeepSeek-V3-style FP8: `weight` F8_E4M3 + `weight_scale_inv` F32 per 128×128 block.
    case fp8
}

/// A weight as the exporter sees it: a 2-D slice of a source tensor under the name it is exported as.
struct ExportWeight {
    let name: String           // exported tensor name (ends in .weight for linears)
    let source: String         // source tensor
    let dtype: DType
    let shape: [Int]
    let byteOffset: Int        // slice of the source tensor (fused experts)
    let byteCount: Int
    let settings: QuantizationPlan.Settings?
    /// Set when the source (an `.ingot` file) already holds this weight quantized: it is repacked, not requantized.
    var stored: QuantizationInfo? = nil
}

/// A mutable reference (lets a non-escaping closure record findings).
final class Box<T> { var value: T; init(_ v: T) { value = v } }

/// One line of the report: what happened to a tensor.
public struct ExportRecord: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var from: String
    public var to: String
    /// Findings about the weight before quantization (nil when clean or not quantized).
    public var health: WeightHealth? = nil
}

/// Quantizes a checkpoint tensor by tensor and writes it in a runtime layout, with `config.json` carrying the
/// `quantization_config` that runtime reads. Streams: one weight is quantized and written at a time.
public struct ExportJob {
    public var source: TensorSource
    public var modelDirectory: String?
    public var format: ExportFormat
    public var plan: QuantizationPlan
    public var destination: String
    public var overwrite = false
    public var maxShardSize = 5_000_000_000
    public var progress: ProgressReporter = SilentProgress()
    /// Fail (writing nothing) when a weight holds NaN/Inf, all-zero rows/groups, denormals or out-of-range values.
    public var strict = false
    /// Companion files when the source is an `.ingot` (they travel inside it).
    public var storedCompanions: [(name: String, bytes: [UInt8])] = []

    public init(source: TensorSource, modelDirectory: String?, format: ExportFormat, plan: QuantizationPlan, destination: String) {
        self.source = source
        self.modelDirectory = modelDirectory
        self.format = format
        self.plan = plan
        self.destination = destination
    }

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case unsupported(tensor: String, reason: String)
        case invalidConfig(String)
        /// An integer tensor where a weight to quantize belongs (its values are not weights).
        case notFloat(tensor: String, dtype: DType)
        public var description: String {
            switch self {
            case let .notFloat(t, d): "tensor '\(t)' is \(d.rawValue); only floating-point weights are quantized"
            case let .unsupported(t, r): "tensor '\(t)': \(r)"
            case let .invalidConfig(r): "config.json: \(r)"
            }
        }
    }

    /// Every weight to export, fused 3-D experts split into per-expert 2-D weights, with its settings.
    func weights() throws -> [ExportWeight] {
        var out: [ExportWeight] = []
        var companions = Set<String>()
        for t in source.tensors {
            if let q = source.nativeEntry(t.name)?.quantization { companions.insert(q.scale); if let z = q.zeroPoint { companions.insert(z) } }
        }
        for t in source.tensors where !companions.contains(t.name) {
            if let q = source.nativeEntry(t.name)?.quantization {
                var st = QuantizationPlan.Settings(scheme: .stored(q))
                st.groupSize = q.groupSize
                st.symmetric = q.scheme != .intAffine
                st.fp8Granularity = q.granularity
                let name = format == .compressedTensors ? WeightNames.llmCompressorName(t.name) : t.name
                out.append(ExportWeight(name: name, source: t.name, dtype: q.originalDType, shape: q.originalShape, byteOffset: 0,
                                        byteCount: t.byteCount, settings: st, stored: q))
                continue
            }
            if let slices = WeightNames.fusedExpertSlices(t.name, shape: t.shape) {
                let cols = t.shape[2], w = t.dtype.byteWidth ?? 1
                for e in slices {
                    out.append(ExportWeight(name: e.name, source: t.name, dtype: t.dtype, shape: [e.rows, cols],
                                            byteOffset: e.firstRow * cols * w, byteCount: e.rows * cols * w,
                                            settings: plan.settings(for: e.name, shape: [e.rows, cols])))
                }
                continue
            }
            var name = t.name
            if format == .compressedTensors { name = WeightNames.llmCompressorName(name) }
            out.append(ExportWeight(name: name, source: t.name, dtype: t.dtype, shape: t.shape, byteOffset: 0,
                                    byteCount: t.byteCount, settings: plan.settings(for: t.name, shape: t.shape)))
        }
        if let w = out.first(where: { $0.settings != nil && $0.stored == nil && !$0.dtype.isFloatingPoint }) {
            throw Failure.notFloat(tensor: w.source, dtype: w.dtype)
        }
        return out
    }

    /// The output tensors of one weight (names, dtypes, shapes), in write order.
    func outputs(_ w: ExportWeight) throws -> [SafetensorsWriter.Entry] {
        guard let s = w.settings else { return [try .init(name: w.name, dtype: w.dtype, shape: w.shape)] }
        let m = String(w.name.dropLast(7)), rows = w.shape[0], cols = w.shape[1]
        let storeType = ComputePrecision(dtype: w.dtype).dtype
        switch (format, s.scheme.codes) {
        case (.compressedTensors, .int(let bits)):
            let g = s.groupWidth(columns: cols), groups = (cols + g - 1) / g
            var e = [try SafetensorsWriter.Entry(name: m + ".weight_packed", dtype: .i32, shape: [rows, (cols * bits + 31) / 32]),
                     try .init(name: m + ".weight_scale", dtype: storeType, shape: [rows, groups])]
            if !s.symmetric { e.append(try .init(name: m + ".weight_zero_point", dtype: .i32, shape: [(rows * bits + 31) / 32, groups])) }
            e.append(try .init(name: m + ".weight_shape", dtype: .i64, shape: [2]))
            return e
        case (.compressedTensors, .fp8):
            let q = FP8Quantizer(granularity: s.fp8Granularity)
            let sc = q.granularity == .block ? [(rows + 127) / 128, (cols + 127) / 128] : q.granularity == .channel ? [rows, 1] : [1]
            var e = [try SafetensorsWriter.Entry(name: m + ".weight", dtype: s.scheme.codeDType!, shape: [rows, cols]),
                     try .init(name: m + ".weight_scale", dtype: storeType, shape: sc)]
            if inputScale(w) != nil { e.append(try .init(name: m + ".input_scale", dtype: .f32, shape: [1])) }
            return e
        case (.autoawq, .int(bits: 4)):
            let g = s.groupWidth(columns: cols)
            guard rows % 8 == 0, cols % g == 0 else {
                throw Failure.unsupported(tensor: w.name, reason: "AutoAWQ GEMM needs out % 8 == 0 and in % group == 0 (shape \(ShapeMath.describe(w.shape)), group \(g))")
            }
            return [try .init(name: m + ".qweight", dtype: .i32, shape: [cols, rows / 8]),
                    try .init(name: m + ".qzeros", dtype: .i32, shape: [cols / g, rows / 8]),
                    try .init(name: m + ".scales", dtype: .f16, shape: [cols / g, rows])]
        case (.fp8, .fp8(.e4m3)):
            return [try .init(name: m + ".weight", dtype: .f8e4m3, shape: [rows, cols]),
                    try .init(name: m + ".weight_scale_inv", dtype: .f32, shape: [(rows + 127) / 128, (cols + 127) / 128])]
        default:
            throw Failure.unsupported(tensor: w.name, reason: "scheme \(s.scheme) cannot be exported as \(format.rawValue)")
        }
    }

    /// Quantizes one weight (the runtime's own arithmetic) and returns the bytes of each output tensor.
    func quantize(_ w: ExportWeight, _ values: [Float]) throws -> [[UInt8]] {
        let s = w.settings!, rows = w.shape[0], cols = w.shape[1]
        var cs = s
        cs.convention = .compressedTensors
        let rounding: (quantizer: IntQuantizer, precision: ComputePrecision)? = switch format {
        case .autoawq: (IntQuantizer(bits: 4, groupSize: s.groupSize, symmetric: false, convention: .autoawq), .f16)
        case .fp8: nil
        case .compressedTensors: cs.intQuantizer.map { ($0, ComputePrecision(dtype: w.dtype)) }
        }
        if let (quantizer, precision) = rounding, let q = try rounded(w, values, quantizer: quantizer, precision: precision) {
            return try package(w, q)
        }
        let q: QuantizedWeight = try values.withUnsafeBufferPointer { v in
            switch format {
            case .autoawq:
                return rounding!.quantizer.quantize(v, rows: rows, columns: cols, precision: .f16)
            case .fp8:
                return FP8Quantizer(format: .e4m3, granularity: .block).quantize(v, rows: rows, columns: cols, precision: .f32)
            case .compressedTensors:
                return try QuantizeJob.quantize(v, rows: rows, columns: cols, dtype: w.dtype, settings: cs)
            }
        }
        return try package(w, q)
    }

    /// The weight as a `RoundedWeightSource` rounds it (a fused expert's slice named by its elements), or nil.
    func rounded(_ w: ExportWeight, _ values: [Float], quantizer: IntQuantizer, precision: ComputePrecision) throws -> QuantizedWeight? {
        guard let r = source as? RoundedWeightSource, let s = w.settings else { return nil }
        let width = w.dtype.byteWidth ?? 1
        let whole = w.byteOffset == 0 && w.byteCount == source.info(w.source)?.byteCount
        let ref = whole ? TensorRef(name: w.source) : TensorRef(name: w.source, slice: (w.byteOffset / width)..<((w.byteOffset + w.byteCount) / width))
        return try r.rounded(values, of: ref, rows: w.shape[0], columns: w.shape[1], settings: s, quantizer: quantizer, precision: precision)
    }

    /// The bytes of each output tensor of a quantized weight (same order as `outputs`).
    func package(_ w: ExportWeight, _ q: QuantizedWeight) throws -> [[UInt8]] {
        let s = w.settings!, rows = w.shape[0], cols = w.shape[1]
        if format == .fp8, q.granularity != .block || q.scheme != .fp8E4M3 {
            throw Failure.unsupported(tensor: w.name, reason: "DeepSeek FP8 needs 128×128-block E4M3 weights")
        }
        return try {
            switch (format, s.scheme.codes) {
            case (.compressedTensors, .int(let bits)):
                let packed = bits == 4 ? Packing.compressedTensors(q.codes, rows: rows, columns: cols)
                    : Packing.packBytes(q.codes, rows: rows, columns: cols)
                var out = [Packing.bytes(packed), Packing.floatBytes(q.scales, as: q.scaleDType)]
                if let z = q.zeros {
                    out.append(Packing.bytes(bits == 4 ? Packing.compressedTensorsZeros(z, rows: rows, groups: q.scaleColumns)
                                             : Packing.packBytesDim0(z, rows: rows, columns: q.scaleColumns)))
                }
                out.append(Packing.bytes([Int64(rows), Int64(cols)]))
                return out
            case (.compressedTensors, _):
                return [q.codes, Packing.floatBytes(q.scales, as: q.scaleDType)] + (inputScale(w).map { [Packing.floatBytes([$0], as: .f32)] } ?? [])
            case (.autoawq, _):
                guard q.bits == 4, q.granularity == .group else {
                    throw Failure.unsupported(tensor: w.name, reason: "AutoAWQ GEMM holds 4-bit group-quantized weights only")
                }
                let zeros = q.zeros ?? [UInt8](repeating: UInt8(q.codeOffset), count: rows * q.scaleColumns)
                let groups = q.scaleColumns
                var scalesT = [Float](repeating: 0, count: groups * rows)
                for r in 0..<rows { for g in 0..<groups { scalesT[g * rows + r] = q.scales[r * groups + g] } }
                return [Packing.bytes(Packing.awqWeight(q.codes, rows: rows, columns: cols)),
                        Packing.bytes(Packing.awqZeros(zeros, rows: rows, groups: groups)),
                        Packing.floatBytes(scalesT, as: .f16)]
            case (.fp8, _):
                return [q.codes, Packing.floatBytes(q.scales, as: .f32)]
            }
        }()
    }

    /// The static activation scale of a weight, when the plan has one.
    func inputScale(_ w: ExportWeight) -> Float? { plan.activationScales[w.name] ?? plan.activationScales[w.source] }

    /// Static activations: scales from calibration, or `input_scale` tensors stored in a quantized `.ingot`.
    var staticActivations: Bool { !plan.activationScales.isEmpty || source.tensors.contains { $0.name.hasSuffix(".input_scale") } }

    /// The `quantization_config` block the runtime reads.
    func quantizationConfig(ignored: [String]) -> JSON {
        let s = plan.defaults
        switch format {
        case .compressedTensors:
            let fp8 = s.scheme.fp8Format != nil
            let bits = s.scheme.bits
            var weights: [(key: String, value: JSON)] = [("actorder", .null)]
            weights.append(("block_structure", fp8 && s.fp8Granularity == .block ? .array([.int(128), .int(128)]) : .null))
            weights += [("dynamic", .bool(false)),
                        ("group_size", !fp8 && s.groupSize != nil ? .int(s.groupSize!) : .null),
                        ("num_bits", .int(bits)), ("observer", .string("memoryless_minmax")), ("observer_kwargs", .object([])),
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
        case .autoawq:
            return .object([("bits", .int(4)), ("group_size", .int(s.groupSize ?? -1)), ("modules_to_not_convert", .null),
                            ("quant_method", .string("awq")), ("version", .string("gemm")), ("zero_point", .bool(true))])
        case .fp8:
            return .object([("activation_scheme", .string("dynamic")), ("fmt", .string("e4m3")), ("quant_method", .string("fp8")),
                            ("weight_block_size", .array([.int(128), .int(128)]))])
        }
    }

    @discardableResult
    public func run() throws -> [ExportRecord] {
        let ws = try weights()
        var entries: [SafetensorsWriter.Entry] = []
        var owner: [(weight: Int, part: Int)] = []
        var records: [ExportRecord] = []
        for (i, w) in ws.enumerated() {
            let outs = try outputs(w)
            for (k, e) in outs.enumerated() { entries.append(e); owner.append((i, k)) }
            records.append(ExportRecord(name: w.name, shape: w.shape, from: w.dtype.rawValue,
                                        to: w.settings.map { describe($0) } ?? w.dtype.rawValue + " (kept)"))
        }
        // Modules left in full precision that a runtime would otherwise treat as quantizable linears.
        // (A tower's linears are listed even when named *embed*, e.g. Muse's patch_embedder.patch_embedding.)
        var ignored = ws.filter { w in
            guard w.settings == nil, w.shape.count == 2 else { return false }
            let role = TensorRole(name: w.name, shape: w.shape)
            return role.isUnquantizedLinear && (role == .visionTower || !w.name.contains("embed"))
        }.compactMap { WeightNames.module(of: $0.name) }
        ignored.append(WeightNames.outputHead)
        var writer = CheckpointWriter(destination: destination)
        writer.overwrite = overwrite
        writer.maxShardSize = maxShardSize
        writer.metadata = source.metadata
        writer.extraFiles = storedCompanions.filter { $0.name != "config.json" }
        let config = try configFile(ignored: ignored)
        if let c = config { writer.extraFiles.append(("config.json", c)) }
        if let dir = modelDirectory { writer.companionsFrom = dir }
        var cache: (index: Int, parts: [[UInt8]])? = nil
        let healthLog = Box<[(String, WeightHealth)]>([])
        progress.begin("export", total: ws.count, unit: .items)
        try writer.write(entries) { i, sink in
            let (wi, part) = owner[i]
            let w = ws[wi]
            let view = try source.tensor(named: w.source)
            try view.withBytes { all in
                let bytes = UnsafeRawBufferPointer(rebasing: all[w.byteOffset..<(w.byteOffset + w.byteCount)])
                guard w.settings != nil else { try sink(bytes); return }
                if cache?.index != wi, w.stored == nil {
                    let count = w.byteCount / (w.dtype.byteWidth ?? 1)
                    let values = try FloatCodecs.decodeToF32(bytes, dtype: w.dtype, count: count)
                    let health = values.withUnsafeBufferPointer {
                        WeightHealth.scan($0, rows: w.shape[0], columns: w.shape[1], groupSize: w.settings!.groupSize,
                                          fp8Max: w.settings!.scheme.fp8Format?.maxValue)
                    }
                    if !health.isClean {
                        if strict { throw BadWeights(tensor: w.name, health: health) }
                        healthLog.value.append((w.name, health))
                    }
                    cache = (wi, try quantize(w, values))
                    progress.update(wi + 1)
                } else if cache?.index != wi, let stored = w.stored {
                    cache = (wi, try package(w, QuantizedWeight.load(w.source, info: stored, from: source)))
                    progress.update(wi + 1)
                }
                try cache!.parts[part].withUnsafeBytes { try sink($0) }
            }
        }
        progress.finish()
        for (name, h) in healthLog.value { if let i = records.firstIndex(where: { $0.name == name }) { records[i].health = h } }
        return records
    }

    func describe(_ s: QuantizationPlan.Settings) -> String { Self.describe(s, format: format) }

    static func describe(_ s: QuantizationPlan.Settings, format: ExportFormat?) -> String {
        switch s.scheme.codes {
        case .int(let bits):
            "int\(bits) \(s.symmetric ? "sym" : "asym") " + (s.groupSize.map { "g\($0)" } ?? "per-channel")
                + (s.convention == .autoawq ? " (autoawq)" : "")
        case .fp8(let f): "fp8-\(f.rawValue) \(format == .fp8 ? "block" : s.fp8Granularity.rawValue)"
        case .kept: "kept"
        }
    }

    /// The source's config.json with the quantization config added (nil when the source has none).
    func configFile(ignored: [String]) throws -> [UInt8]? {
        let raw: [UInt8]
        if let dir = modelDirectory, FileSystem.exists(dir + "/config.json") { raw = try FileSystem.read(dir + "/config.json") }
        else if let c = storedCompanions.first(where: { $0.name == "config.json" }) { raw = c.bytes }
        else { return nil }
        let json: JSON
        do { json = try JSON.parse(raw, rejectDuplicateKeys: false) } catch {
            throw Failure.invalidConfig("not valid JSON (\(error))")
        }
        guard var kv = json.objectValue else { throw Failure.invalidConfig("not a JSON object") }
        kv.removeAll { $0.key == "quantization_config" }
        kv.append(("quantization_config", quantizationConfig(ignored: ignored)))
        return Array((JSON.object(kv).serialized(pretty: true) + "\n").utf8)
    }
}
