import ArgumentParser
import IngotCore
import IngotFormats

/// `ingot inspect PATH`: architecture, tensor and parameter counts, bytes per dtype, optionally every tensor.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a checkpoint (.safetensors, sharded directory, .h5, .ingot).")

    @Argument(help: "A .safetensors file, a model directory, an .h5 file or an .ingot file.") var path: String
    @Flag(help: "List every tensor (name, dtype, shape, byte range).") var tensors = false
    @Flag(help: "Print JSON instead of text.") var json = false
    @Flag(help: "Verify every checksum (.ingot files).") var check = false

    func run() throws {
        try reportingErrors {
            let source = try Checkpoint.open(path)
            let config = try ModelConfigSummary.load(directory: Checkpoint.modelDirectory(of: path))
            if check { try CheckpointInspection.verify(source) }
            let report = CheckpointInspection(source: source, config: config)
            emit(json ? report.json(tensors: tensors).serialized(pretty: true) : report.text(tensors: tensors))
        }
    }
}

/// What `inspect` reports about a checkpoint, as text or JSON.
struct CheckpointInspection {
    let source: TensorSource
    let config: ModelConfigSummary?

    struct DTypeTotal { var tensors = 0, parameters = 0, bytes = 0 }

    var perDType: [(DType, DTypeTotal)] {
        var totals: [DType: DTypeTotal] = [:]
        for t in source.tensors {
            totals[t.dtype, default: .init()].tensors += 1
            totals[t.dtype, default: .init()].parameters += ShapeMath.elementCount(t.shape) ?? 0
            totals[t.dtype, default: .init()].bytes += t.byteCount
        }
        return totals.sorted { $0.key.rawValue < $1.key.rawValue }
    }

    var files: [String] {
        var seen = Set<String>(), out: [String] = []
        for t in source.tensors where seen.insert(t.file).inserted { out.append(t.file) }
        return out
    }

    static func verify(_ source: TensorSource) throws {
        if let v = source as? ChecksumVerifiable { try v.verifyAll() }
    }

    func text(tensors listAll: Bool) -> String {
        var lines: [String] = ["path: \(source.path)", "format: \(formatName) (\(files.count) file\(files.count == 1 ? "" : "s"))"]
        if let c = config { for (k, v) in c.fields { lines.append("\(k): \(v)") } }
        lines.append("tensors: \(source.tensors.count)")
        lines.append("parameters: \(grouped(source.parameterCount))")
        lines.append("bytes: \(grouped(source.totalBytes)) (\(Format.bytes(source.totalBytes)))")
        if !source.metadata.isEmpty { lines.append("metadata: " + source.metadata.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")) }
        lines.append("")
        lines.append(table(["dtype", "tensors", "parameters", "bytes"],
                           perDType.map { [$0.0.rawValue, String($0.1.tensors), grouped($0.1.parameters), grouped($0.1.bytes)] },
                           rightAlign: [1, 2, 3]))
        if listAll {
            let details = source as? TensorDetailsProviding
            var header = ["name", "dtype", "shape", "file", "bytes"]
            if details != nil { header += details!.detailColumns }
            let multi = files.count > 1
            let rows = source.tensors.map { t -> [String] in
                let range = t.fileOffset.map { "[\($0), \($0 + t.byteCount))" } ?? "\(t.byteCount)"
                var r = [t.name, t.dtype.rawValue, ShapeMath.describe(t.shape),
                         multi ? FileSystem.baseName(t.file) : "", range]
                if let d = details { r += d.details(of: t.name) }
                return r
            }
            lines.append("")
            lines.append(table(header, rows))
        }
        return lines.joined(separator: "\n")
    }

    func json(tensors listAll: Bool) -> JSON {
        var kv: [(key: String, value: JSON)] = [("path", .string(source.path)), ("format", .string(formatName)),
                                                ("files", .array(files.map { .string($0) }))]
        if let c = config { kv.append(("config", .object(c.fields.map { ($0.0, JSON.string($0.1)) }))) }
        kv.append(("tensor_count", .int(source.tensors.count)))
        kv.append(("parameter_count", .int(source.parameterCount)))
        kv.append(("byte_count", .int(source.totalBytes)))
        kv.append(("metadata", .object(source.metadata.map { ($0.key, JSON.string($0.value)) })))
        kv.append(("dtypes", .object(perDType.map { d, t in
            (d.rawValue, .object([("tensors", .int(t.tensors)), ("parameters", .int(t.parameters)), ("bytes", .int(t.bytes))]))
        })))
        if listAll {
            let details = source as? TensorDetailsProviding
            kv.append(("tensors", .array(source.tensors.map { t in
                var o: [(key: String, value: JSON)] = [("name", .string(t.name)), ("dtype", .string(t.dtype.rawValue)),
                                                       ("shape", .array(t.shape.map { .int($0) })),
                                                       ("file", .string(t.file)), ("byte_count", .int(t.byteCount))]
                if let off = t.fileOffset { o.append(("data_offsets", .array([.int(off), .int(off + t.byteCount)]))) }
                if let d = details { o += zip(d.detailColumns, d.details(of: t.name)).map { ($0, JSON.string($1)) } }
                return .object(o)
            })))
        }
        return .object(kv)
    }

    var formatName: String {
        switch source {
        case is ShardedSafetensors: "safetensors (sharded)"
        case is SafetensorsFile: "safetensors"
        default: (source as? FormatNamed)?.formatName ?? "unknown"
        }
    }
}

/// 1234567 → "1,234,567".
func grouped(_ n: Int) -> String {
    let s = String(n.magnitude)
    var out = ""
    for (i, c) in s.enumerated() { if i > 0, (s.count - i) % 3 == 0 { out.append(",") }; out.append(c) }
    return (n < 0 ? "-" : "") + out
}
