import IngotCore

/// MXFP4 (OCP microscaling FP4): 32 E2M1 codes per block, two per byte (low nibble first), one E8M0 scale
/// `2^(e − 127)` per block. Every value is exact in f32 and bf16.
public enum MXFP4 {
    /// The E2M1 values of codes 0…15 (sign in bit 3).
    public static let values: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]

    /// Decodes `groups` consecutive blocks starting at block `unit` into `row` (`groups × 32` values).
    public static func decodeRow(_ blocks: UnsafeRawBufferPointer, _ scales: UnsafeRawBufferPointer, unit: Int, groups: Int,
                                 into row: inout [Float]) {
        for g in 0..<groups {
            let scale = Float(sign: .plus, exponent: Int(scales[unit + g]) - 127, significand: 1)
            for k in 0..<16 {
                let byte = blocks[(unit + g) * 16 + k]
                row[g * 32 + 2 * k] = values[Int(byte & 0xF)] * scale
                row[g * 32 + 2 * k + 1] = values[Int(byte >> 4)] * scale
            }
        }
    }
}
