/// Checked arithmetic over tensor shapes. Shapes come from untrusted headers: never trap on them.
public enum ShapeMath {
    /// Product of the dimensions, nil if any is negative or the product overflows `Int`.
    @inlinable
    public static func elementCount(_ shape: [Int]) -> Int? {
        var n = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (p, o) = n.multipliedReportingOverflow(by: d)
            if o { return nil }
            n = p
        }
        return n
    }

    /// Bytes of a tensor of `shape` and `dtype`, nil on overflow or a sub-byte tensor not ending on a byte.
    @inlinable
    public static func byteCount(_ shape: [Int], _ dtype: DType) -> Int? {
        guard let n = elementCount(shape) else { return nil }
        return dtype.byteCount(elements: n)
    }

    /// `[2, 3]` → `"[2, 3]"`.
    public static func describe(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }
}
