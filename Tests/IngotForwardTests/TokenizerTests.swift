import Foundation
import Testing
import IngotCore
@testable import IngotForward

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path
func fixture(_ p: String) -> String { repoRoot + "/fixtures/" + p }

/// The byte-level BPE tokenizer gives exactly the ids HF `tokenizers` gives (scripts/make_tokenizer_fixtures.py).
struct TokenizerTests {
    @Test(arguments: ["austen", "peers", "smollm2"])
    func matchesHFTokenizers(name: String) throws {
        let expected = try JSON.parse(FileSystem.read(fixture("tokenizer/expected_\(name).json")))
        let tok = try BPETokenizer(path: repoRoot + "/" + expected["tokenizer"]!.stringValue!)
        for c in expected["cases"]!.arrayValue! {
            let text = c["text"]!.stringValue!
            let want = c["ids"]!.arrayValue!.compactMap(\.intValue)
            #expect(try tok.encode(text, addSpecialTokens: false) == want, "\(name): \(text.prefix(60).debugDescription)")
            let withSpecial = c["ids_with_special"]!.arrayValue!.compactMap(\.intValue)
            #expect(try tok.encode(text, addSpecialTokens: true) == withSpecial)
            if !want.isEmpty, !text.contains("<") { #expect(tok.decode(want) == text, "decode round trip") }
        }
    }

    @Test func wikiIdsMatchLlamaCppAndTokenizers() throws {
        let tok = try BPETokenizer(path: fixture("tokenizer/smollm2-tokenizer.json"))
        let ref = try JSON.parse(FileSystem.read(fixture("texts/wiki_smollm2_ids.json")))
        let ids = (ref["ids"] ?? ref["input_ids"] ?? ref).arrayValue!.compactMap(\.intValue)
        let text = String(decoding: try FileSystem.read(fixture("texts/wiki.utf8")), as: UTF8.self)
        let ours = try tok.encode(String(text.prefix(40_000)), addSpecialTokens: false)
        #expect(Array(ours.prefix(ids.count)) == ids)
    }

    @Test func austenEvaluationProtocol() throws {
        // reference.json: persuasion.txt[443567:] (characters), no special tokens, 6156 ids.
        let tok = try BPETokenizer(path: fixture("tiny-moe-austen/tokenizer.json"))
        let ref = try JSON.parse(FileSystem.read(fixture("tiny-moe-austen/reference.json")))
        let text = String(decoding: try FileSystem.read(fixture("texts/persuasion.txt")), as: UTF8.self)
        let tail = String(text.unicodeScalars.dropFirst(443_567))
        let ids = try tok.encode(tail, addSpecialTokens: false)
        #expect(ids.count == ref["eval_tokens"]?.intValue)
        let first = ref["reference_input_ids"]!.arrayValue!.compactMap(\.intValue)
        #expect(Array(ids.prefix(first.count)) == first)
    }

    @Test func malformedTokenizerFilesAreClearErrors() throws {
        for (text, field) in [("{", "tokenizer.json"), (#"{"model":{"type":"Unigram"}}"#, "model.type"),
                              (#"{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"pre_tokenizer":{"type":"Whitespace"}}"#, "pre_tokenizer.type")] {
            do {
                _ = try BPETokenizer(json: try JSON.parse(text, rejectDuplicateKeys: false), file: "t.json")
                Issue.record("accepted \(text)")
            } catch let e as BPETokenizer.Failure {
                #expect(e.description.contains(field), "\(e)")
            } catch { #expect(field == "tokenizer.json", "\(error)") }
        }
    }
}
