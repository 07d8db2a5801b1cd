import Foundation
import Testing
import IngotCore
@testable import IngotForward
import IngotTestSupport

/// Fixture access for the tokenizer tests (paths relative to the repository root).
enum TokenizerFixtures {
    static func path(_ relative: String) -> String {
        relative.hasPrefix("fixtures/") ? fixture(String(relative.dropFirst("fixtures/".count))) : repoRoot + "/" + relative
    }
    static func json(_ relative: String) throws -> JSON { try JSON.parse(FileSystem.read(path(relative))) }
    static func text(_ relative: String) throws -> String {
        String(decoding: try FileSystem.read(path(relative)), as: UTF8.self)
    }

    /// The tokenizer an expected_<name>.json was made with: the base file plus its overrides.
    static func tokenizer(for expected: JSON) throws -> BPETokenizer {
        let base = expected["tokenizer"]!.stringValue!
        guard let overrides = expected["overrides"]?.objectValue else { return try BPETokenizer(path: path(base)) }
        var doc = try json(base).objectValue!
        for (k, v) in overrides {
            if let i = doc.firstIndex(where: { $0.key == k }) { doc[i].value = v } else { doc.append((k, v)) }
        }
        if let modelOverrides = expected["model_overrides"]?.objectValue, !modelOverrides.isEmpty {
            let mi = doc.firstIndex(where: { $0.key == "model" })!
            var model = doc[mi].value.objectValue!
            for (k, v) in modelOverrides {
                if let i = model.firstIndex(where: { $0.key == k }) { model[i].value = v } else { model.append((k, v)) }
            }
            doc[mi].value = .object(model)
        }
        return try BPETokenizer(json: .object(doc))
    }

    static func ints(_ j: JSON?) -> [Int] { j?.arrayValue?.compactMap(\.intValue) ?? [] }

    /// FNV-1a 64 of the ids as little-endian UInt32, as lower-case hex (same as the fixture script).
    static func fnv1a64(_ ids: [Int]) -> String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for id in ids {
            var v = UInt32(truncatingIfNeeded: id)
            for _ in 0..<4 {
                h = (h ^ UInt64(v & 0xFF)) &* 0x100_0000_01B3
                v >>= 8
            }
        }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// nil when equal, else a short description of the first difference (keeps failure reports readable).
    static func difference(_ got: [Int], _ want: [Int]) -> String? {
        if got == want { return nil }
        let i = (0..<min(got.count, want.count)).first { got[$0] != want[$0] } ?? min(got.count, want.count)
        let lo = max(0, i - 3)
        return "counts \(got.count) vs \(want.count); first difference at \(i): got \(Array(got[lo..<min(got.count, i + 5)]))"
            + " want \(Array(want[lo..<min(want.count, i + 5)]))"
    }
}

/// The byte-level BPE tokenizer gives exactly the ids (and decoded text) HF `tokenizers` gives, on real text and
/// an adversarial set (fixtures from scripts/make_tokenizer_fixtures.py).
struct TokenizerTests {
    static let names = ["austen", "peers", "smollm2", "llama3style", "prefixflags", "digitsroberta", "qwen2style", "splitmisc"]

    @Test(arguments: names)
    func matchesHFTokenizers(name: String) throws {
        let expected = try TokenizerFixtures.json("fixtures/tokenizer/expected_\(name).json")
        let tok = try TokenizerFixtures.tokenizer(for: expected)
        #expect(tok.vocabSize == expected["vocab_size"]?.intValue)
        for (token, id) in expected["token_ids"]!.objectValue! {
            #expect(tok.id(of: token) == id.intValue, "\(name): id(of: \(token))")
        }
        let cases = expected["cases"]!.arrayValue!
        #expect(cases.count > 200)
        var failures = 0
        for c in cases {
            let text = c["text"]!.stringValue!
            let want = TokenizerFixtures.ints(c["ids"])
            let got = try tok.encode(text, addSpecialTokens: false)
            let diff = TokenizerFixtures.difference(got, want)
            if diff != nil { failures += 1 }
            #expect(diff == nil, "\(name): \(String(text.prefix(80)).debugDescription)")
            let withSpecial = try tok.encode(text, addSpecialTokens: true)
            #expect(TokenizerFixtures.difference(withSpecial, TokenizerFixtures.ints(c["ids_with_special"])) == nil,
                    "\(name) with special tokens: \(String(text.prefix(80)).debugDescription)")
            // Byte-exact (String == would accept canonically equivalent text).
            #expect(Array(tok.decode(want).utf8) == Array(c["decoded"]!.stringValue!.utf8),
                    "\(name) decode: \(String(text.prefix(80)).debugDescription)")
            #expect(Array(tok.decode(want, skipSpecialTokens: true).utf8) == Array(c["decoded_skip_special"]!.stringValue!.utf8),
                    "\(name) decode skipping specials: \(String(text.prefix(80)).debugDescription)")
            if failures > 5 { break }  // keep the report readable
        }
        for w in expected["whole_files"]!.arrayValue! {
            let file = w["file"]!.stringValue!
            let ids = try tok.encode(try TokenizerFixtures.text(file), addSpecialTokens: false)
            #expect(ids.count == w["count"]?.intValue, "\(name) on \(file)")
            #expect(TokenizerFixtures.fnv1a64(ids) == w["fnv1a64"]?.stringValue, "\(name) on \(file)")
        }
    }

    @Test func smolLM2WikiIdsMatchReference() throws {
        let tok = try BPETokenizer(path: TokenizerFixtures.path("fixtures/tokenizer/smollm2-tokenizer.json"))
        let ref = try TokenizerFixtures.json("fixtures/texts/wiki_smollm2_ids.json")
        let want = TokenizerFixtures.ints(ref["ids"])
        #expect(want.count == 2048)
        let text = try TokenizerFixtures.text("fixtures/texts/wiki.utf8")
        let ids = try tok.encode(String(text.prefix(20_000)), addSpecialTokens: false)
        #expect(TokenizerFixtures.difference(Array(ids.prefix(want.count)), want) == nil)
    }

    @Test func austenEvaluationProtocol() throws {
        // reference.json: persuasion.txt[443567:] (Python slices characters = scalars), no special tokens.
        let tok = try BPETokenizer(path: TokenizerFixtures.path("fixtures/tiny-moe-austen/tokenizer.json"))
        let ref = try TokenizerFixtures.json("fixtures/tiny-moe-austen/reference.json")
        let text = try TokenizerFixtures.text("fixtures/texts/persuasion.txt")
        var tail = String.UnicodeScalarView()
        tail.append(contentsOf: text.unicodeScalars.dropFirst(443_567))
        let evalText = String(tail)
        #expect(evalText.unicodeScalars.count == ref["eval_text_chars"]?.intValue)
        let ids = try tok.encode(evalText, addSpecialTokens: false)
        #expect(ids.count == 6156)
        #expect(ids.count == ref["eval_tokens"]?.intValue)
        let first = TokenizerFixtures.ints(ref["reference_input_ids"])
        #expect(first.count == 128)
        #expect(TokenizerFixtures.difference(Array(ids.prefix(first.count)), first) == nil)
        #expect(Array(tok.decode(ids).utf8) == Array(evalText.utf8))
    }

    @Test(arguments: ["fixtures/tiny-moe-austen/tokenizer.json", "fixtures/peers/models/tokenizer/tokenizer.json",
                      "fixtures/tokenizer/smollm2-tokenizer.json"])
    func decodeRoundTripsRealText(path: String) throws {
        let tok = try BPETokenizer(path: TokenizerFixtures.path(path))
        for file in ["wiki.utf8", "c4.utf8", "emma.txt"] {
            let text = String(try TokenizerFixtures.text("fixtures/texts/" + file).prefix(30_000))
            let ids = try tok.encode(text, addSpecialTokens: false)
            #expect(ids.allSatisfy { $0 >= 0 && $0 < tok.vocabSize })
            #expect(Array(tok.decode(ids).utf8) == Array(text.utf8), "\(path) on \(file)")
        }
    }

    @Test func specialTokenIds() throws {
        let austen = try BPETokenizer(path: TokenizerFixtures.path("fixtures/tiny-moe-austen/tokenizer.json"))
        #expect(austen.bosTokenId == 0 && austen.eosTokenId == 0)  // tokenizer_config.json: <|endoftext|> for both
        #expect(austen.isSpecial(1) && !austen.isSpecial(100))
        let peers = try BPETokenizer(path: TokenizerFixtures.path("fixtures/peers/models/tokenizer/tokenizer.json"))
        #expect(peers.bosTokenId == peers.id(of: "<s>") && peers.eosTokenId == peers.id(of: "</s>"))
        let llama = try TokenizerFixtures.tokenizer(for: TokenizerFixtures.json("fixtures/tokenizer/expected_llama3style.json"))
        #expect(llama.bosTokenId == 1 && llama.eosTokenId == 2)  // from the TemplateProcessing post-processor
        #expect(try llama.encode("", addSpecialTokens: true) == [1, 2])
    }

    @Test func concurrentEncodingGivesTheSameIds() throws {
        let tok = try BPETokenizer(path: TokenizerFixtures.path("fixtures/tokenizer/smollm2-tokenizer.json"))
        let text = try TokenizerFixtures.text("fixtures/texts/c4.utf8")
        let chunks = (0..<8).map { i in String(text.dropFirst(i * 3000).prefix(3000)) }
        let serial = try chunks.map { try tok.encode($0, addSpecialTokens: false) }
        let results = Results(count: chunks.count)
        parallelFor(chunks.count) { i in results.set(i, (try? tok.encode(chunks[i], addSpecialTokens: false)) ?? []) }
        #expect(results.values == serial)
    }
}

/// Thread-safe result slots for the concurrency test.
final class Results: @unchecked Sendable {
    private var slots: [[Int]]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: [], count: count) }
    func set(_ i: Int, _ v: [Int]) { lock.withLock { slots[i] = v } }
    var values: [[Int]] { lock.withLock { slots } }
}
