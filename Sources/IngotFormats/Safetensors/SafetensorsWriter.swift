import IngotCore

/// Streams one `.safetensors` file to disk, crash-safely.
///
/// The header is known up front (names, dtypes, shapes), so the writer emits it first, then the caller appends
/// each tensor's bytes in header order; nothing but one tensor at a time is ever held in memory. The header is
/// padded with spaces to a multiple of 8 bytes, as the reference writer does. `commit()` fsyncs and renames into
/// place; a writer dropped before `commit()` leaves nothing under the final name.
public final class SafetensorsWriter {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        public let byteCount: Int

        public init(name: String, dtype: DType, shape: [Int]) throws {
            guard let n = ShapeMath.byteCount(shape, dtype) else {
                throw SafetensorsWriterError.invalidTensor(name: name, reason: "shape × dtype size overflows or does not end on a byte")
            }
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.byteCount = n
        }
    }

    public let path: String
    public let entries: [Entry]
    private let out: OutputFile
    private var next = 0
    private var written = 0

    /// Orders entries as the reference writer does: by descending dtype alignment, then by name.
    public static func canonicalOrder(_ entries: [Entry]) -> [Entry] {
        entries.sorted { ($0.dtype.alignment, $1.name) > ($1.dtype.alignment, $0.name) }
    }

    /// Opens `path` and writes the header. `entries` are written in the given order.
    public init(path: String, entries: [Entry], metadata: [(key: String, value: String)] = [],
                overwrite: Bool = false) throws {
        var seen = Set<String>()
        for e in entries where !seen.insert(e.name).inserted {
            throw SafetensorsWriterError.duplicateTensor(name: e.name)
        }
        self.path = path
        self.entries = entries
        out = try OutputFile(path: path, overwrite: overwrite)
        try out.write(Self.header(entries: entries, metadata: metadata))
    }

    /// The complete header bytes (length prefix + padded JSON).
    public static func header(entries: [Entry], metadata: [(key: String, value: String)]) -> [UInt8] {
        var kv: [(key: String, value: JSON)] = []
        if !metadata.isEmpty { kv.append(("__metadata__", .object(metadata.map { ($0.key, JSON.string($0.value)) }))) }
        var offset = 0
        for e in entries {
            kv.append((e.name, .object([("dtype", .string(e.dtype.rawValue)),
                                        ("shape", .array(e.shape.map { JSON.int($0) })),
                                        ("data_offsets", .array([.int(offset), .int(offset + e.byteCount)]))])))
            offset += e.byteCount
        }
        var json = Array(JSON.object(kv).serialized().utf8)
        while (json.count + 8) % 8 != 0 { json.append(0x20) }
        var bytes = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) }
        bytes += json
        return bytes
    }

    /// Appends (part of) the current tensor's bytes. Tensors must be written in entry order; a tensor may be
    /// written in several pieces.
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard next < entries.count else { throw SafetensorsWriterError.tooManyBytes(path: path) }
        var remaining = bytes
        while !remaining.isEmpty {
            guard next < entries.count else { throw SafetensorsWriterError.tooManyBytes(path: path) }
            let room = entries[next].byteCount - written
            let take = min(room, remaining.count)
            try out.write(UnsafeRawBufferPointer(rebasing: remaining[0..<take]))
            written += take
            remaining = UnsafeRawBufferPointer(rebasing: remaining[take...])
            if written == entries[next].byteCount { next += 1; written = 0 }
        }
        // Zero-byte tensors need no bytes: step over them.
        while next < entries.count, entries[next].byteCount == 0 { next += 1 }
    }

    /// Writes a whole tensor given as a view (its bytes are copied straight from the mapping).
    public func append(_ view: TensorView) throws { try append(view.bytes) }

    /// Checks every tensor was written in full, then fsyncs and renames into place.
    public func commit() throws {
        while next < entries.count, entries[next].byteCount == 0 { next += 1 }
        guard next == entries.count else {
            out.discard()
            throw SafetensorsWriterError.incomplete(path: path, missing: entries[next].name)
        }
        try out.commit()
    }

    /// Abandons the file: nothing is left on disk.
    public func discard() { out.discard() }
}

public enum SafetensorsWriterError: Error, CustomStringConvertible, Equatable {
    case invalidTensor(name: String, reason: String)
    case duplicateTensor(name: String)
    case tooManyBytes(path: String)
    case incomplete(path: String, missing: String)

    public var description: String {
        switch self {
        case let .invalidTensor(n, r): "tensor '\(n)': \(r)"
        case let .duplicateTensor(n): "tensor '\(n)' given twice"
        case let .tooManyBytes(p): "\(p): more bytes written than the header declares"
        case let .incomplete(p, m): "\(p): writing stopped before tensor '\(m)' was complete"
        }
    }
}
