import Testing
import IngotModel

/// The built-in rule for what is quantized: only linear weights.
@Suite struct TensorRoleTests {
    @Test(arguments: [
        ("model.layers.0.self_attn.q_proj.weight", [8, 8], TensorRole.linear),
        ("model.layers.0.block_sparse_moe.experts.1.w2.weight", [8, 8], .linear),
        ("model.layers.0.mlp.gate_proj.weight", [8, 8], .linear),
        ("model.layers.0.mlp.gate.weight", [4, 8], .router),
        ("model.layers.0.block_sparse_moe.gate.weight", [4, 8], .router),
        ("model.layers.0.mlp.router.weight", [4, 8], .router),
        ("model.layers.0.mlp.shared_expert_gate.weight", [1, 8], .sharedExpertGate),
        ("model.embed_tokens.weight", [16, 8], .embedding),
        ("lm_head.weight", [16, 8], .outputHead),
        ("model.layers.0.input_layernorm.weight", [8], .norm),
        ("model.layers.0.self_attn.q_proj.bias", [8], .other),
        ("model.layers.0.mlp.experts.gate_up_proj", [2, 8, 8], .other),
    ])
    func roles(name: String, shape: [Int], role: TensorRole) {
        #expect(TensorRole(name: name, shape: shape) == role)
        #expect((role == .linear) == (role.keptBecause == nil))
    }
}
