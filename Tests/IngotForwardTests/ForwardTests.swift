import Foundation
import Testing
import IngotCore
import IngotFormats
import IngotModel
@testable import IngotForward
import IngotTestSupport

/// Logits against transformers' fp32 eager logits (fixtures/peers README, fixtures/tiny-moe-austen).
struct ForwardTests {
    static let cases: [(model: String, logits: String)] = [
        ("peers/models/tiny-llama", "peers/models/tiny-llama"),
        ("peers/models/tiny-mixtral", "peers/models/tiny-mixtral"),
        ("peers/models/tiny-mixtral-fused", "peers/models/tiny-mixtral"),
        ("peers/models/tiny-qwen3moe", "peers/models/tiny-qwen3moe"),
        ("peers/models/tiny-qwen3moe-fused", "peers/models/tiny-qwen3moe"),
        ("peers/models/tiny-deepseekv3", "peers/models/tiny-deepseekv3"),
        ("peers/models/tiny-deepseekv3-fused", "peers/models/tiny-deepseekv3"),
        ("deepseekv3-yarn", "deepseekv3-yarn"),
        ("tiny-moe-austen", "tiny-moe-austen"),
        ("tiny-moe-austen-fused", "tiny-moe-austen"),
        ("families/tiny-qwen3-next", "families/tiny-qwen3-next"),
        ("families/tiny-qwen3.5-moe", "families/tiny-qwen3.5-moe"),
    ]

    @Test(arguments: 0..<cases.count)
    func logitsMatchTransformers(k: Int) throws {
        let c = Self.cases[k]
        let model = try ReferenceModel(directory: fixture(c.model))
        let ref = try Checkpoint.open(fixture(c.logits + "/reference_logits.safetensors"))
        let ids = try ref.tensor(named: "input_ids")
        let idValues = try ids.floats().map { Int($0) }
        let expected = try ref.tensor(named: "logits").floats()
        let batch = ids.shape[0], n = ids.shape[1], V = model.config.vocabSize
        var err = 0.0, norm = 0.0
        for b in 0..<batch {
            let got = try model.logits(Array(idValues[(b * n)..<((b + 1) * n)]))
            for i in 0..<(n * V) {
                let e = Double(expected[b * n * V + i]), g = Double(got[i])
                err += (e - g) * (e - g)
                norm += e * e
            }
        }
        let rel = (err / norm).squareRoot()
        print("logits \(c.model): relative L2 \(rel)")
        #expect(rel <= 1e-5, "\(c.model): relative L2 \(rel)")
    }

    /// Experts run side by side (one per worker) give bitwise the logits of the serial expert loop (one worker),
    /// on every MoE fixture: unfused, fused, with a shared expert (DeepSeek-V3) and a hybrid MoE.
    @Test(arguments: ["peers/models/tiny-mixtral", "peers/models/tiny-qwen3moe-fused", "peers/models/tiny-deepseekv3",
                      "tiny-moe-austen", "families/tiny-qwen3.5-moe"])
    func parallelExpertsEqualTheSerialLoopBitwise(model path: String) throws {
        let model = try ReferenceModel(directory: fixture(path))
        let ids = (0..<40).map { ($0 * 37 + 11) % model.config.vocabSize }
        let serial = try Parallelism.withWorkers(1) { try model.logits(ids) }
        let parallel = try Parallelism.withWorkers(3) { try model.logits(ids) }
        #expect(serial.map(\.bitPattern) == parallel.map(\.bitPattern), "\(path)")
    }

    @Test func unsupportedArchitectureIsNamed() {
        #expect(throws: ModelConfig.Failure.unsupported(field: "model_type", value: "gpt2")) {
            _ = try ModelConfig(json: JSON.parse(#"{"model_type":"gpt2","hidden_size":8}"#))
        }
    }
}

/// The trained tiny MoE's held-out perplexity reproduces transformers' 69.329 (fixtures/tiny-moe-austen/reference.json).
struct PerplexityTests {
    @Test func austenHeldOutPerplexity() throws {
        let model = try ReferenceModel(directory: fixture("tiny-moe-austen"))
        let tok = try BPETokenizer(path: fixture("tiny-moe-austen/tokenizer.json"))
        let text = String(decoding: try FileSystem.read(fixture("texts/persuasion.txt")), as: UTF8.self)
        let ids = try tok.encode(String(text.unicodeScalars.dropFirst(443_567)), addSpecialTokens: false)
        let r = try Perplexity.evaluate(model, tokens: ids, context: 256)
        #expect(r.windows.count == 24 && r.predictions == 6120)
        let reference = 69.32925506273192
        print("austen perplexity \(r.perplexity) vs transformers \(reference)")
        #expect(abs(r.perplexity - reference) / reference <= 1e-4)
    }
}

/// SmolLM2-135M (F16, rebuilt by scripts/get-smollm2) on the first 2048 tokens of wiki.utf8 at ctx 512: the numpy
/// reference gives 14.018. Runs when the checkpoint is present (INGOT_SMOLLM2 or .cache/smollm2-135m), else skips.
struct SmolLM2Tests {
    static var directory: String? {
        let candidates = [ProcessInfo.processInfo.environment["INGOT_SMOLLM2"], repoRoot + "/.cache/smollm2-135m"].compactMap { $0 }
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/model.safetensors") }
    }

    @Test(.enabled(if: SmolLM2Tests.directory != nil, "SmolLM2 checkpoint not present (scripts/get-smollm2)"))
    func wikiPerplexityMatchesNumpyReference() throws {
        let model = try ReferenceModel(directory: Self.directory!)
        let ref = try JSON.parse(FileSystem.read(fixture("texts/wiki_smollm2_ids.json")))
        let ids = ref["ids"]!.arrayValue!.compactMap(\.intValue)
        let r = try Perplexity.evaluate(model, tokens: ids, context: 512)
        let numpyReference = 14.017580605353317  // fixtures/tools/ppl_numpy.py on the same checkpoint and ids
        #expect(abs(r.perplexity - numpyReference) / numpyReference <= 5e-4, "\(r.perplexity)")
    }
}
