import IngotFormats
import IngotQuant
import Testing

/// `--shard i/N` partitions: every tensor in exactly one share, units kept whole, shares balanced and contiguous.
struct WorkSplitTests {
    /// A Mixtral-like name list: 4 layers of attention + 8 experts, plus embeddings, norm and head.
    let tensors: [TensorInfo] = {
        var names = ["model.embed_tokens.weight"]
        for l in 0..<4 {
            names += ["q_proj", "k_proj", "v_proj", "o_proj"].map { "model.layers.\(l).self_attn.\($0).weight" }
            names.append("model.layers.\(l).block_sparse_moe.gate.weight")
            for e in 0..<8 { names += ["w1", "w2", "w3"].map { "model.layers.\(l).block_sparse_moe.experts.\(e).\($0).weight" } }
        }
        names += ["model.norm.weight", "lm_head.weight"]
        return names.map { TensorInfo(name: $0, dtype: .bf16, shape: [64, 64], byteCount: 8192, file: "x", fileOffset: nil) }
    }()

    @Test(arguments: [1, 2, 3, 5, 16, 200]) func sharesPartitionTheTensors(count: Int) throws {
        for experts in [true, false] {
            let shares = try (1...count).map { try WorkSplit(index: $0, count: count).select(tensors, splitExperts: experts) }
            #expect(shares.flatMap { $0 }.sorted() == Array(tensors.indices))
            var unitShare: [String: Int] = [:]
            for (s, share) in shares.enumerated() {
                #expect(share == share.sorted())
                for i in share {
                    let unit = WorkSplit.unit(of: tensors[i].name, splitExperts: experts)
                    #expect(unitShare[unit, default: s] == s, "\(unit) split over two shares")
                    unitShare[unit] = s
                }
            }
            // Balanced: no share holds more than its fair part plus one unit (a layer is ~29 tensors here).
            let largestUnit = experts ? 5 : 29
            for share in shares { #expect(share.count <= (tensors.count + count - 1) / count + largestUnit) }
        }
    }

    @Test func unitsFollowLayersAndExperts() throws {
        #expect(WorkSplit.unit(of: "model.layers.12.mlp.experts.7.down_proj.weight", splitExperts: true) == "L12.E7")
        #expect(WorkSplit.unit(of: "model.layers.12.mlp.experts.7.down_proj.weight", splitExperts: false) == "L12")
        #expect(WorkSplit.unit(of: "model.layers.3.self_attn.q_proj.weight", splitExperts: true) == "L3")
        #expect(WorkSplit.unit(of: "lm_head.weight", splitExperts: true) == "lm_head.weight")
        #expect(try WorkSplit(parsing: "2/8") == WorkSplit(index: 2, count: 8))
        for bad in ["0/1", "2/1", "1", "/", "x/2", "1/100000"] { #expect(throws: WorkSplitError.self) { try WorkSplit(parsing: bad) } }
    }
}
