/// Element types of tensors, spelled as safetensors spells them.
///
/// Every dtype the safetensors format defines is here, including the sub-byte float formats; `i4`/`u4` are
/// Ingot's packed 4-bit integers (two per byte, low nibble first), used by quantized tensors in `.ingot` files.
public enum DType: String, CaseIterable, Sendable, Codable, Hashable {
    case bool = "BOOL"
    case u8 = "U8", i8 = "I8"
    case u16 = "U16", i16 = "I16"
    case u32 = "U32", i32 = "I32"
    case u64 = "U64", i64 = "I64"
    case f16 = "F16", bf16 = "BF16", f32 = "F32", f64 = "F64"
    case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2", f8e8m0 = "F8_E8M0"
    case f8e4m3fnuz = "F8_E4M3FNUZ", f8e5m2fnuz = "F8_E5M2FNUZ"
    case f4 = "F4", f6e2m3 = "F6_E2M3", f6e3m2 = "F6_E3M2"
    case c64 = "C64"
    case i4 = "I4", u4 = "U4"

    /// Bits per element.
    public var bitWidth: Int {
        switch self {
        case .f4, .i4, .u4: 4
        case .f6e2m3, .f6e3m2: 6
        case .bool, .u8, .i8, .f8e4m3, .f8e5m2, .f8e8m0, .f8e4m3fnuz, .f8e5m2fnuz: 8
        case .u16, .i16, .f16, .bf16: 16
        case .u32, .i32, .f32: 32
        case .u64, .i64, .f64, .c64: 64
        }
    }

    /// Bytes per element for byte-addressable types, nil for sub-byte types.
    public var byteWidth: Int? { bitWidth % 8 == 0 ? bitWidth / 8 : nil }

    /// Alignment safetensors' writer sorts by (descending), in bytes.
    public var alignment: Int { max(1, bitWidth / 8) }

    public var isFloatingPoint: Bool {
        switch self {
        case .f16, .bf16, .f32, .f64, .f8e4m3, .f8e5m2, .f8e8m0, .f8e4m3fnuz, .f8e5m2fnuz, .f4, .f6e2m3,
             .f6e3m2, .c64: true
        default: false
        }
    }

    /// Whether the forward pass can decode this dtype to f32 directly (`FloatCodecs.decode`).
    public var isDecodableToF32: Bool {
        switch self {
        case .f16, .bf16, .f32, .f64, .f8e4m3, .f8e5m2, .u8, .i8, .i16, .u16, .i32, .u32, .i64, .u64, .bool: true
        default: false
        }
    }

    /// Parses a dtype name; also accepts the lower-case CLI spellings `f32`, `f16`, `bf16`, `fp8-e4m3`.
    public init?(name: String) {
        if let d = DType(rawValue: name) { self = d; return }
        switch name.lowercased() {
        case "f32", "fp32", "float32", "float": self = .f32
        case "f16", "fp16", "float16", "half": self = .f16
        case "bf16", "bfloat16": self = .bf16
        case "f64", "fp64", "float64", "double": self = .f64
        case "fp8-e4m3", "f8e4m3", "float8_e4m3fn": self = .f8e4m3
        case "fp8-e5m2", "f8e5m2", "float8_e5m2": self = .f8e5m2
        default: return nil
        }
    }

    /// Bytes needed by `count` elements, nil on overflow or when a sub-byte tensor does not end on a byte boundary.
    public func byteCount(elements count: Int) -> Int? {
        guard count >= 0 else { return nil }
        let (bits, overflow) = count.multipliedReportingOverflow(by: bitWidth)
        guard !overflow, bits % 8 == 0 else { return nil }
        return bits / 8
    }
}
