import IngotCore

/// The group loop both FP4 quantizers share: per group of `groupSize` input columns, its largest magnitude (NaN if
/// any value is NaN) gives the group's scale (`scale`), and each value its E2M1 code (`code(x, scale)`). Parallel over
/// rows; the result does not depend on the worker count.
enum FP4Groups {
    @inlinable
    static func quantize(_ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int, groupSize g: Int,
                         scale: @Sendable (Float) -> Float, code: @Sendable (Float, Float) -> UInt8) -> (codes: [UInt8], scales: [Float]) {
        let groups = (columns + g - 1) / g
        var codes = [UInt8](unsafeUninitializedCapacity: rows * columns) { _, n in n = rows * columns }
        var scales = [Float](repeating: 0, count: rows * groups)
        codes.withUnsafeMutableBufferPointer { C in
            scales.withUnsafeMutableBufferPointer { S in
                let c = UncheckedSendable((C, S, weights))
                parallelFor(rows) { r in
                    let (C, S, weights) = c.value
                    for gi in 0..<groups {
                        let lo = r * columns + gi * g, hi = r * columns + Swift.min(columns, (gi + 1) * g)
                        var m: Float = 0, nan = false
                        for i in lo..<hi {
                            let a = weights[i].magnitude
                            if a.isNaN { nan = true } else if a > m { m = a }
                        }
                        let s = scale(nan ? .nan : m)
                        S[r * groups + gi] = s
                        for i in lo..<hi { C[i] = code(weights[i], s) }
                    }
                }
            }
        }
        return (codes, scales)
    }
}
