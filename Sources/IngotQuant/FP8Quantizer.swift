import CKernels
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

    public var maxValue: Float { format.maxValue }

    public func quantize(_ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int, precision R: ComputePrecision) -> QuantizedWeight {
        var q = QuantizedWeight(scheme: format == .e4m3 ? .fp8E4M3 : .fp8E5M2, bits: 8, granularity: granularity,
                                groupSize: nil, block: granularity == .block ? block : nil, rows: rows, columns: columns,
                                codes: [], scales: [], scaleDType: R.dtype,
                                zeros: nil, codeOffset: 0)
        let blockRows = granularity == .block ? (rows + block[0] - 1) / block[0] : granularity == .channel ? rows : 1
        let cols = q.scaleColumns
        var absmax = [Float](repeating: 0, count: blockRows * cols)
        // Absolute maxima per scale cell: rows in parallel for channel scales, serial sweep otherwise.
        let perRow = granularity == .channel
        absmax.withUnsafeMutableBufferPointer { A in
            let a = UncheckedSendable(A)
            let qq = q
            let run = qq.granularity == .block ? qq.block![1] : columns
            let body = { (r: Int) in
                var c = 0
                while c < columns {
                    let n = min(run, columns - c)
                    let x = weights.baseAddress! + r * columns + c
                    let m = QuantKernels.absMax(x, n)
                    let k = qq.scaleIndex(r, c)
                    a.value[k] = max(a.value[k], m)
                    c += n
                }
            }
            if perRow { parallelFor(rows, body) } else { for r in 0..<rows { body(r) } }
        }
        q.scales = absmax.map { a in
            let s = R.round(a / maxValue)
            return s == 0 || !s.isFinite ? R.eps : s
        }
        let lim = maxValue, e4m3 = format == .e4m3
        let qq = q
        // Every code is written below: no zero-fill, and not a copy of q.codes (which would force copy-on-write).
        var codes = [UInt8](unsafeUninitializedCapacity: rows * columns) { _, n in n = rows * columns }
        codes.withUnsafeMutableBufferPointer { C in
            let cc = UncheckedSendable(C)
            parallelFor(rows) { r in
                let base = weights.baseAddress! + r * columns, out = cc.value.baseAddress! + r * columns
                // Runs of columns sharing one scale.
                let run = qq.granularity == .block ? qq.block![1] : columns
                var c = 0
                while c < columns {
                    let n = min(run, columns - c), s = qq.scales[qq.scaleIndex(r, c)]
                    ck_quant_fp8_run(base + c, n, s, lim, e4m3 ? 1 : 0, R.kernelRounding, out + c)
                    c += n
                }
            }
        }
        q.codes = codes
        return q
    }
}
