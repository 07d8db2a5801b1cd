import IngotCore

/// Decoding of ggml block types to f32 (the scalar reference: ggml's `dequantize_row_*`, in the same arithmetic
/// order, so results are bit-identical to ggml's and gguf-py's). Rows are decoded in parallel.
public enum GGUFBlocks {
    /// Decodes `rows × columns` elements of `type` from `src` into `out` (row-major). `src` must hold exactly
    /// `rows × type.rowBytes(columns)` bytes (the reader checks this).
    public static func dequantize(_ type: GGMLType, _ src: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>,
                                  rows: Int, columns: Int) {
        guard rows > 0, columns > 0, let rowBytes = type.rowBytes(columns: columns) else { return }
        precondition(src.count >= rows * rowBytes && out.count >= rows * columns, "GGUFBlocks.dequantize: buffer too small")
        let s = UncheckedSendable(src.baseAddress!), o = UncheckedSendable(out.baseAddress!)
        let chunk = max(1, (1 << 16) / columns)
        parallelFor((rows + chunk - 1) / chunk) { c in
            for r in c * chunk..<min(rows, (c + 1) * chunk) {
                dequantizeRow(type, s.value + r * rowBytes, o.value + r * columns, columns: columns)
            }
        }
    }

    @inline(__always) static func half(_ p: UnsafeRawPointer, _ at: Int) -> Float {
        HalfFloat.f16ToF32(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
    }

    /// One row: the reference decoders.
    static func dequantizeRow(_ type: GGMLType, _ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, columns n: Int) {
        let b = x.assumingMemoryBound(to: UInt8.self)
        switch type {
        case .f32:
            for i in 0..<n { y[i] = Float(bitPattern: UInt32(littleEndian: x.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .f16:
            for i in 0..<n { y[i] = half(x, 2 * i) }
        case .bf16:
            for i in 0..<n { y[i] = HalfFloat.bf16ToF32(UInt16(littleEndian: x.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .q4_0:
            for blk in 0..<n / 32 {
                let p = b + 18 * blk, d = half(p, 0), q = p + 2, o = y + 32 * blk
                for j in 0..<16 {
                    o[j] = Float(Int(q[j] & 0xF) - 8) * d
                    o[j + 16] = Float(Int(q[j] >> 4) - 8) * d
                }
            }
        case .q4_1:
            for blk in 0..<n / 32 {
                let p = b + 20 * blk, d = half(p, 0), m = half(p, 2), q = p + 4, o = y + 32 * blk
                for j in 0..<16 {
                    o[j] = Float(q[j] & 0xF) * d + m
                    o[j + 16] = Float(q[j] >> 4) * d + m
                }
            }
        case .q5_0:
            for blk in 0..<n / 32 {
                let p = b + 22 * blk, d = half(p, 0), q = p + 6, o = y + 32 * blk
                let qh = UInt32(littleEndian: UnsafeRawPointer(p + 2).loadUnaligned(as: UInt32.self))
                for j in 0..<16 {
                    let h0 = Int(((qh >> UInt32(j)) << 4) & 0x10), h1 = Int((qh >> UInt32(j + 12)) & 0x10)
                    o[j] = Float((Int(q[j] & 0xF) | h0) - 16) * d
                    o[j + 16] = Float((Int(q[j] >> 4) | h1) - 16) * d
                }
            }
        case .q5_1:
            for blk in 0..<n / 32 {
                let p = b + 24 * blk, d = half(p, 0), m = half(p, 2), q = p + 8, o = y + 32 * blk
                let qh = UInt32(littleEndian: UnsafeRawPointer(p + 4).loadUnaligned(as: UInt32.self))
                for j in 0..<16 {
                    let h0 = Int(((qh >> UInt32(j)) << 4) & 0x10), h1 = Int((qh >> UInt32(j + 12)) & 0x10)
                    o[j] = Float(Int(q[j] & 0xF) | h0) * d + m
                    o[j + 16] = Float(Int(q[j] >> 4) | h1) * d + m
                }
            }
        case .q8_0:
            for blk in 0..<n / 32 {
                let p = b + 34 * blk, d = half(p, 0), o = y + 32 * blk
                for j in 0..<32 { o[j] = Float(Int8(bitPattern: p[2 + j])) * d }
            }
        case .q4_K, .q5_K:
            let five = type == .q5_K, size = five ? 176 : 144
            for blk in 0..<n / 256 {
                let p = b + size * blk, d = half(p, 0), dmin = half(p, 2), sc = p + 4
                let qh = p + 16, q0 = p + (five ? 48 : 16)
                var o = y + 256 * blk
                for g in 0..<4 {
                    let (s1, m1) = KQuant.scaleMin(2 * g, sc), (s2, m2) = KQuant.scaleMin(2 * g + 1, sc)
                    let d1 = d * Float(s1), mm1 = dmin * Float(m1), d2 = d * Float(s2), mm2 = dmin * Float(m2)
                    let q = q0 + 32 * g
                    let u1 = UInt8(1) << UInt8(2 * g), u2 = UInt8(2) << UInt8(2 * g)
                    for l in 0..<32 {
                        let h = five && qh[l] & u1 != 0 ? 16 : 0
                        o[l] = d1 * Float(Int(q[l] & 0xF) + h) - mm1
                    }
                    for l in 0..<32 {
                        let h = five && qh[l] & u2 != 0 ? 16 : 0
                        o[32 + l] = d2 * Float(Int(q[l] >> 4) + h) - mm2
                    }
                    o += 64
                }
            }
        case .q6_K:
            for blk in 0..<n / 256 {
                let p = b + 210 * blk, d = half(p, 208)
                var ql = p, qh = p + 128, sc = UnsafeRawPointer(p + 192).assumingMemoryBound(to: Int8.self)
                var o = y + 256 * blk
                for _ in 0..<2 {
                    for l in 0..<32 {
                        let s = l / 16
                        let q1 = Int(ql[l] & 0xF | ((qh[l] >> 0) & 3) << 4) - 32
                        let q2 = Int(ql[l + 32] & 0xF | ((qh[l] >> 2) & 3) << 4) - 32
                        let q3 = Int(ql[l] >> 4 | ((qh[l] >> 4) & 3) << 4) - 32
                        let q4 = Int(ql[l + 32] >> 4 | ((qh[l] >> 6) & 3) << 4) - 32
                        o[l] = d * Float(sc[s]) * Float(q1)
                        o[l + 32] = d * Float(sc[s + 2]) * Float(q2)
                        o[l + 64] = d * Float(sc[s + 4]) * Float(q3)
                        o[l + 96] = d * Float(sc[s + 6]) * Float(q4)
                    }
                    o += 128; ql += 64; qh += 32; sc += 8
                }
            }
        default:
            preconditionFailure("GGUFBlocks.dequantize: \(type.name) is not supported (callers check isSupported)")
        }
    }
}
