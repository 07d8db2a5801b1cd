import CKernels
import IngotCore
import IngotFormats

/// Round-to-nearest integer quantization with per-group (or per-channel) scales, in two conventions that differ
/// in the last bit and are reproduced exactly:
/// - `compressedTensors` (llm-compressor): min/max widened to include 0; asymmetric `s = (max−min)/(2ᵇ−1)`,
///   `zp = round(clamp(−2ᵇ⁻¹ − min/s, −2ᵇ⁻¹, 2ᵇ⁻¹−1))` (signed); symmetric `s = absmax/((2ᵇ−1)/2)`, `zp = 0`;
///   `q = round(clamp(x/s + zp, qmin, qmax))`; zero scales become the dtype's eps; arithmetic in the weight dtype.
/// - `autoawq`: on `w.half()`, `s = clamp(max−min, 1e-5)/(2ᵇ−1)`, `z = clamp(−round(min/s), 0, 2ᵇ−1)`,
///   `q = clamp(round(w/s) + z, 0, 2ᵇ−1)`; arithmetic in fp16. Asymmetric only.
/// Rounding is half to even (`torch.round`). A last group shorter than `groupSize` is quantized on its own.
public struct IntQuantizer: Sendable {
    public enum Convention: String, Sendable, CaseIterable { case compressedTensors = "compressed-tensors", autoawq }

    public var bits: Int
    /// nil = one group per row (per-channel).
    public var groupSize: Int?
    public var symmetric: Bool
    public var convention: Convention

    public init(bits: Int = 4, groupSize: Int? = 128, symmetric: Bool = false, convention: Convention = .compressedTensors) {
        self.bits = bits
        self.groupSize = groupSize
        self.symmetric = symmetric
        self.convention = convention
    }

    /// The compressed-tensors element loop in `precision` (`ck_quant_ct_group`, bit-identical to `QuantKernels.ctGroup`).
    @inline(__always)
    func precisionKernel(_ p: ComputePrecision, _ x: UnsafePointer<Float>, _ n: Int, _ s: Float, _ zp: Float, _ qmin: Float,
                         _ qmax: Float, _ offset: Float, _ out: UnsafeMutablePointer<UInt8>) {
        ck_quant_ct_group(x, n, s, zp, qmin, qmax, offset, p.kernelRounding, out)
    }

    /// Quantizes `weights` (`[rows, columns]`, values as stored in the checkpoint) computed in `precision`.
    public func quantize(_ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int, precision: ComputePrecision) -> QuantizedWeight {
        let groups = groupCount(columns: columns)
        // Every element is written below: skip zero-filling.
        var codes = [UInt8](unsafeUninitializedCapacity: rows * columns) { _, n in n = rows * columns }
        var scales = [Float](repeating: 0, count: rows * groups)
        var zeros = [UInt8](repeating: 0, count: rows * groups)
        codes.withUnsafeMutableBufferPointer { C in
            scales.withUnsafeMutableBufferPointer { S in
                zeros.withUnsafeMutableBufferPointer { Z in
                    let c = UncheckedSendable((C, S, Z))
                    parallelFor(rows) { r in
                        let (C, S, Z) = c.value
                        quantizeRow(weights.baseAddress! + r * columns, columns: columns, precision: precision,
                                    codes: C.baseAddress! + r * columns, scales: S.baseAddress! + r * groups,
                                    zeros: Z.baseAddress! + r * groups)
                    }
                }
            }
        }
        return QuantizedWeight(scheme: symmetric ? .intSymmetric : .intAffine, bits: bits,
                               granularity: groupSize == nil ? .channel : .group, groupSize: groupSize, block: nil,
                               rows: rows, columns: columns, codes: codes, scales: scales, scaleDType: scaleDType(precision),
                               zeros: symmetric ? nil : zeros, codeOffset: codeOffset)
    }

    /// Scale groups per row of `columns` inputs.
    public func groupCount(columns: Int) -> Int {
        let g = groupSize ?? columns
        return g == 0 ? 0 : (columns + g - 1) / g
    }

    /// The dtype scales are computed (and stored) in for weights computed in `precision`.
    public func scaleDType(_ precision: ComputePrecision) -> DType {
        (convention == .autoawq ? ComputePrecision.f16 : precision).dtype
    }

    /// Offset between signed codes and stored unsigned codes (and zero points).
    public var codeOffset: Int { convention == .autoawq ? 0 : 1 << (bits - 1) }

    /// Quantizes one row of `columns` values: `columns` codes, and one scale and zero point per group. What
    /// `quantize` does for every row (it calls this), so callers that hold a row at a time get the same bytes.
    public func quantizeRow(_ x: UnsafePointer<Float>, columns: Int, precision: ComputePrecision, codes C: UnsafeMutablePointer<UInt8>,
                            scales S: UnsafeMutablePointer<Float>, zeros Z: UnsafeMutablePointer<UInt8>) {
        let g = groupSize ?? columns
        let groups = groupCount(columns: columns)
        let levels = (1 << bits) - 1
        let awq = convention == .autoawq
        let R = awq ? ComputePrecision.f16 : precision
        let offset = codeOffset
        let qmin = Float(awq ? 0 : -(1 << (bits - 1))), qmax = Float(awq ? levels : (1 << (bits - 1)) - 1)
        for gi in 0..<groups {
            let lo = gi * g, hi = min(columns, (gi + 1) * g)
            var (mn, mx, hasNaN) = QuantKernels.minMax(x + lo, hi - lo)
            if awq { mn = R.round(mn); mx = R.round(mx) }  // rounding is monotonic: same as min/max of rounded
            if !(mn <= mx) { mn = 0; mx = 0 }  // all NaN: quantize as zeros
            let s: Float, zp: Float
            if awq {
                var range = R.round(mx - mn)
                if !(range >= 1e-5) { range = R.round(1e-5) }
                s = R.round(range / Float(levels))
                let z = -R.round(mn / s).rounded(.toNearestOrEven)
                // −inf / inf is NaN (a group holding an infinity): zero point 0, as the other convention does.
                zp = z.isNaN ? 0 : min(max(z, 0), Float(levels))
            } else {
                let lo0 = min(mn, 0), hi0 = max(mx, 0)
                var sc: Float
                if symmetric {
                    sc = R.round(max(abs(lo0), abs(hi0)) / (Float(levels) / 2))
                    zp = 0
                } else {
                    sc = R.round(R.round(hi0 - lo0) / Float(levels))
                    let z = R.round(qmin - R.round(lo0 / sc))
                    zp = z.isNaN ? 0 : min(max(z, qmin), qmax).rounded(.toNearestOrEven)
                }
                if sc == 0 || !sc.isFinite { sc = R.eps }
                s = sc
            }
            S[gi] = s
            Z[gi] = UInt8(Int(zp) + offset)
            if !awq && !hasNaN {
                // Fast path: specialized, vectorizable loop (results identical to the general one).
                precisionKernel(R, x + lo, hi - lo, s, zp, qmin, qmax, Float(offset), C + lo)
                continue
            }
            for i in lo..<hi {
                let v = awq ? R.round(x[i]) : x[i]
                var t: Float
                if awq {
                    t = R.round(v / s).rounded(.toNearestOrEven) + zp
                } else {
                    t = R.round(R.round(v / s) + zp)
                }
                if t.isNaN { t = zp }
                t = min(max(t, qmin), qmax).rounded(.toNearestOrEven)
                C[i] = UInt8(Int(t) + offset)
            }
        }
    }

    /// The code of one value under a group's scale `s` and stored zero point `zero` (as `quantize` writes them),
    /// with this convention's arithmetic in `precision`: what `quantize` gives an element of that group.
    public func code(_ x: Float, scale s: Float, zero: UInt8, precision: ComputePrecision) -> UInt8 {
        let levels = (1 << bits) - 1
        let awq = convention == .autoawq
        let R = awq ? ComputePrecision.f16 : precision
        let offset = awq ? 0 : 1 << (bits - 1)
        let qmin = Float(awq ? 0 : -(1 << (bits - 1))), qmax = Float(awq ? levels : (1 << (bits - 1)) - 1)
        let zp = Float(Int(zero) - offset)
        var t = awq ? R.round(R.round(x) / s).rounded(.toNearestOrEven) + zp : R.round(R.round(x / s) + zp)
        if t.isNaN { t = zp }
        t = min(max(t, qmin), qmax).rounded(.toNearestOrEven)
        return UInt8(Int(t) + offset)
    }
}
