import COpenBLAS
import Foundation
import IngotCore
import IngotForward

/// GPTQ's error-compensating rounding (Frantar et al. 2022, "GPTQ"; llm-compressor `gptq_quantize`): a linear's
/// columns are rounded one at a time, and each column's rounding error is spread over the columns not yet rounded
/// through the inverse Hessian `H⁻¹` of the layer's calibration inputs (`H = XᵀX`), which minimizes the output error
/// `‖X·Wᵀ − X·Qᵀ‖²` column by column.
///
/// As llm-compressor 0.14 does: group scales and zero points are fixed before rounding (from the weights as given,
/// by the INT quantizer, so they match what the writer stores), dead inputs (`H[i,i] = 0`) are zeroed, `H` is damped
/// by `dampening · mean(diag H)`, `H⁻¹` is used through the upper Cholesky factor of `H⁻¹`, columns are processed in
/// blocks of `blockSize` with the block's error applied to the remaining columns in one matrix product, and
/// act-order (static) processes columns by decreasing `H[i,i]` while keeping their natural groups.
public struct GPTQ: Sendable {
    public var blockSize = 128
    public var dampening = 0.01
    /// Static act-order (llm-compressor's default): on SmolLM2-135M (W4A16 asym g64, 32×512 wiki tokens) it
    /// took GPTQ's held-out perplexity from above round-to-nearest's to well below it.
    public var actOrder = true
    /// Without AWQ in front, each group's scale and zero point come from the clip search (`AWQClip`, on the same
    /// Hessian) instead of the group's min and max; the columns rounded are still the weights as given.
    public var clipSearch = true
    /// The clip search also tries one-sided clamps (asymmetric quantizers).
    public var oneSidedClip = true

    public init(blockSize: Int = 128, dampening: Double = 0.01, actOrder: Bool = true) {
        self.blockSize = blockSize
        self.dampening = dampening
        self.actOrder = actOrder
    }

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case singular(String)
        public var description: String {
            switch self {
            case .singular(let n): "GPTQ: the Hessian of \(n) is singular after dampening (too few calibration tokens for its inputs, or --gptq-dampening too small)"
            }
        }
    }

    /// `XᵀX` (`[columns, columns]`, f64) of inputs `x` (`[tokens, columns]`).
    public static func hessian(_ x: [Float], tokens: Int, columns: Int) -> [Double] {
        var h = [Float](repeating: 0, count: columns * columns)
        if tokens > 0 {
            BLAS.useSingleThreadedKernels()
            cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(columns), Int32(tokens), 1, x, Int32(columns), 0, &h, Int32(columns))
        }
        var out = [Double](repeating: 0, count: columns * columns)
        for i in 0..<columns {
            for j in i..<columns {
                out[i * columns + j] = Double(h[i * columns + j])
                out[j * columns + i] = Double(h[i * columns + j])
            }
        }
        return out
    }

    /// The upper Cholesky factor `U` of `H⁻¹` (`H⁻¹ = UᵀU`, row-major, f32), `H` damped; nil when `H` is not
    /// positive definite.
    static func inverseFactor(_ h: [Double], columns n: Int) -> [Float]? {
        var a = h
        var info: Int32 = 0, dim = Int32(n)
        // LAPACK is column-major: its lower triangle is our upper one, and a symmetric matrix is its own transpose.
        var uplo = CChar(UInt8(ascii: "L"))
        var mean = 0.0
        for i in 0..<n { mean += h[i * n + i] }
        mean /= Double(max(n, 1))
        dpotrf_(&uplo, &dim, &a, &dim, &info)
        guard info == 0 else { return nil }
        // A pivot lost in rounding noise is a singular matrix whose factorization happened to go through.
        for i in 0..<n where a[i * n + i] * a[i * n + i] <= 1e-10 * mean { return nil }
        dpotri_(&uplo, &dim, &a, &dim, &info)
        guard info == 0 else { return nil }
        dpotrf_(&uplo, &dim, &a, &dim, &info)
        guard info == 0 else { return nil }
        var u = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for j in i..<n { u[i * n + j] = Float(a[i * n + j]) } }  // column-major (row j, column i) = Lᵀ[i][j]
        for i in 0..<n where !u[i * n + i].isFinite || u[i * n + i] <= 0 { return nil }
        return u
    }

    /// Rounds `w` (`[rows, columns]`) with the group parameters `quantizer` gives it, compensating each column's
    /// error on the columns after it; returns the quantized weight (codes and the same scales and zero points).
    /// `hessian` is `XᵀX` of the inputs the linear sees; `name` names it in errors.
    /// `gridFrom`: the weights the scales and zero points are taken from (a clipped copy of `w`; nil: `w`).
    public func quantize(_ w: [Float], rows: Int, columns: Int, hessian: [Double], quantizer: IntQuantizer, precision: ComputePrecision,
                         name: String, gridFrom: [Float]? = nil) throws -> QuantizedWeight {
        var q = (gridFrom ?? w).withUnsafeBufferPointer { quantizer.quantize($0, rows: rows, columns: columns, precision: precision) }
        let n = columns
        var h = hessian
        var dead = [Bool](repeating: false, count: n)
        for i in 0..<n where h[i * n + i] == 0 { dead[i] = true; h[i * n + i] = 1 }
        let perm: [Int] = actOrder ? (0..<n).sorted { h[$0 * n + $0] > h[$1 * n + $1] || (h[$0 * n + $0] == h[$1 * n + $1] && $0 < $1) } : Array(0..<n)
        var hp = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { hp[i * n + j] = h[perm[i] * n + perm[j]] } }
        var mean = 0.0
        for i in 0..<n { mean += hp[i * n + i] }
        mean /= Double(max(n, 1))
        for i in 0..<n { hp[i * n + i] += dampening * mean }
        guard let u = Self.inverseFactor(hp, columns: n) else { throw Failure.singular(name) }

        let g = quantizer.groupSize ?? columns
        let groups = (columns + g - 1) / g
        let offset = UInt8(q.codeOffset), scales = q.scales, zeros = q.zeros
        let B = max(1, blockSize)
        let chunk = 64
        q.codes.withUnsafeMutableBufferPointer { codes in
            let out = UncheckedSendable(codes.baseAddress!)
            parallelFor((rows + chunk - 1) / chunk) { c in
                let r0 = c * chunk, m = min(chunk, rows - r0)
                // This chunk's rows, columns permuted; dead columns zeroed.
                var wc = [Float](repeating: 0, count: m * n)
                for r in 0..<m { for j in 0..<n where !dead[perm[j]] { wc[r * n + j] = w[(r0 + r) * n + perm[j]] } }
                var err = [Float](repeating: 0, count: m * B)
                var i1 = 0
                while i1 < n {
                    let i2 = min(i1 + B, n), width = i2 - i1
                    for i in i1..<i2 {
                        let col = perm[i], d = u[i * n + i]
                        for r in 0..<m {
                            let gi = (r0 + r) * groups + col / g
                            let s = scales[gi], z = zeros?[gi] ?? offset
                            let x = wc[r * n + i]
                            let code = quantizer.code(x, scale: s, zero: z, precision: precision)
                            out.value[(r0 + r) * n + col] = code
                            let e = (x - (Float(code) - Float(z)) * s) / d
                            err[r * B + (i - i1)] = e
                            if i + 1 < i2 {
                                for j in (i + 1)..<i2 { wc[r * n + j] -= e * u[i * n + j] }
                            }
                        }
                    }
                    if i2 < n {
                        // W[:, i2:] −= Err · H⁻¹ᵁ[i1:i2, i2:]
                        err.withUnsafeBufferPointer { ep in
                            u.withUnsafeBufferPointer { up in
                                wc.withUnsafeMutableBufferPointer { wp in
                                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n - i2), Int32(width), -1,
                                                ep.baseAddress!, Int32(B), up.baseAddress! + i1 * n + i2, Int32(n), 1,
                                                wp.baseAddress! + i2, Int32(n))
                                }
                            }
                        }
                    }
                    i1 = i2
                }
            }
        }
        return q
    }
}
