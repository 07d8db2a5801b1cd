import IngotCore

/// Writes a GGUF v3 file as a stream: header, metadata and tensor infos first (every tensor's type and dimensions
/// are known up front, so offsets are too), then each tensor's bytes in order as they are produced, each padded to
/// the alignment. Goes through `OutputFile` (temporary name, fsync, rename), so models larger than RAM are written
/// without holding more than one tensor.
public final class GGUFWriter {
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var type: GGMLType
        /// ggml order (`dims[0]` = row length).
        public var dims: [Int]
        public init(name: String, type: GGMLType, dims: [Int]) { self.name = name; self.type = type; self.dims = dims }

        public var byteCount: Int? {
            guard let rb = type.rowBytes(columns: dims.first ?? 0) else { return nil }
            let (n, o) = rb.multipliedReportingOverflow(by: dims.dropFirst().reduce(1, *))
            return o ? nil : n
        }
    }

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case invalidEntry(name: String, reason: String)
        case outOfOrder(expected: String, got: String)
        case wrongSize(tensor: String, expected: Int, got: Int)
        case incomplete(written: Int, total: Int)
        public var description: String {
            switch self {
            case let .invalidEntry(n, r): "GGUF tensor '\(n)': \(r)"
            case let .outOfOrder(e, g): "GGUF writer: expected tensor '\(e)' next, got '\(g)'"
            case let .wrongSize(t, e, g): "GGUF writer: tensor '\(t)' needs \(e) bytes, got \(g)"
            case let .incomplete(w, t): "GGUF writer: \(w) of \(t) tensors written"
            }
        }
    }

    public let entries: [Entry]
    public let alignment: Int
    private let out: OutputFile
    private var next = 0
    private let dataStart: Int

    /// Opens `path` (temporary name until `commit`) and writes everything before the tensor data.
    public init(path: String, overwrite: Bool, metadata: [(key: String, value: GGUFValue)], tensors: [Entry],
                alignment: Int = GGUFFile.defaultAlignment) throws {
        precondition(alignment > 0 && alignment & (alignment - 1) == 0, "alignment must be a power of two")
        var header: [UInt8] = GGUFFile.magic
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { header.append(contentsOf: $0) } }
        put(UInt32(3))
        put(UInt64(tensors.count))
        var kv = metadata
        if alignment != GGUFFile.defaultAlignment, !kv.contains(where: { $0.key == "general.alignment" }) {
            kv.append(("general.alignment", .u32(UInt32(alignment))))
        }
        put(UInt64(kv.count))
        for (k, v) in kv {
            GGUFValue.encodeString(k, into: &header)
            put(v.typeCode)
            v.encode(into: &header)
        }
        var offset = 0
        var names = Set<String>()
        for t in tensors {
            guard t.name.utf8.count <= GGUFFile.maxNameLength else { throw Failure.invalidEntry(name: t.name, reason: "name longer than \(GGUFFile.maxNameLength) bytes") }
            guard names.insert(t.name).inserted else { throw Failure.invalidEntry(name: t.name, reason: "duplicate name") }
            guard (1...GGUFFile.maxDims).contains(t.dims.count), t.dims.allSatisfy({ $0 > 0 }) else {
                throw Failure.invalidEntry(name: t.name, reason: "dimensions \(t.dims) (1 to 4 positive dimensions)")
            }
            guard let bytes = t.byteCount else {
                throw Failure.invalidEntry(name: t.name, reason: "row length \(t.dims[0]) is not a multiple of \(t.type.name)'s block size \(t.type.block.elements)")
            }
            GGUFValue.encodeString(t.name, into: &header)
            put(UInt32(t.dims.count))
            for d in t.dims { put(UInt64(d)) }
            put(t.type.rawValue)
            put(UInt64(offset))
            offset += (bytes + alignment - 1) / alignment * alignment
        }
        header.append(contentsOf: [UInt8](repeating: 0, count: (alignment - header.count % alignment) % alignment))
        entries = tensors
        self.alignment = alignment
        dataStart = header.count
        out = try OutputFile(path: path, overwrite: overwrite)
        try out.write(header)
    }

    /// The entry whose bytes `write` expects next (nil when all are written).
    public var nextEntry: Entry? { next < entries.count ? entries[next] : nil }

    private var partial = 0

    /// Appends the next tensor's bytes (in the order given at `init`) and its padding.
    public func write(_ name: String, _ bytes: UnsafeRawBufferPointer) throws {
        guard partial == 0 else { throw Failure.outOfOrder(expected: nextEntry?.name ?? "(none)", got: name) }
        try append(name, bytes)
        if partial != 0 { throw Failure.wrongSize(tensor: name, expected: nextEntry?.byteCount ?? -1, got: bytes.count) }
    }

    /// Appends part of the next tensor's bytes (an expert of a stacked tensor); the tensor is complete, and padded,
    /// when its parts add up to its size.
    public func append(_ name: String, _ bytes: UnsafeRawBufferPointer) throws {
        guard let e = nextEntry else { throw Failure.outOfOrder(expected: "(none)", got: name) }
        guard e.name == name else { throw Failure.outOfOrder(expected: e.name, got: name) }
        let total = e.byteCount ?? 0
        guard partial + bytes.count <= total else { throw Failure.wrongSize(tensor: name, expected: total, got: partial + bytes.count) }
        try out.write(bytes)
        partial += bytes.count
        if partial == total {
            try out.writeZeros((alignment - total % alignment) % alignment)
            partial = 0
            next += 1
        }
    }

    /// Fsyncs and renames into place; refuses when a tensor is missing.
    public func commit() throws {
        guard next == entries.count else { throw Failure.incomplete(written: next, total: entries.count) }
        try out.commit()
    }
}
