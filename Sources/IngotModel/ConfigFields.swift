import IngotCore

/// Typed readers for `config.json` fields, shared by every family's parser: a field that is present must have the
/// right type and range or it is refused by name; only an absent field takes the default transformers uses.
public struct ConfigFields {
    public let json: JSON
    public init(_ json: JSON) { self.json = json }

    typealias Failure = ModelConfig.Failure

    /// The value of `key`, nil when absent or JSON null.
    public func value(_ key: String) -> JSON? {
        guard let v = json[key], !v.isNull else { return nil }
        return v
    }

    /// A required integer in `range` (positive by default).
    public func int(_ key: String, in range: ClosedRange<Int> = 1...(1 << 31)) throws -> Int {
        guard let v = try int(key, default: nil, in: range) else { throw Failure.missing(field: key) }
        return v
    }

    /// An optional integer in `range`; `fallback` when absent.
    public func int(_ key: String, default fallback: Int?, in range: ClosedRange<Int> = 1...(1 << 31)) throws -> Int? {
        guard let v = value(key) else { return fallback }
        guard let i = v.intValue, range.contains(i) else {
            throw Failure.invalid(field: key, reason: "must be an integer in \(range.lowerBound)...\(range.upperBound), got \(v.serialized())")
        }
        return i
    }

    /// A finite number in `range`; `fallback` when absent.
    public func number(_ key: String, default fallback: Double, in range: ClosedRange<Double>) throws -> Double {
        guard let v = value(key) else { return fallback }
        guard let d = v.doubleValue, d.isFinite, range.contains(d) else {
            throw Failure.invalid(field: key, reason: "must be a finite number in [\(range.lowerBound), \(range.upperBound)], got \(v.serialized())")
        }
        return d
    }

    /// A finite number > 0; `fallback` when absent.
    public func positive(_ key: String, default fallback: Double) throws -> Double {
        guard let v = value(key) else { return fallback }
        guard let d = v.doubleValue, d.isFinite, d > 0 else {
            throw Failure.invalid(field: key, reason: "must be a finite number > 0, got \(v.serialized())")
        }
        return d
    }

    public func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let v = value(key) else { return fallback }
        guard let b = v.boolValue else { throw Failure.invalid(field: key, reason: "must be true or false, got \(v.serialized())") }
        return b
    }

    public func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v.stringValue else { throw Failure.invalid(field: key, reason: "must be a string, got \(v.serialized())") }
        return s
    }

    /// A field whose only faithful value is `expected` (a setting this implementation does not compute).
    public func require(_ key: String, absentOr expected: JSON) throws {
        guard let v = value(key), v != expected else { return }
        throw Failure.unsupported(field: key, value: v.serialized())
    }
}
