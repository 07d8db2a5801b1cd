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
        try writer.write(entries) { i, sink in
            let info = source.tensors[i]
            let view = try source.tensor(named: info.name)
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
