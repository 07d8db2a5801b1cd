import IngotCore

/// One tensor of a GGUF file: ggml dimensions (`ne[0]` varies fastest), type, and where its bytes are.
public struct GGUFTensor: Sendable, Equatable {
    public let name: String
    public let type: GGMLType
    /// ggml order: `dims[0]` is the row length.
    public let dims: [Int]
    /// Absolute byte offset of the data in the file.
    public let fileOffset: Int
    public let byteCount: Int

    /// Row-major shape (numpy / Hugging Face order): the reverse of `dims`.
    public var shape: [Int] { dims.reversed() }
    public var elementCount: Int { dims.reduce(1, *) }
    /// Rows of `dims[0]` elements.
    public var rows: Int { dims.isEmpty ? 1 : dims.dropFirst().reduce(1, *) }
}

/// A GGUF file (v2/v3, little-endian) read from a memory map: header, metadata, tensor infos, data offsets.
///
/// Every count, length, offset and size is checked against the file before it is used, so a hostile file gets one
/// `GGUFError` naming what is wrong (and never a huge allocation or a read outside the map). Layout (ggml
/// `docs/gguf.md`): magic `GGUF`, u32 version, u64 tensor count, u64 KV count, KVs (u64-length strings, typed
/// values), tensor infos (name, u32 n_dims, u64 dims, u32 type, u64 offset relative to the data section), padding
/// to `general.alignment` (default 32), data.
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let file: MappedFile
    public let version: UInt32
    public let metadata: [(key: String, value: GGUFValue)]
    public let tensors: [GGUFTensor]
    public let alignment: Int
    /// Absolute offset of the data section.
    public let dataOffset: Int
    private let byName: [String: Int]

    public static let magic: [UInt8] = Array("GGUF".utf8)
    public static let defaultAlignment = 32
    /// llama.cpp's GGML_MAX_NAME (names must be shorter) and GGML_MAX_DIMS.
    public static let maxNameLength = 63
    public static let maxDims = 4
    static let maxNesting = 4

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        let fp = file.path
        path = fp
        self.file = file
        var r = Reader(bytes: file.bytes, path: fp)
        guard file.count >= 4, Array(file.bytes[0..<4]) == GGUFFile.magic else { throw GGUFError.notGGUF(file: fp) }
        r.at = 4
        let v = try r.u32("version")
        if v & 0xFFFF == 0, v != 0 { throw GGUFError.bigEndian(file: fp) }
        guard v == 2 || v == 3 else { throw GGUFError.unsupportedVersion(file: fp, version: v) }
        version = v
        // Each tensor info takes at least 8 (name) + 4 (n_dims) + 4 (type) + 8 (offset) bytes; each KV at least
        // 8 (key) + 4 (type) + 1 (value): counts beyond what the file can hold are refused before any allocation.
        let nTensors = try r.count("tensor", minimumBytes: 24)
        let nKV = try r.count("metadata key-value", minimumBytes: 13)
        var kv: [(key: String, value: GGUFValue)] = []
        kv.reserveCapacity(nKV)
        var keys = Set<String>()
        for _ in 0..<nKV {
            let key = try r.string("metadata key")
            guard keys.insert(key).inserted else { throw GGUFError.duplicateKey(file: fp, key: key) }
            let t = try r.u32("type of '\(key)'")
            kv.append((key, try r.value(type: t, key: key, depth: 0)))
        }
        metadata = kv
        var align = GGUFFile.defaultAlignment
        if let a = kv.first(where: { $0.key == "general.alignment" })?.value {
            guard case let .u32(x) = a, x > 0, x & (x - 1) == 0, x <= 1 << 20 else {
                throw GGUFError.invalidMetadata(file: fp, key: "general.alignment", reason: "must be a u32 power of two (at most 2^20)")
            }
            align = Int(x)
        }
        alignment = align
        var infos: [(name: String, type: GGMLType, dims: [Int], offset: Int, bytes: Int)] = []
        infos.reserveCapacity(nTensors)
        var index: [String: Int] = [:]
        for _ in 0..<nTensors {
            let name = try r.string("tensor name")
            func bad(_ reason: String) -> GGUFError { .invalidTensor(file: fp, tensor: name, reason: reason) }
            guard name.utf8.count <= GGUFFile.maxNameLength else { throw bad("name is longer than \(GGUFFile.maxNameLength) bytes") }
            guard index[name] == nil else { throw GGUFError.duplicateTensor(file: fp, tensor: name) }
            let nd = try r.u32("n_dims of '\(name)'")
            guard nd >= 1, nd <= GGUFFile.maxDims else { throw bad("has \(nd) dimensions (1 to \(GGUFFile.maxDims) allowed)") }
            var dims: [Int] = []
            var elements = 1
            for _ in 0..<nd {
                let d = try r.u64("dimensions of '\(name)'")
                guard d <= UInt64(Int32.max) * 16 else { throw bad("dimension \(d) is out of range") }
                dims.append(Int(d))
                let (e, o) = elements.multipliedReportingOverflow(by: Int(d))
                guard !o, e <= Int(Int64.max / 16) else { throw bad("element count overflows") }
                elements = e
            }
            let code = try r.u32("type of '\(name)'")
            guard let type = GGMLType(rawValue: code) else { throw GGUFError.unknownType(file: fp, tensor: name, type: code) }
            guard dims[0] % type.block.elements == 0, let rowBytes = type.rowBytes(columns: dims[0]) else {
                throw bad("row length \(dims[0]) is not a multiple of \(type.name)'s block size \(type.block.elements)")
            }
            let (bytes, o) = rowBytes.multipliedReportingOverflow(by: dims.dropFirst().reduce(1, *))
            guard !o else { throw bad("byte size overflows") }
            let off = try r.u64("offset of '\(name)'")
            guard off <= UInt64(Int.max / 2) else { throw bad("offset \(off) is out of range") }
            guard Int(off) % align == 0 else { throw bad("offset \(off) is not a multiple of the alignment \(align)") }
            index[name] = infos.count
            infos.append((name, type, dims, Int(off), bytes))
        }
        let (padded, o) = r.at.addingReportingOverflow((align - r.at % align) % align)
        guard !o else { throw GGUFError.truncated(file: fp, what: "data section", offset: r.at) }
        dataOffset = padded
        var list: [GGUFTensor] = []
        list.reserveCapacity(infos.count)
        for i in infos {
            let (start, o1) = padded.addingReportingOverflow(i.offset)
            let (end, o2) = start.addingReportingOverflow(i.bytes)
            guard !o1, !o2, end <= file.count else {
                throw GGUFError.tensorPastEnd(file: fp, tensor: i.name, end: o1 || o2 ? Int.max : end, fileSize: file.count)
            }
            list.append(GGUFTensor(name: i.name, type: i.type, dims: i.dims, fileOffset: start, byteCount: i.bytes))
        }
        tensors = list
        byName = index
    }

    /// The value of a metadata key.
    public subscript(key: String) -> GGUFValue? { metadata.first { $0.key == key }?.value }

    public func tensor(_ name: String) -> GGUFTensor? { byName[name].map { tensors[$0] } }

    /// The stored bytes of a tensor (a view into the map).
    public func bytes(of t: GGUFTensor) -> UnsafeRawBufferPointer {
        file.slice(offset: t.fileOffset, length: t.byteCount)!  // checked at open
    }

    /// A tensor decoded to f32 (row-major, `t.shape`). Refuses types Ingot does not decode, by name.
    public func floats(_ t: GGUFTensor) throws -> [Float] {
        guard t.type.isSupported else { throw GGUFError.unsupportedType(file: path, tensor: t.name, type: t.type.name) }
        var out = [Float](repeating: 0, count: t.elementCount)
        let src = bytes(of: t)
        out.withUnsafeMutableBufferPointer { GGUFBlocks.dequantize(t.type, src, into: $0, rows: t.rows, columns: t.dims[0]) }
        withExtendedLifetime(file) {}
        return out
    }

    /// Cursor over the mapped bytes; every read is bounds-checked.
    struct Reader {
        let bytes: UnsafeRawBufferPointer
        let path: String
        var at = 0

        mutating func take(_ n: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
            guard n >= 0, n <= bytes.count - at else { throw GGUFError.truncated(file: path, what: what(), offset: at) }
            defer { at += n }
            return UnsafeRawBufferPointer(rebasing: bytes[at..<at + n])
        }
        mutating func int<T: FixedWidthInteger>(_ type: T.Type, _ what: @autoclosure () -> String) throws -> T {
            T(littleEndian: try take(MemoryLayout<T>.size, what()).loadUnaligned(as: T.self))
        }
        mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 { try int(UInt32.self, what()) }
        mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 { try int(UInt64.self, what()) }

        /// A u64 count of items each taking at least `minimumBytes`, refused when the rest of the file cannot hold it.
        mutating func count(_ what: String, minimumBytes: Int) throws -> Int {
            let c = try u64("\(what) count")
            let limit = (bytes.count - at) / minimumBytes
            guard c <= UInt64(limit) else { throw GGUFError.countTooLarge(file: path, what: what, count: c, limit: limit) }
            return Int(c)
        }

        mutating func string(_ what: @autoclosure () -> String) throws -> String {
            let n = try u64("length of \(what())")
            guard n <= UInt64(bytes.count - at) else { throw GGUFError.truncated(file: path, what: what(), offset: at) }
            let raw = try take(Int(n), what())
            guard let s = String(validating: raw, as: UTF8.self) else { throw GGUFError.invalidString(file: path, what: what()) }
            return s
        }

        mutating func value(type: UInt32, key: String, depth: Int) throws -> GGUFValue {
            let w = "value of '\(key)'"
            switch type {
            case 0: return .u8(try int(UInt8.self, w))
            case 1: return .i8(try int(Int8.self, w))
            case 2: return .u16(try int(UInt16.self, w))
            case 3: return .i16(try int(Int16.self, w))
            case 4: return .u32(try int(UInt32.self, w))
            case 5: return .i32(try int(Int32.self, w))
            case 6: return .f32(Float(bitPattern: try int(UInt32.self, w)))
            case 7:
                let b = try int(UInt8.self, w)
                guard b <= 1 else { throw GGUFError.invalidMetadata(file: path, key: key, reason: "bool is \(b), not 0 or 1") }
                return .bool(b == 1)
            case 8: return .string(try string(w))
            case 9:
                guard depth < GGUFFile.maxNesting else { throw GGUFError.nestingTooDeep(file: path, key: key) }
                let et = try u32("array type of '\(key)'")
                let minimum: Int
                switch et {
                case 0, 1, 7: minimum = 1
                case 2, 3: minimum = 2
                case 4, 5, 6: minimum = 4
                case 8, 10, 11, 12: minimum = 8
                case 9: minimum = 12
                default: throw GGUFError.unknownValueType(file: path, key: key, type: et)
                }
                let n = try count("array '\(key)'", minimumBytes: minimum)
                var a: [GGUFValue] = []
                a.reserveCapacity(n)
                for _ in 0..<n { a.append(try value(type: et, key: key, depth: depth + 1)) }
                return .array(elementType: et, a)
            case 10: return .u64(try u64(w))
            case 11: return .i64(try int(Int64.self, w))
            case 12: return .f64(Double(bitPattern: try u64(w)))
            default: throw GGUFError.unknownValueType(file: path, key: key, type: type)
            }
        }
    }
}
