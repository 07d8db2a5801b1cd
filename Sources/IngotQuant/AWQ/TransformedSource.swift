import IngotCore
import IngotFormats

/// A checkpoint with some tensors replaced by new f32 values (AWQ's scaled, folded and clipped weights), stored
/// in the original dtype (or f32 with `keepF32`) so the quantizers and writers see an ordinary checkpoint.
public final class TransformedSource: TensorSource, @unchecked Sendable {
    public let base: TensorSource
    public let replacements: [String: [Float]]
    public let tensors: [TensorInfo]
    let keepF32: Bool

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case sizeMismatch(String)
        public var description: String {
            switch self { case .sizeMismatch(let n): "transformed tensor '\(n)' does not have the original's element count" }
        }
    }

    public init(base: TensorSource, replacements: [String: [Float]], keepF32: Bool = false) throws {
        self.base = base
        self.replacements = replacements
        self.keepF32 = keepF32
        tensors = try base.tensors.map { t in
            guard let r = replacements[t.name] else { return t }
            guard r.count == ShapeMath.elementCount(t.shape) else { throw Failure.sizeMismatch(t.name) }
            let dt = Self.outputType(t.dtype, keepF32: keepF32)
            return TensorInfo(name: t.name, dtype: dt, shape: t.shape, byteCount: r.count * (dt.byteWidth ?? 4), file: t.file, fileOffset: nil)
        }
    }

    static func outputType(_ d: DType, keepF32: Bool) -> DType {
        keepF32 || !FloatCodecs.convertible.contains(d) ? .f32 : d
    }

    public var path: String { base.path }
    public var metadata: [(key: String, value: String)] { base.metadata }

    public func tensor(named name: String) throws -> TensorView {
        guard let r = replacements[name], let info = tensors.first(where: { $0.name == name }) else { return try base.tensor(named: name) }
        let buffer = TensorBuffer(uninitializedByteCount: info.byteCount)
        try r.withUnsafeBytes { src in
            try FloatCodecs.convert(src, from: .f32, to: info.dtype, into: buffer.storage, count: r.count)
        }
        return buffer.view(name: name, dtype: info.dtype, shape: info.shape, byteCount: info.byteCount)
    }
}
