import Testing
import IngotModel

/// The naming rules every stage shares: how fused experts split, how llm-compressor renames Mixtral's experts.
@Suite struct WeightNamesTests {
    @Test func fusedExpertsSplitAsSeparateExpertsAreNamed() throws {
        let up = try #require(WeightNames.fusedExpertSlices("model.layers.2.mlp.experts.gate_up_proj", shape: [3, 10, 4]))
        #expect(up.map(\.name) == (0..<3).flatMap { e in ["gate_proj", "up_proj"].map { "model.layers.2.mlp.experts.\(e).\($0).weight" } })
        #expect(up.map(\.firstRow) == [0, 5, 10, 15, 20, 25] && up.allSatisfy { $0.rows == 5 })
        let down = try #require(WeightNames.fusedExpertSlices("model.layers.2.mlp.experts.down_proj", shape: [3, 4, 5]))
        #expect(down.map(\.name) == (0..<3).map { "model.layers.2.mlp.experts.\($0).down_proj.weight" })
        #expect(down.map(\.firstRow) == [0, 4, 8])
        #expect(WeightNames.fusedExpertSlices("model.layers.2.mlp.experts.down_proj", shape: [4, 5]) == nil)
        #expect(WeightNames.fusedExpertSlices("model.layers.2.mlp.down_proj.weight", shape: [3, 4, 5]) == nil)
    }

    @Test func modulesOfWeights() {
        #expect(WeightNames.module(of: "model.layers.0.mlp.up_proj.weight") == "model.layers.0.mlp.up_proj")
        #expect(WeightNames.module(of: "model.layers.0.mlp.up_proj.bias") == nil)
    }

    @Test func llmCompressorRenamesOnlyMixtralExperts() {
        #expect(WeightNames.llmCompressorName("model.layers.0.block_sparse_moe.experts.7.w1.weight")
                == "model.layers.0.block_sparse_moe.experts.7.gate_proj.weight")
        #expect(WeightNames.llmCompressorName("model.layers.0.block_sparse_moe.experts.7.w3.weight").hasSuffix(".up_proj.weight"))
        #expect(WeightNames.llmCompressorName("model.layers.0.block_sparse_moe.experts.7.w2.weight").hasSuffix(".down_proj.weight"))
        #expect(WeightNames.llmCompressorName("model.layers.0.mlp.w1.weight") == "model.layers.0.mlp.w1.weight")
    }
}
