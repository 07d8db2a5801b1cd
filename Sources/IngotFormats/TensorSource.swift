import IngotCore

/// Where one tensor lives: enough to list it without reading its bytes.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Size of the tensor's data in bytes.
    public let byteCount: Int
    /// File holding the tensor (a shard, for sharded checkpoints).
    public let file: String
    /// Byte range inside `file` where the data starts (absolute), nil when not stored contiguously (HDF5 chunked,
    /// compressed `.ingot` chunks).
    public let fileOffset: Int?

    public init(name: String, dtype: DType, shape: [Int], byteCount: Int, file: String, fileOffset: Int?) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.byteCount = byteCount
        self.file = file
        self.fileOffset = fileOffset
    }
}

/// A readable checkpoint: safetensors (single or sharded), HDF5, or `.ingot`.
///
/// `tensors` lists every tensor in storage order. `tensor(named:)` returns the bytes: a zero-copy view into a
/// memory-mapped file when the format stores them raw, a decoded buffer otherwise.
public protocol TensorSource: AnyObject, Sendable {
    /// The path the user gave (file or directory).
    var path: String { get }
    /// Every tensor, in storage order.
    var tensors: [TensorInfo] { get }
    /// Free-form string metadata (`__metadata__` for safetensors).
    var metadata: [(key: String, value: String)] { get }
    /// The tensor's bytes. Throws if the name is unknown or the data fails validation.
    func tensor(named name: String) throws -> TensorView
}

extension TensorSource {
    /// The info of a tensor by name.
    public func info(_ name: String) -> TensorInfo? { tensors.first { $0.name == name } }

    /// Total bytes of tensor data.
    public var totalBytes: Int { tensors.reduce(0) { $0 + $1.byteCount } }

    /// Total parameters (elements).
    public var parameterCount: Int { tensors.reduce(0) { $0 + (ShapeMath.elementCount($1.shape) ?? 0) } }
}

/// Errors common to every reader.
public enum SourceError: Error, CustomStringConvertible, Equatable {
    case noSuchTensor(name: String, path: String)
    case notACheckpoint(path: String, reason: String)

    public var description: String {
        switch self {
        case let .noSuchTensor(n, p): "\(p): no tensor named '\(n)'"
        case let .notACheckpoint(p, r): "\(p): not a readable checkpoint: \(r)"
        }
    }
}

/// A source whose tensors carry more than dtype and shape (codec, compression ratio…), shown by `inspect`.
public protocol TensorDetailsProviding {
    var detailColumns: [String] { get }
    func details(of tensor: String) -> [String]
}

/// A source whose stored bytes carry checksums.
public protocol ChecksumVerifiable {
    /// Verifies every checksum; throws naming the first thing that is wrong.
    func verifyAll() throws
}

/// A source that names its own format for display.
public protocol FormatNamed {
    var formatName: String { get }
}

/// A source that carries companion files (`config.json`, tokenizer files) inside itself or derives them from its
/// own metadata (GGUF).
public protocol CompanionFilesProviding {
    func companionFiles() throws -> [(name: String, bytes: [UInt8])]
}
