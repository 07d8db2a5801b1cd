import Foundation

/// Bulk dtype conversion, vectorized (branch-free loops LLVM turns into SIMD) and split across cores.
///
/// Results are bit-identical to the scalar references in `HalfFloat` for every input (tested exhaustively over
/// all 16-bit codes), and independent of the thread count.
public enum FloatCodecs {
    public enum ConversionError: Error, CustomStringConvertible, Equatable {
        case unsupported(from: DType, to: DType)
        case sizeMismatch(expected: Int, actual: Int)

        public var description: String {
            switch self {
            case let .unsupported(f, t): "conversion from \(f.rawValue) to \(t.rawValue) is not supported"
            case let .sizeMismatch(e, a): "buffer holds \(a) bytes, \(e) expected"
            }
        }
    }

    /// Dtypes `convert` can read from and write to.
    public static let convertible: Set<DType> = [.f32, .f16, .bf16]

    /// Converts `count` elements from `src` (of `from`) into `dst` (of `to`). Equal dtypes copy.
    public static func convert(_ src: UnsafeRawBufferPointer, from: DType, to: DType,
                               into dst: UnsafeMutableRawBufferPointer, count: Int, threads: Int = 0) throws {
        guard let sw = from.byteWidth, let dw = to.byteWidth else { throw ConversionError.unsupported(from: from, to: to) }
        guard src.count >= count * sw else { throw ConversionError.sizeMismatch(expected: count * sw, actual: src.count) }
        guard dst.count >= count * dw else { throw ConversionError.sizeMismatch(expected: count * dw, actual: dst.count) }
        guard from == to || (convertible.contains(from) && convertible.contains(to)) else {
            throw ConversionError.unsupported(from: from, to: to)
        }
        // The work is in a non-throwing function: Swift 6.3 (release) returned a stale error register from this
        // throwing function on an early-return path, which callers saw as a thrown garbage error.
        convertChecked(src, from: from, to: to, into: dst, count: count, threads: threads)
    }

    /// `convert` after validation.
    static func convertChecked(_ src: UnsafeRawBufferPointer, from: DType, to: DType,
                               into dst: UnsafeMutableRawBufferPointer, count: Int, threads: Int) {
        if count == 0 { return }
        if from == to { dst.baseAddress!.copyMemory(from: src.baseAddress!, byteCount: count * (from.byteWidth ?? 1)); return }
        let s = src.baseAddress!, d = dst.baseAddress!
        parallelChunks(count: count, threads: threads) { lo, hi in
            let n = hi - lo
            switch (from, to) {
            case (.f32, .f16):
                f32ToF16(s.assumingMemoryBound(to: Float.self) + lo, d.assumingMemoryBound(to: UInt16.self) + lo, n)
            case (.f32, .bf16):
                f32ToBF16(s.assumingMemoryBound(to: Float.self) + lo, d.assumingMemoryBound(to: UInt16.self) + lo, n)
            case (.f16, .f32):
                f16ToF32(s.assumingMemoryBound(to: UInt16.self) + lo, d.assumingMemoryBound(to: Float.self) + lo, n)
            case (.bf16, .f32):
                bf16ToF32(s.assumingMemoryBound(to: UInt16.self) + lo, d.assumingMemoryBound(to: Float.self) + lo, n)
            case (.bf16, .f16):
                bf16ToF16(s.assumingMemoryBound(to: UInt16.self) + lo, d.assumingMemoryBound(to: UInt16.self) + lo, n)
            case (.f16, .bf16):
                f16ToBF16(s.assumingMemoryBound(to: UInt16.self) + lo, d.assumingMemoryBound(to: UInt16.self) + lo, n)
            default: break
            }
        }
    }

    /// Decodes any numeric dtype to f32 (copying). FP8 via table; integers by value.
    public static func decodeToF32(_ src: UnsafeRawBufferPointer, dtype: DType, count: Int) throws -> [Float] {
        // decode writes every element (or throws): no zero-fill needed.
        var out = [Float](unsafeUninitializedCapacity: count) { _, n in n = count }
        try out.withUnsafeMutableBytes { try decode(src, dtype: dtype, count: count, into: $0) }
        return out
    }

    /// Decodes `count` elements of `dtype` into f32 storage `dst`.
    public static func decode(_ src: UnsafeRawBufferPointer, dtype: DType, count: Int,
                              into dst: UnsafeMutableRawBufferPointer, threads: Int = 0) throws {
        guard let need = dtype.byteCount(elements: count), src.count >= need else {
            throw ConversionError.sizeMismatch(expected: dtype.byteCount(elements: count) ?? -1, actual: src.count)
        }
        guard dst.count >= count * 4 else { throw ConversionError.sizeMismatch(expected: count * 4, actual: dst.count) }
        // The work is in a non-throwing function with the only normal return at the end: Swift 6.3 (release)
        // returned a stale error register from this throwing function's early returns (as in `convert`).
        guard decodeChecked(src, dtype: dtype, count: count, into: dst, threads: threads) else {
            throw ConversionError.unsupported(from: dtype, to: .f32)
        }
    }

    /// `decode` after validation; false when `dtype` has no f32 decoding.
    static func decodeChecked(_ src: UnsafeRawBufferPointer, dtype: DType, count: Int,
                              into dst: UnsafeMutableRawBufferPointer, threads: Int) -> Bool {
        if count == 0 { return true }
        if convertible.contains(dtype) {
            convertChecked(src, from: dtype, to: .f32, into: dst, count: count, threads: threads)
            return true
        }
        let o = dst.baseAddress!.assumingMemoryBound(to: Float.self)
        func map<T: BitwiseCopyable>(_: T.Type, _ f: (T) -> Float) {
            for i in 0..<count { o[i] = f(src.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.stride, as: T.self)) }
        }
        switch dtype {
        case .f64: map(Double.self) { Float($0) }
        case .f8e4m3: FP8.e4m3Table.withUnsafeBufferPointer { t in map(UInt8.self) { t[Int($0)] } }
        case .f8e5m2: FP8.e5m2Table.withUnsafeBufferPointer { t in map(UInt8.self) { t[Int($0)] } }
        case .u8, .bool: map(UInt8.self) { Float($0) }
        case .i8: map(Int8.self) { Float($0) }
        case .u16: map(UInt16.self) { Float($0) }
        case .i16: map(Int16.self) { Float($0) }
        case .u32: map(UInt32.self) { Float($0) }
        case .i32: map(Int32.self) { Float($0) }
        case .u64: map(UInt64.self) { Float($0) }
        case .i64: map(Int64.self) { Float($0) }
        default: return false
        }
        return true
    }

    /// Runs `body(lo, hi)` over disjoint ranges covering `0..<count` on `threads` workers (0: the scope's); ranges
    /// are fixed by `count` alone, so results never depend on the number of threads.
    public static func parallelChunks(count: Int, threads: Int = 0, chunk: Int = 1 << 18,
                                      _ body: (Int, Int) -> Void) {
        let pieces = (count + chunk - 1) / chunk
        parallelFor(pieces, workers: threads) { p in body(p * chunk, min(count, (p + 1) * chunk)) }
    }

    // MARK: kernels
    // Branch-free per-element forms of the `HalfFloat` references (selects, no branches), written as plain loops
    // over raw pointers so LLVM vectorizes them; tested bit-exact against the references over every 16-bit code.

    @inlinable @inline(__always) public static func bf16Bits(_ b: UInt32) -> UInt32 {
        let rounded = (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16
        return (b & 0x7FFF_FFFF) > 0x7F80_0000 ? (b >> 16) | 0x40 : rounded
    }

    @inlinable @inline(__always) public static func f16Bits(_ b: UInt32) -> UInt32 {
        let sign = (b >> 16) & 0x8000
        let a = b & 0x7FFF_FFFF
        let normal = (a &+ 0xC800_0FFF &+ ((a >> 13) & 1)) >> 13
        let sub = (Float(bitPattern: a) + 0.5).bitPattern &- 0x3F00_0000
        var h = a < 0x3880_0000 ? sub : normal
        h = a >= 0x4780_0000 ? 0x7C00 : h
        h = a > 0x7F80_0000 ? 0x7E00 | ((a >> 13) & 0x3FF) : h
        return h | sign
    }

    @inline(__always) static func f32BitsFromF16(_ h: UInt32) -> UInt32 {
        let sign = (h & 0x8000) << 16
        let em = h & 0x7FFF
        let exp = em & 0x7C00
        var o = (em << 13) &+ (112 << 23)
        o = exp == 0x7C00 ? o &+ (112 << 23) : o
        let sub = (Float(bitPattern: (em << 13) &+ (113 << 23)) - 0x1p-14).bitPattern
        o = exp == 0 ? sub : o
        return o | sign
    }

    static func f32ToBF16(_ s: UnsafePointer<Float>, _ d: UnsafeMutablePointer<UInt16>, _ n: Int) {
        let u = UnsafeRawPointer(s).assumingMemoryBound(to: UInt32.self)
        for i in 0..<n { d[i] = UInt16(truncatingIfNeeded: bf16Bits(u[i])) }
    }

    static func f32ToF16(_ s: UnsafePointer<Float>, _ d: UnsafeMutablePointer<UInt16>, _ n: Int) {
        let u = UnsafeRawPointer(s).assumingMemoryBound(to: UInt32.self)
        for i in 0..<n { d[i] = UInt16(truncatingIfNeeded: f16Bits(u[i])) }
    }

    static func f16ToF32(_ s: UnsafePointer<UInt16>, _ d: UnsafeMutablePointer<Float>, _ n: Int) {
        let o = UnsafeMutableRawPointer(d).assumingMemoryBound(to: UInt32.self)
        for i in 0..<n { o[i] = f32BitsFromF16(UInt32(s[i])) }
    }

    static func bf16ToF32(_ s: UnsafePointer<UInt16>, _ d: UnsafeMutablePointer<Float>, _ n: Int) {
        let o = UnsafeMutableRawPointer(d).assumingMemoryBound(to: UInt32.self)
        for i in 0..<n { o[i] = UInt32(s[i]) << 16 }
    }

    static func bf16ToF16(_ s: UnsafePointer<UInt16>, _ d: UnsafeMutablePointer<UInt16>, _ n: Int) {
        for i in 0..<n { d[i] = UInt16(truncatingIfNeeded: f16Bits(UInt32(s[i]) << 16)) }
    }

    static func f16ToBF16(_ s: UnsafePointer<UInt16>, _ d: UnsafeMutablePointer<UInt16>, _ n: Int) {
        for i in 0..<n { d[i] = UInt16(truncatingIfNeeded: bf16Bits(f32BitsFromF16(UInt32(s[i])))) }
    }
}
