import Foundation
import Testing
import IngotCore
import IngotFormats
import IngotModel
@testable import IngotForward
import IngotTestSupport

/// The 2025–26 families (fixtures/families, made by scripts/make_family_fixtures.py): logits within 1e-5 rel. L2 of
/// transformers' fp32 eager logits, and perplexity over windows longer than the sliding window equal to
/// transformers' to 1e-5 relative.
struct FamilyForwardTests {
    static let families = ["tiny-gpt-oss", "tiny-muse", "tiny-gemma4", "tiny-gemma4-mm"]

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

    @Test func museConfig() throws {
        let c = try ModelConfig.load(directory: fixture("families/tiny-muse"))
        #expect(c.family == .museGlimmer && c.weightPrefix == "model.language_model.")
        #expect(c.layerTypes == [.slidingAttention, .fullAttention, .slidingAttention, .fullAttention] && c.slidingWindow == 8)
        #expect(c.rotaries.map { $0 != nil } == [true, true, false, false])
        #expect(c.attentionGate && c.scalelessQKNorm && c.queryScale == 2.5 && c.sandwichNorms && c.normWeightOffset == 1 && c.plainFinalNorm)
        #expect(c.postNormEps == 1e-6 && c.rmsNormEps == 1e-5 && c.outputMultiplier == 0.75 && c.finalLogitSoftcap == 4)
    }

    @Test func gemma4Config() throws {
        let c = try ModelConfig.load(directory: fixture("families/tiny-gemma4"))
        let g = try #require(c.gemma4)
        #expect(c.headDim(layer: 0) == 16 && c.headDim(layer: 1) == 32 && c.kvHeads(layer: 0) == 2 && c.kvHeads(layer: 1) == 1)
        #expect(g.kvSource == [4: 2, 5: 3] && g.keyIsValue && g.doubleWideLayers == [4, 5] && g.perLayerInputSize == 8)
        #expect(c.intermediateSize(layer: 5) == 192 && c.experts == 4 && c.routing == .gemma4 && c.activation == .geluTanh)
        // proportional rope on full layers: a quarter of the 16 frequency pairs rotate
        #expect(c.rotaries[1]!.inverseFrequencies.filter { $0 != 0 }.count == 4 && c.rotaries[0]!.dim == 16)
        #expect(c.finalLogitSoftcap == 5 && c.attentionScale == 1 && c.embeddingScale == 8 && c.tieWordEmbeddings)
    }

    /// `gemma4` (Gemma4ForConditionalGeneration): the text decoder under model.language_model., lm_head tied by the
    /// outer config's default.
    @Test func gemma4MultimodalConfig() throws {
        let c = try ModelConfig.load(directory: fixture("families/tiny-gemma4-mm"))
        #expect(c.family == .gemma4 && c.weightPrefix == "model.language_model." && c.tieWordEmbeddings && c.gemma4?.kvSource == [4: 2, 5: 3])
    }

    static let museBase = #"{"model_type":"muse_glimmer","text_config":{"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,"#
        + #""num_key_value_heads":2,"head_dim":16,"intermediate_size":32,"vocab_size":100,"sliding_window":8,"#
    static let gemmaBase = #"{"model_type":"gemma4_text","hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,"#
        + #""num_key_value_heads":2,"head_dim":16,"intermediate_size":32,"vocab_size":100,"sliding_window":8,"#

    /// Muse and Gemma 4 options Ingot cannot compute are refused naming the field.
    @Test(arguments: [
        (museBase + #""layer_types":["sliding_attention","chunked_attention"]}}"#, "layer_types"),
        (museBase + #""layer_rope_theta":[10000, 500000]}}"#, "layer_rope_theta"),
        (museBase + #""layer_rope_theta":[0]}}"#, "layer_rope_theta"),
        (museBase + #""hidden_activation":"relu2"}}"#, "hidden_activation"),
        (museBase + #""final_logit_softcapping":null}}"#, "final_logit_softcapping"),
        (museBase + #""post_norm_eps":-1}}"#, "post_norm_eps"),
        (museBase + #""rope_parameters":{"rope_type":"longrope","rope_theta":10000}}}"#, "rope_type"),
        (#"{"model_type":"muse_glimmer","hidden_size":64}"#, "text_config"),
        (gemmaBase + #""use_bidirectional_attention":"all"}"#, "use_bidirectional_attention"),
        (gemmaBase + #""rope_parameters":{"sliding_attention":{"rope_type":"yarn","rope_theta":10000,"factor":2},"full_attention":{"rope_type":"default","rope_theta":10000}}}"#, "rope_parameters.sliding_attention.rope_type"),
        (gemmaBase + #""rope_parameters":{"sliding_attention":{"rope_type":"default","rope_theta":10000}}}"#, "rope_parameters.full_attention"),
        (gemmaBase + #""rope_parameters":{"sliding_attention":{"rope_type":"default","rope_theta":10000,"partial_rotary_factor":0.5},"full_attention":{"rope_type":"default","rope_theta":10000}}}"#, "partial_rotary_factor"),
        (gemmaBase + #""per_layer_config":{"1":{"head_dim":32,"sliding_window":4}}}"#, "per_layer_config.1.sliding_window"),
        (gemmaBase + #""layer_types":["sliding_attention","full_attention"],"num_kv_shared_layers":1}"#, "num_kv_shared_layers"),
        (gemmaBase + #""enable_moe_block":true,"num_experts":4}"#, "top_k_experts"),
        (gemmaBase + #""hidden_activation":"gelu_new"}"#, "hidden_activation"),
        (gemmaBase + #""final_logit_softcapping":0}"#, "final_logit_softcapping"),
    ])
    func sandwichFamilyBadOptionIsNamed(json: String, field: String) throws {
        do {
            _ = try ModelConfig(json: JSON.parse(json))
            Issue.record("accepted \(json)")
        } catch let e as ModelConfig.Failure {
            #expect(e.description.contains(field), "\(e)")
        }
    }
}
