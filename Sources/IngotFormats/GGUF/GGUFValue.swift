/// One GGUF metadata value (`gguf_type`): scalars, UTF-8 strings and typed arrays (which may nest).
public indirect enum GGUFValue: Equatable, Sendable {
    case u8(UInt8), i8(Int8), u16(UInt16), i16(Int16), u32(UInt32), i32(Int32), f32(Float), bool(Bool)
    case string(String)
    /// Elements all of `elementType` (a `GGUFValue.typeCode`).
    case array(elementType: UInt32, [GGUFValue])
    case u64(UInt64), i64(Int64), f64(Double)

    /// The value type code GGUF stores before the value.
    public var typeCode: UInt32 {
        switch self {
        case .u8: 0
        case .i8: 1
        case .u16: 2
        case .i16: 3
        case .u32: 4
        case .i32: 5
        case .f32: 6
        case .bool: 7
        case .string: 8
        case .array: 9
        case .u64: 10
        case .i64: 11
        case .f64: 12
        }
    }

    /// An integer value of any integer type (nil for other types and for u64 beyond Int.max).
    public var intValue: Int? {
        switch self {
        case let .u8(v): Int(v)
        case let .i8(v): Int(v)
        case let .u16(v): Int(v)
        case let .i16(v): Int(v)
        case let .u32(v): Int(v)
        case let .i32(v): Int(v)
        case let .u64(v): v <= UInt64(Int.max) ? Int(v) : nil
        case let .i64(v): Int(v)
        default: nil
        }
    }

    /// A number of any numeric type as Double.
    public var doubleValue: Double? {
        switch self {
        case let .f32(v): Double(v)
        case let .f64(v): v
        default: intValue.map(Double.init)
        }
    }

    public var stringValue: String? { if case let .string(s) = self { s } else { nil } }
    public var boolValue: Bool? { if case let .bool(b) = self { b } else { nil } }
    public var arrayValue: [GGUFValue]? { if case let .array(_, a) = self { a } else { nil } }

    /// Short text for display (arrays summarized by length).
    public var summary: String {
        switch self {
        case let .string(s): s.count > 80 ? "\"" + s.prefix(77) + "…\"" : "\"" + s + "\""
        case let .array(_, a): "[\(a.count) items]"
        case let .bool(b): String(b)
        case let .f32(v): String(v)
        case let .f64(v): String(v)
        default: intValue.map(String.init) ?? "\(self)"
        }
    }

    /// Appends the value's encoding (without its type code) to `out`.
    public func encode(into out: inout [UInt8]) {
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        switch self {
        case let .u8(v): out.append(v)
        case let .i8(v): out.append(UInt8(bitPattern: v))
        case let .u16(v): put(v)
        case let .i16(v): put(v)
        case let .u32(v): put(v)
        case let .i32(v): put(v)
        case let .f32(v): put(v.bitPattern)
        case let .bool(v): out.append(v ? 1 : 0)
        case let .string(s): GGUFValue.encodeString(s, into: &out)
        case let .array(t, a):
            put(t)
            put(UInt64(a.count))
            for e in a { e.encode(into: &out) }
        case let .u64(v): put(v)
        case let .i64(v): put(v)
        case let .f64(v): put(v.bitPattern)
        }
    }

    static func encodeString(_ s: String, into out: inout [UInt8]) {
        let u = Array(s.utf8)
        withUnsafeBytes(of: UInt64(u.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: u)
    }

    /// Convenience constructors for arrays.
    public static func strings(_ a: [String]) -> GGUFValue { .array(elementType: 8, a.map { .string($0) }) }
    public static func int32s(_ a: [Int32]) -> GGUFValue { .array(elementType: 5, a.map { .i32($0) }) }
    public static func float32s(_ a: [Float]) -> GGUFValue { .array(elementType: 6, a.map { .f32($0) }) }
    public static func bools(_ a: [Bool]) -> GGUFValue { .array(elementType: 7, a.map { .bool($0) }) }
}
