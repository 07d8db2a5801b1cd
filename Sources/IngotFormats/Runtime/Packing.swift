import IngotCore

/// Bit layouts of 4-bit codes in the runtime formats (all little-endian int32 words).
public enum Packing {
    /// compressed-tensors `pack-quantized`: `[rows, ⌈cols/8⌉]` words, nibble k of word j = column 8j+k
    /// (sequential, along the input dimension); codes are the unsigned `q + 8`.
    public static func compressedTensors(_ codes: [UInt8], rows: Int, columns: Int) -> [Int32] {
        let words = (columns + 7) / 8
        var out = [Int32](repeating: 0, count: rows * words)
        for r in 0..<rows {
            for c in 0..<columns { out[r * words + c / 8] |= Int32(bitPattern: UInt32(codes[r * columns + c] & 0xF) << UInt32(4 * (c % 8))) }
        }
        return out
    }

    /// compressed-tensors zero points: `[⌈rows/8⌉, groups]`, packed along dim 0 (word i of column g holds rows
    /// 8i..8i+7, low nibble first).
    public static func compressedTensorsZeros(_ zeros: [UInt8], rows: Int, groups: Int) -> [Int32] {
        var out = [Int32](repeating: 0, count: ((rows + 7) / 8) * groups)
        for r in 0..<rows {
            for g in 0..<groups { out[(r / 8) * groups + g] |= Int32(bitPattern: UInt32(zeros[r * groups + g] & 0xF) << UInt32(4 * (r % 8))) }
        }
        return out
    }

    /// AutoAWQ GEMM order: nibble i of a word holds output column `8k + order[i]`.
    public static let awqOrder = [0, 2, 4, 6, 1, 3, 5, 7]

    /// AutoAWQ GEMM `qweight` `[in, out/8]` (packed along the output dimension, interleaved) from codes `[out, in]`.
    public static func awqWeight(_ codes: [UInt8], rows out: Int, columns inp: Int) -> [Int32] {
        let words = out / 8
        var w = [Int32](repeating: 0, count: inp * words)
        for i in 0..<inp {
            for k in 0..<words {
                var v: UInt32 = 0
                for n in 0..<8 { v |= UInt32(codes[(8 * k + awqOrder[n]) * inp + i] & 0xF) << UInt32(4 * n) }
                w[i * words + k] = Int32(bitPattern: v)
            }
        }
        return w
    }

    /// AutoAWQ GEMM `qzeros` `[groups, out/8]` from zero points `[out, groups]`.
    public static func awqZeros(_ zeros: [UInt8], rows out: Int, groups: Int) -> [Int32] {
        let words = out / 8
        var z = [Int32](repeating: 0, count: groups * words)
        for g in 0..<groups {
            for k in 0..<words {
                var v: UInt32 = 0
                for n in 0..<8 { v |= UInt32(zeros[(8 * k + awqOrder[n]) * groups + g] & 0xF) << UInt32(4 * n) }
                z[g * words + k] = Int32(bitPattern: v)
            }
        }
        return z
    }

    /// Unpacks compressed-tensors words back to codes.
    public static func unpackCompressedTensors(_ words: UnsafeRawBufferPointer, rows: Int, columns: Int) -> [UInt8] {
        let perRow = (columns + 7) / 8
        var codes = [UInt8](repeating: 0, count: rows * columns)
        for r in 0..<rows {
            for c in 0..<columns {
                let w = UInt32(littleEndian: words.loadUnaligned(fromByteOffset: 4 * (r * perRow + c / 8), as: UInt32.self))
                codes[r * columns + c] = UInt8((w >> UInt32(4 * (c % 8))) & 0xF)
            }
        }
        return codes
    }

    /// Stores floats in a 16/32-bit float dtype (values must already be representable for exactness).
    public static func floatBytes(_ v: [Float], as dtype: DType) -> [UInt8] {
        switch dtype {
        case .bf16: return v.map { HalfFloat.f32ToBF16($0) }.withUnsafeBytes { Array($0) }
        case .f16: return v.map { HalfFloat.f32ToF16($0) }.withUnsafeBytes { Array($0) }
        case .f8e4m3: return v.map { FP8.e4m3Code(exact: $0) }   // NVFP4 group scales, decoded from E4M3 codes
        default: return v.withUnsafeBytes { Array($0) }
        }
    }

    public static func bytes<T>(_ v: [T]) -> [UInt8] { v.withUnsafeBytes { Array($0) } }

    /// Scales in their stored dtype: floats (`floatBytes`), or for `U8` the E8M0 exponents of power-of-two scales.
    public static func scaleBytes(_ v: [Float], as dtype: DType) -> [UInt8] {
        dtype == .u8 ? v.map { UInt8(clamping: Int($0.exponent) + 127) } : floatBytes(v, as: dtype)
    }

    /// FP4 codes `[rows, columns]` two per byte along each row, element 2k in the low nibble (compressed-tensors'
    /// `weight_packed` for FP4, and the `.ingot` U4 layout); `columns` must be even.
    public static func nibbles(_ codes: [UInt8], rows: Int, columns: Int) -> [UInt8] {
        let perRow = columns / 2
        var out = [UInt8](repeating: 0, count: rows * perRow)
        for r in 0..<rows {
            for k in 0..<perRow { out[r * perRow + k] = codes[r * columns + 2 * k] & 0xF | (codes[r * columns + 2 * k + 1] & 0xF) << 4 }
        }
        return out
    }

    /// 8-bit codes in compressed-tensors `pack-quantized`: four per int32 along the input dimension.
    public static func packBytes(_ codes: [UInt8], rows: Int, columns: Int) -> [Int32] {
        let words = (columns + 3) / 4
        var out = [Int32](repeating: 0, count: rows * words)
        for r in 0..<rows { for c in 0..<columns { out[r * words + c / 4] |= Int32(bitPattern: UInt32(codes[r * columns + c]) << UInt32(8 * (c % 4))) } }
        return out
    }

    /// 8-bit zero points packed four per int32 along dim 0.
    public static func packBytesDim0(_ zeros: [UInt8], rows: Int, columns: Int) -> [Int32] {
        var out = [Int32](repeating: 0, count: ((rows + 3) / 4) * columns)
        for r in 0..<rows { for c in 0..<columns { out[(r / 4) * columns + c] |= Int32(bitPattern: UInt32(zeros[r * columns + c]) << UInt32(8 * (r % 4))) } }
        return out
    }
}
