import IngotCore
import IngotFormats

/// FP8 weight quantization with per-tensor, per-channel or block scales (`s = absmax / fp8max`, `q = fp8(x/s)`
/// saturating), computed in the weight dtype as compressed-tensors does, or in f32 (`precision: .f32`) for
/// DeepSeek-style `weight_scale_inv`.
public struct FP8Quantizer: Sendable {
    public var format: FP8.Format
    public var granularity: QuantizationInfo.Granularity
    public var block: [Int]

    public init(format: FP8.Format = .e4m3, granularity: QuantizationInfo.Granularity = .channel, block: [Int] = [128, 128]) {
        self.format = format
        self.granularity = granularity
        self.block = block
    }

    public var maxValue: Float { format == .e4m3 ? 448 : 57344 }

    public func quantize(_ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int, precision R: ComputePrecision) -> QuantizedWeight {
        var q = QuantizedWeight(scheme: format == .e4m3 ? .fp8E4M3 : .fp8E5M2, bits: 8, granularity: granularity,
                                groupSize: nil, block: granularity == .block ? block : nil, rows: rows, columns: columns,
                                codes: [UInt8](repeating: 0, count: rows * columns), scales: [], scaleDType: R.dtype,
                                zeros: nil, codeOffset: 0)
        let blockRows = granularity == .block ? (rows + block[0] - 1) / block[0] : granularity == .channel ? rows : 1
        let cols = q.scaleColumns
        var absmax = [Float](repeating: 0, count: blockRows * cols)
        for r in 0..<rows {
            for c in 0..<columns {
                let v = weights[r * columns + c]
                let k = q.scaleIndex(r, c)
                if v.isFinite { absmax[k] = max(absmax[k], abs(v)) }
            }
        }
        q.scales = absmax.map { a in
            let s = R.round(a / maxValue)
            return s == 0 || !s.isFinite ? R.eps : s
        }
        let lim = maxValue, fmt = format
        let qq = q
        var codes = q.codes
        codes.withUnsafeMutableBufferPointer { C in
            let cc = UncheckedSendable(C)
            parallelFor(rows) { r in
                for c in 0..<columns {
                    let i = r * columns + c
                    let t = min(max(R.round(weights[i] / qq.scales[qq.scaleIndex(r, c)]), -lim), lim)
                    cc.value[i] = FP8Codec.encode(t, fmt)
                }
            }
        }
        q.codes = codes
        return q
    }
}
