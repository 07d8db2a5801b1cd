/// A byte-level BPE tokenizer loaded from a HuggingFace `tokenizer.json` (GPT-2, Llama-3, Qwen2, SmolLM style),
/// producing exactly the ids HF `tokenizers` produces.
///
/// Pipeline of `encode`: split the text on added tokens (leftmost-longest, honouring `single_word`/`lstrip`/
/// `rstrip`/`normalized`; special tokens in the text are recognized) -> normalizer -> pre-tokenizer (splitting
/// steps, then `ByteLevel`) -> BPE on the UTF-8 bytes of each pre-token -> post-processor template when
/// `addSpecialTokens`. The object is immutable and safe to share between threads; each call keeps its own
/// word cache.
///
/// Supported (anything else is a `TokenizerError` naming the field): normalizer null / NFC / NFD / NFKC / NFKD /
/// Sequence; pre-tokenizer `ByteLevel` (`add_prefix_space`, `use_regex`) alone or last in a `Sequence` after
/// `Digits` and `Split` (GPT-2, Llama-3 or Qwen2 regex, or a literal string; every behavior; `invert`); model
/// `BPE` with merges as `"a b"` or `["a", "b"]`, `ignore_merges`, `unk_token`/`fuse_unk`; post-processor
/// ByteLevel / TemplateProcessing / RobertaProcessing / BertProcessing / Sequence; decoder ByteLevel or null.
public final class BPETokenizer: Sendable, Tokenizing {
    /// The load error type (`TokenizerError`).
    public typealias Failure = TokenizerError

    let bpe: BPEModel
    let normalizer: [NormalizerStep]
    let preTokenizer: PreTokenizerPipeline
    let template: PostProcessorTemplate
    let rawMatcher: AddedTokenMatcher
    let normalizedMatcher: AddedTokenMatcher
    let decoderIsByteLevel: Bool
    /// Token string -> id, added tokens taking precedence (HF `token_to_id`).
    let tokenToId: [String: Int]
    /// id -> token string (added token content, or the vocabulary entry), nil for unused ids.
    let idToToken: [String?]
    /// id -> bytes the ByteLevel decoder turns the token into, as ranges of `decodeBytes`.
    let decodeBytes: [UInt8]
    let decodeOffsets: [Int]
    /// Ids of added tokens marked `special`.
    let specialIds: Set<Int>

    /// Beginning-of-sequence id: `bos_token` of a sibling tokenizer_config.json, else the special token the
    /// post-processor puts before the text, else a well-known special token name; nil if none applies.
    public let bosTokenId: Int?
    /// End-of-sequence id, found the same way (`eos_token`, the token after the text in the template, names).
    public let eosTokenId: Int?

    /// Number of ids: one more than the largest id of the vocabulary and added tokens (the embedding rows a
    /// model needs).
    public var vocabSize: Int { idToToken.count }

    /// Loads `path` (a tokenizer.json). A `tokenizer_config.json` in the same directory, if present and
    /// readable, supplies the bos/eos token names.
    public convenience init(path: String) throws {
        let file = try MappedFile(path: path)
        let json: JSON
        do { json = try JSON.parse(file.bytes) } catch let e as JSONError {
            throw TokenizerError.invalidJSON(path: path, reason: e.description)
        }
        let configPath = FileSystem.directoryName(path) + "/tokenizer_config.json"
        var config: JSON?
        if FileSystem.exists(configPath), let m = try? MappedFile(path: configPath) {
            config = try? JSON.parse(m.bytes, rejectDuplicateKeys: false)
        }
        try self.init(json: json, config: config)
    }

    /// Builds the tokenizer from a parsed tokenizer.json document; `file` only names it in JSON errors (kept for
    /// callers that parse the file themselves).
    public convenience init(json: JSON, file: String) throws {
        try self.init(json: json, config: nil)
    }

    /// Builds the tokenizer from a parsed tokenizer.json document (and optionally tokenizer_config.json).
    public init(json: JSON, config: JSON? = nil) throws {
        guard json.objectValue != nil else { throw TokenizerError.wrongType(field: "(root)", expected: "an object") }
        if let v = json["version"], !v.isNull, v.stringValue != "1.0" {
            throw TokenizerError.unsupported(field: "version", value: v.serialized(), supported: "\"1.0\"")
        }
        for f in ["truncation", "padding"] {
            if let v = json[f], !v.isNull {
                throw TokenizerError.unsupported(field: f, value: v.serialized(), supported: "null")
            }
        }
        guard let model = json["model"] else { throw TokenizerError.missingField("model") }
        let bpe = try BPEModel(model)
        normalizer = try NormalizerStep.parse(json["normalizer"], field: "normalizer")
        preTokenizer = try PreTokenizerPipeline.parse(json["pre_tokenizer"], field: "pre_tokenizer")
        template = try PostProcessorTemplate.parse(json["post_processor"], field: "post_processor")
        decoderIsByteLevel = try Self.parseDecoder(json["decoder"])

        // Added tokens, with HF's id assignment (AddedVocabulary::add_tokens): an existing vocabulary id wins,
        // otherwise ids continue after the model vocabulary.
        var added = [AddedToken]()
        if let list = json["added_tokens"], !list.isNull {
            guard let items = list.arrayValue else { throw TokenizerError.wrongType(field: "added_tokens", expected: "an array") }
            for (i, item) in items.enumerated() { added.append(try Self.parseAddedToken(item, field: "added_tokens[\(i)]")) }
        }
        var addedMap = [String: Int]()        // content -> id
        var addedById = [Int: AddedToken]()   // id -> token (later entries replace earlier ones)
        var order = [Int]()                    // ids in first-insertion order (deterministic matcher order)
        var nextId = bpe.vocabCount
        for var t in added where !t.content.isEmpty {
            // An identical repeat (same content and flags) is ignored.
            if let id = addedMap[t.content], var existing = addedById[id] {
                existing.id = t.id
                if existing == t { continue }
            }
            let id: Int
            if let a = addedMap[t.content] { id = a } else if let m = bpe.stringToId[t.content] { id = m } else {
                id = nextId
                nextId += 1
            }
            t.id = id
            addedMap[t.content] = id
            if addedById[id] == nil { order.append(id) }
            addedById[id] = t
        }
        let addedTokens = order.map { addedById[$0]! }
        let norm = normalizer
        rawMatcher = AddedTokenMatcher(tokens: addedTokens,
                                       matchText: addedTokens.map { $0.normalized ? "" : $0.content })
        normalizedMatcher = AddedTokenMatcher(tokens: addedTokens, matchText: addedTokens.map {
            $0.normalized ? NormalizerStep.apply(norm, to: $0.content) : ""
        })
        specialIds = Set(addedTokens.filter(\.special).map(\.id))

        // Vocabulary views.
        var toId = bpe.stringToId
        for (content, id) in addedMap { toId[content] = id }
        tokenToId = toId
        var maxId = bpe.idToString.count - 1
        for t in addedTokens { maxId = max(maxId, t.id) }
        var byId = [String?](repeating: nil, count: maxId + 1)
        for (i, s) in bpe.idToString.enumerated() { byId[i] = s }
        for t in addedTokens { byId[t.id] = t.normalized ? NormalizerStep.apply(norm, to: t.content) : t.content }
        idToToken = byId
        var arena = [UInt8]()
        var offsets = [0]
        offsets.reserveCapacity(byId.count + 1)
        for s in byId {
            if let s {
                if decoderIsByteLevel { arena += ByteLevelAlphabet.decodedBytes(ofToken: s) } else { arena += Array(s.utf8) }
            }
            offsets.append(arena.count)
        }
        decodeBytes = arena
        decodeOffsets = offsets
        self.bpe = bpe

        // bos / eos.
        func configToken(_ key: String) -> Int? {
            guard let v = config?[key] else { return nil }
            let name = v.stringValue ?? v["content"]?.stringValue
            return name.flatMap { toId[$0] }
        }
        func named(_ names: [String]) -> Int? {
            for n in names { if let id = addedMap[n] { return id } }
            return nil
        }
        bosTokenId = configToken("bos_token") ?? template.prefix.first
            ?? named(["<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>", "<|endoftext|>"])
        eosTokenId = configToken("eos_token") ?? template.suffix.last
            ?? named(["<|end_of_text|>", "</s>", "<eos>", "<|endoftext|>"])
    }

    private static func parseDecoder(_ json: JSON?) throws -> Bool {
        guard let json, !json.isNull else { return false }
        guard let type = json["type"]?.stringValue else { throw TokenizerError.missingField("decoder.type") }
        if type == "ByteLevel" { return true }
        if type == "Sequence", let list = json["decoders"]?.arrayValue, list.count == 1,
           list[0]["type"]?.stringValue == "ByteLevel" {
            return true
        }
        throw TokenizerError.unsupported(field: "decoder.type", value: type, supported: "null, ByteLevel")
    }

    private static func parseAddedToken(_ json: JSON, field: String) throws -> AddedToken {
        guard let id = json["id"]?.intValue, id >= 0, id < BPEModel.maxId else {
            throw TokenizerError.wrongType(field: field + ".id", expected: "an integer in 0..<\(BPEModel.maxId)")
        }
        guard let content = json["content"]?.stringValue else {
            throw TokenizerError.wrongType(field: field + ".content", expected: "a string")
        }
        func flag(_ k: String, _ d: Bool) throws -> Bool {
            guard let v = json[k], !v.isNull else { return d }
            guard let b = v.boolValue else { throw TokenizerError.wrongType(field: "\(field).\(k)", expected: "a boolean") }
            return b
        }
        let special = try flag("special", false)
        return AddedToken(id: id, content: content, singleWord: try flag("single_word", false),
                          lstrip: try flag("lstrip", false), rstrip: try flag("rstrip", false),
                          normalized: try flag("normalized", !special), special: special)
    }

    // MARK: lookup

    /// Id of a token string as written in tokenizer.json (byte-level alphabet, e.g. "Ġthe"), or of an added token.
    public func id(of token: String) -> Int? { tokenToId[token] }

    /// Token string of `id` as written in tokenizer.json, nil if no token has that id.
    public func token(of id: Int) -> String? { id >= 0 && id < idToToken.count ? idToToken[id] : nil }

    /// True for ids of added tokens marked `special`.
    public func isSpecial(_ id: Int) -> Bool { specialIds.contains(id) }

    // MARK: encode

    public func encode(_ text: String, addSpecialTokens: Bool) throws -> [Int] {
        var out = [Int]()
        out.reserveCapacity(text.utf8.count / 3 + 4)
        if addSpecialTokens { out += template.prefix }
        var work = EncodeScratch()
        var text = text
        text.withUTF8 { bytes in
            for piece in rawMatcher.split(bytes) {
                if let id = piece.tokenId { out.append(id); continue }
                let slice = UnsafeBufferPointer(rebasing: bytes[piece.start..<piece.end])
                if normalizer.isEmpty {
                    encodeNormalized(slice, &out, &work)
                } else {
                    var normalized = NormalizerStep.apply(normalizer, to: String(decoding: slice, as: UTF8.self))
                    normalized.withUTF8 { encodeNormalized($0, &out, &work) }
                }
            }
        }
        if addSpecialTokens { out += template.suffix }
        return out
    }

    /// Second added-token pass (tokens with `normalized: true`), then pre-tokenization and BPE.
    private func encodeNormalized(_ bytes: UnsafeBufferPointer<UInt8>, _ out: inout [Int], _ work: inout EncodeScratch) {
        if normalizedMatcher.isEmpty {
            encodePlain(bytes, &out, &work)
            return
        }
        for piece in normalizedMatcher.split(bytes) {
            if let id = piece.tokenId { out.append(id); continue }
            encodePlain(UnsafeBufferPointer(rebasing: bytes[piece.start..<piece.end]), &out, &work)
        }
    }

    private func encodePlain(_ bytes: UnsafeBufferPointer<UInt8>, _ out: inout [Int], _ work: inout EncodeScratch) {
        guard !bytes.isEmpty else { return }
        let n = UTF8Scalars.decode(bytes, into: &work.scalars, classes: &work.classes)
        var state = WordState()
        swap(&state, &work.bpe)
        defer { swap(&state, &work.bpe) }
        let model = bpe
        preTokenizer.forEachPreToken(scalars: &work.scalars, classes: &work.classes, count: n,
                                     pieces: &work.pieces) { s, a, b in
            state.word.removeAll(keepingCapacity: true)
            UTF8Scalars.encode(s, a, b, into: &state.word)
            model.encodeWord(&state, into: &out)
        }
    }

    // MARK: decode

    /// Text of `ids` (HF `decode` with `skip_special_tokens=False`): tokens are concatenated and, with the
    /// ByteLevel decoder, mapped back to bytes; invalid UTF-8 becomes U+FFFD. Unknown ids are skipped.
    public func decode(_ ids: [Int]) -> String { decode(ids, skipSpecialTokens: false) }

    /// Like `decode(_:)`; with `skipSpecialTokens`, special added tokens are left out.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String {
        if !decoderIsByteLevel {
            // No decoder: HF joins the token strings with spaces.
            let toks = ids.compactMap { id -> String? in
                guard let t = token(of: id), !(skipSpecialTokens && specialIds.contains(id)) else { return nil }
                return t
            }
            return toks.joined(separator: " ")
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(ids.count * 4)
        for id in ids where id >= 0 && id < idToToken.count && idToToken[id] != nil {
            if skipSpecialTokens && specialIds.contains(id) { continue }
            bytes.append(contentsOf: decodeBytes[decodeOffsets[id]..<decodeOffsets[id + 1]])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Per-call buffers of `encode`.
struct EncodeScratch {
    var scalars: [UInt32] = []
    var classes: [UInt8] = []
    var pieces: [Int] = []
    var bpe = WordState()
}
