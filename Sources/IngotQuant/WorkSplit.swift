import IngotCore
import IngotFormats

/// `--shard i/N`: which tensors one of N processes quantizes, so a cluster can split a model and `ingot merge` can
/// join the pieces into the file a single process would have written.
///
/// Tensors are grouped into units that must stay together: a decoder layer (`…layers.L.…`), or with
/// `splitExperts` one expert of a layer (`…layers.L.….experts.E.…`) plus one unit for the layer's other tensors;
/// every tensor outside the layers is a unit of its own. Units keep the order in which the source first lists them
/// and are cut into N contiguous runs of about equal cost. The split depends only on the names and sizes, so
/// every process computes the same one.
public struct WorkSplit: Sendable, Equatable, CustomStringConvertible {
    /// 1-based.
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1, count <= 99_999, (1...count).contains(index) else {
            throw WorkSplitError.invalid("shard \(index)/\(count): need 1 ≤ i ≤ N ≤ 99999")
        }
        self.index = index
        self.count = count
    }

    /// Parses `i/N`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
            throw WorkSplitError.invalid("--shard '\(text)': expected i/N, e.g. 2/8")
        }
        try self.init(index: i, count: n)
    }

    public var description: String { "\(index)/\(count)" }

    /// The unit a tensor belongs to.
    public static func unit(of name: String, splitExperts: Bool) -> String {
        guard let layer = number(after: "layers.", in: name) else { return name }
        if splitExperts, let expert = number(after: ".experts.", in: name) { return "L\(layer).E\(expert)" }
        return "L\(layer)"
    }

    /// Positions (into `tensors`) of the tensors this shard processes, in source order. `cost` weighs a tensor
    /// (default: its bytes); units are balanced by the sum over their tensors.
    public func select(_ tensors: [TensorInfo], splitExperts: Bool, cost: (TensorInfo) -> Int = { $0.byteCount }) -> [Int] {
        var unitIndex: [String: Int] = [:]
        var unitBytes: [Int] = []
        var unitOf: [Int] = []
        for t in tensors {
            let key = Self.unit(of: t.name, splitExperts: splitExperts)
            let u = unitIndex[key] ?? { unitIndex[key] = unitBytes.count; unitBytes.append(0); return unitBytes.count - 1 }()
            unitBytes[u] += max(1, cost(t))
            unitOf.append(u)
        }
        let total = unitBytes.reduce(0, +)
        // A unit belongs to the shard its midpoint falls in (integer arithmetic: the same on every machine).
        var shardOfUnit: [Int] = []
        var before = 0
        for b in unitBytes {
            shardOfUnit.append(min(count - 1, (count * (2 * before + b)) / max(1, 2 * total)))
            before += b
        }
        return tensors.indices.filter { shardOfUnit[unitOf[$0]] == index - 1 }
    }

    /// The decimal number right after the first occurrence of `marker` (followed by a dot or the end), if any.
    static func number(after marker: String, in name: String) -> Int? {
        guard let r = name.range(of: marker) else { return nil }
        let digits = name[r.upperBound...].prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count < 10 else { return nil }
        return Int(digits)
    }
}

public enum WorkSplitError: Error, CustomStringConvertible {
    case invalid(String)
    public var description: String { if case let .invalid(m) = self { m } else { "" } }
}
