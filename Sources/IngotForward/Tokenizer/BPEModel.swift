/// The `model` of a byte-level BPE tokenizer.json: vocabulary and ranked merges, converted to raw bytes.
struct BPEModel: Sendable {
    /// Number of vocabulary entries (HF `get_vocab_size` of the model; added-token ids continue from here).
    let vocabCount: Int
    let stringToId: [String: Int]
    /// id -> vocabulary string (nil for ids not in the vocabulary).
    let idToString: [String?]
    /// Raw bytes of each byte-level vocabulary entry -> id.
    let vocabBytes: ByteKeyTable
    /// Id of each single byte, -1 if the vocabulary lacks it.
    let byteIds: [Int32]
    let merges: MergeTable
    let unkId: Int32?
    let fuseUnk: Bool
    let ignoreMerges: Bool

    /// Ids must be below this (2^24; real vocabularies have < 300k entries). Bounds the id-indexed tables an
    /// untrusted file can make us allocate.
    static let maxId = 1 << 24

    /// Pre-tokens longer than this many bytes are not cached (as in HF).
    static let cacheMaxBytes = 256
    /// The per-call word cache stops growing at this many entries.
    static let cacheMaxEntries = 1 << 20

    init(_ json: JSON) throws {
        guard json.objectValue != nil else { throw TokenizerError.wrongType(field: "model", expected: "an object") }
        if let t = json["type"], !t.isNull, t.stringValue != "BPE" {
            throw TokenizerError.unsupported(field: "model.type", value: t.serialized(), supported: "\"BPE\"")
        }
        if let d = json["dropout"], !d.isNull, d.doubleValue != 0 {
            throw TokenizerError.unsupported(field: "model.dropout", value: d.serialized(), supported: "null (deterministic BPE)")
        }
        for f in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = json[f], !v.isNull, v.stringValue != "" {
                throw TokenizerError.unsupported(field: "model." + f, value: v.serialized(), supported: "null")
            }
        }
        func flag(_ k: String) throws -> Bool {
            guard let v = json[k], !v.isNull else { return false }
            guard let b = v.boolValue else { throw TokenizerError.wrongType(field: "model." + k, expected: "a boolean") }
            return b
        }
        if try flag("byte_fallback") {
            throw TokenizerError.unsupported(field: "model.byte_fallback", value: "true", supported: "false (byte-level BPE)")
        }
        fuseUnk = try flag("fuse_unk")
        ignoreMerges = try flag("ignore_merges")

        guard let vocab = json["vocab"] else { throw TokenizerError.missingField("model.vocab") }
        guard let entries = vocab.objectValue else { throw TokenizerError.wrongType(field: "model.vocab", expected: "an object") }
        var toId = [String: Int](minimumCapacity: entries.count)
        var maxId = -1
        for (token, v) in entries {
            guard let id = v.intValue, id >= 0, id < Self.maxId else {
                throw TokenizerError.wrongType(field: "model.vocab[\"\(token)\"]", expected: "an integer in 0..<\(Self.maxId)")
            }
            toId[token] = id
            maxId = max(maxId, id)
        }
        var byId = [String?](repeating: nil, count: maxId + 1)
        var table = ByteKeyTable(minimumCapacity: entries.count)
        var single = [Int32](repeating: -1, count: 256)
        for (token, _) in entries {
            let id = toId[token]!
            if let other = byId[id] {
                throw TokenizerError.invalidValue(field: "model.vocab", reason: "id \(id) is used by both \"\(other)\" and \"\(token)\"")
            }
            byId[id] = token
            if let bytes = ByteLevelAlphabet.bytes(ofToken: token) {
                table.insert(bytes, value: Int64(id))
                if bytes.count == 1 { single[Int(bytes[0])] = Int32(id) }
            }
        }
        vocabCount = entries.count
        stringToId = toId
        idToString = byId
        vocabBytes = table
        byteIds = single

        if let u = json["unk_token"], !u.isNull {
            guard let name = u.stringValue else { throw TokenizerError.wrongType(field: "model.unk_token", expected: "a string or null") }
            guard let id = toId[name] else {
                throw TokenizerError.invalidValue(field: "model.unk_token", reason: "\"\(name)\" is not in model.vocab")
            }
            unkId = Int32(id)
        } else {
            unkId = nil
        }

        guard let m = json["merges"] else { throw TokenizerError.missingField("model.merges") }
        guard let list = m.arrayValue else { throw TokenizerError.wrongType(field: "model.merges", expected: "an array") }
        var rules = MergeTable(minimumCapacity: list.count)
        for (rank, item) in list.enumerated() {
            let a: String, b: String
            if let line = item.stringValue {
                let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw TokenizerError.invalidValue(field: "model.merges[\(rank)]", reason: "\"\(line)\" is not two tokens separated by one space")
                }
                (a, b) = (String(parts[0]), String(parts[1]))
            } else if let pair = item.arrayValue, pair.count == 2, let x = pair[0].stringValue, let y = pair[1].stringValue {
                (a, b) = (x, y)
            } else {
                throw TokenizerError.wrongType(field: "model.merges[\(rank)]", expected: "\"a b\" or [\"a\", \"b\"]")
            }
            guard let ia = toId[a] else { throw TokenizerError.mergeOutOfVocabulary(index: rank, token: a) }
            guard let ib = toId[b] else { throw TokenizerError.mergeOutOfVocabulary(index: rank, token: b) }
            guard let ic = toId[a + b] else { throw TokenizerError.mergeOutOfVocabulary(index: rank, token: a + b) }
            rules.set(Int32(ia), Int32(ib), rank: UInt32(rank), merged: Int32(ic))
        }
        merges = rules
    }

    /// Appends the ids of the pre-token in `state.word` (raw UTF-8 bytes) to `out`.
    func encodeWord(_ state: inout WordState, into out: inout [Int]) {
        let n = state.word.count
        if n == 0 { return }
        let hit: Int64? = state.word.withUnsafeBufferPointer { w in
            if ignoreMerges, let id = vocabBytes.value(for: w) { return id | Int64(1) << 40 }
            if n <= Self.cacheMaxBytes { return state.cache.value(for: w) }
            return nil
        }
        if let v = hit {
            if v >> 40 == 1 { out.append(Int(v & 0xFF_FFFF_FFFF)); return }
            let offset = Int(v >> 16), count = Int(v & 0xFFFF)
            state.cachedIds.withUnsafeBufferPointer { c in
                for i in offset..<(offset + count) { out.append(Int(c[i])) }
            }
            return
        }
        // Initial symbols: one per byte (HF merge_word over the byte-level characters).
        state.symbols.removeAll(keepingCapacity: true)
        var pendingUnk = false
        for b in state.word {
            let id = byteIds[Int(b)]
            if id >= 0 {
                if pendingUnk, let u = unkId { state.symbols.append(u); pendingUnk = false }
                state.symbols.append(id)
            } else if let u = unkId {
                if pendingUnk && !fuseUnk { state.symbols.append(u) }
                pendingUnk = true
            }
        }
        if pendingUnk, let u = unkId { state.symbols.append(u) }
        let count = state.symbols.count
        let merged = state.symbols.withUnsafeMutableBufferPointer { ids in
            BPEMerge.merge(ids, count: count, rules: merges, scratch: &state.scratch)
        }
        for i in 0..<merged { out.append(Int(state.symbols[i])) }
        if n <= Self.cacheMaxBytes, state.cache.count < Self.cacheMaxEntries, state.cachedIds.count < 1 << 23 {
            let offset = state.cachedIds.count
            state.cachedIds.append(contentsOf: state.symbols[0..<merged])
            _ = state.word.withUnsafeBufferPointer { w in
                state.cache.insert(w, value: Int64(offset) << 16 | Int64(merged))
            }
        }
    }
}

/// Per-call state of the BPE model: the current pre-token's bytes, merge scratch, and the word cache
/// (pre-token bytes -> span of `cachedIds`).
struct WordState {
    var word: [UInt8] = []
    var symbols: [Int32] = []
    var scratch = MergeScratch()
    var cache = ByteKeyTable()
    var cachedIds: [Int32] = []
}
