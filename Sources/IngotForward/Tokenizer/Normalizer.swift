import Foundation

/// The `normalizer` of a tokenizer.json: Unicode normalization forms, possibly in a `Sequence`.
enum NormalizerStep: String, Sendable, Equatable {
    case nfc = "NFC", nfd = "NFD", nfkc = "NFKC", nfkd = "NFKD"

    static let supportedTypes = "null, NFC, NFD, NFKC, NFKD, Sequence of these"

    /// Parses `json` (at `field`) into a flat list of steps; `null` is the empty list.
    static func parse(_ json: JSON?, field: String) throws -> [NormalizerStep] {
        guard let json, !json.isNull else { return [] }
        guard let type = json["type"]?.stringValue else { throw TokenizerError.missingField(field + ".type") }
        if type == "Sequence" {
            guard let list = json["normalizers"]?.arrayValue else {
                throw TokenizerError.wrongType(field: field + ".normalizers", expected: "an array")
            }
            var out = [NormalizerStep]()
            for (i, n) in list.enumerated() { out += try parse(n, field: "\(field).normalizers[\(i)]") }
            return out
        }
        guard let step = NormalizerStep(rawValue: type) else {
            throw TokenizerError.unsupported(field: field + ".type", value: type, supported: supportedTypes)
        }
        return [step]
    }

    static func apply(_ steps: [NormalizerStep], to text: String) -> String {
        var s = text
        for step in steps {
            switch step {
            case .nfc: s = s.precomposedStringWithCanonicalMapping
            case .nfd: s = s.decomposedStringWithCanonicalMapping
            case .nfkc: s = s.precomposedStringWithCompatibilityMapping
            case .nfkd: s = s.decomposedStringWithCompatibilityMapping
            }
        }
        return s
    }
}
