/// ggml's tensor element types as GGUF stores them (`ggml_type` in ggml.h), with their block layouts.
///
/// A row of `n` elements of a block type holds `n / blockSize` blocks of `blockBytes` bytes each; `n` must be a
/// multiple of the block size. Layouts of the types Ingot reads and writes (`QK_K` = 256):
///
/// | type | elements/block | bytes/block | layout |
/// |---|---:|---:|---|
/// | Q4_0 | 32 | 18 | f16 d, 16 B nibbles (element j low, j+16 high); w = (q−8)·d |
/// | Q4_1 | 32 | 20 | f16 d, f16 m, 16 B nibbles; w = q·d + m |
/// | Q5_0 | 32 | 22 | f16 d, u32 high bits, 16 B nibbles; w = (q−16)·d |
/// | Q5_1 | 32 | 24 | f16 d, f16 m, u32 high bits, 16 B nibbles; w = q·d + m |
/// | Q8_0 | 32 | 34 | f16 d, 32 × i8; w = q·d |
/// | Q4_K | 256 | 144 | f16 d, f16 dmin, 12 B of 6-bit scales/mins (8 sub-blocks of 32), 128 B nibbles |
/// | Q5_K | 256 | 176 | as Q4_K plus 32 B of fifth bits |
/// | Q6_K | 256 | 210 | 128 B low nibbles, 64 B high 2-bit pairs, 16 × i8 scales (sub-blocks of 16), f16 d |
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22, iq4_xs = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30
    case tq1_0 = 34, tq2_0 = 35, mxfp4 = 39, nvfp4 = 40, q1_0 = 41, q2_0 = 42

    /// Super-block size of the K-quants.
    public static let qkK = 256

    /// The name ggml and llama.cpp print (`Q4_K`, `BF16`, …).
    public var name: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .bf16: "BF16"
        case .f64: "F64"
        case .i8: "I8"
        case .i16: "I16"
        case .i32: "I32"
        case .i64: "I64"
        default: String(describing: self).uppercased()
        }
    }

    /// Parses a type name as `--type` spells it (case-insensitive).
    public init?(name: String) {
        guard let t = GGMLType.allCases.first(where: { $0.name.lowercased() == name.lowercased() }) else { return nil }
        self = t
    }

    /// (elements per block, bytes per block).
    public var block: (elements: Int, bytes: Int) {
        let k = GGMLType.qkK
        switch self {
        case .f32: return (1, 4)
        case .f16, .bf16: return (1, 2)
        case .q4_0: return (32, 18)
        case .q4_1: return (32, 20)
        case .q5_0: return (32, 22)
        case .q5_1: return (32, 24)
        case .q8_0: return (32, 34)
        case .q8_1: return (32, 36)
        case .q2_K: return (k, 4 + k / 16 + k / 4)
        case .q3_K: return (k, 2 + k / 4 + k / 8 + 12)
        case .q4_K: return (k, 4 + k / 2 + 12)
        case .q5_K: return (k, 4 + k / 2 + k / 8 + 12)
        case .q6_K: return (k, 2 + k / 2 + k / 4 + k / 16)
        case .q8_K: return (k, 4 + k + k / 8)
        case .iq2_xxs: return (k, 2 + k / 4)
        case .iq2_xs: return (k, 2 + k / 4 + k / 32)
        case .iq3_xxs: return (k, 2 + k / 4 + k / 8)
        case .iq1_s: return (k, 2 + k / 8 + k / 16)
        case .iq4_nl: return (32, 18)
        case .iq3_s: return (k, 2 + k / 4 + k / 8 + k / 32 + 4)
        case .iq2_s: return (k, 2 + k / 4 + k / 16)
        case .iq4_xs: return (k, 4 + k / 2 + k / 64)
        case .i8: return (1, 1)
        case .i16: return (1, 2)
        case .i32: return (1, 4)
        case .i64, .f64: return (1, 8)
        case .iq1_m: return (k, k / 8 + k / 16 + k / 32)
        case .tq1_0: return (k, 2 + 4 * 13)
        case .tq2_0: return (k, 2 + 64)
        case .mxfp4: return (32, 17)
        case .nvfp4: return (64, 36)
        case .q1_0: return (128, 18)
        case .q2_0: return (64, 18)
        }
    }

    /// Whether Ingot decodes this type to f32 (and encodes it, for `export --to gguf`).
    public var isSupported: Bool { GGMLType.supported.contains(self) }

    /// The types Ingot reads and writes.
    public static let supported: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K]

    public var isQuantized: Bool { block.elements > 1 }

    /// Bytes of a row of `columns` elements; nil when `columns` is not a multiple of the block size or overflows.
    public func rowBytes(columns: Int) -> Int? {
        let b = block
        guard columns >= 0, columns % b.elements == 0 else { return nil }
        let (n, o) = (columns / b.elements).multipliedReportingOverflow(by: b.bytes)
        return o ? nil : n
    }
}
