/// The scale searches of ggml's reference quantizers (`ggml-quants.c`), reimplemented with the same float
/// arithmetic in the same order, so the codes and scales they choose are bit-identical to llama-quantize's.
/// All buffers are caller-owned (no allocation per block).
enum KQuant {
    /// Values below this count as an all-zero group.
    static let groupMaxEps: Float = 1e-15

    /// Round to nearest, ties to even, for |x| < 2^22 (ggml's `nearest_int`: the magic-number trick).
    @inline(__always) static func nearestInt(_ x: Float) -> Int {
        let v = x + 12582912.0
        return Int(Int32(bitPattern: v.bitPattern & 0x007F_FFFF)) - 0x0040_0000
    }

    /// C's float → integer conversion (truncation toward zero) for the casts the `_ref` quantizers make; values
    /// outside Int32 (only from non-finite weights) become 0 instead of undefined behaviour.
    @inline(__always) static func truncate(_ x: Float) -> Int {
        x.isFinite && abs(x) < 2_147_483_520 ? Int(x) : 0
    }

    /// The 6-bit scale and min of sub-block `j` from a K-quant's 12 packed scale bytes (`get_scale_min_k4`).
    @inline(__always) static func scaleMin(_ j: Int, _ q: UnsafePointer<UInt8>) -> (UInt8, UInt8) {
        if j < 4 { return (q[j] & 63, q[j + 4] & 63) }
        return ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }

    /// Packs 8 six-bit scales and mins into 12 bytes (the inverse of `scaleMin`).
    @inline(__always) static func packScaleMins(_ ls: UnsafePointer<UInt8>, _ lm: UnsafePointer<UInt8>, into s: UnsafeMutablePointer<UInt8>) {
        for j in 0..<12 { s[j] = 0 }
        for j in 0..<8 {
            if j < 4 {
                s[j] = ls[j]; s[j + 4] = lm[j]
            } else {
                s[j + 4] = (ls[j] & 0xF) | ((lm[j] & 0xF) << 4)
                s[j - 4] |= (ls[j] >> 4) << 6
                s[j] |= (lm[j] >> 4) << 6
            }
        }
    }

    /// Symmetric codes in `[0, 2·nmax)` with a scale search (`make_qx_quants`); `L` gets `nmax + l`.
    static func qx(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>, rmseType: Int,
                   _ qw: UnsafePointer<Float>?) -> Float {
        var max: Float = 0, amax: Float = 0
        for i in 0..<n {
            let ax = abs(x[i])
            if ax > amax { amax = ax; max = x[i] }
        }
        if amax < groupMaxEps {
            for i in 0..<n { L[i] = 0 }
            return 0
        }
        let fmax = Float(nmax)
        var iscale = Float(-nmax) / max
        if rmseType == 0 {
            for i in 0..<n {
                let l = nearestInt(iscale * x[i])
                L[i] = Int8(truncatingIfNeeded: nmax + Swift.max(-nmax, Swift.min(nmax - 1, l)))
            }
            return 1 / iscale
        }
        @inline(__always) func weight(_ i: Int) -> Float {
            if let qw { return qw[i] }
            switch rmseType {
            case 1: return x[i] * x[i]
            case 2: return 1
            case 3: return abs(x[i])
            default: return abs(x[i]).squareRoot()
            }
        }
        var sumlx: Float = 0, suml2: Float = 0
        for i in 0..<n {
            var l = nearestInt(iscale * x[i])
            l = Swift.max(-nmax, Swift.min(nmax - 1, l))
            L[i] = Int8(truncatingIfNeeded: l + nmax)
            let w = weight(i), fl = Float(l)
            sumlx += w * x[i] * fl
            suml2 += w * fl * fl
        }
        var scale: Float = suml2 != 0 ? sumlx / suml2 : 0
        var best = scale * sumlx
        for step in -9...9 where step != 0 {
            iscale = -(fmax + 0.1 * Float(step)) / max
            sumlx = 0; suml2 = 0
            for i in 0..<n {
                var l = nearestInt(iscale * x[i])
                l = Swift.max(-nmax, Swift.min(nmax - 1, l))
                let w = weight(i), fl = Float(l)
                sumlx += w * x[i] * fl
                suml2 += w * fl * fl
            }
            if suml2 > 0 && sumlx * sumlx > best * suml2 {
                for i in 0..<n {
                    let l = nearestInt(iscale * x[i])
                    L[i] = Int8(truncatingIfNeeded: nmax + Swift.max(-nmax, Swift.min(nmax - 1, l)))
                }
                scale = sumlx / suml2
                best = scale * sumlx
            }
        }
        return scale
    }

    /// Asymmetric codes in `[0, nmax]` with a scale-and-min search (`make_qkx2_quants` with `weights`, or
    /// `make_qkx3_quants` when `qkx3`: weights x² when nil, and `max <= min` as the degenerate test).
    /// Returns the scale; `theMin` gets −min (≥ 0).
    static func qkx(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ weights: UnsafePointer<Float>?,
                    _ L: UnsafeMutablePointer<UInt8>, _ theMin: inout Float, _ Laux: UnsafeMutablePointer<UInt8>,
                    rmin: Float, rdelta: Float, nstep: Int, qkx3: Bool) -> Float {
        @inline(__always) func w(_ i: Int) -> Float { weights?[i] ?? x[i] * x[i] }
        var min = x[0], max = x[0]
        var sumW = w(0)
        var sumX = sumW * x[0]
        for i in 1..<n {
            if x[i] < min { min = x[i] }
            if x[i] > max { max = x[i] }
            let wi = w(i)
            sumW += wi
            sumX += wi * x[i]
        }
        if min > 0 { min = 0 }
        if qkx3 ? max <= min : max == min {
            for i in 0..<n { L[i] = 0 }
            theMin = -min
            return 0
        }
        let fnmax = Float(nmax)
        var iscale = fnmax / (max - min)
        var scale = 1 / iscale
        var bestError: Float = 0
        for i in 0..<n {
            let l = nearestInt(iscale * (x[i] - min))
            L[i] = UInt8(truncatingIfNeeded: Swift.max(0, Swift.min(nmax, l)))
            let diff = scale * Float(L[i]) + min - x[i]
            bestError += w(i) * (diff * diff)
        }
        if nstep < 1 {
            theMin = -min
            return scale
        }
        for step in 0...nstep {
            iscale = (rmin + rdelta * Float(step) + fnmax) / (max - min)
            var sumL: Float = 0, sumL2: Float = 0, sumXL: Float = 0
            for i in 0..<n {
                var l = nearestInt(iscale * (x[i] - min))
                l = Swift.max(0, Swift.min(nmax, l))
                Laux[i] = UInt8(truncatingIfNeeded: l)
                let wi = w(i), fl = Float(l)
                sumL += wi * fl
                sumL2 += wi * fl * fl
                sumXL += wi * fl * x[i]
            }
            let D = sumW * sumL2 - sumL * sumL
            if D > 0 {
                var thisScale = (sumW * sumXL - sumX * sumL) / D
                var thisMin = (sumL2 * sumX - sumL * sumXL) / D
                if thisMin > 0 {
                    thisMin = 0
                    thisScale = sumXL / sumL2
                }
                var curError: Float = 0
                for i in 0..<n {
                    let diff = thisScale * Float(Laux[i]) + thisMin - x[i]
                    curError += w(i) * (diff * diff)
                }
                if curError < bestError {
                    for i in 0..<n { L[i] = Laux[i] }
                    bestError = curError
                    scale = thisScale
                    min = thisMin
                }
            }
        }
        theMin = -min
        return scale
    }

    /// Positive codes in `[0, nmax]` for the sub-block scales of the imatrix K-quants (`make_qp_quants`).
    static func qp(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<UInt8>,
                   _ qw: UnsafePointer<Float>) -> Float {
        var max: Float = 0
        for i in 0..<n { max = Swift.max(max, x[i]) }
        if max < groupMaxEps {
            for i in 0..<n { L[i] = 0 }
            return 0
        }
        let fnmax = Float(nmax)
        var iscale = fnmax / max
        for i in 0..<n { L[i] = UInt8(truncatingIfNeeded: nearestInt(iscale * x[i])) }
        let scale = 1 / iscale
        var bestMSE: Float = 0
        for i in 0..<n {
            let diff = x[i] - scale * Float(L[i])
            bestMSE += qw[i] * diff * diff
        }
        for step in -4...4 where step != 0 {
            let iscaleIs = (0.1 * Float(step) + fnmax) / max
            let scaleIs = 1 / iscaleIs
            var mse: Float = 0
            for i in 0..<n {
                let l = Swift.min(nmax, nearestInt(iscaleIs * x[i]))
                let diff = x[i] - scaleIs * Float(l)
                mse += qw[i] * diff * diff
            }
            if mse < bestMSE {
                bestMSE = mse
                iscale = iscaleIs
            }
        }
        var sumlx: Float = 0, suml2: Float = 0
        for i in 0..<n {
            let l = Swift.min(nmax, nearestInt(iscale * x[i]))
            L[i] = UInt8(truncatingIfNeeded: l)
            let fl = Float(l)
            sumlx += qw[i] * x[i] * fl
            suml2 += qw[i] * fl * fl
        }
        for _ in 0..<5 {
            var changed = 0
            for i in 0..<n {
                let w = qw[i], li = Float(L[i])
                var slx = sumlx - w * x[i] * li
                var sl2 = suml2 - w * li * li
                if slx > 0 && sl2 > 0 {
                    let newL = Swift.min(nmax, nearestInt(x[i] * sl2 / slx))
                    if newL != Int(L[i]) {
                        let fl = Float(newL)
                        slx += w * x[i] * fl
                        sl2 += w * fl * fl
                        if slx * slx * suml2 > sumlx * sumlx * sl2 {
                            L[i] = UInt8(truncatingIfNeeded: newL)
                            sumlx = slx
                            suml2 = sl2
                            changed += 1
                        }
                    }
                }
            }
            if changed == 0 { break }
        }
        return suml2 > 0 ? sumlx / suml2 : 0
    }
}
