import Foundation
import Testing
import IngotCore
@testable import IngotForward

/// The fast paths of the tokenizer against their references, and load errors.
struct TokenizerInternalsTests {
    /// Deterministic generator (SplitMix64) so failures reproduce.
    struct SplitMix {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    /// The rank scan (used for short words) and HF's heap algorithm (long words) merge identically: every
    /// vocabulary entry of SmolLM2 spelled out byte by byte, and random byte strings up to 300 bytes.
    @Test func scanMergeMatchesHeapMerge() throws {
        let tok = try BPETokenizer(path: TokenizerFixtures.path("fixtures/tokenizer/smollm2-tokenizer.json"))
        let model = tok.bpe
        var words = [[UInt8]]()
        for case let s? in model.idToString { if let b = ByteLevelAlphabet.bytes(ofToken: s) { words.append(b) } }
        var rng = SplitMix(state: 42)
        let text = Array(try TokenizerFixtures.text("fixtures/texts/c4.utf8").utf8)
        for _ in 0..<2000 {
            let n = 1 + rng.below(300)
            if rng.below(2) == 0 {
                words.append((0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            } else {
                let start = rng.below(text.count - n)
                words.append(Array(text[start..<(start + n)]))  // real text, spaces included
            }
        }
        var scratch = MergeScratch()
        var mismatches = 0
        for w in words {
            var a = w.map { model.byteIds[Int($0)] }
            var b = a
            let n = a.count
            let na = a.withUnsafeMutableBufferPointer { BPEMerge.scan($0, count: n, rules: model.merges, scratch: &scratch) }
            let nb = b.withUnsafeMutableBufferPointer { BPEMerge.heap($0, count: n, rules: model.merges, scratch: &scratch) }
            if Array(a[0..<na]) != Array(b[0..<nb]) { mismatches += 1 }
        }
        #expect(words.count > 50_000)
        #expect(mismatches == 0)
        // Whole vocabulary entries must come back as themselves (BPE reproduces every trained token).
        let the = tok.id(of: "Ġthe")!
        #expect(try tok.encode(" the", addSpecialTokens: false) == [the])
    }

    /// Byte-level BPE is lossless: random strings over an awkward alphabet (every whitespace kind, marks, digits
    /// of many scripts, astral scalars, control characters, apostrophes) decode back to themselves.
    @Test(arguments: ["fixtures/tiny-moe-austen/tokenizer.json", "fixtures/peers/models/tokenizer/tokenizer.json",
                      "fixtures/tokenizer/smollm2-tokenizer.json"])
    func randomTextRoundTrips(path: String) throws {
        let tok = try BPETokenizer(path: TokenizerFixtures.path(path))
        let alphabet: [UInt32] = [0x00, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x27, 0x2C, 0x30, 0x39, 0x41, 0x53, 0x61, 0x73,
                                  0x7F, 0x85, 0xA0, 0xE9, 0x17F, 0x300, 0x301, 0x660, 0x966, 0x1680, 0x2003, 0x200D,
                                  0x2028, 0x2029, 0x202F, 0x3000, 0x4E2D, 0xAC00, 0xFEFF, 0xFFFD, 0xFFFF, 0x1F600,
                                  0x1F3FD, 0x1D7D9, 0x10FFFF]
        var rng = SplitMix(state: 99)
        for _ in 0..<300 {
            var s = String.UnicodeScalarView()
            for _ in 0..<rng.below(40) { s.append(Unicode.Scalar(alphabet[rng.below(alphabet.count)])!) }
            let text = String(s)
            let ids = try tok.encode(text, addSpecialTokens: false)
            #expect(Array(tok.decode(ids).utf8) == Array(text.utf8), "\(path): \(text.debugDescription)")
        }
    }

    /// The byte-keyed hash table agrees with a Dictionary through growth, including the empty key.
    @Test func byteKeyTableMatchesDictionary() {
        var table = ByteKeyTable()
        var reference = [[UInt8]: Int64]()
        var rng = SplitMix(state: 7)
        for i in 0..<20_000 {
            let key = (0..<rng.below(12)).map { _ in UInt8(rng.below(4)) }
            let inserted = table.insert(key, value: Int64(i))
            #expect(inserted == (reference[key] == nil))
            if reference[key] == nil { reference[key] = Int64(i) }
        }
        #expect(table.count == reference.count)
        for (k, v) in reference { #expect(table.value(for: k) == v) }
        #expect(table.value(for: [9, 9, 9]) == nil)
    }

    @Test func byteLevelAlphabetIsABijection() {
        var seen = Set<UInt32>()
        for b in 0..<256 {
            let v = ByteLevelAlphabet.scalarOfByte[b]
            #expect(seen.insert(v).inserted)
            #expect(ByteLevelAlphabet.byte(ofScalar: v) == UInt8(b))
        }
        #expect(ByteLevelAlphabet.scalarOfByte[0x20] == 0x120)  // "Ġ"
        #expect(ByteLevelAlphabet.scalarOfByte[0x0A] == 0x10A)  // "Ċ"
        #expect(ByteLevelAlphabet.byte(ofScalar: 0x20) == nil && ByteLevelAlphabet.byte(ofScalar: 0x144) == nil)
    }

    /// Malformed or unsupported files are errors that name the field.
    @Test func malformedFilesNameTheField() throws {
        let model = #""model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}"#
        let byteLevel = #""pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}"#
        let cases: [(String, String)] = [
            ("[]", "(root)"),
            ("{" + byteLevel + "}", "model"),
            (#"{"model":{"type":"Unigram","vocab":[]},"# + byteLevel + "}", "model.type"),
            (#"{"model":{"type":"BPE","merges":[]},"# + byteLevel + "}", "model.vocab"),
            (#"{"model":{"type":"BPE","vocab":{"a":-1},"merges":[]},"# + byteLevel + "}", "model.vocab[\"a\"]"),
            (#"{"model":{"type":"BPE","vocab":{"a":0,"b":0},"merges":[]},"# + byteLevel + "}", "model.vocab"),
            (#"{"model":{"type":"BPE","vocab":{"a":2000000000},"merges":[]},"# + byteLevel + "}", "model.vocab[\"a\"]"),
            (#"{"model":{"type":"BPE","vocab":{"a":0},"merges":["a c"]},"# + byteLevel + "}", "model.merges[0]"),
            (#"{"model":{"type":"BPE","vocab":{"a":0},"merges":["a a a"]},"# + byteLevel + "}", "model.merges[0]"),
            (#"{"model":{"type":"BPE","vocab":{"a":0},"merges":[7]},"# + byteLevel + "}", "model.merges[0]"),
            (#"{"model":{"type":"BPE","vocab":{"a":0},"merges":[],"byte_fallback":true},"# + byteLevel + "}", "model.byte_fallback"),
            (#"{"model":{"type":"BPE","vocab":{"a":0},"merges":[],"dropout":0.1},"# + byteLevel + "}", "model.dropout"),
            (#"{"model":{"type":"BPE","vocab":{"a":0},"merges":[],"unk_token":"<unk>"},"# + byteLevel + "}", "model.unk_token"),
            ("{" + model + "}", "pre_tokenizer"),
            ("{" + model + #","pre_tokenizer":{"type":"Whitespace"}}"#, "pre_tokenizer.type"),
            ("{" + model + #","pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"ByteLevel"},{"type":"Digits"}]}}"#,
             "pre_tokenizer.pretokenizers[0]"),
            ("{" + model + #","pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\w+"},"behavior":"Isolated"},{"type":"ByteLevel"}]}}"#,
             "pre_tokenizer.pretokenizers[0].pattern.Regex"),
            ("{" + model + #","pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"String":" "},"behavior":"Sideways"},{"type":"ByteLevel"}]}}"#,
             "pre_tokenizer.pretokenizers[0].behavior"),
            ("{" + model + "," + byteLevel + #","normalizer":{"type":"Lowercase"}}"#, "normalizer.type"),
            ("{" + model + "," + byteLevel + #","post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"special_tokens":{}}}"#,
             "post_processor.single[0].SpecialToken.id"),
            ("{" + model + "," + byteLevel + #","post_processor":{"type":"BertLike"}}"#, "post_processor.type"),
            ("{" + model + "," + byteLevel + #","decoder":{"type":"WordPiece"}}"#, "decoder.type"),
            ("{" + model + "," + byteLevel + #","added_tokens":[{"id":"x","content":"<s>"}]}"#, "added_tokens[0].id"),
            ("{" + model + "," + byteLevel + #","added_tokens":[{"id":99999999,"content":"<s>"}]}"#, "added_tokens[0].id"),
            ("{" + model + "," + byteLevel + #","truncation":{"max_length":8}}"#, "truncation"),
            ("{" + model + "," + byteLevel + #","version":"2.0"}"#, "version"),
        ]
        for (text, field) in cases {
            do {
                _ = try BPETokenizer(json: JSON.parse(text))
                Issue.record("accepted: \(text)")
            } catch let e as TokenizerError {
                #expect(e.description.contains(field), "\(e) should name \(field)")
            }
        }
        // A minimal valid file works as in HF: "ab" merges, unknown bytes are dropped (no unk token), and without a
        // decoder the token strings are joined with spaces (HF gives [2, 2] and "ab a" here).
        let ok = try BPETokenizer(json: JSON.parse("{" + model + "," + byteLevel + "}"))
        #expect(try ok.encode("ab", addSpecialTokens: true) == [2])
        #expect(try ok.encode("abcab", addSpecialTokens: false) == [2, 2])
        #expect(ok.vocabSize == 3 && ok.decode([2, 0, 99]) == "ab a")
    }

    /// Degenerate added-token layouts (HF panics on the inverted range) are handled without trapping: an lstrip
    /// token inside the spaces an rstrip token consumed is skipped.
    @Test func overlappingStripTokensDoNotTrap() throws {
        let text = #"{"model":{"type":"BPE","vocab":{"A":0,"Ġ":1,"x":2},"merges":[]},"# +
            #""pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false},"# +
            #""added_tokens":[{"id":3,"content":"A","rstrip":true,"special":true},"# +
            #"{"id":4,"content":" ","lstrip":true,"special":true}]}"#
        let tok = try BPETokenizer(json: JSON.parse(text))
        #expect(tok.vocabSize == 4)  // "A" keeps its vocabulary id 0; " " gets the next id, 3 (as in HF)
        // Inputs HF handles: same ids as tokenizers 0.23.3.
        #expect(try tok.encode("A x", addSpecialTokens: false) == [0, 2])
        #expect(try tok.encode(" A x", addSpecialTokens: false) == [3, 0, 2])
        #expect(try tok.encode("A ", addSpecialTokens: false) == [0])
        // HF panics ("AddedVocabulary bad split") on these; here the " " matches inside the stripped spaces are
        // skipped.
        #expect(try tok.encode("A   x", addSpecialTokens: false) == [0, 2])
        #expect(try tok.encode("x  A  x ", addSpecialTokens: false) == [2, 3, 3, 0, 2, 3])
    }

    @Test func invalidJSONFileNamesThePath() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ingot-tok-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/tokenizer.json"
        try Data("{\"model\": ".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: TokenizerError.self) { try BPETokenizer(path: path) }
        do { _ = try BPETokenizer(path: path) } catch { #expect("\(error)".contains(path)) }
        #expect(throws: IOError.self) { try BPETokenizer(path: dir + "/missing.json") }
    }
}
