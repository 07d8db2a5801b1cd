import Foundation
import IngotCalibration
import IngotCore
import IngotFormats
import IngotForward
import IngotModel

/// Each decoder layer's calibration input along the quantized model's path (llm-compressor's sequential pipeline
/// with `propagate_error`): layer 0 takes the calibration sample (the embeddings); layer `l + 1` takes layer `l` run
/// on its own propagated input with its weights as the output will hold them (AWQ's transform, then the plan's
/// rounding: GPTQ's codes where GPTQ rounds, else the scheme's quantizer, dequantized). AWQ's searches and GPTQ's
/// Hessians of layer `l + 1` then see what the quantized layers before it produce, so they compensate the error
/// those layers made instead of ignoring it.
///
/// Layers advance in order, whatever order the writer reads them in (storage order is often `layers.10` before
/// `layers.2`): asking for layer `l` runs every layer before it that has not run yet. Inputs of layers already
/// passed that GPTQ still has to round are kept in an unlinked temporary file (`SpillFile`; one layer's sample per
/// layer on disk), so memory holds one layer's input. The activation statistics (AWQ's `x̄`, expert starvation) stay the full-precision calibration's.
///
/// One recursive lock serializes the propagation and the searches and roundings that use it (`StreamingAWQSource`
/// and `GPTQSource` share it): advancing a layer reads that layer's transformed and rounded weights through them.
public final class PropagatedInputs: @unchecked Sendable {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case unsupported(String)
        public var description: String {
            switch self { case .unsupported(let r): "--propagate-error: " + r }
        }
    }

    let model: ReferenceModel
    let calibration: Calibration
    let plan: QuantizationPlan
    /// Shared with the sources whose work depends on the propagated inputs.
    public let lock = NSRecursiveLock()
    /// The tensors the quantized layers are read from (AWQ's transformed weights, or the checkpoint).
    var weights: TensorSource?
    /// The rounding source whose codes the output stores (GPTQ), if any.
    weak var rounder: GPTQSource?
    /// The layer whose input `current` is.
    private(set) var next = 0
    private var current: [Float] = []
    private var spill: SpillFile?
    private var spilled: [Int: (offset: Int, count: Int)] = [:]

    /// `plan`: how the output rounds each weight. Refuses what the propagated forward pass cannot reproduce.
    public init(model: ReferenceModel, calibration: Calibration, plan: QuantizationPlan) throws {
        let c = model.config
        if c.gemma4 != nil {
            throw Failure.unsupported("\(c.family.rawValue): its layers read per-layer inputs and shared k/v from earlier layers, which the propagation does not carry; quantize without it")
        }
        for t in model.source.tensors where t.shape.count != 2 {
            if plan.settings(for: t.name, shape: t.shape) != nil {
                throw Failure.unsupported("'\(t.name)' is a fused \(t.shape.count)-D expert tensor; quantize without --propagate-error")
            }
        }
        guard calibration.sampleRows > 0 else { throw Failure.unsupported("the calibration keeps no layer input sample") }
        self.model = model
        self.calibration = calibration
        self.plan = plan
    }

    /// Layer `l`'s input on the quantized path. Layers before `l` that have not run are run first.
    public func input(layer l: Int) throws -> [Float] {
        lock.lock()
        defer { lock.unlock() }
        try advance(to: l)
        if l == next { return current }
        guard let s = spilled[l], let spill else {
            throw AWQ.Failure.mismatch("layer \(l)'s propagated input was not kept (asked for after layer \(next - 1) ran)")
        }
        return try spill.read(offset: s.offset, count: s.count)
    }

    /// Runs the layers before `l` that have not run yet (a no-op when `l` has been reached).
    public func advance(to l: Int) throws {
        lock.lock()
        defer { lock.unlock() }
        if next == 0 && current.isEmpty {
            current = try calibration.sample(layer: 0)
            guard current.count == calibration.sampleRows * model.config.hiddenSize else {
                throw AWQ.Failure.mismatch("layer 0's sample has \(current.count) values, expected \(calibration.sampleRows) × \(model.config.hiddenSize)")
            }
        }
        while next < l {
            let out = try runQuantized(layer: next, input: current)
            if rounder != nil {
                if spill == nil { spill = try SpillFile() }
                spilled[next] = (try spill!.append(current), current.count)
            }
            current = out
            next += 1
        }
    }

    /// Layer `l` with its weights as the output holds them, on `input`.
    func runQuantized(layer l: Int, input: [Float]) throws -> [Float] {
        let quantized = ReferenceModel(source: RoundedLayerSource(base: weights ?? model.source, plan: plan, rounder: rounder),
                                       config: model.config)
        let w = try LayerWeights(model: quantized, layer: l, experts: false)
        let batch = SequenceBatch(lengths: calibration.sampleLengths, model: quantized)
        var x = input
        try quantized.decoderLayer(&x, w, batch, expert: { try quantized.expert($0, names: w.names) })
        return x
    }
}

/// The weights of `base` as the output stores them, dequantized to f32: `rounder`'s codes where it rounds a weight,
/// else the plan's quantizer (NVFP4 with each weight's own global scale).
final class RoundedLayerSource: TensorSource, @unchecked Sendable {
    let base: TensorSource
    let plan: QuantizationPlan
    let rounder: GPTQSource?
    init(base: TensorSource, plan: QuantizationPlan, rounder: GPTQSource?) {
        self.base = base
        self.plan = plan
        self.rounder = rounder
    }

    var path: String { base.path }
    var tensors: [TensorInfo] { base.tensors }
    var metadata: [(key: String, value: String)] { base.metadata }

    func tensor(named name: String) throws -> TensorView {
        let view = try base.tensor(named: name)
        guard let s = plan.settings(for: name, shape: view.shape), view.shape.count == 2, view.dtype.isFloatingPoint else { return view }
        let rows = view.shape[0], cols = view.shape[1], precision = ComputePrecision(dtype: view.dtype)
        let values = try view.floats()
        let rounded = try s.intQuantizer.flatMap {
            try rounder?.rounded(values, of: TensorRef(name: name), rows: rows, columns: cols, settings: s, quantizer: $0, precision: precision)
        }
        let q = try rounded ?? values.withUnsafeBufferPointer {
            try QuantizeJob.quantize($0, rows: rows, columns: cols, dtype: view.dtype, settings: s)
        }
        let out = q.dequantized()
        let buffer = TensorBuffer(uninitializedByteCount: out.count * 4)
        out.withUnsafeBytes { buffer.storage.copyMemory(from: $0) }
        return buffer.view(name: name, dtype: .f32, shape: view.shape, byteCount: out.count * 4)
    }
}

/// An unlinked temporary file of f32 runs (gone when closed or when the process ends).
final class SpillFile {
    let fd: Int32
    var end = 0

    init() throws {
        var template = Array((NSTemporaryDirectory() + "/ingot-propagate-XXXXXX").utf8CString)
        fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw PropagatedInputs.Failure.unsupported("cannot create a temporary file in \(NSTemporaryDirectory()): errno \(errno)") }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
    }

    deinit { close(fd) }

    /// Appends `values`; returns their byte offset.
    func append(_ values: [Float]) throws -> Int {
        let offset = end
        try values.withUnsafeBytes { b in
            var done = 0
            while done < b.count {
                let n = pwrite(fd, b.baseAddress! + done, b.count - done, off_t(offset + done))
                guard n > 0 else { throw PropagatedInputs.Failure.unsupported("writing the temporary file failed: errno \(errno)") }
                done += n
            }
        }
        end += values.count * 4
        return offset
    }

    func read(offset: Int, count: Int) throws -> [Float] {
        try [Float](unsafeUninitializedCapacity: count) { buf, n in
            let raw = UnsafeMutableRawBufferPointer(buf)
            var done = 0
            while done < raw.count {
                let r = pread(fd, raw.baseAddress! + done, raw.count - done, off_t(offset + done))
                guard r > 0 else { throw PropagatedInputs.Failure.unsupported("reading the temporary file failed: errno \(errno)") }
                done += r
            }
            n = count
        }
    }
}
