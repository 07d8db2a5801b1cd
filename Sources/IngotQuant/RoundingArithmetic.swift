import IngotCore

/// The precision in which a reference implementation computes quantization parameters. PyTorch evaluates bf16
/// and fp16 tensor arithmetic in f32 and rounds every result to the tensor dtype; reproducing their outputs bit
/// for bit means rounding after every operation the same way.
public enum ComputePrecision: String, Sendable {
    case f32, bf16, f16

    public init(dtype: DType) {
        switch dtype {
        case .bf16: self = .bf16
        case .f16: self = .f16
        default: self = .f32
        }
    }

    /// Rounds an f32 result to this precision (RNE) and back.
    @inlinable @inline(__always)
    public func round(_ x: Float) -> Float {
        switch self {
        case .f32: x
        case .bf16: HalfFloat.bf16ToF32(HalfFloat.f32ToBF16(x))
        case .f16: HalfFloat.f16ToF32(HalfFloat.f32ToF16(x))
        }
    }

    /// Smallest positive step: `torch.finfo(dtype).eps`.
    public var eps: Float {
        switch self {
        case .f32: Float.ulpOfOne
        case .bf16: 0.0078125
        case .f16: 0.0009765625
        }
    }

    /// The dtype values are stored in.
    public var dtype: DType { self == .f32 ? .f32 : self == .bf16 ? .bf16 : .f16 }
}
