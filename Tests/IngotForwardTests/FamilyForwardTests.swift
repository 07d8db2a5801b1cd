import Foundation
import Testing
import IngotCore
import IngotFormats
import IngotModel
@testable import IngotForward

/// The 2025–26 families (fixtures/families, made by scripts/make_family_fixtures.py): logits within 1e-5 rel. L2 of
/// transformers' fp32 eager logits, and perplexity over windows longer than the sliding window equal to
/// transformers' to 1e-5 relative.
struct FamilyForwardTests {
    static let families = ["tiny-gpt-oss"]

    /// Relative L2 distance of `model`'s logits to the reference file's.
    static func logitsError(_ model: ReferenceModel, reference: String) throws -> Double {
        let ref = try Checkpoint.open(reference + "/reference_logits.safetensors")
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
        return (err / norm).squareRoot()
    }

    /// transformers' perplexity from reference.json and the tokens it was computed on.
    static func perplexityReference(_ dir: String) throws -> (tokens: [Int], ctx: Int, value: Double) {
        let ref = try JSON.parse(FileSystem.read(dir + "/reference.json"))
        let p = ref["perplexity"]!
        let ids = try Checkpoint.open(fixture("peers/data/eval_text.safetensors")).tensor(named: "input_ids").floats().map { Int($0) }
        return (ids, p["ctx"]!.intValue!, p["value"]!.doubleValue!)
    }

    @Test(arguments: families)
    func logitsMatchTransformers(name: String) throws {
        let dir = fixture("families/" + name)
        let rel = try Self.logitsError(ReferenceModel(directory: dir), reference: dir)
        print("logits \(name): relative L2 \(rel)")
        #expect(rel <= 1e-5, "\(name): relative L2 \(rel)")
    }

    @Test(arguments: families)
    func perplexityMatchesTransformers(name: String) throws {
        let dir = fixture("families/" + name)
        let model = try ReferenceModel(directory: dir)
        let ref = try Self.perplexityReference(dir)
        if let w = (0..<model.config.layers).compactMap(model.config.attentionWindow).max() { #expect(w < ref.ctx) }
        let r = try Perplexity.evaluate(model, tokens: ref.tokens, context: ref.ctx)
        print("perplexity \(name): \(r.perplexity) vs transformers \(ref.value)")
        #expect(abs(r.perplexity - ref.value) / ref.value <= 1e-5)
    }

    @Test func gptOssConfig() throws {
        let c = try ModelConfig.load(directory: fixture("families/tiny-gpt-oss"))
        #expect(c.layerTypes == [.slidingAttention, .fullAttention, .slidingAttention] && c.slidingWindow == 8)
        #expect(c.attentionSinks && c.attentionBias && c.expertBias && c.routing == .softmaxOfTopK)
        #expect(c.expertActivation == .clampedSwiGLU(alpha: 1.702, limit: 7) && c.yarn?.truncate == false)
    }

    /// A config of a known family with an option Ingot cannot compute gets one error naming the field.
    @Test(arguments: [
        (#""layer_types":["sliding_attention","chunked_attention"]"#, "layer_types"),
        (#""layer_types":["full_attention"]"#, "layer_types"),
        (#""sliding_window":0"#, "sliding_window"),
        (#""swiglu_limit":-1"#, "swiglu_limit"),
        (#""rope_parameters":{"rope_type":"longrope","factor":2}"#, "rope_type"),
    ])
    func gptOssBadOptionIsNamed(extra: String, field: String) throws {
        let base = #"{"model_type":"gpt_oss","hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"#
            + #""intermediate_size":32,"vocab_size":100,"num_local_experts":4,"num_experts_per_tok":2,"#
        do {
            _ = try ModelConfig(json: JSON.parse(base + extra + "}"))
            Issue.record("accepted \(extra)")
        } catch let e as ModelConfig.Failure {
            #expect(e.description.contains(field), "\(e)")
        }
    }
}
