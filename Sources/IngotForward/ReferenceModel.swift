import COpenBLAS
import Foundation
import IngotCore
import IngotFormats
import IngotModel

/// Reference CPU forward pass of a decoder-only transformer (Llama/Mistral, Mixtral, Qwen3-MoE, DeepSeek-V3,
/// Qwen3-Next / Qwen3.5-MoE): fp32
/// activations, weights decoded to f32 per use, `Kernels.linear` (CKernels) for every matrix product, eager attention as HF
/// transformers computes it. Memory: one layer's weights and activations at a time plus the weights' mmap.
public final class ReferenceModel: @unchecked Sendable {
    public let config: ModelConfig
    public let source: TensorSource

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case missingTensor(String)
        case badShape(String, [Int], expected: [Int], fields: String)
        case notFloat(String, DType)
        case tokenOutOfRange(Int)
        case unsupportedBlock(String)
        public var description: String {
            switch self {
            case .missingTensor(let n): "checkpoint has no tensor '\(n)' (or its fused-expert equivalent)"
            case let .badShape(n, s, e, f):
                "tensor '\(n)' has shape \(ShapeMath.describe(s)), but config.json (\(f)) gives \(ShapeMath.describe(e))"
            case let .notFloat(n, d): "tensor '\(n)' is \(d.rawValue); a weight must be a floating-point tensor"
            case .tokenOutOfRange(let t): "token id \(t) is outside the vocabulary"
            case .unsupportedBlock(let b): "the forward pass cannot evaluate block '\(b)' on its own"
            }
        }
    }

    public init(source: TensorSource, config: ModelConfig) {
        self.source = source
        self.config = config
    }

    /// Opens a model directory (config.json + weights).
    public convenience init(directory: String) throws {
        try self.init(source: Checkpoint.open(directory), config: ModelConfig.load(directory: directory))
    }

    // MARK: weights

    /// A tensor decoded to f32, checked against the expected shape.
    public func weight(_ name: String, _ shape: [Int]) throws -> [Float] {
        guard source.info(name) != nil else { throw Failure.missingTensor(name) }
        let v = try source.tensor(named: name)
        guard v.dtype.isFloatingPoint else { throw Failure.notFloat(name, v.dtype) }
        guard v.shape == shape else { throw Failure.badShape(name, v.shape, expected: shape, fields: fieldNames(expected: shape, actual: v.shape)) }
        return try v.floats()
    }

    /// An RMSNorm weight as the multiplier the forward pass applies: `normWeightOffset + w` (exact in f32, as
    /// transformers' `(1.0 + weight.float())`).
    public func normWeight(_ name: String, _ shape: [Int]) throws -> [Float] {
        var w = try weight(name, shape)
        if config.normWeightOffset != 0 { for i in w.indices { w[i] += config.normWeightOffset } }
        return w
    }

    /// The config fields behind the dimensions of `expected` that differ from `actual` (e.g. "intermediate_size = 128").
    func fieldNames(expected: [Int], actual: [Int]) -> String {
        let c = config
        var fields: [(String, Int)] = [("hidden_size", c.hiddenSize), ("intermediate_size", c.intermediateSize), ("vocab_size", c.vocabSize),
                                       ("num_attention_heads × head_dim", c.heads * c.headDim), ("num_key_value_heads × head_dim", c.kvHeads * c.headDim),
                                       ("head_dim", c.headDim)]
        if c.isMoE { fields += [("expert intermediate size", c.expertIntermediateSize), ("number of experts", c.experts)] }
        if let la = c.latentAttention {
            fields += [("kv_lora_rank", la.kvLoraRank), ("qk_rope_head_dim", la.qkRopeHeadDim), ("v_head_dim", la.vHeadDim)]
            if let q = la.qLoraRank { fields.append(("q_lora_rank", q)) }
        }
        var names: [String] = []
        for (i, e) in expected.enumerated() where i >= actual.count || actual[i] != e {
            if let f = fields.first(where: { $0.1 == e }) { names.append("\(f.0) = \(e)") }
        }
        if names.isEmpty, expected.count != actual.count { return "\(expected.count) dimensions" }
        return names.isEmpty ? "its sizes" : names.joined(separator: ", ")
    }

    // MARK: forward

    /// Logits `[tokens, vocab]` (row-major) for one sequence, positions 0..<n.
    public func logits(_ tokens: [Int]) throws -> [Float] {
        try logits(hidden: finalHidden([tokens])[0], rows: tokens.count)
    }

    /// Final normed hidden states `[n, hidden]` of each sequence, computed layer by layer over the whole batch so
    /// each layer's weights are decoded once (memory: one layer's weights plus the batch's activations).
    public func finalHidden(_ batch: [[Int]]) throws -> [[Float]] {
        let c = config, h = c.hiddenSize
        // All sequences' rows in one matrix: every linear layer is one sgemm over the whole batch; only
        // attention (and RoPE positions) work per sequence.
        let layout = SequenceBatch(lengths: batch.map(\.count), model: self)
        var x = try embed(batch, layout)
        for l in 0..<c.layers {
            decoderLayer(&x, try LayerWeights(model: self, layer: l), layout)
        }
        let norm = try c.plainFinalNorm ? weight(c.finalNormName, [h]) : normWeight(c.finalNormName, [h])
        let normed = Kernels.rmsNorm(x, norm, rows: layout.rows, eps: c.rmsNormEps)
        return layout.segments.map { Array(normed[($0.start * h)..<(($0.start + $0.length) * h)]) }
    }

    /// The decoder's input rows `[rows, hidden]` for `sequences` (laid out as `batch`): embeddings, normed (Muse) or
    /// scaled (Gemma); Gemma 4's per-layer inputs go to `batch.state`.
    public func embed(_ sequences: [[Int]], _ batch: SequenceBatch) throws -> [Float] {
        let c = config, h = c.hiddenSize
        let table = try weight(c.embedTokensName, [c.vocabSize, h])
        var x = [Float](repeating: 0, count: batch.rows * h)
        var r = 0
        for tokens in sequences {
            for id in tokens {
                guard id >= 0 && id < c.vocabSize else { throw Failure.tokenOutOfRange(id) }
                for k in 0..<h { x[r * h + k] = table[id * h + k] * c.embeddingScale }
                r += 1
            }
        }
        if c.embeddingNorm { x = Kernels.rmsNorm(x, nil, width: h, rows: batch.rows, eps: c.rmsNormEps) }
        if let g = c.gemma4, g.perLayerInputSize > 0 {
            let all = try perLayerInputs(sequences, embedded: x, rows: batch.rows, g), p = g.perLayerInputSize, stride = c.layers * p
            for l in 0..<c.layers {
                var v = [Float](repeating: 0, count: batch.rows * p)
                for r in 0..<batch.rows { for k in 0..<p { v[r * p + k] = all[r * stride + l * p + k] } }
                batch.state.perLayerInputs[l] = v
            }
        }
        return x
    }

    /// Gemma 4's per-layer inputs `[rows, layers · P]`: `(norm(projection(x) / √hidden) + embed_per_layer(id) · √P) / √2`.
    func perLayerInputs(_ sequences: [[Int]], embedded x: [Float], rows n: Int, _ g: Gemma4Options) throws -> [Float] {
        let c = config, h = c.hiddenSize, p = g.perLayerInputSize, width = c.layers * p
        let table = try weight(c.weightPrefix + "embed_tokens_per_layer.weight", [g.perLayerVocabSize, width])
        var proj = Kernels.linear(x, try weight(c.weightPrefix + "per_layer_model_projection.weight", [width, h]), rows: n, inputs: h, outputs: width)
        let root = 1 / Float(h).squareRoot()
        for i in proj.indices { proj[i] *= root }
        proj = Kernels.rmsNorm(proj, try weight(c.weightPrefix + "per_layer_projection_norm.weight", [p]), rows: n * c.layers, eps: c.rmsNormEps)
        let scale = Float(p).squareRoot(), half = Float(0.5).squareRoot()
        var r = 0
        for tokens in sequences {
            for id in tokens {
                guard id >= 0 && id < g.perLayerVocabSize else { throw Failure.tokenOutOfRange(id) }
                for k in 0..<width { proj[r * width + k] = (proj[r * width + k] + table[id * width + k] * scale) * half }
                r += 1
            }
        }
        return proj
    }

    /// The output head (lm_head, or the tied embedding).
    public func outputHead() throws -> [Float] {
        let c = config
        return source.info(c.lmHeadName) != nil || !c.tieWordEmbeddings
            ? try weight(c.lmHeadName, [c.vocabSize, c.hiddenSize]) : try weight(c.embedTokensName, [c.vocabSize, c.hiddenSize])
    }

    /// Logits `[rows, vocab]` from final hidden states (times `outputMultiplier`, then soft-capped if the config says so).
    public func logits(hidden: [Float], rows: Int, head: [Float]? = nil) throws -> [Float] {
        var y: [Float] = []
        try logits(hidden: hidden, rows: rows, head: head, into: &y)
        return y
    }

    /// `logits(hidden:rows:head:)` into `y`, reusing its storage across calls (windows) of the same size.
    public func logits(hidden: [Float], rows: Int, head: [Float]? = nil, into y: inout [Float]) throws {
        let c = config
        Kernels.linear(hidden, try head ?? outputHead(), rows: rows, inputs: c.hiddenSize, outputs: c.vocabSize, into: &y)
        let m = c.outputMultiplier
        if let cap = c.finalLogitSoftcap {
            Kernels.elementwise(&y) { v in tanhf((m != 1 ? v * m : v) / cap) * cap }
        } else if m != 1 {
            Kernels.elementwise(&y) { $0 * m }
        }
    }

    /// The rotary of layer `l` (nil: NoPE), the default one resolved from `ropeTheta`, YaRN and `rotaryDim`.
    public func rotary(layer l: Int) -> ModelConfig.Rotary? {
        let c = config
        if l < c.rotaries.count {
            guard let r = c.rotaries[l] else { return nil }
            if r != c.defaultRotaryMarker { return r }
        }
        let d = c.rotaryDim
        var inv = (0..<(d / 2)).map { i in 1 / powf(c.ropeTheta, Float(2 * i) / Float(d)) }
        var factor: Float = 1
        if let y = c.yarn { (inv, factor) = YaRNMath.inverseFrequencies(y, dim: d, base: Double(c.ropeTheta)) }
        return ModelConfig.Rotary(dim: d, inverseFrequencies: inv, attentionFactor: factor)
    }

    /// cos/sin tables `[n, rotaryDim]` for default RoPE, computed in f32 as transformers does.
    /// With YaRN, the blended frequencies and cos/sin scaled by its attention factor.
    func rope(_ n: Int) -> ([Float], [Float]) {
        let d = config.rotaryDim
        var inv = (0..<(d / 2)).map { i in 1 / powf(config.ropeTheta, Float(2 * i) / Float(d)) }
        var factor: Float = 1
        if let y = config.yarn { (inv, factor) = YaRNMath.inverseFrequencies(y, dim: d, base: Double(config.ropeTheta)) }
        var c = [Float](repeating: 0, count: n * d), s = c
        for t in 0..<n {
            for i in 0..<(d / 2) {
                let a = Float(t) * inv[i]
                c[t * d + i] = cosf(a) * factor; c[t * d + i + d / 2] = cosf(a) * factor
                s[t * d + i] = sinf(a) * factor; s[t * d + i + d / 2] = sinf(a) * factor
            }
        }
        return (c, s)
    }
}
