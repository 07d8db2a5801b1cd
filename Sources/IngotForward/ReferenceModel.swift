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
        case badShape(String, [Int])
        case tokenOutOfRange(Int)
        case unsupportedBlock(String)
        public var description: String {
            switch self {
            case .missingTensor(let n): "checkpoint has no tensor '\(n)' (or its fused-expert equivalent)"
            case let .badShape(n, s): "tensor '\(n)' has an unexpected shape \(ShapeMath.describe(s))"
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
        guard v.shape == shape else { throw Failure.badShape(name, v.shape) }
        return try v.floats()
    }

    /// An RMSNorm weight as the multiplier the forward pass applies: `normWeightOffset + w` (exact in f32, as
    /// transformers' `(1.0 + weight.float())`).
    public func normWeight(_ name: String, _ shape: [Int]) throws -> [Float] {
        var w = try weight(name, shape)
        if config.normWeightOffset != 0 { for i in w.indices { w[i] += config.normWeightOffset } }
        return w
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
        let embed = try weight(c.embedTokensName, [c.vocabSize, h])
        // All sequences' rows in one matrix: every linear layer is one sgemm over the whole batch; only
        // attention (and RoPE positions) work per sequence.
        let rows = batch.reduce(0) { $0 + $1.count }
        var x = [Float](repeating: 0, count: rows * h)
        var r = 0
        for tokens in batch {
            for id in tokens {
                guard id >= 0 && id < c.vocabSize else { throw Failure.tokenOutOfRange(id) }
                for k in 0..<h { x[r * h + k] = embed[id * h + k] }
                r += 1
            }
        }
        let layout = SequenceBatch(lengths: batch.map(\.count), model: self)
        for l in 0..<c.layers {
            decoderLayer(&x, try LayerWeights(model: self, layer: l), layout)
        }
        let norm = try normWeight(c.finalNormName, [h])
        let normed = Kernels.rmsNorm(x, norm, rows: rows, eps: c.rmsNormEps)
        return layout.segments.map { Array(normed[($0.start * h)..<(($0.start + $0.length) * h)]) }
    }

    /// The output head (lm_head, or the tied embedding).
    public func outputHead() throws -> [Float] {
        let c = config
        return source.info(c.lmHeadName) != nil || !c.tieWordEmbeddings
            ? try weight(c.lmHeadName, [c.vocabSize, c.hiddenSize]) : try weight(c.embedTokensName, [c.vocabSize, c.hiddenSize])
    }

    /// Logits `[rows, vocab]` from final hidden states.
    public func logits(hidden: [Float], rows: Int, head: [Float]? = nil) throws -> [Float] {
        var y: [Float] = []
        try logits(hidden: hidden, rows: rows, head: head, into: &y)
        return y
    }

    /// `logits(hidden:rows:head:)` into `y`, reusing its storage across calls (windows) of the same size.
    public func logits(hidden: [Float], rows: Int, head: [Float]? = nil, into y: inout [Float]) throws {
        Kernels.linear(hidden, try head ?? outputHead(), rows: rows, inputs: config.hiddenSize, outputs: config.vocabSize, into: &y)
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
