import IngotCore
import IngotFormats
import IngotModel

/// A mutable reference (lets a non-escaping closure record findings).
final class Box<T> { var value: T; init(_ v: T) { value = v } }

/// Quantizes a checkpoint tensor by tensor and writes it in a runtime layout, with `config.json` carrying the
/// `quantization_config` that runtime reads. Streams: one weight is quantized and written at a time.
public struct ExportJob {
    public var source: TensorSource
    public var modelDirectory: String?
    public var format: any RuntimeLayout
    public var plan: QuantizationPlan
    public var destination: String
    public var overwrite = false
    public var maxShardSize = 5_000_000_000
    public var progress: ProgressReporter = SilentProgress()
    /// Fail (writing nothing) when a weight holds NaN/Inf, all-zero rows/groups, denormals or out-of-range values.
    public var strict = false
    /// Companion files when the source is an `.ingot` (they travel inside it).
    public var storedCompanions: [(name: String, bytes: [UInt8])] = []

    /// `plan` is adapted to the layout (`RuntimeLayout.adapt`).
    public init(source: TensorSource, modelDirectory: String?, format: some RuntimeLayout, plan: QuantizationPlan, destination: String) {
        self.source = source
        self.modelDirectory = modelDirectory
        self.format = format
        self.plan = format.adapt(plan)
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

    /// Every weight to export, fused 3-D experts split into per-expert 2-D weights, with its settings. A quantized
    /// `.ingot` says what was quantized: its stored codes are repacked and its other tensors stay as they are.
    func weights() throws -> [ExportWeight] {
        var out: [ExportWeight] = []
        var companions = Set<String>()
        let quantizedSource = source.tensors.contains { source.nativeEntry($0.name)?.quantization != nil }
        let plan = quantizedSource ? QuantizationPlan(defaults: .init(scheme: .none)) : self.plan
        for t in source.tensors {
            if let q = source.nativeEntry(t.name)?.quantization {
                companions.formUnion([q.scale] + [q.zeroPoint, q.globalScale].compactMap { $0 })
            }
        }
        for t in source.tensors where !companions.contains(t.name) {
            if let q = source.nativeEntry(t.name)?.quantization {
                var st = QuantizationPlan.Settings(scheme: .stored(q))
                st.groupSize = q.groupSize
                st.symmetric = q.scheme != .intAffine
                st.fp8Granularity = q.granularity
                out.append(ExportWeight(name: format.exportedName(t.name), source: t.name, dtype: q.originalDType, shape: q.originalShape,
                                        byteOffset: 0, byteCount: t.byteCount, settings: format.settings(st, columns: q.originalShape[1]), stored: q, inputScale: inputScale(format.exportedName(t.name), source: t.name)))
                continue
            }
            if let slices = WeightNames.fusedExpertSlices(t.name, shape: t.shape) {
                let cols = t.shape[2], w = t.dtype.byteWidth ?? 1
                for e in slices {
                    out.append(ExportWeight(name: e.name, source: t.name, dtype: t.dtype, shape: [e.rows, cols],
                                            byteOffset: e.firstRow * cols * w, byteCount: e.rows * cols * w,
                                            settings: plan.settings(for: e.name, shape: [e.rows, cols]).map { format.settings($0, columns: cols) },
                                            inputScale: inputScale(e.name, source: t.name)))
                }
                continue
            }
            out.append(ExportWeight(name: format.exportedName(t.name), source: t.name, dtype: t.dtype, shape: t.shape, byteOffset: 0,
                                    byteCount: t.byteCount,
                                    settings: plan.settings(for: t.name, shape: t.shape).map { format.settings($0, columns: t.shape.last ?? 0) }, inputScale: inputScale(format.exportedName(t.name), source: t.name)))
        }
        if let w = out.first(where: { $0.settings != nil && $0.stored == nil && !$0.dtype.isFloatingPoint }) {
            throw Failure.notFloat(tensor: w.source, dtype: w.dtype)
        }
        return out
    }

    /// The output tensors of one weight (names, dtypes, shapes), in write order.
    func outputs(_ w: ExportWeight) throws -> [SafetensorsWriter.Entry] {
        guard w.settings != nil else { return [try .init(name: w.name, dtype: w.dtype, shape: w.shape)] }
        return try format.outputs(w)
    }

    /// The weight as a `RoundedWeightSource` (GPTQ) rounds it with the layout's integer quantizer (a fused expert's
    /// slice named by its elements), or nil when the source does not round this weight itself.
    func rounded(_ w: ExportWeight, _ values: UnsafeBufferPointer<Float>) throws -> QuantizedWeight? {
        guard let r = source as? RoundedWeightSource, let s = w.settings, let (quantizer, precision) = format.rounding(w) else { return nil }
        let width = w.dtype.byteWidth ?? 1
        let whole = w.byteOffset == 0 && w.byteCount == source.info(w.source)?.byteCount
        let ref = whole ? TensorRef(name: w.source) : TensorRef(name: w.source, slice: (w.byteOffset / width)..<((w.byteOffset + w.byteCount) / width))
        return try r.rounded(Array(values), of: ref, rows: w.shape[0], columns: w.shape[1], settings: s, quantizer: quantizer, precision: precision)
    }

    /// The static activation scale of a weight (by exported or source name), when the plan has one.
    func inputScale(_ name: String, source: String) -> Float? { plan.activationScales[name] ?? plan.activationScales[source] }

    /// NVFP4 global scales of the weights this export quantizes with NVFP4 (fused experts' slices included).
    func globalScales(_ ws: [ExportWeight]) -> NVFP4GlobalScales {
        let nv = ws.filter { $0.stored == nil && $0.settings?.scheme.codes == .nvfp4 }
        let byName = Dictionary(nv.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        return NVFP4GlobalScales(members: nv.map { ($0.name, $0.dtype) }) { [source] name in
            let w = byName[name]!
            return try source.tensor(named: w.source).withBytes { all in
                let bytes = UnsafeRawBufferPointer(rebasing: all[w.byteOffset..<(w.byteOffset + w.byteCount)])
                return NVFP4Quantizer.absmax(try FloatCodecs.decodeToF32(bytes, dtype: w.dtype, count: w.byteCount / (w.dtype.byteWidth ?? 1)))
            }
        }
    }

    /// Static activations: scales from calibration, or `input_scale` tensors stored in a quantized `.ingot`.
    var staticActivations: Bool {
        !plan.activationScales.isEmpty || source.tensors.contains { $0.name.hasSuffix(".input_scale") || $0.name.hasSuffix(".input_global_scale") }
    }

    @discardableResult
    public func run() throws -> [ExportRecord] {
        let ws = try weights()
        let globalScales = globalScales(ws)
        var entries: [SafetensorsWriter.Entry] = []
        var owner: [(weight: Int, part: Int)] = []
        var records: [ExportRecord] = []
        for (i, w) in ws.enumerated() {
            let outs = try outputs(w)
            for (k, e) in outs.enumerated() { entries.append(e); owner.append((i, k)) }
            records.append(ExportRecord(name: w.name, shape: w.shape, from: w.dtype.rawValue,
                                        to: w.settings.map { Self.describe($0) } ?? w.dtype.rawValue + " (kept)"))
        }
        let modules = try exportedModules(ws)
        var writer = CheckpointWriter(destination: destination)
        writer.overwrite = overwrite
        writer.maxShardSize = maxShardSize
        writer.metadata = source.metadata
        writer.extraFiles = storedCompanions.filter { $0.name != "config.json" }
        let config = try configFile(modules)
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
                    var w = w
                    w.globalScale = try values.withUnsafeBufferPointer { try globalScales.scale(for: w.name, values: $0) }
                    cache = (wi, try values.withUnsafeBufferPointer { try format.package(rounded(w, $0) ?? format.quantize($0, w), w) })
                    progress.update(wi + 1)
                } else if cache?.index != wi, let stored = w.stored {
                    cache = (wi, try format.package(QuantizedWeight.load(w.source, info: stored, from: source), w))
                    progress.update(wi + 1)
                }
                try cache!.parts[part].withUnsafeBytes { try sink($0) }
            }
        }
        progress.finish()
        for (name, h) in healthLog.value { if let i = records.firstIndex(where: { $0.name == name }) { records[i].health = h } }
        return records
    }

    /// The report's words for how a weight was quantized.
    static func describe(_ s: QuantizationPlan.Settings) -> String {
        switch s.scheme.codes {
        case .int(let bits):
            "int\(bits) \(s.symmetric ? "sym" : "asym") " + (s.groupSize.map { "g\($0)" } ?? "per-channel")
                + (s.convention == .autoawq ? " (autoawq)" : "")
        case .fp8(let f): "fp8-\(f.rawValue) \(s.fp8Granularity.rawValue)"
        case .mxfp4: "mxfp4 g\(MXFP4Quantizer.groupSize)"
        case .nvfp4: "nvfp4 g\(NVFP4Quantizer.groupSize)"
        case .kept: "kept"
        }
    }

    /// What the weights become, for the `quantization_config`: quantized modules by settings (a quantized `.ingot`'s
    /// stored codes are described as stored, whatever scheme the plan names), and the linears kept in full precision
    /// that a runtime would otherwise quantize: roles kept by rule (routers, decay projections, towers: a tower's
    /// linears even when named *embed*), linears the plan ignores, and `lm_head`.
    func exportedModules(_ ws: [ExportWeight]) throws -> ExportedModules {
        var quantized: [(module: String, settings: QuantizationPlan.Settings)] = []
        var ignored: [String] = []
        for w in ws where w.shape.count == 2 {
            guard let module = WeightNames.module(of: w.name) else { continue }
            if let s = w.settings {
                var described = s
                described.convention = plan.defaults.convention
                quantized.append((module, described))
                continue
            }
            let role = TensorRole(name: w.name, shape: w.shape)
            if role == .linear || (role.isUnquantizedLinear && (role == .visionTower || !w.name.contains("embed"))) { ignored.append(module) }
        }
        if !ignored.contains(WeightNames.outputHead) { ignored.append(WeightNames.outputHead) }
        return ExportedModules(quantized, preferred: plan.defaults, ignored: ignored, staticActivations: staticActivations)
    }

    /// The source's config.json with the quantization config added (nil when the source has none).
    func configFile(_ modules: ExportedModules) throws -> [UInt8]? {
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
        kv.append(("quantization_config", try format.quantizationConfig(modules)))
        return Array((JSON.object(kv).serialized(pretty: true) + "\n").utf8)
    }
}
