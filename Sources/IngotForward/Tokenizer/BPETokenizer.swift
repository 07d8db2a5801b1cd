import Foundation
import IngotCore

/// Encodes text to token ids.
public protocol Tokenizing: Sendable {
    func encode(_ text: String, addSpecialTokens: Bool) throws -> [Int]
}

/// A Hugging Face `tokenizer.json` byte-level BPE tokenizer (GPT-2, Llama-3, SmolLM families), producing the ids
/// the `tokenizers` library produces.
///
/// Supported, and anything else is a clear error naming the field: no normalizer (or NFC); pre-tokenizers
/// `ByteLevel` (`use_regex`, `add_prefix_space`) and `Sequence` of `Digits` + `ByteLevel`; model `BPE` with
/// merges as `"a b"` strings or `["a", "b"]` pairs, `ignore_merges`; added tokens matched before
/// pre-tokenization; post-processors `ByteLevel` and `TemplateProcessing` (special tokens added when asked).
public final class BPETokenizer: Tokenizing, @unchecked Sendable {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case invalid(file: String, field: String, reason: String)
        case unsupported(file: String, field: String, value: String)
        case unknownToken(String)

        public var description: String {
            switch self {
            case let .invalid(f, k, r): "\(f): \(k): \(r)"
            case let .unsupported(f, k, v): "\(f): \(k) '\(v)' is not supported (byte-level BPE tokenizers only)"
            case let .unknownToken(t): "token '\(t)' is not in the vocabulary (a byte-level vocabulary should cover every byte)"
            }
        }
    }

    public let vocabSize: Int
    private let vocab: [String: Int]
    private let idToToken: [Int: String]
    private let ranks: [PairKey: Int]
    private let added: [(content: String, id: Int)]  // longest first
    private let splitDigits: Bool
    private let addPrefixSpace: Bool
    private let ignoreMerges: Bool
    private let nfc: Bool
    private let templatePrefix: [Int], templateSuffix: [Int]
    /// Pre-token → ids; bounded (cleared when full), lock-protected so one tokenizer serves many threads.
    private var cache: [String: [Int]] = [:]
    private let cacheLock = NSLock()
    private static let cacheLimit = 200_000

    struct PairKey: Hashable { let a: Int, b: Int }  // ids of the two symbols

    /// GPT-2's reversible byte → printable character map.
    static let byteToChar: [Character] = {
        var bs = Array(33...126) + Array(161...172) + Array(174...255)
        var cs = bs
        var n = 0
        for b in 0..<256 where !bs.contains(b) { bs.append(b); cs.append(256 + n); n += 1 }
        var table = [Character](repeating: " ", count: 256)
        for (b, c) in zip(bs, cs) { table[b] = Character(Unicode.Scalar(UInt32(c))!) }
        return table
    }()
    static let charToByte: [Character: UInt8] = {
        var m: [Character: UInt8] = [:]
        for (b, c) in byteToChar.enumerated() { m[c] = UInt8(b) }
        return m
    }()

    public convenience init(path: String) throws {
        let json: JSON
        do { json = try JSON.parse(FileSystem.read(path), rejectDuplicateKeys: false) } catch let e as JSONError {
            throw Failure.invalid(file: path, field: "tokenizer.json", reason: "not valid JSON (\(e))")
        }
        try self.init(json: json, file: path)
    }

    public init(json: JSON, file: String) throws {
        func bad(_ k: String, _ r: String) -> Failure { .invalid(file: file, field: k, reason: r) }
        guard let model = json["model"], model["type"]?.stringValue ?? "BPE" == "BPE" else {
            throw Failure.unsupported(file: file, field: "model.type", value: json["model"]?["type"]?.stringValue ?? "missing")
        }
        if model["byte_fallback"]?.boolValue == true { throw Failure.unsupported(file: file, field: "model.byte_fallback", value: "true") }
        guard let v = model["vocab"]?.objectValue else { throw bad("model.vocab", "missing or not an object") }
        var vocab: [String: Int] = [:]
        var rev: [Int: String] = [:]
        for (k, idJSON) in v {
            guard let id = idJSON.intValue, id >= 0 else { throw bad("model.vocab", "id of '\(k)' is not a non-negative integer") }
            vocab[k] = id
            rev[id] = k
        }
        // Normalizer
        var nfc = false
        if let n = json["normalizer"], !n.isNull {
            switch n["type"]?.stringValue {
            case "NFC": nfc = true
            default: throw Failure.unsupported(file: file, field: "normalizer.type", value: n["type"]?.stringValue ?? "?")
            }
        }
        // Pre-tokenizer
        var digits = false, prefix = false
        func byteLevel(_ p: JSON) throws {
            guard p["use_regex"]?.boolValue ?? true else { throw Failure.unsupported(file: file, field: "pre_tokenizer.use_regex", value: "false") }
            prefix = p["add_prefix_space"]?.boolValue ?? false
        }
        guard let pre = json["pre_tokenizer"] else { throw bad("pre_tokenizer", "missing") }
        switch pre["type"]?.stringValue {
        case "ByteLevel": try byteLevel(pre)
        case "Sequence":
            let list = pre["pretokenizers"]?.arrayValue ?? []
            guard !list.isEmpty, list.last?["type"]?.stringValue == "ByteLevel" else {
                throw Failure.unsupported(file: file, field: "pre_tokenizer", value: "Sequence not ending in ByteLevel")
            }
            for p in list.dropLast() {
                guard p["type"]?.stringValue == "Digits", p["individual_digits"]?.boolValue == true else {
                    throw Failure.unsupported(file: file, field: "pre_tokenizer.pretokenizers", value: p["type"]?.stringValue ?? "?")
                }
                digits = true
            }
            try byteLevel(list.last!)
        default: throw Failure.unsupported(file: file, field: "pre_tokenizer.type", value: pre["type"]?.stringValue ?? "?")
        }
        // Merges
        guard let merges = model["merges"]?.arrayValue else { throw bad("model.merges", "missing") }
        var ranks: [PairKey: Int] = [:]
        for (r, m) in merges.enumerated() {
            let pair: [String]
            if let s = m.stringValue {
                let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                pair = parts
            } else { pair = m.arrayValue?.compactMap(\.stringValue) ?? [] }
            guard pair.count == 2, let a = vocab[pair[0]], let b = vocab[pair[1]] else {
                throw bad("model.merges", "entry \(r) is not a pair of vocabulary tokens")
            }
            if ranks[PairKey(a: a, b: b)] == nil { ranks[PairKey(a: a, b: b)] = r }
        }
        // Added tokens
        var added: [(String, Int)] = []
        for a in json["added_tokens"]?.arrayValue ?? [] {
            guard let c = a["content"]?.stringValue, let id = a["id"]?.intValue else { throw bad("added_tokens", "entry without content/id") }
            added.append((c, id))
            vocab[c] = id
            rev[id] = c
        }
        added.sort { $0.0.utf8.count > $1.0.utf8.count }
        // Post-processor (special tokens around a single sequence)
        var pfx: [Int] = [], sfx: [Int] = []
        if let post = json["post_processor"], !post.isNull {
            switch post["type"]?.stringValue {
            case "ByteLevel": break
            case "TemplateProcessing":
                var seenSequence = false
                for item in post["single"]?.arrayValue ?? [] {
                    if item["Sequence"] != nil { seenSequence = true; continue }
                    guard let t = item["SpecialToken"]?["id"]?.stringValue, let id = vocab[t] else {
                        throw bad("post_processor.single", "unknown item")
                    }
                    if seenSequence { sfx.append(id) } else { pfx.append(id) }
                }
            default: throw Failure.unsupported(file: file, field: "post_processor.type", value: post["type"]?.stringValue ?? "?")
            }
        }
        self.vocab = vocab
        idToToken = rev
        vocabSize = max(vocab.count, (rev.keys.max() ?? -1) + 1)
        self.ranks = ranks
        self.added = added
        splitDigits = digits
        addPrefixSpace = prefix
        ignoreMerges = model["ignore_merges"]?.boolValue ?? false
        self.nfc = nfc
        templatePrefix = pfx
        templateSuffix = sfx
    }

    public func id(of token: String) -> Int? { vocab[token] }

    public func encode(_ text: String, addSpecialTokens: Bool) throws -> [Int] {
        var ids: [Int] = addSpecialTokens ? templatePrefix : []
        var rest = Substring(text)
        // Added tokens are matched first (longest first); the text between them is tokenized normally.
        while !rest.isEmpty {
            var best: (range: Range<Substring.Index>, id: Int)? = nil
            for a in added {
                if let r = rest.range(of: a.content), best == nil || r.lowerBound < best!.range.lowerBound { best = (r, a.id) }
            }
            guard let b = best else { try encodeOrdinary(rest, into: &ids); break }
            try encodeOrdinary(rest[..<b.range.lowerBound], into: &ids)
            ids.append(b.id)
            rest = rest[b.range.upperBound...]
        }
        if addSpecialTokens { ids += templateSuffix }
        return ids
    }

    private func encodeOrdinary(_ text: Substring, into ids: inout [Int]) throws {
        if text.isEmpty { return }
        var t = nfc ? String(text).precomposedStringWithCanonicalMapping : String(text)
        if addPrefixSpace, !t.hasPrefix(" ") { t = " " + t }
        let scalars = Array(t.unicodeScalars)
        let kinds = scalars.map(PreTokenizer.kind)
        var spans: [Range<Int>] = []
        if splitDigits {
            var pieces: [Range<Int>] = []
            PreTokenizer.splitDigits(kinds, in: 0..<scalars.count, into: &pieces)
            for p in pieces { PreTokenizer.gpt2(scalars, kinds, in: p, into: &spans) }
        } else {
            PreTokenizer.gpt2(scalars, kinds, in: 0..<scalars.count, into: &spans)
        }
        for span in spans {
            var word = ""
            for u in scalars[span] { for b in String(u).utf8 { word.append(Self.byteToChar[Int(b)]) } }
            try ids.append(contentsOf: bpe(word))
        }
    }

    /// Merges the characters of one pre-token by rank (lowest first), as the BPE model does.
    func bpe(_ word: String) throws -> [Int] {
        if let hit = cacheLock.withLock({ cache[word] }) { return hit }
        if ignoreMerges, let id = vocab[word] { return [id] }
        var parts: [Int] = []
        for ch in word {
            guard let id = vocab[String(ch)] else { throw Failure.unknownToken(String(ch)) }
            parts.append(id)
        }
        while parts.count > 1 {
            var bestRank = Int.max, bestAt = -1
            for i in 0..<(parts.count - 1) {
                if let r = ranks[PairKey(a: parts[i], b: parts[i + 1])], r < bestRank { bestRank = r; bestAt = i }
            }
            if bestAt < 0 { break }
            let merged = idToToken[parts[bestAt]]! + idToToken[parts[bestAt + 1]]!
            guard let id = vocab[merged] else { throw Failure.unknownToken(merged) }
            // Merge every occurrence of this pair, left to right.
            let a = parts[bestAt], b = parts[bestAt + 1]
            var out: [Int] = []
            out.reserveCapacity(parts.count)
            var i = 0
            while i < parts.count {
                if i + 1 < parts.count && parts[i] == a && parts[i + 1] == b { out.append(id); i += 2 } else { out.append(parts[i]); i += 1 }
            }
            parts = out
        }
        cacheLock.withLock {
            if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[word] = parts
        }
        return parts
    }

    /// Text of `ids` (byte-level decoding; special tokens as their content).
    public func decode(_ ids: [Int]) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            guard let tok = idToToken[id] else { continue }
            if added.contains(where: { $0.id == id }) { bytes += Array(tok.utf8); continue }
            for ch in tok { if let b = Self.charToByte[ch] { bytes.append(b) } else { bytes += Array(String(ch).utf8) } }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
