import IngotCore

/// MXFP4 (OCP microscaling FP4): 32 E2M1 codes per block, two per byte (low nibble first), one E8M0 scale
/// `2^(e − 127)` per block. Every value is exact in f32 and bf16.
public enum MXFP4 {
    /// Decodes `groups` consecutive blocks starting at block `unit` into `row` (`groups × 32` values).
    public static func decodeRow(_ blocks: UnsafeRawBufferPointer, _ scales: UnsafeRawBufferPointer, unit: Int, groups: Int,
                                 into row: inout [Float]) {
        for g in 0..<groups {
            let scale = FP4.e8m0(scales[unit + g])
            for k in 0..<16 {
                let byte = blocks[(unit + g) * 16 + k]
                row[g * 32 + 2 * k] = FP4.e2m1[Int(byte & 0xF)] * scale
                row[g * 32 + 2 * k + 1] = FP4.e2m1[Int(byte >> 4)] * scale
            }
        }
    }
}
