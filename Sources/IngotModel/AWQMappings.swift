/// Which linears share an input and what precedes them: the AWQ smoothing mappings of a decoder layer, as data
/// (AutoAWQ `awq/models/*.py`, llm-compressor `default_mappings` / `_moe_default_mappings`).
///
/// A mapping divides the smoothing op's output channels by a scale `s` and multiplies the balance layers' input
/// columns by `s`: the function is unchanged, and the balance weights become easier to quantize.
public struct AWQMapping: Sendable, Equatable {
    /// The op whose output channels absorb `1/s`.
    public enum Smooth: String, Sendable { case inputNorm = "input_layernorm", postNorm = "post_attention_layernorm",
                                              v = "v_proj", up = "up_proj", expertUp = "experts.*.up_proj",
                                              qANorm = "q_a_layernorm", kvANorm = "kv_a_layernorm", sharedUp = "shared_experts.up_proj" }
    /// The linears whose input columns absorb `s` (and are quantized with it).
    public enum Balance: String, Sendable { case q, k, v, o, gate, up, down, router, expertGate, expertUp, expertDown,
                                             qA = "q_a_proj", kvA = "kv_a_proj_with_mqa", qB = "q_b_proj", kvB = "kv_b_proj",
                                             sharedGate = "shared_experts.gate_proj", sharedUp = "shared_experts.up_proj",
                                             sharedDown = "shared_experts.down_proj" }
    /// The block whose output the search loss is measured on.
    public enum Inspect: String, Sendable { case attention, o, mlp, moe, down, expertDown, qB, kvB, sharedDown }

    public var smooth: Smooth
    public var balance: [Balance]
    public var inspect: Inspect
    /// Searched once per expert on that expert's own tokens (`up → down` inside an MoE).
    public var perExpert = false
    /// Applies only when the smoothing op's output matches the balance layer's input (v → o without GQA;
    /// llm-awq PR #67).
    public var requiresMatchingShapes = false

    /// Name as llm-compressor logs it.
    public var label: String { smooth.rawValue + " → " + balance.map(\.rawValue).joined(separator: ",") }

    /// Routers are balance layers so routing is unchanged after folding (llm-compressor PR #2451); they are
    /// scaled, never quantized.
    public static func isQuantized(_ b: Balance) -> Bool { b != .router }
}

extension ModelConfig {
    /// The AWQ mappings of `layer`, in search order.
    public func awqMappings(layer: Int) -> [AWQMapping] {
        if let la = latentAttention {
            // DeepSeek MLA (AutoAWQ deepseek_v3.py, llm-compressor _deepseek_mappings): no v → o mapping.
            var m = [AWQMapping(smooth: .inputNorm, balance: la.qLoraRank == nil ? [.q, .kvA] : [.qA, .kvA], inspect: .attention)]
            if la.qLoraRank != nil { m.append(AWQMapping(smooth: .qANorm, balance: [.qB], inspect: .qB)) }
            m.append(AWQMapping(smooth: .kvANorm, balance: [.kvB], inspect: .kvB))
            if isMoE && !denseLayers.contains(layer) {
                m.append(AWQMapping(smooth: .postNorm, balance: [.router, .expertGate, .expertUp] + (sharedExperts > 0 ? [.sharedGate, .sharedUp] : []),
                                    inspect: .moe))
                m.append(AWQMapping(smooth: .expertUp, balance: [.expertDown], inspect: .expertDown, perExpert: true))
                if sharedExperts > 0 { m.append(AWQMapping(smooth: .sharedUp, balance: [.sharedDown], inspect: .sharedDown)) }
            } else {
                m += [AWQMapping(smooth: .postNorm, balance: [.gate, .up], inspect: .mlp), AWQMapping(smooth: .up, balance: [.down], inspect: .down)]
            }
            return m
        }
        let attention = [
            AWQMapping(smooth: .inputNorm, balance: [.q, .k, .v], inspect: .attention),
            AWQMapping(smooth: .v, balance: [.o], inspect: .o, requiresMatchingShapes: true),
        ]
        if isMoE && !denseLayers.contains(layer) {
            return attention + [
                AWQMapping(smooth: .postNorm, balance: [.router, .expertGate, .expertUp], inspect: .moe),
                AWQMapping(smooth: .expertUp, balance: [.expertDown], inspect: .expertDown, perExpert: true),
            ]
        }
        return attention + [
            AWQMapping(smooth: .postNorm, balance: [.gate, .up], inspect: .mlp),
            AWQMapping(smooth: .up, balance: [.down], inspect: .down),
        ]
    }
}
