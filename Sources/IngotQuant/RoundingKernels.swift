import CKernels
import IngotCore

/// Compile-time rounding to a storage precision, so quantizer loops specialize per precision and vectorize.
/// Results equal `ComputePrecision.round` for every non-NaN input (NaN handling stays in the callers).
protocol Rounding {
    static func round(_ x: Float) -> Float
}

enum RoundF32: Rounding {
    @inline(__always) static func round(_ x: Float) -> Float { x }
}

enum RoundBF16: Rounding {
    /// Branch-free RNE to bf16 (no NaN quieting: callers never pass NaN).
    @inline(__always) static func round(_ x: Float) -> Float {
        let b = x.bitPattern
        return Float(bitPattern: (b &+ 0x7FFF &+ ((b >> 16) & 1)) & 0xFFFF_0000)
    }
}

enum RoundF16: Rounding {
    @inline(__always) static func round(_ x: Float) -> Float {
        HalfFloat.f16ToF32(UInt16(truncatingIfNeeded: FloatCodecs.f16Bits(x.bitPattern)))
    }
}

extension ComputePrecision {
    /// Calls `body` with the rounding type of this precision.
    func withRounding<T>(_ body: (any Rounding.Type) -> T) -> T {
        switch self {
        case .f32: body(RoundF32.self)
        case .bf16: body(RoundBF16.self)
        case .f16: body(RoundF16.self)
        }
    }
}

/// Hot loops of the quantizers, generic over the rounding so each precision gets its own specialized code.
enum QuantKernels {
    /// compressed-tensors element step: `u = round(clamp(R(R(x/s) + zp), qmin, qmax)) + offset` for a group.
    /// The reference of `ck_quant_ct_group` (which the quantizers call).
    /// `1.5 · 2²³`: adding it rounds a float of magnitude < 2²² to an integer (ties to even, the default FP
    /// rounding mode) and leaves that integer in the low mantissa bits; used instead of `rounded()`, which is a
    /// libm call on baseline x86-64 and blocks vectorization.
    static let magic: Float = 12_582_912

    @inline(__always)
    static func ctGroup<R: Rounding>(_ r: R.Type, _ x: UnsafePointer<Float>, _ n: Int, scale s: Float, zero zp: Float,
                                     qmin: Float, qmax: Float, offset: Float, into out: UnsafeMutablePointer<UInt8>) {
        // offset is even (0, 8, 128), so round(t) + offset == round(t + offset).
        for i in 0..<n {
            let t = min(max(R.round(R.round(x[i] / s) + zp), qmin), qmax)
            out[i] = UInt8(truncatingIfNeeded: (t + offset + magic).bitPattern)
        }
    }

    /// Minimum and maximum of a run, and whether it holds a NaN or an infinity (then callers take the careful path).
    @inline(__always)
    static func minMax(_ x: UnsafePointer<Float>, _ n: Int) -> (Float, Float, Bool) {
        var mn = Float.infinity, mx = -Float.infinity
        if ck_min_max(x, n, &mn, &mx) != 0 {
            var lo = Float.infinity, hi = -Float.infinity
            for i in 0..<n where !x[i].isNaN { lo = min(lo, x[i]); hi = max(hi, x[i]) }
            return (lo, hi, true)
        }
        return (mn, mx, false)
    }

    /// Largest finite |x| of a run (NaN and infinities ignored), 0 for an empty run (`ck_abs_max`).
    static func absMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float { ck_abs_max(x, n) }

    /// FP8 element step: `code = fp8(clamp(R(x/s), ±max))`. The reference of `ck_quant_fp8_run`.
    @inline(__always)
    static func fp8Run<R: Rounding>(_ r: R.Type, _ x: UnsafePointer<Float>, _ n: Int, scale s: Float, limit: Float, e4m3: Bool,
                                    into out: UnsafeMutablePointer<UInt8>) {
        if e4m3 {
            for i in 0..<n { out[i] = FP8Codec.encodeE4M3(min(max(R.round(x[i] / s), -limit), limit)) }
        } else {
            for i in 0..<n { out[i] = FP8Codec.encodeE5M2(min(max(R.round(x[i] / s), -limit), limit)) }
        }
    }
}

extension ComputePrecision {
    /// The `rounding` argument of the CKernels quantizer loops.
    var kernelRounding: Int32 { Int32(self == .bf16 ? CK_BF16 : self == .f16 ? CK_F16 : CK_F32) }
}
