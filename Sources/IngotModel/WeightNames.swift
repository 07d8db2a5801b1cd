/// Naming rules for weights across the ways checkpoints are saved: modules of weights, transformers 5's fused 3-D
/// experts and their per-expert names, and llm-compressor's renamed Mixtral experts. What a tensor is (linear,
/// router, norm, …) is `TensorRole`'s.
public enum WeightNames {
    /// The module of a `….weight` tensor (the name without `.weight`), nil for other tensors.
    public static func module(of name: String) -> String? {
        name.hasSuffix(".weight") ? String(name.dropLast(7)) : nil
    }

    /// The output head's module name, which runtimes keep unquantized.
    public static let outputHead = "lm_head"

    /// Linears runtimes fuse into one (vLLM's `QKVParallelLinear`, merged gate/up, MLA's fused q_a/kv_a, Mixtral's
    /// w1/w3): groups of sibling module names under one parent, as llm-compressor's `FUSED_LAYER_NAMES` lists them.
    public static let fusedGroups: [[String]] = [["gate_proj", "up_proj"], ["q_proj", "k_proj", "v_proj"],
                                                 ["q_a_proj", "kv_a_proj_with_mqa"], ["w1", "w3"]]

    /// The weights fused with `name` (a `….weight`, itself included, in group order) when every member of its group
    /// exists under the same parent (`exists`); nil when it is not part of a complete group.
    public static func fusedSiblings(of name: String, exists: (String) -> Bool) -> [String]? {
        guard let module = module(of: name), let dot = module.lastIndex(of: ".") else { return nil }
        let parent = module[..<dot], leaf = String(module[module.index(after: dot)...])
        guard let group = fusedGroups.first(where: { $0.contains(leaf) }) else { return nil }
        let names = group.map { "\(parent).\($0).weight" }
        return names.allSatisfy(exists) ? names : nil
    }

    /// llm-compressor names Mixtral's experts `gate_proj`/`up_proj`/`down_proj` (from `w1`/`w3`/`w2`).
    public static func llmCompressorName(_ n: String) -> String {
        guard n.contains("block_sparse_moe.experts.") else { return n }
        return n.replacingOccurrences(of: ".w1.weight", with: ".gate_proj.weight")
            .replacingOccurrences(of: ".w3.weight", with: ".up_proj.weight")
            .replacingOccurrences(of: ".w2.weight", with: ".down_proj.weight")
    }

    /// One expert's 2-D weight inside a fused 3-D expert tensor: rows `firstRow..<firstRow + rows` of the flattened
    /// `[E·R, C]` tensor, exported as `name`.
    public struct ExpertSlice: Sendable, Equatable {
        public var name: String
        public var firstRow: Int
        public var rows: Int
    }

    /// The per-expert weights of a fused expert tensor (`…experts.gate_up_proj [E, 2I, H]`, gate rows first, or
    /// `…experts.down_proj [E, H, I]`), named as separate experts are (`…experts.E.gate_proj.weight`); nil for
    /// any other tensor.
    public static func fusedExpertSlices(_ name: String, shape: [Int]) -> [ExpertSlice]? {
        guard shape.count == 3 else { return nil }
        let (e, rows) = (shape[0], shape[1])
        if name.hasSuffix("experts.gate_up_proj") {
            let prefix = String(name.dropLast(12))
            return (0..<e).flatMap { x in
                ["gate_proj", "up_proj"].enumerated().map { k, part in
                    ExpertSlice(name: prefix + "\(x).\(part).weight", firstRow: x * rows + k * rows / 2, rows: rows / 2)
                }
            }
        }
        if name.hasSuffix("experts.down_proj") {
            let prefix = String(name.dropLast(9))
            return (0..<e).map { x in ExpertSlice(name: prefix + "\(x).down_proj.weight", firstRow: x * rows, rows: rows) }
        }
        return nil
    }
}
