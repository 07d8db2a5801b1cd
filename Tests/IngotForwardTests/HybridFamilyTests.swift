import Foundation
import Testing
import IngotCore
import IngotFormats
import IngotModel
@testable import IngotForward
import IngotTestSupport

/// Qwen3-Next and Qwen3.5-MoE (scripts/make_hybrid_fixtures.py): perplexity against transformers', and the
/// config options Ingot refuses by name.
struct HybridFamilyTests {
    static let fixtures = ["families/tiny-qwen3-next", "families/tiny-qwen3.5-moe"]

    @Test(arguments: fixtures)
    func perplexityMatchesTransformers(name: String) throws {
        let model = try ReferenceModel(directory: fixture(name))
        let ref = try JSON.parse(FileSystem.read(fixture(name + "/reference.json")))
        let ids = try JSON.parse(FileSystem.read(fixture(name + "/eval_tokens.json"))).arrayValue!.compactMap(\.intValue)
        let r = try Perplexity.evaluate(model, tokens: ids, context: ref["ctx"]!.intValue!)
        let expected = ref["perplexity"]!.doubleValue!
        print("\(name) perplexity \(r.perplexity) vs transformers \(expected)")
        #expect(r.predictions == ref["predictions"]!.intValue!)
        #expect(abs(r.perplexity / expected - 1) <= 1e-5, "\(r.perplexity) vs \(expected)")
    }

    @Test func layerCompositionFromConfig() throws {
        let next = try ModelConfig.load(directory: fixture("families/tiny-qwen3-next"))
        #expect(next.layerTypes == [.linearAttention, .fullAttention, .linearAttention, .linearAttention])
        #expect(next.denseLayers == [1] && !next.normalizeTopK && next.rotaryDim == 8 && next.normWeightOffset == 1)
        #expect(next.linearAttention == .init(keyHeads: 2, valueHeads: 4, keyHeadDim: 16, valueHeadDim: 8, convKernel: 4, projections: .fused))
        let q35 = try ModelConfig.load(directory: fixture("families/tiny-qwen3.5-moe"))
        #expect(q35.weightPrefix == "model.language_model." && q35.rotaryDim == 4 && q35.sharedExpertIntermediateSize == 40)
        #expect(q35.denseLayers.isEmpty && q35.normalizeTopK && q35.linearAttention?.projections == .split)
        let names = LayerNames(config: q35, layer: 1) { _ in false }
        #expect(names.linearAttention?.conv == "model.language_model.layers.1.linear_attn.conv1d.weight")
        #expect(names.sharedGate == "model.language_model.layers.1.mlp.shared_expert_gate.weight" && names.q.isEmpty)
        // Without layer_types, every full_attention_interval-th layer is full attention.
        var j = try Self.nextConfig()
        j = Self.setting(j, "layer_types", nil)
        j = Self.setting(j, "full_attention_interval", .int(2))
        #expect(try ModelConfig(json: j).layerTypes == [.linearAttention, .fullAttention, .linearAttention, .fullAttention])
    }

    static func nextConfig() throws -> JSON { try JSON.parse(FileSystem.read(fixture("families/tiny-qwen3-next/config.json"))) }

    /// `json` with `key` set to `value` (removed when nil).
    static func setting(_ json: JSON, _ key: String, _ value: JSON?) -> JSON {
        var o = json.objectValue!.filter { $0.key != key }
        if let value { o.append((key, value)) }
        return .object(o)
    }

    static let refusals: [(key: String, value: String, error: String)] = [
        ("layer_types", #"["linear_attention","sliding_attention","linear_attention","linear_attention"]"#,
         #"config.json: layer_types[1] = "sliding_attention" is not supported"#),
        ("layer_types", #"["linear_attention"]"#, "config.json: layer_types must list one type for each of the 4 layers"),
        ("rope_parameters", #"{"rope_type":"yarn","factor":4.0,"original_max_position_embeddings":64,"rope_theta":10000.0}"#,
         #"config.json: rope_parameters.rope_type = "yarn" is not supported"#),
        ("rope_parameters", #"{"rope_type":"linear","factor":2.0}"#, "config.json: rope_type = linear is not supported"),
        ("rope_parameters", #"{"rope_type":"default","rope_theta":10000.0,"mrope_section":[2,2]}"#,
         "config.json: rope_parameters.mrope_section = [2,2] is not supported"),
        ("attn_output_gate", "false", "config.json: attn_output_gate = false is not supported"),
        ("hidden_act", #""gelu""#, #"config.json: hidden_act = "gelu" is not supported"#),
        ("linear_num_value_heads", "3", "config.json: linear_num_value_heads must be a multiple of linear_num_key_heads"),
        ("partial_rotary_factor", "0.1", "config.json: partial_rotary_factor gives 1 rotary dims of head_dim 16; must be even and ≥ 2"),
        ("decoder_sparse_step", "0", "config.json: decoder_sparse_step must be an integer in 1…16777216"),
        ("use_sliding_window", "true", "config.json: sliding_window = 4096 is not supported"),
    ]

    @Test(arguments: 0..<refusals.count)
    func unsupportedOptionIsNamed(k: Int) throws {
        let r = Self.refusals[k]
        var j = Self.setting(try Self.nextConfig(), r.key, try JSON.parse(r.value))
        if r.key == "partial_rotary_factor" { j = Self.setting(j, "rope_parameters", try JSON.parse(#"{"rope_type":"default","rope_theta":10000.0}"#)) }
        if r.key == "use_sliding_window" { j = Self.setting(j, "sliding_window", .int(4096)) }
        do {
            _ = try ModelConfig(json: j)
            Issue.record("accepted \(r.key) = \(r.value)")
        } catch let e as ModelConfig.Failure {
            #expect(e.description == r.error)
        }
    }

    @Test func multimodalFieldsAreNamedInsideTextConfig() throws {
        let top = try JSON.parse(FileSystem.read(fixture("families/tiny-qwen3.5-moe/config.json")))
        let text = Self.setting(top["text_config"]!, "layer_types", try JSON.parse(#"["full_attention","mamba2","linear_attention","full_attention"]"#))
        let e = #expect(throws: ModelConfig.Failure.self) { try ModelConfig(json: Self.setting(top, "text_config", text)) }
        #expect(e?.description == #"config.json: text_config.layer_types[1] = "mamba2" is not supported"#)
        #expect(throws: ModelConfig.Failure.missing(field: "text_config")) { try ModelConfig(json: Self.setting(top, "text_config", nil)) }
    }
}
