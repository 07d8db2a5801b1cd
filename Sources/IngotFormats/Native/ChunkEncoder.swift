import IngotCore

/// Encodes and decodes single chunks. Pure: the output depends only on the input bytes, dtype and level.
enum ChunkEncoder {
    /// An encoded chunk; its stored bytes are the first `storedSize` bytes of the output buffer `encode` was
    /// given, or the raw bytes themselves when `codec` is raw.
    struct Encoded {
        var codec: ChunkCodec
        var planes: [PlaneEntry]
        var storedHash: UInt64
        var rawHash: UInt64
        var storedSize: Int
    }

    /// Compression must save at least 2% or the chunk (or plane) is stored raw.
    static let worthIt = 0.98

    /// Planes of the chunks being encoded or decoded, reused across chunks (one buffer per worker at a time, at
    /// most a chunk each).
    static let scratch = ScratchPool()

    /// The output capacity `encode` needs for a chunk of `n` bytes.
    static func outputCapacity(_ n: Int) -> Int { max(ZstdContext.bound(n), n + Huffman.bound(n)) }

    /// Encodes `raw` into `out` (capacity ≥ `outputCapacity(raw.count)`), which the caller reuses chunk after
    /// chunk: nothing is allocated per chunk.
    static func encode(_ raw: UnsafeRawBufferPointer, dtype: DType, level: Int32?, context: ZstdContext,
                       into out: UnsafeMutableRawBufferPointer) -> Encoded {
        precondition(out.count >= outputCapacity(raw.count), "ChunkEncoder.encode: output capacity")
        let rawHash = XXH64.hash(raw)
        let rawResult = Encoded(codec: .raw, planes: [], storedHash: rawHash, rawHash: rawHash, storedSize: raw.count)
        guard let level, raw.count >= 64 else { return rawResult }
        if let w = BytePlanes.width(dtype), raw.count % w == 0 {
            let planeSize = raw.count / w
            return scratch.withBuffer(byteCount: raw.count) { planes in
                BytePlanes.split(raw, width: w, into: planes)
                // Plane k goes at `pos` ≤ (k)·planeSize; `outputCapacity` leaves Huffman's bound after it.
                var pos = 0
                var entries: [PlaneEntry] = []
                for k in 0..<w {
                    let plane = UnsafeRawBufferPointer(rebasing: planes[(k * planeSize)..<((k + 1) * planeSize)])
                    // The exact coded size is known from the histogram: only code planes that shrink.
                    let plan = Huffman.plan(plane)
                    if Double(plan.encodedSize) < Double(planeSize) * worthIt {
                        let n = Huffman.encode(plane, plan: plan, into: UnsafeMutableRawBufferPointer(rebasing: out[pos...]))
                        entries.append(PlaneEntry(codec: .huffman, storedSize: n))
                        pos += n
                    } else {
                        (out.baseAddress! + pos).copyMemory(from: plane.baseAddress!, byteCount: planeSize)
                        entries.append(PlaneEntry(codec: .raw, storedSize: planeSize))
                        pos += planeSize
                    }
                }
                guard Double(pos) < Double(raw.count) * worthIt else { return rawResult }
                let h = XXH64.hash(UnsafeRawBufferPointer(rebasing: out[0..<pos]))
                return Encoded(codec: .byteplane, planes: entries, storedHash: h, rawHash: rawHash, storedSize: pos)
            }
        }
        guard let n = context.compress(raw, into: out, level: level), Double(n) < Double(raw.count) * worthIt else { return rawResult }
        let h = XXH64.hash(UnsafeRawBufferPointer(rebasing: out[0..<n]))
        return Encoded(codec: .zstd, planes: [], storedHash: h, rawHash: rawHash, storedSize: n)
    }

    /// Decodes a chunk's stored bytes into `dst` (exactly `chunk.rawSize` bytes), verifying its checksums.
    ///
    /// A raw chunk is checked against `xxh64` before it is copied. A coded chunk is decoded first (the decoders are
    /// safe on any bytes) and its output checked against `raw_xxh64`, which covers every stored bit that can change
    /// it; `xxh64` is computed only when that fails, to report a damaged stored chunk as such. This hashes each
    /// chunk once instead of twice; full verification (`IngotFile.verifyAll`) checks every `xxh64`.
    static func decode(_ stored: UnsafeRawBufferPointer, chunk: NativeChunk, into dst: UnsafeMutableRawBufferPointer,
                       dtype: DType, context: ZstdContext, file: String, owner: String, index: Int) throws {
        if chunk.codec == .raw {
            guard XXH64.hash(stored) == chunk.storedHash else { throw NativeError.chunkChecksum(file: file, tensor: owner, chunk: index) }
        }
        do {
            try decodeUnchecked(stored, chunk: chunk, into: dst, dtype: dtype, context: context, file: file, owner: owner, index: index)
        } catch {
            guard XXH64.hash(stored) == chunk.storedHash else { throw NativeError.chunkChecksum(file: file, tensor: owner, chunk: index) }
            throw error
        }
    }

    private static func decodeUnchecked(_ stored: UnsafeRawBufferPointer, chunk: NativeChunk, into dst: UnsafeMutableRawBufferPointer,
                                        dtype: DType, context: ZstdContext, file: String, owner: String, index: Int) throws {
        func fail(_ f: ZstdContext.DecompressFailure) -> NativeError {
            switch f {
            case .notAFrame: .chunkDecode(file: file, tensor: owner, chunk: index, reason: "not a zstd frame")
            case .declaredSize(let d): .chunkDecode(file: file, tensor: owner, chunk: index, reason: "frame declares \(d) bytes, index says \(chunk.rawSize)")
            case .corrupt(let r): .chunkDecode(file: file, tensor: owner, chunk: index, reason: r)
            }
        }
        switch chunk.codec {
        case .raw:
            if chunk.rawSize > 0 { dst.baseAddress!.copyMemory(from: stored.baseAddress!, byteCount: chunk.rawSize) }
        case .zstd:
            if let f = context.decompress(stored, into: dst) { throw fail(f) }
        case .byteplane:
            let w = chunk.planes.count
            guard BytePlanes.width(dtype) == w || (w == 1 && dtype.bitWidth == 8) else {
                throw NativeError.chunkDecode(file: file, tensor: owner, chunk: index, reason: "\(w) planes for \(dtype.rawValue)")
            }
            let planeSize = chunk.rawSize / w
            try scratch.withBuffer(byteCount: chunk.rawSize) { planes in
            // Where each plane's bytes are: decoded into `planes`, or (raw) read where they are stored.
            var sources: [UnsafePointer<UInt8>] = []
            var pos = 0
            for (k, p) in chunk.planes.enumerated() {
                let src = UnsafeRawBufferPointer(rebasing: stored[pos..<(pos + p.storedSize)])
                let out = UnsafeMutableRawBufferPointer(rebasing: planes[(k * planeSize)..<((k + 1) * planeSize)])
                switch p.codec {
                case .zstd: if let f = context.decompress(src, into: out) { throw fail(f) }
                case .huffman:
                    do { try Huffman.decode(src, into: out) } catch Huffman.Failure.corrupt(let r) {
                        throw NativeError.chunkDecode(file: file, tensor: owner, chunk: index, reason: "plane \(k): \(r)")
                    }
                case .raw:  // its size was checked against the chunk's when the index was read
                    if planeSize > 0 { sources.append(src.baseAddress!.assumingMemoryBound(to: UInt8.self)); pos += p.storedSize; continue }
                }
                sources.append(UnsafePointer(out.baseAddress!.assumingMemoryBound(to: UInt8.self)))
                pos += p.storedSize
            }
            BytePlanes.join(sources, count: planeSize, into: UnsafeMutableRawBufferPointer(rebasing: dst[0..<chunk.rawSize]))
            }
        }
        if chunk.codec != .raw, XXH64.hash(UnsafeRawBufferPointer(dst)) != chunk.rawHash {
            throw NativeError.chunkDecodedChecksum(file: file, tensor: owner, chunk: index)
        }
    }
}
