import ArgumentParser
import Foundation
import IngotCore
import IngotFormats
import IngotQuant
import IngotForward

/// `ingot bench`: measured figures for each stage (speed belongs here, never in tests).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks: time the stages on a given checkpoint and print a table.",
        subcommands: [BenchSuite.self, BenchLoad.self, BenchConvert.self, BenchEncode.self, BenchDecode.self, BenchKernels.self, BenchQuantize.self, BenchTokenize.self])
}

/// Open + validate + touch every tensor of a checkpoint, then report bytes/s.
struct BenchLoad: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "load",
        abstract: "Time opening, validating and reading every byte of every tensor.")

    @Argument(help: "Checkpoint to load.") var path: String
    @Option(name: .customLong("repeat"), help: "Repetitions (best is reported).") var repetitions: Int = 3
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Only open, validate and map every tensor; do not read the bytes.") var noRead = false

    func run() throws {
        try reportingErrors {
            var best = Double.infinity
            var checksum: UInt64 = 0
            var bytes = 0
            for _ in 0..<max(1, repetitions) {
                let t0 = monotonicSeconds()
                let src = try Checkpoint.open(path)
                // Validate by opening; then read every tensor, tensors split across cores by index.
                let views = try src.tensors.map { try src.tensor(named: $0.name) }
                if noRead {
                    best = min(best, monotonicSeconds() - t0)
                    bytes = src.totalBytes
                    checksum = UInt64(views.count)
                    continue
                }
                var sums = [UInt64](repeating: 0, count: views.count)
                sums.withUnsafeMutableBufferPointer { out in
                    let o = UncheckedSendable(out)
                    parallelFor(views.count) { i in o.value[i] = touch(views[i].bytes) }
                }
                withExtendedLifetime(views) {}
                let sum = sums.reduce(0, &+)
                best = min(best, monotonicSeconds() - t0)
                checksum = sum
                bytes = src.totalBytes
            }
            let rate = Double(bytes) / best
            if json {
                emit(JSON.object([("stage", .string("load")), ("bytes", .int(bytes)), ("seconds", .double(best)),
                                  ("bytes_per_second", .double(rate)), ("checksum", .string(String(checksum)))]).serialized())
            } else {
                emit(String(format: "load %@: %.3f s, %@/s (checksum %llu)", path, best, Format.bytes(Int(rate)), checksum))
            }
        }
    }

    /// Reads every byte (sum of 8-byte words), so every page is faulted in and nothing is optimised away.
    func touch(_ b: UnsafeRawBufferPointer) -> UInt64 {
        guard let p = b.baseAddress else { return 0 }
        // Eight independent lanes, so the loop vectorizes (data is at least 8-byte aligned in both formats).
        var lanes = SIMD8<UInt64>(repeating: 0)
        let vectors = b.count / 64
        for i in 0..<vectors { lanes &+= p.loadUnaligned(fromByteOffset: i * 64, as: SIMD8<UInt64>.self) }
        var s = lanes.wrappedSum()
        for i in (vectors * 64)..<b.count { s &+= UInt64(b[i]) }
        return s
    }
}

/// In-memory dtype conversion throughput (FloatCodecs), without file I/O.
struct BenchConvert: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "convert",
        abstract: "Time in-memory f32/f16/bf16 conversion kernels.")

    @Option(help: "Elements per run.") var elements: Int = 1 << 26
    @OptionGroup var parallelism: ThreadOptions

    func run() throws {
        try reportingErrors {
            let src = TensorBuffer(byteCount: elements * 4), dst = TensorBuffer(byteCount: elements * 4)
            let p = src.storage.bindMemory(to: UInt16.self)
            for i in 0..<(elements * 2) { p[i] = UInt16(truncatingIfNeeded: i &* 2654435761 >> 7) & 0x7F7F }
            var rows: [[String]] = []
            for (from, to) in [(DType.bf16, DType.f16), (.f16, .bf16), (.bf16, .f32), (.f16, .f32), (.f32, .f16), (.f32, .bf16)] {
                var best = Double.infinity
                for _ in 0..<3 {
                    let t0 = monotonicSeconds()
                    try FloatCodecs.convert(UnsafeRawBufferPointer(src.storage), from: from, to: to, into: dst.storage,
                                            count: elements)
                    best = min(best, monotonicSeconds() - t0)
                }
                let inBytes = elements * from.byteWidth!
                rows.append(["\(from.rawValue) → \(to.rawValue)", String(format: "%.2f", Double(inBytes) / best / 1e9)])
            }
            emit(table(["conversion", "GB/s of input"], rows, rightAlign: [1]))
        }
    }
}

/// Decodes every tensor of a checkpoint in memory (no output file): the read side of `.ingot`.
struct BenchDecode: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "decode",
        abstract: "Time decoding every tensor (e.g. of an .ingot file) into memory.")

    @Argument(help: "Checkpoint.") var path: String
    @OptionGroup var parallelism: ThreadOptions
    @Option(name: .customLong("repeat"), help: "Repetitions (best is reported).") var repetitions: Int = 3
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try reportingErrors {
            let src = try Checkpoint.open(path)
            var best = Double.infinity
            for _ in 0..<max(1, repetitions) {
                let t0 = monotonicSeconds()
                // Tensors decode in parallel (each .ingot tensor also decodes its own chunks in parallel).
                var failures = [String?](repeating: nil, count: src.tensors.count)
                failures.withUnsafeMutableBufferPointer { f in
                    let out = UncheckedSendable(f)
                    parallelFor(src.tensors.count) { i in
                        do { _ = try src.tensor(named: src.tensors[i].name).withBytes { $0.count } } catch { out.value[i] = "\(error)" }
                    }
                }
                if let f = failures.compactMap({ $0 }).first { throw BenchFailure(message: f) }
                best = min(best, monotonicSeconds() - t0)
            }
            let bytes = src.totalBytes
            if json {
                emit(JSON.object([("stage", .string("decode")), ("bytes", .int(bytes)), ("seconds", .double(best))]).serialized())
            } else {
                emit(String(format: "decode %@: %.3f s, %@/s", path, best, Format.bytes(Int(Double(bytes) / best))))
            }
        }
    }
}

struct BenchFailure: Error, CustomStringConvertible { let message: String; var description: String { message } }

/// Single-core speed of the `.ingot` codec kernels on the bf16 bytes of a checkpoint's first tensors.
struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kernels", abstract: "Time the .ingot codec kernels.")
    @Argument(help: "A bf16 checkpoint.") var path: String

    func run() throws {
        try reportingErrors {
            let src = try Checkpoint.open(path)
            guard let t = src.tensors.filter({ $0.dtype == .bf16 }).max(by: { $0.byteCount < $1.byteCount }) else {
                throw BenchFailure(message: "\(path): no bf16 tensor")
            }
            let rows = try src.tensor(named: t.name).withBytes { try CodecKernels.time($0) }
            emit(table(["kernel (1 core)", "GB/s"], rows.map { [$0.0, String(format: "%.2f", Double($0.2) / $0.1 / 1e9)] }, rightAlign: [1]))
        }
    }
}

/// Encodes every tensor into memory exactly as `pack` would, without writing a file: codec throughput.
struct BenchEncode: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "encode", abstract: "Time .ingot encoding in memory.")
    @Argument(help: "Checkpoint.") var path: String
    @OptionGroup var parallelism: ThreadOptions
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try reportingErrors {
            let src = try Checkpoint.open(path)
            var best = (Double.infinity, 0, 0)
            for _ in 0..<3 { let r = try CodecKernels.encodeAll(src); if r.0 < best.0 { best = r } }
            if json {
                emit(JSON.object([("stage", .string("encode")), ("bytes", .int(best.1)), ("stored", .int(best.2)),
                                  ("seconds", .double(best.0))]).serialized())
            } else {
                emit(String(format: "encode %@: %.3f s, %@/s, %.2f%%", path, best.0, Format.bytes(Int(Double(best.1) / best.0)),
                            100 * Double(best.2) / Double(best.1)))
            }
        }
    }
}

/// Quantizes every linear weight of a checkpoint in memory (no output): quantizer throughput.
struct BenchQuantize: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "quantize", abstract: "Time RTN / FP8 quantization in memory.")
    @Argument(help: "Checkpoint.") var path: String
    @Option(help: "A round-to-nearest scheme with its modifiers: SCHEME[:gN][:channel][:sym|:asym], e.g. rtn-int4:g64.")
    var scheme = "rtn-int4"
    @OptionGroup var parallelism: ThreadOptions
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try reportingErrors {
            let src = try Checkpoint.open(path)
            let s = try QuantizationPlan.Settings(spec: scheme, base: QuantizationPlan.Settings(scheme: .rtnInt4))
            guard s.scheme.transform == nil, s.scheme != .none else { throw BenchFailure(message: "bench quantize times round-to-nearest schemes") }
            let plan = QuantizationPlan(defaults: s)
            let targets = src.tensors.filter { plan.settings(for: $0.name, shape: $0.shape) != nil }
            var best = Double.infinity
            for _ in 0..<2 {
                let t0 = monotonicSeconds()
                for t in targets {
                    let v = try src.tensor(named: t.name)
                    let values = try v.floats()
                    _ = try values.withUnsafeBufferPointer { try QuantizeJob.quantize($0, rows: t.shape[0], columns: t.shape[1], dtype: t.dtype, settings: s) }
                }
                best = min(best, monotonicSeconds() - t0)
            }
            let bytes = targets.reduce(0) { $0 + $1.byteCount }
            if json {
                emit(JSON.object([("stage", .string("quantize")), ("bytes", .int(bytes)), ("seconds", .double(best))]).serialized())
            } else {
                emit(String(format: "%@ on %@: %.3f s, %.2f GB/s of input", scheme, path, best, Double(bytes) / best / 1e9))
            }
        }
    }
}

/// Tokenizer throughput on a text file (single thread).
struct BenchTokenize: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenize", abstract: "Time tokenizer.json encoding of a text file.")
    @Argument(help: "tokenizer.json") var tokenizer: String
    @Argument(help: "UTF-8 text file") var text: String

    func run() throws {
        try reportingErrors {
            let t = try BPETokenizer(path: tokenizer)
            let s = String(decoding: try FileSystem.read(text, streams: true), as: UTF8.self)
            var best = Double.infinity, count = 0
            for _ in 0..<3 {
                let fresh = try BPETokenizer(path: tokenizer)  // cold cache each time, like a first pass over new text
                let t0 = monotonicSeconds()
                count = try fresh.encode(s, addSpecialTokens: false).count
                best = min(best, monotonicSeconds() - t0)
            }
            _ = t
            emit(String(format: "%d tokens from %@ in %.3f s: %.2f MB/s, %.0f tokens/s", count, Format.bytes(s.utf8.count), best,
                        Double(s.utf8.count) / best / 1e6, Double(count) / best))
        }
    }
}
