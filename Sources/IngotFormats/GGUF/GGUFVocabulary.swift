import IngotCore

/// `tokenizer.ggml.*` metadata for a Hugging Face byte-level BPE tokenizer (`tokenizer.json`), as llama.cpp's
/// converter writes it (`_set_vocab_gpt2` + `SpecialVocab`): model `gpt2`, the pre-tokenizer name, tokens by id
/// (ids beyond the tokenizer up to the model's vocab size as `[PADi]`, unused), token types, merges, special token
/// ids, add-BOS/EOS flags and the chat template.
public enum GGUFVocabulary {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case unsupported(String)
        public var description: String { switch self { case let .unsupported(r): "tokenizer.json: \(r)" } }
    }

    /// llama.cpp token types.
    enum TokenType: Int32 { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

    /// The pre-tokenizer regexes of Llama 3 and Qwen2 as their `tokenizer.json` spells them.
    static let llama3Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// llama.cpp's name for the pre-tokenizer (`tokenizer.ggml.pre`), recognised from its structure: plain
    /// byte-level (GPT-2's regex) is `gpt-2`; digits split one by one before it is `smollm`; a Llama 3 or Qwen2
    /// regex split before a regex-free byte-level step is `llama-bpe` / `qwen2`. Anything else is refused by name:
    /// llama.cpp would tokenize it differently.
    public static func preTokenizer(_ pre: JSON?) throws -> String {
        func isByteLevel(_ j: JSON, regex: Bool) -> Bool {
            j["type"]?.stringValue == "ByteLevel" && (j["use_regex"]?.boolValue ?? true) == regex && j["add_prefix_space"]?.boolValue != true
        }
        guard let pre, !pre.isNull else { throw Failure.unsupported("no pre_tokenizer: llama.cpp's gpt2 tokenizer needs one") }
        if isByteLevel(pre, regex: true) { return "gpt-2" }
        if pre["type"]?.stringValue == "Sequence", let steps = pre["pretokenizers"]?.arrayValue {
            if steps.count == 2, steps[0]["type"]?.stringValue == "Digits", steps[0]["individual_digits"]?.boolValue == true,
               isByteLevel(steps[1], regex: true) { return "smollm" }
            if steps.count == 2, steps[0]["type"]?.stringValue == "Split", isByteLevel(steps[1], regex: false),
               let r = steps[0]["pattern"]?["Regex"]?.stringValue {
                if r == llama3Regex { return "llama-bpe" }
                if r == qwen2Regex { return "qwen2" }
            }
        }
        throw Failure.unsupported("pre_tokenizer \(pre.serialized().prefix(120)) is not one llama.cpp names (Ingot recognises gpt-2, smollm, llama-bpe, qwen2)")
    }

    /// The metadata, in the order llama.cpp's converter writes it.
    /// - Parameters: `tokenizer` = tokenizer.json, `tokenizerConfig` = tokenizer_config.json, `config` = config.json
    ///   (its `vocab_size` and `*_token_id` fallbacks), `chatTemplate` = a `chat_template.jinja` beside them.
    public static func metadata(tokenizer: JSON, tokenizerConfig: JSON?, config: JSON, chatTemplate: String?) throws
        -> [(key: String, value: GGUFValue)] {
        guard tokenizer["model"]?["type"]?.stringValue == "BPE", let vocab = tokenizer["model"]?["vocab"]?.objectValue else {
            throw Failure.unsupported("only BPE models are exported to GGUF")
        }
        let pre = try preTokenizer(tokenizer["pre_tokenizer"])
        var byID: [Int: String] = [:]
        for (tok, id) in vocab {
            guard let i = id.intValue, i >= 0, i < 1 << 24 else { throw Failure.unsupported("vocab id of '\(tok)' is not a small non-negative integer") }
            byID[i] = tok
        }
        let added = tokenizer["added_tokens"]?.arrayValue ?? []
        var addedByID: [Int: (content: String, special: Bool)] = [:]
        for a in added {
            guard let i = a["id"]?.intValue, i >= 0, i < 1 << 24, let c = a["content"]?.stringValue else { continue }
            addedByID[i] = (c, a["special"]?.boolValue ?? false)
            byID[i] = c
        }
        let size = config["vocab_size"]?.intValue ?? ((byID.keys.max() ?? -1) + 1)
        guard let maxID = byID.keys.max(), maxID < size else { throw Failure.unsupported("token ids reach beyond config.json vocab_size \(size)") }
        var tokens: [String] = [], types: [Int32] = []
        tokens.reserveCapacity(size); types.reserveCapacity(size)
        for i in 0..<size {
            guard let t = byID[i] else { tokens.append("[PAD\(i)]"); types.append(TokenType.unused.rawValue); continue }
            tokens.append(t)
            if let a = addedByID[i] {
                let looksSpecial = (t.hasPrefix("<|") && t.hasSuffix("|>")) || (t.hasPrefix("<") && t.hasSuffix(">") && !t.contains(" "))
                types.append(a.special || looksSpecial ? TokenType.control.rawValue : TokenType.userDefined.rawValue)
            } else {
                types.append(TokenType.normal.rawValue)
            }
        }
        var kv: [(key: String, value: GGUFValue)] = [("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string(pre)),
                                                     ("tokenizer.ggml.tokens", .strings(tokens)), ("tokenizer.ggml.token_type", .int32s(types))]
        if let merges = tokenizer["model"]?["merges"]?.arrayValue, !merges.isEmpty {
            let spaced = { (s: String) in String(s.unicodeScalars.map { $0 == " " ? Character(Unicode.Scalar(0x120)!) : Character($0) }) }
            kv.append(("tokenizer.ggml.merges", .strings(try merges.map { m in
                if let s = m.stringValue { return s }
                if let p = m.arrayValue, p.count == 2, let a = p[0].stringValue, let b = p[1].stringValue { return spaced(a) + " " + spaced(b) }
                throw Failure.unsupported("merges are neither strings nor pairs")
            })))
        }
        // Special tokens: the post-processor decides add_bos/add_eos first, tokenizer_config.json fills the rest.
        var addSpecial: [(String, Bool)] = []
        func setAdd(_ k: String, _ v: Bool, overwrite: Bool) {
            if let i = addSpecial.firstIndex(where: { $0.0 == k }) { if overwrite { addSpecial[i].1 = v } } else { addSpecial.append((k, v)) }
        }
        let tc = tokenizerConfig ?? .object([])
        func tokenString(_ typ: String) -> String? {
            let e = tc["\(typ)_token"]
            return e?.stringValue ?? e?["content"]?.stringValue
        }
        if let pp = tokenizer["post_processor"], !pp.isNull {
            for p in pp["processors"]?.arrayValue ?? [pp] {
                switch p["type"]?.stringValue {
                case "ByteLevel": setAdd("bos", false, overwrite: false); setAdd("eos", false, overwrite: false)
                case "TemplateProcessing":
                    let single = p["single"]?.arrayValue ?? []
                    if single.count > 1 {
                        if let first = single.first?["SpecialToken"]?["id"]?.stringValue { setAdd("bos", first == tokenString("bos"), overwrite: true) }
                        if let last = single.last?["SpecialToken"]?["id"]?.stringValue { setAdd("eos", last == tokenString("eos"), overwrite: true) }
                    }
                default: break
                }
            }
        }
        var ids: [(String, Int)] = []
        let types_ = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"]
        if tokenizerConfig != nil {
            for typ in types_ {
                if let b = tc["add_\(typ)_token"]?.boolValue { setAdd(typ, b, overwrite: false) }
                if let s = tokenString(typ), let a = added.first(where: { $0["content"]?.stringValue == s }), let id = a["id"]?.intValue,
                   id < size, !ids.contains(where: { $0.0 == typ }) { ids.append((typ, id)) }
            }
        }
        for typ in types_ where !ids.contains(where: { $0.0 == typ }) {
            if let id = config["\(typ)_token_id"]?.intValue, id >= 0, id < size { ids.append((typ, id)) }
        }
        let idKey = ["bos": "bos_token_id", "eos": "eos_token_id", "unk": "unknown_token_id", "sep": "seperator_token_id",
                     "pad": "padding_token_id", "mask": "mask_token_id"]
        for (typ, id) in ids { if let k = idKey[typ] { kv.append(("tokenizer.ggml.\(k)", .u32(UInt32(id)))) } }
        for (typ, v) in addSpecial where ["bos", "eos", "sep"].contains(typ) { kv.append(("tokenizer.ggml.add_\(typ)_token", .bool(v))) }
        if let t = tc["chat_template"]?.stringValue ?? chatTemplate { kv.append(("tokenizer.chat_template", .string(t))) }
        return kv
    }
}
