import IngotCore

/// Streams every tensor of a source to a writer, converting floating tensors to `target` when given.
public struct ConversionJob {
    public let source: TensorSource
    public let target: DType?
    public var threads = 0
    public var progress: ProgressReporter = SilentProgress()
    /// Elements converted per step: bounds the working set to a few tens of MB whatever the tensor size.
    public var stepElements = 1 << 23

    public init(source: TensorSource, target: DType?, threads: Int = 0, progress: ProgressReporter = SilentProgress()) {
        self.source = source
        self.target = target
        self.threads = threads
        self.progress = progress
    }

    public struct Stats { public var tensors = 0, bytes = 0, seconds = 0.0 }

    func outputDType(_ d: DType) -> DType {
        guard let t = target, FloatCodecs.convertible.contains(d) else { return d }
        return t
    }

    @discardableResult
    public func run(into writer: CheckpointWriter) throws -> Stats {
        let start = monotonicSeconds()
        let entries = try source.tensors.map { try SafetensorsWriter.Entry(name: $0.name, dtype: outputDType($0.dtype), shape: $0.shape) }
        let total = entries.reduce(0) { $0 + $1.byteCount }
        progress.begin("convert", total: total, unit: .bytes)
        var done = 0
        let outWidth = entries.map { $0.dtype.byteWidth ?? 1 }.max() ?? 4
        let scratch = TensorBuffer(byteCount: stepElements * max(outWidth, 4))
        let ahead = DecodeAhead(source: source)
        try writer.write(entries) { i, sink in
            let info = source.tensors[i]
            let view = try ahead.tensor(i)
            let out = entries[i].dtype
            try view.withBytes { bytes in
            if out == info.dtype {
                var offset = 0
                let step = stepElements * 4
                repeat {
                    let n = min(step, bytes.count - offset)
                    try sink(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n]))
                    offset += n
                    done += n
                    progress.update(done)
                } while offset < bytes.count
            } else {
                let inW = info.dtype.byteWidth!, outW = out.byteWidth!
                let count = view.elementCount
                var e = 0
                repeat {
                    let n = min(stepElements, count - e)
                    try FloatCodecs.convert(UnsafeRawBufferPointer(rebasing: bytes[e * inW..<(e + n) * inW]), from: info.dtype,
                                            to: out, into: scratch.storage, count: n, threads: threads)
                    try sink(UnsafeRawBufferPointer(rebasing: scratch.storage[0..<n * outW]))
                    e += n
                    done += n * outW
                    progress.update(done)
                } while e < count
            }
            }
        }
        progress.finish()
        return Stats(tensors: entries.count, bytes: total, seconds: monotonicSeconds() - start)
    }
}

/// Tensors of an `.ingot` source decoded ahead of the writer: when tensor i is asked for, it and the tensors after it
/// (up to `maxBytes`, at least one) are decoded in parallel, so small tensors, which are one chunk each, keep every
/// core busy instead of decoding one after another. Other sources are read one tensor at a time, as asked (their
/// readers are not all safe to call from several threads, and a mapped file has nothing to decode).
final class DecodeAhead {
    static let maxBytes = 64 << 20
    let source: TensorSource
    private let parallel: Bool
    private var ready: [Int: TensorView] = [:]

    init(source: TensorSource) {
        self.source = source
        parallel = source is IngotFile || source is IngotShardSet
    }

    func tensor(_ i: Int) throws -> TensorView {
        if let v = ready.removeValue(forKey: i) { return v }
        let tensors = source.tensors
        guard parallel else { return try source.tensor(named: tensors[i].name) }
        var end = i + 1, bytes = tensors[i].byteCount
        while end < tensors.count, bytes + tensors[end].byteCount <= Self.maxBytes { bytes += tensors[end].byteCount; end += 1 }
        var results = [Result<TensorView, Error>?](repeating: nil, count: end - i)
        results.withUnsafeMutableBufferPointer { r in
            let out = UncheckedSendable(r)
            parallelFor(end - i) { k in out.value[k] = Result { try self.source.tensor(named: tensors[i + k].name) } }
        }
        for k in 1..<(end - i) { if case .success(let v) = results[k]! { ready[i + k] = v } }
        return try results[0]!.get()
    }
}
