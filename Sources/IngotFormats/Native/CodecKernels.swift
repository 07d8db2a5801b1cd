import IngotCore

/// Entry points to the chunk codec's kernels for benchmarks (`ingot bench kernels`).
public enum CodecKernels {
    /// Seconds for each kernel over `data` (a bf16 buffer): xxh64, plane split, plane join, Huffman encode of
    /// the exponent plane, Huffman decode of it.
    public static func time(_ data: UnsafeRawBufferPointer) throws -> [(String, Double, Int)] {
        var out: [(String, Double, Int)] = []
        func measure(_ name: String, bytes: Int, _ body: () throws -> Void) rethrows {
            var best = Double.infinity
            for _ in 0..<3 { let t0 = monotonicSeconds(); try body(); best = min(best, monotonicSeconds() - t0) }
            out.append((name, best, bytes))
        }
        let n = data.count
        measure("xxh64", bytes: n) { _ = XXH64.hash(data) }
        let planes = UnsafeMutableRawBufferPointer.allocate(byteCount: n, alignment: 64)
        defer { planes.deallocate() }
        measure("byteplane split (bf16)", bytes: n) { BytePlanes.split(data, width: 2, into: planes) }
        let back = UnsafeMutableRawBufferPointer.allocate(byteCount: n, alignment: 64)
        defer { back.deallocate() }
        measure("byteplane join (bf16)", bytes: n) { BytePlanes.join(UnsafeRawBufferPointer(planes), width: 2, into: back) }
        let exp = UnsafeRawBufferPointer(rebasing: planes[(n / 2)..<n])
        let enc = UnsafeMutableRawBufferPointer.allocate(byteCount: Huffman.bound(exp.count), alignment: 64)
        defer { enc.deallocate() }
        var size = 0
        measure("huffman encode (exponent plane)", bytes: exp.count) { size = Huffman.encode(exp, into: enc) }
        let dec = UnsafeMutableRawBufferPointer.allocate(byteCount: exp.count, alignment: 64)
        defer { dec.deallocate() }
        try measure("huffman decode (exponent plane)", bytes: exp.count) {
            try Huffman.decode(UnsafeRawBufferPointer(rebasing: enc[0..<size]), into: dec)
        }
        return out
    }
}

extension CodecKernels {
    /// Encodes every tensor of `source` into memory exactly as `pack` would (same chunking and codec choice),
    /// without writing: (seconds, raw bytes, stored bytes). Tensors are encoded in parallel unless serial.
    public static func encodeAll(_ source: TensorSource, chunkSize: Int = 4 << 20, level: Int32? = 3) throws -> (Double, Int, Int) {
        var jobs: [(Int, Range<Int>)] = []
        let views = try source.tensors.map { try source.tensor(named: $0.name) }
        for (t, v) in views.enumerated() {
            let n = max(1, (v.byteCount + chunkSize - 1) / chunkSize)
            for k in 0..<n { jobs.append((t, (k * chunkSize)..<min(v.byteCount, (k + 1) * chunkSize))) }
        }
        var stored = [Int](repeating: 0, count: jobs.count)
        let t0 = monotonicSeconds()
        let outputs = ScratchPool()
        stored.withUnsafeMutableBufferPointer { out in
            let o = UncheckedSendable(out)
            parallelFor(jobs.count) { j in
                let (t, r) = jobs[j]
                let piece = UnsafeRawBufferPointer(rebasing: views[t].bytes[r])
                o.value[j] = outputs.withBuffer(byteCount: ChunkEncoder.outputCapacity(piece.count)) { buffer in
                    ZstdPool.shared.withContext { ChunkEncoder.encode(piece, dtype: views[t].dtype, level: level, context: $0, into: buffer).storedSize }
                }
            }
        }
        let seconds = monotonicSeconds() - t0
        withExtendedLifetime(views) {}
        return (seconds, views.reduce(0) { $0 + $1.byteCount }, stored.reduce(0, +))
    }
}
