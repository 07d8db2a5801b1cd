#if canImport(Glibc)
import Glibc
#endif
import Foundation
import IngotCore
import IngotModel

/// What a forward pass checks before it starts: the sequence length against the positions the model was
/// configured for, and an estimate of the memory it needs against the machine's, so an oversized `--ctx` or
/// `--seq-len` is a clear refusal rather than an allocation failure minutes later.
public enum ForwardLimits {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case beyondPositions(option: String, length: Int, max: Int)
        case needsMemory(option: String, length: Int, bytes: Double, available: Double)

        public var description: String {
            switch self {
            case let .beyondPositions(o, n, m):
                "\(o) \(n) exceeds max_position_embeddings \(m) of config.json (the model was not built for longer sequences)"
            case let .needsMemory(o, n, b, a):
                "\(o) \(n) needs about \(gb(b)) of memory for the forward pass, more than this machine's \(gb(a)); use a smaller \(o)"
            }
        }

        func gb(_ b: Double) -> String { b >= 1e9 ? String(format: "%.1f GB", b / 1e9) : String(format: "%.0f MB", b / 1e6) }
    }

    /// Checks `sequences` sequences of `length` tokens going through the layers together (`logits`: also the
    /// output head's `[length, vocab]` per sequence). `option` names the setting in messages.
    public static func check(_ c: ModelConfig, length: Int, sequences: Int, logits: Bool, option: String) throws {
        if c.maxPositions > 0, length > c.maxPositions {
            throw Failure.beyondPositions(option: option, length: length, max: c.maxPositions)
        }
        let need = estimate(c, length: length, sequences: sequences, logits: logits)
        let have = physicalMemory
        if have > 0, need > 0.9 * have { throw Failure.needsMemory(option: option, length: length, bytes: need, available: have) }
    }

    /// f32 bytes: activations of every row (hidden states, q/k/v, MLP intermediate), the scores of one block of
    /// query rows per worker (`Kernels.attentionBlock` × `length`), and the logits (with their softmax) of one
    /// sequence.
    static func estimate(_ c: ModelConfig, length: Int, sequences: Int, logits: Bool) -> Double {
        let n = Double(length), rows = n * Double(max(sequences, 1))
        let hidden: Double = 4 * Double(c.hiddenSize)
        let qkv: Double = Double(c.heads + 2 * c.kvHeads) * Double(c.headDim)
        let mlp: Double = 3 * Double(max(c.intermediateSize, c.expertIntermediateSize))
        let width = hidden + qkv + mlp
        let scores = Double(max(1, Parallelism.resolvedWorkers)) * Double(Kernels.attentionBlock) * n
        let head = logits ? 2 * n * Double(c.vocabSize) : 0
        return 4 * (rows * width + scores + head)
    }

    static var physicalMemory: Double {
        Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
    }
}
