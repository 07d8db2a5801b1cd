#if os(Linux)
import Glibc
#endif

/// A borrowed, read-only view of one tensor's bytes: dtype, shape and the bytes themselves.
///
/// Views made by readers point straight into a memory-mapped file (zero copy); `owner` keeps that mapping alive
/// for as long as the view exists.
public struct TensorView: @unchecked Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let bytes: UnsafeRawBufferPointer
    /// Keeps the storage behind `bytes` alive.
    public let owner: AnyObject?

    public init(name: String, dtype: DType, shape: [Int], bytes: UnsafeRawBufferPointer, owner: AnyObject?) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
        self.owner = owner
    }

    /// Runs `body` with the bytes, keeping their storage alive for the whole call. Use this (not `bytes`
    /// directly) whenever the view may be the only owner of its storage, e.g. a decoded `.ingot` tensor.
    @inlinable
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        // Not `withExtendedLifetime(owner) { try body(bytes) }`: with Swift 6.3's typed-throws
        // `withExtendedLifetime`, errors rethrown through it reached callers in other modules as garbage in
        // release builds (a crash instead of the error). Keeping the owner alive after the call is equivalent.
        let result = try body(bytes)
        withExtendedLifetime(owner) {}
        return result
    }

    public var elementCount: Int { ShapeMath.elementCount(shape) ?? 0 }
    public var byteCount: Int { bytes.count }

    /// Rows and columns of a 2-D (or more, leading dims flattened) tensor.
    public var rowsAndColumns: (rows: Int, columns: Int) {
        guard let last = shape.last else { return (1, 1) }
        return (last == 0 ? 0 : elementCount / last, last)
    }

    /// Decodes the tensor to `Float`. Copies; use for weights that the caller needs as f32.
    public func floats() throws -> [Float] {
        try withBytes { try FloatCodecs.decodeToF32($0, dtype: dtype, count: elementCount) }
    }
}

/// Owned tensor bytes (for tensors made in memory: quantized outputs, converted tensors, test data).
public final class TensorBuffer: @unchecked Sendable {
    public let storage: UnsafeMutableRawBufferPointer
    /// Allocated with `posix_memalign` (released with `free`).
    private var alignedToHugePages = false

    public init(byteCount: Int) {
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
    }

    /// A buffer the caller promises to overwrite entirely before reading (decoders): no zero-fill. Buffers of
    /// `hugePageMinimum` bytes or more are aligned to 2 MiB and offered to transparent huge pages, so that writing
    /// them takes one page fault per 2 MiB instead of one per 4 KiB (where the kernel allows it).
    public init(uninitializedByteCount byteCount: Int) {
        #if os(Linux)
        if byteCount >= Self.hugePageMinimum {
            var p: UnsafeMutableRawPointer?
            if posix_memalign(&p, Self.hugePage, byteCount) == 0, let p {
                _ = madvise(p, byteCount, MADV_HUGEPAGE)
                storage = UnsafeMutableRawBufferPointer(start: p, count: byteCount)
                alignedToHugePages = true
                return
            }
        }
        #endif
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
    }

    static let hugePage = 2 << 20
    static let hugePageMinimum = 8 << 20

    public convenience init(copying bytes: UnsafeRawBufferPointer) {
        self.init(byteCount: bytes.count)
        if bytes.count > 0 { storage.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
    }

    deinit {
        if alignedToHugePages { free(storage.baseAddress) } else { storage.deallocate() }
    }

    /// A view of the first `byteCount` bytes as a tensor.
    public func view(name: String, dtype: DType, shape: [Int], byteCount: Int) -> TensorView {
        TensorView(name: name, dtype: dtype, shape: shape,
                   bytes: UnsafeRawBufferPointer(rebasing: storage[0..<byteCount]), owner: self)
    }

    /// A tensor holding a copy of `values` in the given dtype.
    public static func make<T: BitwiseCopyable>(name: String, dtype: DType, shape: [Int], values: [T]) -> TensorView {
        values.withUnsafeBytes { raw in
            TensorBuffer(copying: raw).view(name: name, dtype: dtype, shape: shape, byteCount: raw.count)
        }
    }
}
