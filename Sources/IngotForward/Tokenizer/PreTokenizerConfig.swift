extension PreTokenizerPipeline {
    static let supportedTypes = "ByteLevel, Sequence[Split | Digits ..., ByteLevel]"

    /// Parses the `pre_tokenizer` of a byte-level BPE file. It must end with exactly one `ByteLevel`; splitting
    /// steps before it may be `Split` (the GPT-2 or Llama-3 regex, or a literal string) and `Digits`.
    static func parse(_ json: JSON?, field: String) throws -> PreTokenizerPipeline {
        guard let json, !json.isNull else {
            throw TokenizerError.unsupported(field: field, value: "null", supported: supportedTypes)
        }
        var flat = [(JSON, String)]()
        try flatten(json, field: field, into: &flat)
        var steps = [PreTokenizerStep]()
        for (k, (item, f)) in flat.enumerated() {
            let type = item["type"]!.stringValue!
            switch type {
            case "ByteLevel":
                guard k == flat.count - 1 else {
                    throw TokenizerError.unsupported(field: f, value: "ByteLevel before other pre-tokenizers",
                                                     supported: "ByteLevel as the last pre-tokenizer")
                }
                let prefix = try bool(item, "add_prefix_space", field: f, default: true)
                let regex = try bool(item, "use_regex", field: f, default: true)
                return PreTokenizerPipeline(steps: steps, addPrefixSpace: prefix, useRegex: regex)
            case "Digits":
                steps.append(.digits(individual: try bool(item, "individual_digits", field: f, default: false)))
            case "Split":
                steps.append(try split(item, field: f))
            default:
                throw TokenizerError.unsupported(field: f + ".type", value: type,
                                                 supported: "ByteLevel, Split, Digits, Sequence")
            }
        }
        throw TokenizerError.unsupported(field: field, value: "no ByteLevel pre-tokenizer",
                                         supported: "a ByteLevel pre-tokenizer (byte-level BPE)")
    }

    private static func flatten(_ json: JSON, field: String, into out: inout [(JSON, String)]) throws {
        guard let type = json["type"]?.stringValue else { throw TokenizerError.missingField(field + ".type") }
        if type == "Sequence" {
            guard let list = json["pretokenizers"]?.arrayValue else {
                throw TokenizerError.wrongType(field: field + ".pretokenizers", expected: "an array")
            }
            for (i, p) in list.enumerated() { try flatten(p, field: "\(field).pretokenizers[\(i)]", into: &out) }
        } else {
            out.append((json, field))
        }
    }

    private static func bool(_ json: JSON, _ key: String, field: String, default d: Bool) throws -> Bool {
        guard let v = json[key], !v.isNull else { return d }
        guard let b = v.boolValue else { throw TokenizerError.wrongType(field: "\(field).\(key)", expected: "a boolean") }
        return b
    }

    private static func split(_ json: JSON, field: String) throws -> PreTokenizerStep {
        guard let pattern = json["pattern"] else { throw TokenizerError.missingField(field + ".pattern") }
        let p: SplitPattern
        if let re = pattern["Regex"]?.stringValue {
            switch re {
            case SplitPattern.gpt2Source: p = .gpt2
            case SplitPattern.llama3Source: p = .llama3
            case SplitPattern.qwen2Source: p = .qwen2
            default:
                throw TokenizerError.unsupported(field: field + ".pattern.Regex", value: re,
                                                 supported: "the GPT-2, Llama-3 and Qwen2 split patterns")
            }
        } else if let s = pattern["String"]?.stringValue {
            guard !s.isEmpty else {
                throw TokenizerError.invalidValue(field: field + ".pattern.String", reason: "empty split string")
            }
            p = .literal(s.unicodeScalars.map(\.value))
        } else {
            throw TokenizerError.wrongType(field: field + ".pattern", expected: "{\"Regex\": ...} or {\"String\": ...}")
        }
        guard let bname = json["behavior"]?.stringValue else { throw TokenizerError.missingField(field + ".behavior") }
        guard let behavior = SplitBehavior(rawValue: bname) else {
            throw TokenizerError.unsupported(field: field + ".behavior", value: bname,
                                             supported: "Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous")
        }
        return .split(p, behavior, invert: try bool(json, "invert", field: field, default: false))
    }
}
