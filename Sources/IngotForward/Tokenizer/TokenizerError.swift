/// Why a `tokenizer.json` could not be loaded. Every case names the JSON field (dotted path) it is about.
public enum TokenizerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file is not valid JSON.
    case invalidJSON(path: String, reason: String)
    /// A required field is absent.
    case missingField(String)
    /// A field has the wrong JSON type.
    case wrongType(field: String, expected: String)
    /// A component type or option this implementation does not support (it would not reproduce HF `tokenizers`).
    case unsupported(field: String, value: String, supported: String)
    /// A field has an impossible value (negative id, duplicate id, empty token, ...).
    case invalidValue(field: String, reason: String)
    /// A merge rule references a token, or produces a token, that is not in `model.vocab`.
    case mergeOutOfVocabulary(index: Int, token: String)

    public var description: String {
        switch self {
        case let .invalidJSON(path, reason): "\(path): not a valid tokenizer.json: \(reason)"
        case let .missingField(f): "tokenizer.json: required field \(f) is missing"
        case let .wrongType(f, expected): "tokenizer.json: field \(f) must be \(expected)"
        case let .unsupported(f, v, supported):
            "tokenizer.json: \(f) = \(v) is not supported (supported: \(supported))"
        case let .invalidValue(f, reason): "tokenizer.json: field \(f): \(reason)"
        case let .mergeOutOfVocabulary(i, t): "tokenizer.json: model.merges[\(i)] uses token \"\(t)\" which is not in model.vocab"
        }
    }
}
