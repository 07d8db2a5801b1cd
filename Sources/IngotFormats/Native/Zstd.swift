import CZstd

/// A reusable zstd context pair (one per worker: no allocation per chunk in the hot loop).
final class ZstdContext {
    let cctx: OpaquePointer
    let dctx: OpaquePointer

    init() {
        cctx = ZSTD_createCCtx()
        dctx = ZSTD_createDCtx()
    }

    deinit {
        ZSTD_freeCCtx(cctx)
        ZSTD_freeDCtx(dctx)
    }

    static func bound(_ n: Int) -> Int { ZSTD_compressBound(n) }

    /// Compresses `src` into `dst` (capacity ≥ `bound(src.count)`); returns the compressed size.
    func compress(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, level: Int32) -> Int? {
        let r = ZSTD_compressCCtx(cctx, dst.baseAddress, dst.count, src.baseAddress, src.count, level)
        return ZSTD_isError(r) != 0 ? nil : r
    }

    /// Decompresses one frame into exactly `dst.count` bytes; nil unless the frame declares and yields exactly
    /// that many (a frame claiming more — a zstd bomb — is rejected before any work).
    func decompress(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) -> DecompressFailure? {
        let declared = ZSTD_getFrameContentSize(src.baseAddress, src.count)
        if declared == ZSTD_CONTENTSIZE_ERROR { return .notAFrame }
        if declared == ZSTD_CONTENTSIZE_UNKNOWN || declared != UInt64(dst.count) { return .declaredSize(declared) }
        let r = ZSTD_decompressDCtx(dctx, dst.baseAddress, dst.count, src.baseAddress, src.count)
        if ZSTD_isError(r) != 0 { return .corrupt(String(cString: ZSTD_getErrorName(r))) }
        return r == dst.count ? nil : .declaredSize(UInt64(r))
    }

    enum DecompressFailure: Equatable {
        case notAFrame
        case declaredSize(UInt64)
        case corrupt(String)
    }
}

/// A small pool so parallel workers each use their own context.
final class ZstdPool: @unchecked Sendable {
    private var free: [ZstdContext] = []
    private let lock = NSLockShim()

    func withContext<T>(_ body: (ZstdContext) throws -> T) rethrows -> T {
        let c = lock.withLock { free.popLast() } ?? ZstdContext()
        defer { lock.withLock { free.append(c) } }
        return try body(c)
    }

    static let shared = ZstdPool()
}

import Foundation
typealias NSLockShim = NSLock
