import CKernels
import IngotCore
import IngotFormats
import IngotModel

/// `ingot quantize … -o X.ingot`: quantizes a checkpoint into the native container, quantized tensors
/// first-class (codes + scale/zero-point tensors + `QuantizationInfo`), everything else stored losslessly.
/// Streams tensor by tensor.
public struct QuantizeJob {
    public var source: TensorSource
    public var modelDirectory: String?
    public var plan: QuantizationPlan
    public var destination: String
    public var options = IngotFileWriter.Options()
    public var overwrite = false
    public var metadata: [(key: String, value: JSON)] = []
    /// Fail (writing nothing) on NaN/Inf, all-zero rows/groups, denormals or out-of-range values.
    public var strict = false
    public var progress: ProgressReporter = SilentProgress()
    /// Quantize only this share of the tensors into `NAME-0000i-of-0000N.ingot` (see `WorkSplit`, `ShardMerge`).
    public var split: WorkSplit?
    /// Units for `split`: whole layers (needed by AWQ, whose transforms span a layer) or experts too.
    public var splitExperts = true

    /// The file `run()` writes.
    public var outputPath: String {
        split.map { IngotShardSet.shardName(destination, index: $0.index, count: $0.count) } ?? destination
    }

    public init(source: TensorSource, modelDirectory: String?, plan: QuantizationPlan, destination: String) {
        self.source = source
        self.modelDirectory = modelDirectory
        self.plan = plan
        self.destination = destination
    }

    /// Quantizes one weight as the plan says (compressed-tensors arithmetic unless the AutoAWQ convention is chosen).
    /// `globalScale`: NVFP4's (`NVFP4GlobalScales`; without one, the weight's own absmax sets it).
    public static func quantize(_ values: UnsafeBufferPointer<Float>, rows: Int, columns: Int, dtype: DType,
                                settings s: QuantizationPlan.Settings, globalScale: Float? = nil) throws -> QuantizedWeight {
        let precision = ComputePrecision(dtype: dtype)
        switch s.scheme.codes {
        case .int:
            return s.intQuantizer!.quantize(values, rows: rows, columns: columns, precision: precision)
        case .fp8(let format):
            return FP8Quantizer(format: format, granularity: s.fp8Granularity).quantize(values, rows: rows, columns: columns, precision: precision)
        case .mxfp4:
            guard s.groupSize == MXFP4Quantizer.groupSize else {
                throw ExportJob.Failure.unsupported(tensor: "", reason: "mxfp4 has groups of \(MXFP4Quantizer.groupSize) columns, not \(s.groupSize.map(String.init) ?? "per-channel")")
            }
            return MXFP4Quantizer().quantize(values, rows: rows, columns: columns, precision: precision)
        case .nvfp4:
            guard s.groupSize == NVFP4Quantizer.groupSize else {
                throw ExportJob.Failure.unsupported(tensor: "", reason: "nvfp4 has groups of \(NVFP4Quantizer.groupSize) columns, not \(s.groupSize.map(String.init) ?? "per-channel")")
            }
            let g = globalScale ?? NVFP4Quantizer.globalScale(absmax: NVFP4Quantizer.absmax(values), precision: precision)
            return NVFP4Quantizer().quantize(values, rows: rows, columns: columns, globalScale: g, precision: precision)
        case .kept:
            throw ExportJob.Failure.unsupported(tensor: "", reason: "scheme 'none' keeps a weight unquantized; there is nothing to quantize")
        }
    }

    @discardableResult
    public func run() throws -> [ExportRecord] {
        let writer = try IngotFileWriter(path: outputPath, options: options, overwrite: overwrite,
                                         shard: split.map { ($0.index, $0.count) } ?? (1, 1))
        // Explicit cleanup instead of `defer`: Swift 6.3's optimizer returned a stale error register from this
        // function when a `defer` ran on the throwing path (a crash instead of the error message in release).
        do {
            return try write(into: writer)
        } catch {
            writer.discard()
            throw error
        }
    }

    private func write(into writer: IngotFileWriter) throws -> [ExportRecord] {
        var meta: [(key: String, value: JSON)] = [("created_by", .string("ingot quantize")),
            ("safetensors_metadata", .object(source.metadata.map { ($0.key, JSON.string($0.value)) }))]
        meta += metadata
        // A split balances the work: quantized tensors by their bytes; kept ones are only copied, so they weigh less.
        let selected = split.map {
            $0.select(source.tensors, splitExperts: splitExperts) { t in
                plan.settings(for: t.name, shape: t.shape) == nil ? t.byteCount / 16 : t.byteCount
            }
        } ?? Array(source.tensors.indices)
        if let dir = modelDirectory, (split?.index ?? 1) == 1 {
            for name in ModelFiles.present(in: dir) { try writer.addFile(name: name, bytes: FileSystem.read(dir + "/" + name)) }
        }
        var records: [ExportRecord] = []
        // For a split: the source position of every tensor written, so `ingot merge` can restore the unsplit order.
        var positions: [Int] = []
        progress.begin("quantize", total: selected.count, unit: .items)
        // Tensors are gathered into batches whose row blocks are quantized in parallel (several small tensors
        // keep every worker busy) and whose chunks are then encoded together and written in order: the bytes are
        // those of writing one tensor at a time. Tensors the block path cannot take are written on their own.
        let globalScales = NVFP4GlobalScales(plan: plan, source: source)
        var batch = Batch()
        let pool = ScratchPool()
        var done = 0
        func flush() throws {
            let written = try write(batch, into: writer)
            for (k, tensorsWritten) in written {
                records.append(tensorsWritten.record)
                positions += Array(repeating: k, count: tensorsWritten.count)
            }
            done += written.count
            batch = Batch()
            progress.update(done)
        }
        let blockPath = !(source is RoundedWeightSource)
        for k in selected {
            let t = source.tensors[k]
            let view = try source.tensor(named: t.name)
            guard let s = plan.settings(for: t.name, shape: t.shape) else {
                batch.add(k, .kept(t, view), bytes: t.byteCount)
                if batch.bytes >= Batch.maxBytes { try flush() }
                continue
            }
            if blockPath, t.dtype.isFloatingPoint, t.shape.count == 2,
               let q = RowBlockQuantization(view: view, rows: t.shape[0], columns: t.shape[1], dtype: t.dtype, settings: s, pool: pool) {
                batch.add(k, .quantized(t, s, q), bytes: t.byteCount)
                if batch.bytes >= Batch.maxBytes { try flush() }
                continue
            }
            try flush()
            records.append(try write(t, view: view, into: writer, globalScales: globalScales))
            positions += Array(repeating: k, count: writer.tensorCount - positions.count)
            done += 1
            progress.update(done)
        }
        try flush()
        if let split {
            meta.append((ShardMerge.metadataKey, .object([("shard", .int(split.index)), ("of", .int(split.count)),
                                                         ("run", .string(runKey())), ("source_tensors", .int(source.tensors.count)),
                                                         ("positions", .array(positions.map { .int($0) }))])))
        }
        writer.metadata = .object(meta)
        try writer.commit()
        progress.finish()
        return records
    }

    /// What makes two shards parts of the same run: every source tensor's name, dtype, shape and settings (scheme,
    /// group, symmetry, convention, static input scale), the storage options and the metadata. `ingot merge`
    /// refuses shards whose keys differ.
    func runKey() -> String {
        var h = SHA256()
        h.update("level=\(options.level.map(String.init) ?? "raw") chunk=\(options.chunkSize) align=\(options.alignment)\n")
        h.update(JSON.object(metadata).serialized() + "\n")
        for t in source.tensors {
            let settings = plan.settings(for: t.name, shape: t.shape).map { String(describing: $0) } ?? "kept"
            let scale = plan.activationScales[t.name].map { String($0.bitPattern, radix: 16) } ?? "-"
            h.update("\(t.name) \(t.dtype.rawValue) \(t.shape) \(settings) \(scale)\n")
        }
        return h.hexDigest()
    }

    /// Tensors waiting to be quantized (by blocks) and written together, in source order.
    struct Batch {
        enum Item { case kept(TensorInfo, TensorView), quantized(TensorInfo, QuantizationPlan.Settings, RowBlockQuantization) }
        /// Source bytes gathered before a batch is written (bounds the codes held in memory).
        static let maxBytes = 64 << 20
        var items: [(source: Int, item: Item)] = []
        var bytes = 0
        mutating func add(_ k: Int, _ item: Item, bytes n: Int) { items.append((k, item)); bytes += n }
    }

    /// Quantizes the batch's tensors (every row block of every tensor in one parallel loop) and writes them in
    /// order: for each source tensor, its record and how many tensors it became.
    private func write(_ batch: Batch, into writer: IngotFileWriter) throws -> [(Int, (record: ExportRecord, count: Int))] {
        if batch.items.isEmpty { return [] }
        var jobs: [(RowBlockQuantization, Int)] = []
        for (_, item) in batch.items {
            if case .quantized(_, _, let q) = item { for b in 0..<q.blockCount { jobs.append((q, b)) } }
        }
        parallelFor(jobs.count) { j in jobs[j].0.run(block: jobs[j].1) }
        var views: [TensorView] = [], infos: [QuantizationInfo?] = []
        var written: [(Int, (record: ExportRecord, count: Int))] = []
        for (k, item) in batch.items {
            let before = views.count
            switch item {
            case .kept(let t, let view):
                views.append(view); infos.append(nil)
                written.append((k, (ExportRecord(name: t.name, shape: t.shape, from: t.dtype.rawValue, to: t.dtype.rawValue + " (kept)"), 1)))
            case .quantized(let t, let s, let block):
                try block.check()
                let health = block.mergedHealth
                if strict, !health.isClean { throw BadWeights(tensor: t.name, health: health) }
                let codes = block.codes
                let parts = storedTensors(block.weight, of: t, settings: s, codes: TensorView(name: t.name, dtype: s.scheme.codeDType!, shape: t.shape,
                                                                                  bytes: UnsafeRawBufferPointer(codes.storage), owner: codes))
                views += parts.map(\.0); infos += parts.map(\.1)
                written.append((k, (ExportRecord(name: t.name, shape: t.shape, from: t.dtype.rawValue, to: ExportJob.describe(s),
                                                 health: health.isClean ? nil : health), views.count - before)))
            }
        }
        try writer.addTensors(views, quantization: infos)
        return written
    }

    /// The tensors a quantized weight is stored as, in order: its codes (`codes`, in stored form) with their
    /// `QuantizationInfo`, the scales, the zero points and the static input scale.
    private func storedTensors(_ q: QuantizedWeight, of t: TensorInfo, settings s: QuantizationPlan.Settings,
                               codes: TensorView) -> [(view: TensorView, info: QuantizationInfo?)] {
        let rows = q.rows
        let scaleName = t.name + "_scale", zeroName = t.name + "_zero_point", globalName = t.name + "_global_scale"
        let info = QuantizationInfo(scheme: q.scheme, bits: q.bits, granularity: q.granularity, groupSize: q.groupSize,
                                    block: q.block, scale: scaleName, zeroPoint: q.zeros == nil ? nil : zeroName,
                                    globalScale: q.globalScale == nil ? nil : globalName, originalDType: t.dtype, originalShape: t.shape)
        func owned(_ name: String, _ dtype: DType, _ shape: [Int], _ bytes: [UInt8]) -> TensorView {
            let b = bytes.withUnsafeBytes { TensorBuffer(copying: $0) }
            return TensorView(name: name, dtype: dtype, shape: shape, bytes: UnsafeRawBufferPointer(rebasing: b.storage[0..<bytes.count]), owner: b)
        }
        var out: [(view: TensorView, info: QuantizationInfo?)] = [(codes, info)]
        let scaleShape = q.granularity == .tensor ? [1] : [q.granularity == .block ? (rows + q.block![0] - 1) / q.block![0] : rows, q.scaleColumns]
        out.append((owned(scaleName, q.scaleDType, scaleShape, Packing.scaleBytes(q.scales, as: q.scaleDType)), nil))
        if let z = q.zeros { out.append((owned(zeroName, .u8, [rows, q.scaleColumns], z), nil)) }
        if let g = q.globalScale { out.append((owned(globalName, .f32, [1], withUnsafeBytes(of: g) { Array($0) }), nil)) }
        if let a = plan.activationScales[t.name] {
            let name = String(t.name.dropLast(7)) + (s.scheme.codes == .nvfp4 ? ".input_global_scale" : ".input_scale")
            out.append((owned(name, .f32, [1], withUnsafeBytes(of: a) { Array($0) }), nil))
        }
        return out
    }

    /// Writes one source tensor: kept as it is, or its codes, scales, zero points and static input scale.
    private func write(_ t: TensorInfo, view: TensorView, into writer: IngotFileWriter, globalScales: NVFP4GlobalScales) throws -> ExportRecord {
        guard let s = plan.settings(for: t.name, shape: t.shape) else {
            try writer.addTensor(view)
            return ExportRecord(name: t.name, shape: t.shape, from: t.dtype.rawValue, to: t.dtype.rawValue + " (kept)")
        }
        guard t.dtype.isFloatingPoint else { throw ExportJob.Failure.notFloat(tensor: t.name, dtype: t.dtype) }
        let rows = t.shape[0], cols = t.shape[1]
        let values = try view.floats()
        let health = values.withUnsafeBufferPointer {
            WeightHealth.scan($0, rows: rows, columns: cols, groupSize: s.groupSize, fp8Max: s.scheme.fp8Format?.maxValue)
        }
        if strict, !health.isClean { throw BadWeights(tensor: t.name, health: health) }
        let rounded = try s.intQuantizer.flatMap {
            try (source as? RoundedWeightSource)?.rounded(values, of: TensorRef(name: t.name), rows: rows, columns: cols, settings: s,
                                                          quantizer: $0, precision: ComputePrecision(dtype: t.dtype))
        }
        let q = try rounded ?? values.withUnsafeBufferPointer {
            try Self.quantize($0, rows: rows, columns: cols, dtype: t.dtype, settings: s, globalScale: globalScales.scale(for: t.name, values: $0))
        }
        let codeType = s.scheme.codeDType!
        var codeBytes = q.codes
        if q.bits == 4 && codeType == .u4 {
            guard cols % 2 == 0 else {
                throw ExportJob.Failure.unsupported(tensor: t.name, reason: "4-bit rows must have an even number of columns")
            }
            codeBytes = [UInt8](unsafeUninitializedCapacity: q.codes.count / 2) { packed, n in
                q.codes.withUnsafeBufferPointer { c in ck_pack_nibbles(c.baseAddress, packed.count, packed.baseAddress) }
                n = packed.count
            }
        }
        try codeBytes.withUnsafeBytes { c in
            let parts = storedTensors(q, of: t, settings: s, codes: TensorView(name: t.name, dtype: codeType, shape: t.shape, bytes: c, owner: nil))
            try writer.addTensors(parts.map(\.view), quantization: parts.map(\.info))
        }
        return ExportRecord(name: t.name, shape: t.shape, from: t.dtype.rawValue, to: ExportJob.describe(s),
                            health: health.isClean ? nil : health)
    }
}

extension QuantizedWeight {
    /// A quantized weight stored in an `.ingot` file (codes, scales, zero points), as the quantizer made it.
    public static func load(_ name: String, info q: QuantizationInfo, from source: TensorSource) throws -> QuantizedWeight {
        let rows = q.originalShape[0], cols = q.originalShape[1]
        let codes = try Dequantize.codes(name, info: q, in: source)
        let scaleView = try source.tensor(named: q.scale)
        let zeros = try q.zeroPoint.map { z in try source.tensor(named: z).withBytes { Array($0) } }
        let e8m0 = q.scheme == .fp4E2M1 && scaleView.dtype == .u8
        var w = QuantizedWeight(scheme: q.scheme, bits: q.bits, granularity: q.granularity, groupSize: q.groupSize, block: q.block,
                                rows: rows, columns: cols, codes: codes,
                                scales: e8m0 ? scaleView.withBytes { $0.map { FP4.e8m0($0) } } : try scaleView.floats(),
                                scaleDType: scaleView.dtype, zeros: zeros,
                                codeOffset: q.scheme == .intAffine || q.scheme == .intSymmetric ? 1 << (q.bits - 1) : 0)
        if let g = q.globalScale {
            let gv = try source.tensor(named: g)
            guard gv.dtype == .f32, gv.byteCount == 4 else { throw Dequantize.Failure.shape(tensor: name, reason: "global scale '\(g)' is not F32 [1]") }
            w.globalScale = try gv.floats()[0]
        }
        return w
    }
}
