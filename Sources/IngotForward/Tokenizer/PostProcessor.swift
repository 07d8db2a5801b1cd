/// The single-sequence part of a `post_processor`: special token ids put before and after the text when
/// `addSpecialTokens` is set.
struct PostProcessorTemplate: Sendable, Equatable {
    var prefix: [Int] = []
    var suffix: [Int] = []

    static let supportedTypes = "null, ByteLevel, TemplateProcessing, RobertaProcessing, BertProcessing, Sequence of these"

    /// Parses `json` at `field`; `null` adds nothing.
    static func parse(_ json: JSON?, field: String) throws -> PostProcessorTemplate {
        guard let json, !json.isNull else { return PostProcessorTemplate() }
        guard let type = json["type"]?.stringValue else { throw TokenizerError.missingField(field + ".type") }
        switch type {
        case "ByteLevel":
            return PostProcessorTemplate()
        case "Sequence":
            guard let list = json["processors"]?.arrayValue else {
                throw TokenizerError.wrongType(field: field + ".processors", expected: "an array")
            }
            // Each processor wraps the result of the previous one.
            var t = PostProcessorTemplate()
            for (i, p) in list.enumerated() {
                let inner = try parse(p, field: "\(field).processors[\(i)]")
                t = PostProcessorTemplate(prefix: inner.prefix + t.prefix, suffix: t.suffix + inner.suffix)
            }
            return t
        case "RobertaProcessing", "BertProcessing":
            let cls = try tokenPair(json["cls"], field: field + ".cls")
            let sep = try tokenPair(json["sep"], field: field + ".sep")
            return PostProcessorTemplate(prefix: [cls], suffix: [sep])
        case "TemplateProcessing":
            return try template(json, field: field)
        default:
            throw TokenizerError.unsupported(field: field + ".type", value: type, supported: supportedTypes)
        }
    }

    /// `["<s>", 0]` -> 0.
    private static func tokenPair(_ json: JSON?, field: String) throws -> Int {
        guard let a = json?.arrayValue, a.count == 2, a[0].stringValue != nil, let id = a[1].intValue, id >= 0 else {
            throw TokenizerError.wrongType(field: field, expected: "a [token, id] pair with a non-negative id")
        }
        return id
    }

    private static func template(_ json: JSON, field: String) throws -> PostProcessorTemplate {
        guard let single = json["single"]?.arrayValue else {
            throw TokenizerError.wrongType(field: field + ".single", expected: "an array of template pieces")
        }
        // special_tokens: { name: { "id": name, "ids": [...], "tokens": [...] } }
        var specials = [String: [Int]]()
        if let st = json["special_tokens"], !st.isNull {
            guard let obj = st.objectValue else {
                throw TokenizerError.wrongType(field: field + ".special_tokens", expected: "an object")
            }
            for (name, v) in obj {
                guard let ids = v["ids"]?.arrayValue else {
                    throw TokenizerError.wrongType(field: "\(field).special_tokens.\(name).ids", expected: "an array of ids")
                }
                var out = [Int]()
                for (k, x) in ids.enumerated() {
                    guard let id = x.intValue, id >= 0 else {
                        throw TokenizerError.wrongType(field: "\(field).special_tokens.\(name).ids[\(k)]",
                                                       expected: "a non-negative integer")
                    }
                    out.append(id)
                }
                specials[name] = out
            }
        }
        var t = PostProcessorTemplate()
        var sawSequence = false
        for (i, piece) in single.enumerated() {
            let f = "\(field).single[\(i)]"
            if let seq = piece["Sequence"] {
                guard seq["id"]?.stringValue == "A" else {
                    throw TokenizerError.invalidValue(field: f + ".Sequence.id", reason: "a single-sequence template can only use sequence A")
                }
                guard !sawSequence else {
                    throw TokenizerError.invalidValue(field: f, reason: "sequence A appears twice in the template")
                }
                sawSequence = true
            } else if let sp = piece["SpecialToken"] {
                guard let name = sp["id"]?.stringValue else {
                    throw TokenizerError.wrongType(field: f + ".SpecialToken.id", expected: "a string")
                }
                guard let ids = specials[name] else {
                    throw TokenizerError.invalidValue(field: f + ".SpecialToken.id",
                                                      reason: "\"\(name)\" is not defined in \(field).special_tokens")
                }
                if sawSequence { t.suffix += ids } else { t.prefix += ids }
            } else {
                throw TokenizerError.wrongType(field: f, expected: "{\"Sequence\": ...} or {\"SpecialToken\": ...}")
            }
        }
        guard sawSequence else {
            throw TokenizerError.invalidValue(field: field + ".single", reason: "the template does not contain sequence A")
        }
        return t
    }
}
