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
        // Every code is written below: no zero-fill, and not a copy of q.codes (which would force copy-on-write).
        var codes = [UInt8](unsafeUninitializedCapacity: rows * columns) { _, n in n = rows * columns }
        if granularity != .tensor {
            // Channel and block scales: each run of rows owning whole scale cells is independent.
            let step = rowsPerCell(rows: rows)
            var scales = [Float](repeating: 0, count: scaleRows(rows: rows) * q.scaleColumns)
            codes.withUnsafeMutableBufferPointer { C in
                scales.withUnsafeMutableBufferPointer { S in
                    let cs = UncheckedSendable((C, S)), cells = q.scaleColumns
                    parallelFor((rows + step - 1) / step) { b in
                        let r0 = b * step, n = min(step, rows - r0)
                        quantizeRows(weights.baseAddress! + r0 * columns, rows: n, columns: columns, precision: R,
                                     codes: cs.value.0.baseAddress! + r0 * columns, scales: cs.value.1.baseAddress! + b * cells)
                    }
                }
            }
            q.scales = scales
            q.codes = codes
            return q
        }
        let absmax = rows * columns == 0 ? 0 : QuantKernels.absMax(weights.baseAddress!, rows * columns)
        q.scales = [scale(absMax: absmax, precision: R)]
        let lim = maxValue, e4m3 = format == .e4m3, s = q.scales[0]
        codes.withUnsafeMutableBufferPointer { C in
            let cc = UncheckedSendable(C)
            parallelFor(rows) { r in
                ck_quant_fp8_run(weights.baseAddress! + r * columns, columns, s, lim, e4m3 ? 1 : 0, R.kernelRounding,
                                 cc.value.baseAddress! + r * columns)
            }
        }
        q.codes = codes
        return q
    }

    /// The scale of a cell whose largest finite magnitude is `a`: `absmax / fp8max` in `R`, never 0 or non-finite.
    func scale(absMax a: Float, precision R: ComputePrecision) -> Float {
        let s = R.round(a / maxValue)
        return s == 0 || !s.isFinite ? R.eps : s
    }

    /// Rows sharing one row of scale cells: 1 (channel), `block[0]` (block); the whole tensor for `.tensor`.
    public func rowsPerCell(rows: Int) -> Int {
        granularity == .block ? block[0] : granularity == .channel ? 1 : max(rows, 1)
    }

    /// Rows of the scale tensor.
    public func scaleRows(rows: Int) -> Int {
        granularity == .block ? (rows + block[0] - 1) / block[0] : granularity == .channel ? rows : 1
    }

    /// Scale columns per row of `columns` inputs.
    public func scaleColumns(columns: Int) -> Int {
        granularity == .block ? (columns + block[1] - 1) / block[1] : 1
    }

    /// Quantizes `rows` rows at `x` (`columns` each) that start a row of scale cells and own whole cells
    /// (channel or block granularity; `rows` a multiple of `rowsPerCell` unless they end the tensor): their codes
    /// at `codes` and their cells' scales at `scales` (row-major scale grid, from the first row's cell row). What
    /// `quantize` does for every such run of rows (it calls this).
    public func quantizeRows(_ x: UnsafePointer<Float>, rows: Int, columns: Int, precision R: ComputePrecision,
                             codes: UnsafeMutablePointer<UInt8>, scales: UnsafeMutablePointer<Float>) {
        precondition(granularity != .tensor, "per-tensor FP8 scales need the whole tensor")
        let step = rowsPerCell(rows: rows), run = granularity == .block ? block[1] : columns
        let cells = scaleColumns(columns: columns), lim = maxValue, e4m3: Int32 = format == .e4m3 ? 1 : 0
        var r0 = 0
        while r0 < rows {
            let n = min(step, rows - r0), S = scales + (r0 / step) * cells
            // Largest magnitude per cell (max is order-free), then each cell's scale.
            for k in 0..<cells { S[k] = 0 }
            for r in r0..<(r0 + n) {
                var c = 0, k = 0
                while c < columns {
                    let m = min(run, columns - c)
                    S[k] = max(S[k], QuantKernels.absMax(x + r * columns + c, m))
                    c += m; k += 1
                }
            }
            for k in 0..<cells { S[k] = scale(absMax: S[k], precision: R) }
            for r in r0..<(r0 + n) {
                var c = 0, k = 0
                while c < columns {
                    let m = min(run, columns - c)
                    ck_quant_fp8_run(x + r * columns + c, m, S[k], lim, e4m3, R.kernelRounding, codes + r * columns + c)
                    c += m; k += 1
                }
            }
            r0 += n
        }
    }
}
