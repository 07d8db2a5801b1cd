import CKernels
import IngotCore
import IngotFormats
import IngotModel

/// NVFP4 weight quantization as compressed-tensors' `NVFP4A16` / `NVFP4` presets compute it (`tensor_group`): groups
/// of 16 input columns, FP4 E2M1 codes, an FP8 E4M3 scale per group and one F32 global scale per weight (shared by
/// the weights vLLM fuses, `WeightNames.fusedSiblings`).
///
/// With `R` the weight dtype's rounding (bf16, f16 or none for f32):
/// - global scale `g = R(R(1 / a) · 448 · 6)` for the absmax `a` of the weight (or of its fused group), as torch's
///   `2688 / t` computes on a tensor of dtype R (a reciprocal, then a product, each rounded); `a = 0` or a
///   non-finite result gives 1, as `generate_gparam`'s `nan_to_num` does;
/// - group scale `s = e4m3(clamp(g · R(m / 6), ±448))` for the group's absmax `m`; a zero scale becomes E4M3's
///   epsilon 0.125;
/// - codes `FP4.encode(x / (s / g))` in f32; dequantization is `e2m1 · (s / g)`.
public struct NVFP4Quantizer: Sendable {
    public static let groupSize = 16
    /// E4M3's largest value times E2M1's: the global scale maps a weight's absmax onto both ranges.
    public static let rangeProduct: Float = 448 * 6
    /// `torch.finfo(torch.float8_e4m3fn).eps`, the scale a zero group gets.
    public static let zeroScale: Float = 0.125

    public init() {}

    /// The global scale for a weight (or fused group) whose largest magnitude is `absmax`, in precision `R`.
    public static func globalScale(absmax: Float, precision R: ComputePrecision) -> Float {
        if absmax.isNaN { return 1 }
        // `clamp(min=finfo(dtype).tiny)` in the weight's dtype.
        let a = Swift.max(absmax, R == .f16 ? 0x1p-14 : Float.leastNormalMagnitude)
        let g = R.round(R.round(1 / a) * rangeProduct)
        return g.isFinite ? g : 1
    }

    /// The largest magnitude of `values` as torch's `abs().max()` gives it (NaN if any is NaN, infinity if any is).
    public static func absmax(_ values: UnsafeBufferPointer<Float>) -> Float {
        var infinite = false
        for v in values where !v.isFinite {
            if v.isNaN { return .nan }
            infinite = true
        }
        return infinite ? .infinity : ck_abs_max(values.baseAddress, values.count)
    }

    public static func absmax(_ values: [Float]) -> Float { values.withUnsafeBufferPointer { absmax($0) } }

    /// The E4M3 scale of a group whose largest magnitude is `m`, under global scale `g` (decoded to f32).
    @inlinable
    public static func groupScale(_ m: Float, global g: Float, precision R: ComputePrecision) -> Float {
        let s = g * R.round(m / 6)
        let e = FP8Codec.decode(FP8Codec.encode(Swift.min(Swift.max(s, -448), 448), .e4m3), .e4m3)
        return e == 0 ? zeroScale : e
    }

    public func quantize(_ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int, globalScale g: Float,
                         precision R: ComputePrecision) -> QuantizedWeight {
        let gs = Self.groupSize
        let (codes, scales) = FP4Groups.quantize(weights, rows: rows, columns: columns, groupSize: gs,
                                                 scale: { Self.groupScale($0, global: g, precision: R) }, code: { x, s in FP4.encode(x / (s / g)) })
        var q = QuantizedWeight(scheme: .fp4E2M1, bits: 4, granularity: .group, groupSize: gs, block: nil, rows: rows, columns: columns,
                                codes: codes, scales: scales, scaleDType: .f8e4m3, zeros: nil, codeOffset: 0)
        q.globalScale = g
        return q
    }
}

/// NVFP4 global scales, resolved when a weight is quantized: weights vLLM fuses (`WeightNames.fusedSiblings`) share
/// the scale of their group's absmax, as llm-compressor's fused observers compute it; only members quantized with
/// NVFP4 take part. Each weight's absmax is read once, when it or a sibling is first asked for, so a streaming
/// source (AWQ's, one layer at a time) is read in layer order.
public final class NVFP4GlobalScales {
    let members: [String: DType]
    let absmax: (String) throws -> Float
    var maxima: [String: Float] = [:]

    /// `members`: the NVFP4 weights (name, dtype); `absmax` reads one's largest magnitude.
    public init(members: [(name: String, dtype: DType)], absmax: @escaping (String) throws -> Float) {
        self.members = Dictionary(members.map { ($0.name, $0.dtype) }, uniquingKeysWith: { a, _ in a })
        self.absmax = absmax
    }

    /// The NVFP4 weights of a source under `plan`, read from the source.
    public convenience init(plan: QuantizationPlan, source: TensorSource) {
        let nv = source.tensors.filter { plan.settings(for: $0.name, shape: $0.shape)?.scheme.codes == .nvfp4 }
        self.init(members: nv.map { ($0.name, $0.dtype) }) { try NVFP4Quantizer.absmax(source.tensor(named: $0).floats()) }
    }

    /// The global scale of NVFP4 weight `name` (nil when it is not one). `values`: the weight's own values when the
    /// caller has them decoded already, so they are not read a second time.
    public func scale(for name: String, values: UnsafeBufferPointer<Float>? = nil) throws -> Float? {
        guard let dtype = members[name] else { return nil }
        if maxima[name] == nil, let values { maxima[name] = NVFP4Quantizer.absmax(values) }
        let group = WeightNames.fusedSiblings(of: name) { members[$0] != nil } ?? [name]
        var a: Float = 0
        for n in group {
            let m: Float
            if let cached = maxima[n] { m = cached } else { m = try absmax(n); maxima[n] = m }
            a = m.isNaN || a.isNaN ? .nan : Swift.max(a, m)
        }
        return NVFP4Quantizer.globalScale(absmax: a, precision: ComputePrecision(dtype: dtype))
    }
}
