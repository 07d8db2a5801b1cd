import IngotCore

extension GGUFBlocks {
    /// Encodes `rows × columns` f32 values (row-major) as `type` into `out` (`rows × type.rowBytes(columns)` bytes).
    ///
    /// Without `importance` these are ggml's reference quantizers (`quantize_row_*_ref`), which llama-quantize uses
    /// when it has no importance matrix: the output is byte-identical to llama-quantize's. With `importance` (one
    /// non-negative weight per column: llama.cpp's imatrix, the mean of x² over the tokens the linear saw) they are
    /// the imatrix variants (`quantize_row_*_impl`). Q8_0 and the float types ignore importance, as ggml does.
    /// Rows are encoded in parallel; the result does not depend on the thread count.
    public static func quantize(_ type: GGMLType, _ src: UnsafeBufferPointer<Float>, rows: Int, columns: Int,
                                importance: UnsafeBufferPointer<Float>? = nil, into out: UnsafeMutableRawBufferPointer) {
        guard rows > 0, columns > 0, let rowBytes = type.rowBytes(columns: columns) else { return }
        precondition(type.isSupported && src.count >= rows * columns && out.count >= rows * rowBytes,
                     "GGUFBlocks.quantize: unsupported type or buffer too small")
        precondition(importance == nil || importance!.count >= columns, "GGUFBlocks.quantize: importance has fewer values than columns")
        let s = UncheckedSendable(src.baseAddress!), o = UncheckedSendable(out.baseAddress!)
        let qw = UncheckedSendable(importance?.baseAddress)
        let chunk = max(1, (1 << 15) / columns)
        parallelFor((rows + chunk - 1) / chunk) { c in
            var scratch = Scratch()
            for r in c * chunk..<min(rows, (c + 1) * chunk) {
                quantizeRow(type, s.value + r * columns, o.value + r * rowBytes, columns: columns, importance: qw.value, &scratch)
            }
        }
    }

    /// Per-thread working buffers of the block quantizers.
    struct Scratch {
        var L = [UInt8](repeating: 0, count: 256), Laux = [UInt8](repeating: 0, count: 256)
        var Li = [Int8](repeating: 0, count: 256)
        var weights = [Float](repeating: 0, count: 256)
        var scales = [Float](repeating: 0, count: 16), mins = [Float](repeating: 0, count: 16), sw = [Float](repeating: 0, count: 16)
        var ls = [UInt8](repeating: 0, count: 16), lm = [UInt8](repeating: 0, count: 16)
    }

    @inline(__always) static func putHalf(_ p: UnsafeMutableRawPointer, _ at: Int, _ v: Float) {
        p.storeBytes(of: HalfFloat.f32ToF16(v).littleEndian, toByteOffset: at, as: UInt16.self)
    }

    static func quantizeRow(_ type: GGMLType, _ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, columns n: Int,
                            importance: UnsafePointer<Float>?, _ s: inout Scratch) {
        let yb = y.assumingMemoryBound(to: UInt8.self)
        switch type {
        case .f32:
            for i in 0..<n { y.storeBytes(of: x[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
        case .f16:
            for i in 0..<n { putHalf(y, 2 * i, x[i]) }
        case .bf16:
            for i in 0..<n { y.storeBytes(of: HalfFloat.f32ToBF16(x[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .q8_0:
            for blk in 0..<n / 32 {
                let xb = x + 32 * blk, p = yb + 34 * blk
                var amax: Float = 0
                for j in 0..<32 { amax = max(amax, abs(xb[j])) }
                let d = amax / 127, id: Float = d != 0 ? 1 / d : 0
                putHalf(p, 0, d)
                for j in 0..<32 { p[2 + j] = UInt8(bitPattern: Int8(truncatingIfNeeded: KQuant.truncate((xb[j] * id).rounded(.toNearestOrAwayFromZero)))) }
            }
        case .q4_0, .q5_0:
            let five = type == .q5_0, size = five ? 22 : 18, nmax = five ? 16 : 8
            if let imp = importance {
                let sigma2 = rowSigma2(x, n)
                s.Li.withUnsafeMutableBufferPointer { L in s.weights.withUnsafeMutableBufferPointer { w in
                    for blk in 0..<n / 32 {
                        let xb = x + 32 * blk, qw = imp + 32 * blk, p = yb + size * blk
                        for j in 0..<32 { w[j] = qw[j] * (sigma2 + xb[j] * xb[j]).squareRoot() }
                        let d = KQuant.qx(32, nmax, xb, L.baseAddress!, rmseType: 1, UnsafePointer(w.baseAddress!))
                        putHalf(p, 0, d)
                        packSymmetric(L.baseAddress!, p, five: five)
                    }
                } }
            } else {
                s.Li.withUnsafeMutableBufferPointer { L in
                    for blk in 0..<n / 32 {
                        let xb = x + 32 * blk, p = yb + size * blk
                        var amax: Float = 0, mx: Float = 0
                        for j in 0..<32 where amax < abs(xb[j]) { amax = abs(xb[j]); mx = xb[j] }
                        let d = mx / Float(-nmax), id: Float = d != 0 ? 1 / d : 0
                        putHalf(p, 0, d)
                        let off = Float(nmax) + 0.5, top = 2 * nmax - 1
                        for j in 0..<32 {
                            // MIN(top, (int8_t)(x·id + nmax + 0.5))
                            let q = Int(Int8(truncatingIfNeeded: KQuant.truncate(xb[j] * id + off)))
                            L[j] = Int8(truncatingIfNeeded: min(top, q))
                        }
                        packSymmetric(L.baseAddress!, p, five: five)
                    }
                }
            }
        case .q4_1, .q5_1:
            let five = type == .q5_1, size = five ? 24 : 20, nmax = five ? 31 : 15
            if let imp = importance {
                let sigma2 = rowSigma2(x, n)
                s.L.withUnsafeMutableBufferPointer { L in s.Laux.withUnsafeMutableBufferPointer { La in s.weights.withUnsafeMutableBufferPointer { w in
                    for blk in 0..<n / 32 {
                        let xb = x + 32 * blk, qw = imp + 32 * blk, p = yb + size * blk
                        for j in 0..<32 { w[j] = qw[j] * (sigma2 + xb[j] * xb[j]).squareRoot() }
                        var mn: Float = 0
                        let d = KQuant.qkx(32, nmax, xb, UnsafePointer(w.baseAddress!), L.baseAddress!, &mn, La.baseAddress!,
                                           rmin: -0.9, rdelta: 0.05, nstep: 36, qkx3: true)
                        putHalf(p, 0, d)
                        putHalf(p, 2, -mn)
                        packAffine(L.baseAddress!, p, five: five)
                    }
                } } }
            } else {
                s.L.withUnsafeMutableBufferPointer { L in
                    for blk in 0..<n / 32 {
                        let xb = x + 32 * blk, p = yb + size * blk
                        var mn = Float.greatestFiniteMagnitude, mx = -Float.greatestFiniteMagnitude
                        for j in 0..<32 {
                            if xb[j] < mn { mn = xb[j] }
                            if xb[j] > mx { mx = xb[j] }
                        }
                        let d = (mx - mn) / Float(nmax), id: Float = d != 0 ? 1 / d : 0
                        putHalf(p, 0, d)
                        putHalf(p, 2, mn)
                        for j in 0..<32 {
                            let v = KQuant.truncate((xb[j] - mn) * id + 0.5)
                            // Q4_1: MIN(15, (int8_t)v); Q5_1: (uint8_t)v.
                            L[j] = five ? UInt8(truncatingIfNeeded: v) : UInt8(truncatingIfNeeded: min(15, Int(Int8(truncatingIfNeeded: v))))
                        }
                        packAffine(L.baseAddress!, p, five: five)
                    }
                }
            }
        case .q4_K, .q5_K:
            quantizeK45(five: type == .q5_K, x, yb, n, importance, &s)
        case .q6_K:
            quantizeQ6K(x, yb, n, importance, &s)
        default:
            preconditionFailure("GGUFBlocks.quantize: \(type.name) is not supported")
        }
    }

    /// Σx²/n over the whole row (the imatrix variants of the 32-blocks weight by sqrt(σ² + x²)).
    @inline(__always) static func rowSigma2(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var sum: Float = 0
        for j in 0..<n { sum += x[j] * x[j] }
        return sum / Float(n)
    }

    /// Q4_0 / Q5_0 nibbles (element j low, j+16 high) and Q5_0's 32 fifth bits.
    @inline(__always) static func packSymmetric(_ L: UnsafeMutablePointer<Int8>, _ p: UnsafeMutablePointer<UInt8>, five: Bool) {
        let q = p + (five ? 6 : 2)
        var qh: UInt32 = 0
        for j in 0..<16 {
            let a = UInt8(bitPattern: L[j]), b = UInt8(bitPattern: L[j + 16])
            q[j] = (a & 0xF) | ((b & 0xF) << 4)
            qh |= UInt32((a & 0x10) >> 4) << UInt32(j)
            qh |= UInt32((b & 0x10) >> 4) << UInt32(j + 16)
        }
        if five { UnsafeMutableRawPointer(p + 2).storeBytes(of: qh.littleEndian, as: UInt32.self) }
    }

    /// Q4_1 / Q5_1 nibbles and Q5_1's fifth bits.
    @inline(__always) static func packAffine(_ L: UnsafeMutablePointer<UInt8>, _ p: UnsafeMutablePointer<UInt8>, five: Bool) {
        let q = p + (five ? 8 : 4)
        var qh: UInt32 = 0
        for j in 0..<16 {
            let a = L[j], b = L[j + 16]
            q[j] = (a & 0xF) | ((b & 0xF) << 4)
            qh |= UInt32((a & 0x10) >> 4) << UInt32(j)
            qh |= UInt32((b & 0x10) >> 4) << UInt32(j + 16)
        }
        if five { UnsafeMutableRawPointer(p + 4).storeBytes(of: qh.littleEndian, as: UInt32.self) }
    }

    /// Q4_K / Q5_K super-blocks: 8 sub-blocks of 32 with 6-bit scales and mins.
    static func quantizeK45(five: Bool, _ x0: UnsafePointer<Float>, _ yb: UnsafeMutablePointer<UInt8>, _ n: Int,
                            _ importance: UnsafePointer<Float>?, _ s: inout Scratch) {
        let nmax = five ? 31 : 15, size = five ? 176 : 144
        s.L.withUnsafeMutableBufferPointer { Lb in s.Laux.withUnsafeMutableBufferPointer { Lab in
        s.weights.withUnsafeMutableBufferPointer { wb in s.scales.withUnsafeMutableBufferPointer { scb in
        s.mins.withUnsafeMutableBufferPointer { mnb in s.sw.withUnsafeMutableBufferPointer { swb in
        s.ls.withUnsafeMutableBufferPointer { lsb in s.lm.withUnsafeMutableBufferPointer { lmb in
            let L = Lb.baseAddress!, La = Lab.baseAddress!, w = wb.baseAddress!, scales = scb.baseAddress!
            let mins = mnb.baseAddress!, sw = swb.baseAddress!, ls = lsb.baseAddress!, lm = lmb.baseAddress!
            for blk in 0..<n / 256 {
                let x = x0 + 256 * blk, p = yb + size * blk
                if importance == nil {
                    // quantize_row_q{4,5}_K_ref
                    var maxScale: Float = 0, maxMin: Float = 0
                    for j in 0..<8 {
                        let xs = x + 32 * j
                        var sumX2: Float = 0
                        for l in 0..<32 { sumX2 += xs[l] * xs[l] }
                        let avX = (sumX2 / 32).squareRoot()
                        for l in 0..<32 { w[l] = avX + abs(xs[l]) }
                        var mn: Float = 0
                        scales[j] = KQuant.qkx(32, nmax, xs, UnsafePointer(w), L + 32 * j, &mn, La,
                                               rmin: five ? -0.5 : -1, rdelta: 0.1, nstep: five ? 15 : 20, qkx3: false)
                        mins[j] = mn
                        if scales[j] > maxScale { maxScale = scales[j] }
                        if mn > maxMin { maxMin = mn }
                    }
                    let invScale: Float = maxScale > 0 ? 63 / maxScale : 0, invMin: Float = maxMin > 0 ? 63 / maxMin : 0
                    for j in 0..<8 {
                        ls[j] = min(63, UInt8(truncatingIfNeeded: KQuant.nearestInt(invScale * scales[j])))
                        lm[j] = min(63, UInt8(truncatingIfNeeded: KQuant.nearestInt(invMin * mins[j])))
                    }
                    KQuant.packScaleMins(ls, lm, into: p + 4)
                    putHalf(p, 0, maxScale / 63)
                    putHalf(p, 2, maxMin / 63)
                } else {
                    // quantize_row_q{4,5}_K_impl
                    let qw0 = importance! + 256 * blk
                    var sumX2: Float = 0
                    for l in 0..<256 { sumX2 += x[l] * x[l] }
                    let sigma2 = 2 * sumX2 / 256
                    for j in 0..<8 {
                        let xs = x + 32 * j, qw = qw0 + 32 * j
                        for l in 0..<32 { w[l] = qw[l] * (sigma2 + xs[l] * xs[l]).squareRoot() }
                        var sumw: Float = 0
                        for l in 0..<32 { sumw += w[l] }
                        sw[j] = sumw
                        var mn: Float = 0
                        scales[j] = KQuant.qkx(32, nmax, xs, UnsafePointer(w), L + 32 * j, &mn, La,
                                               rmin: -0.9, rdelta: 0.05, nstep: 36, qkx3: true)
                        mins[j] = mn
                    }
                    let dBlock = KQuant.qp(8, 63, scales, ls, sw), mBlock = KQuant.qp(8, 63, mins, lm, sw)
                    if five { for j in 0..<8 { ls[j] = min(63, ls[j]); lm[j] = min(63, lm[j]) } }
                    KQuant.packScaleMins(ls, lm, into: p + 4)
                    putHalf(p, 0, dBlock)
                    putHalf(p, 2, mBlock)
                }
                let d0 = half(p, 0), dm0 = half(p, 2)
                for j in 0..<8 {
                    let (sc, m) = KQuant.scaleMin(j, p + 4)
                    let d = d0 * Float(sc)
                    if d == 0 { continue }
                    let dm = dm0 * Float(m)
                    for i in 0..<32 {
                        let l = KQuant.nearestInt((x[32 * j + i] + dm) / d)
                        L[32 * j + i] = UInt8(truncatingIfNeeded: max(0, min(nmax, l)))
                    }
                }
                if five {
                    let qh = p + 16, ql0 = p + 48
                    for j in 0..<32 { qh[j] = 0 }
                    var m1: UInt8 = 1, m2: UInt8 = 2
                    for g in 0..<4 {
                        let ql = ql0 + 32 * g, base = 64 * g
                        for j in 0..<32 {
                            var l1 = L[base + j], l2 = L[base + j + 32]
                            if l1 > 15 { l1 -= 16; qh[j] |= m1 }
                            if l2 > 15 { l2 -= 16; qh[j] |= m2 }
                            ql[j] = l1 | (l2 << 4)
                        }
                        m1 <<= 2; m2 <<= 2
                    }
                } else {
                    let q0 = p + 16
                    for g in 0..<4 {
                        for l in 0..<32 { q0[32 * g + l] = L[64 * g + l] | (L[64 * g + l + 32] << 4) }
                    }
                }
            }
        } } } } } } } }
    }

    /// Q6_K super-blocks: 16 sub-blocks of 16 with int8 scales.
    static func quantizeQ6K(_ x0: UnsafePointer<Float>, _ yb: UnsafeMutablePointer<UInt8>, _ n: Int,
                            _ importance: UnsafePointer<Float>?, _ s: inout Scratch) {
        s.Li.withUnsafeMutableBufferPointer { Lb in s.scales.withUnsafeMutableBufferPointer { scb in
            let L = Lb.baseAddress!, scales = scb.baseAddress!
            for blk in 0..<n / 256 {
                let x = x0 + 256 * blk, p = yb + 210 * blk
                var maxScale: Float = 0, maxAbsScale: Float = 0
                for ib in 0..<16 {
                    let qw = importance.map { $0 + 256 * blk + 16 * ib }
                    let scale = KQuant.qx(16, 32, x + 16 * ib, L + 16 * ib, rmseType: 1, qw)
                    scales[ib] = scale
                    if abs(scale) > maxAbsScale { maxAbsScale = abs(scale); maxScale = scale }
                }
                if maxAbsScale < KQuant.groupMaxEps {
                    for j in 0..<210 { p[j] = 0 }
                    continue
                }
                let iscale = -128 / maxScale
                putHalf(p, 208, 1 / iscale)
                let sc = UnsafeMutableRawPointer(p + 192).assumingMemoryBound(to: Int8.self)
                for ib in 0..<16 { sc[ib] = Int8(truncatingIfNeeded: min(127, KQuant.nearestInt(iscale * scales[ib]))) }
                let d0 = half(p, 208)
                for j in 0..<16 {
                    let d = d0 * Float(sc[j])
                    if d == 0 { continue }
                    for i in 0..<16 {
                        let l = KQuant.nearestInt(x[16 * j + i] / d)
                        L[16 * j + i] = Int8(truncatingIfNeeded: max(-32, min(31, l)) + 32)
                    }
                }
                let ql0 = p, qh0 = p + 128
                for h in 0..<2 {
                    let ql = ql0 + 64 * h, qh = qh0 + 32 * h, base = 128 * h
                    for l in 0..<32 {
                        let a = UInt8(bitPattern: L[base + l]), b = UInt8(bitPattern: L[base + l + 32])
                        let c = UInt8(bitPattern: L[base + l + 64]), d = UInt8(bitPattern: L[base + l + 96])
                        ql[l] = (a & 0xF) | ((c & 0xF) << 4)
                        ql[l + 32] = (b & 0xF) | ((d & 0xF) << 4)
                        qh[l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((d >> 4) << 6)
                    }
                }
            }
        } }
    }
}
