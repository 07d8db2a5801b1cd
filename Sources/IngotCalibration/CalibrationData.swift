import Foundation
import IngotCore
import IngotFormats
import IngotForward

/// Calibration sequences and where they came from.
public struct CalibrationData: Sendable {
    /// Token ids of each sequence (all the same length unless the input was pre-blocked and ragged).
    public var sequences: [[Int]]
    /// SHA-256 (hex) of the input file's bytes.
    public var sourceSHA256: String
    public var sourcePath: String

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case noText(String)
        case tooShort(path: String, tokens: Int, seqLen: Int)
        case badJSONL(path: String, line: Int, reason: String)
        case badTokens(path: String, reason: String)
        case needsTokenizer(String)

        public var description: String {
            switch self {
            case .noText(let p): "\(p): no calibration text in the file"
            case let .tooShort(p, t, s): "\(p): \(t) tokens, fewer than one sequence of --seq-len \(s)"
            case let .badJSONL(p, l, r): "\(p):\(l): \(r)"
            case let .badTokens(p, r): "\(p): \(r)"
            case .needsTokenizer(let p): "\(p) is text, and the model has no tokenizer.json to tokenize it"
            }
        }
    }

    /// Loads calibration data the way AutoAWQ builds its set: documents tokenized without special tokens,
    /// concatenated, cut into `seqLen` blocks, blocks shuffled with `seed`, the first `samples` kept.
    ///
    /// - `.jsonl`: one JSON object per line with a `text` field (one document per line).
    /// - `.json`: token ids, either an array of sequences (used as given, in order) or one flat array (blocked).
    /// - `.safetensors`: an integer `input_ids` tensor `[sequences, length]` (used as given, in order).
    /// - anything else: UTF-8 text, one document.
    public static func load(path: String, tokenizer: (any Tokenizing)?, samples: Int, seqLen: Int, seed: UInt64) throws -> CalibrationData {
        let bytes = try FileSystem.read(path, streams: true)
        var sha = SHA256()
        sha.update(bytes)
        let hash = sha.finalize().map { String(format: "%02x", $0) }.joined()
        func tokenize(_ docs: [String]) throws -> [Int] {
            guard let tokenizer else { throw Failure.needsTokenizer(path) }
            var ids: [Int] = []
            for d in docs { ids += try tokenizer.encode(d, addSpecialTokens: false) }
            return ids
        }
        var stream: [Int]? = nil
        var rows: [[Int]]? = nil
        if path.hasSuffix(".jsonl") {
            var docs: [String] = []
            for (i, line) in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let t = line.trimmingCharacters(in: .whitespaces)
                if t.isEmpty { continue }
                let j: JSON
                do { j = try JSON.parse(Array(t.utf8), rejectDuplicateKeys: false) } catch {
                    throw Failure.badJSONL(path: path, line: i + 1, reason: "not JSON (\(error))")
                }
                guard let s = j["text"]?.stringValue else { throw Failure.badJSONL(path: path, line: i + 1, reason: "no string field 'text'") }
                docs.append(s)
            }
            guard !docs.isEmpty else { throw Failure.noText(path) }
            stream = try tokenize(docs)
        } else if path.hasSuffix(".json") {
            let j: JSON
            do { j = try JSON.parse(bytes, rejectDuplicateKeys: false) } catch { throw Failure.badTokens(path: path, reason: "not JSON (\(error))") }
            guard let arr = j.arrayValue, !arr.isEmpty else { throw Failure.badTokens(path: path, reason: "expected a JSON array of token ids") }
            if arr[0].arrayValue != nil {
                rows = try arr.map { r in
                    guard let ids = r.arrayValue?.compactMap(\.intValue), ids.count == r.arrayValue?.count, !ids.isEmpty else {
                        throw Failure.badTokens(path: path, reason: "every sequence must be a non-empty array of integers")
                    }
                    return ids
                }
            } else {
                let ids = arr.compactMap(\.intValue)
                guard ids.count == arr.count else { throw Failure.badTokens(path: path, reason: "expected integers") }
                stream = ids
            }
        } else if path.hasSuffix(".safetensors") {
            let f = try SafetensorsFile(file: MappedFile(contents: bytes, path: path))
            guard let info = f.info("input_ids"), info.shape.count == 2 else {
                throw Failure.badTokens(path: path, reason: "expected a 2-D integer tensor 'input_ids'")
            }
            let v = try f.tensor(named: "input_ids")
            let n = info.shape[0], len = info.shape[1]
            let flat: [Int] = try v.withBytes { b in
                switch info.dtype {
                case .i64: return (0..<(n * len)).map { Int(b.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
                case .i32: return (0..<(n * len)).map { Int(b.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
                default: throw Failure.badTokens(path: path, reason: "input_ids must be I64 or I32, not \(info.dtype.rawValue)")
                }
            }
            rows = (0..<n).map { Array(flat[($0 * len)..<(($0 + 1) * len)]) }
        } else {
            let text = String(decoding: bytes, as: UTF8.self)
            guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw Failure.noText(path) }
            stream = try tokenize([text])
        }
        if let rows {
            return CalibrationData(sequences: rows.prefix(samples).map { Array($0.prefix(seqLen)) }, sourceSHA256: hash, sourcePath: path)
        }
        let ids = stream!
        let blocks = ids.count / seqLen
        guard blocks > 0 else { throw Failure.tooShort(path: path, tokens: ids.count, seqLen: seqLen) }
        var order = Array(0..<blocks)
        var rng = SplitMix64(seed: seed)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        let seqs = order.prefix(samples).map { Array(ids[($0 * seqLen)..<(($0 + 1) * seqLen)]) }
        return CalibrationData(sequences: seqs, sourceSHA256: hash, sourcePath: path)
    }

    public init(sequences: [[Int]], sourceSHA256: String, sourcePath: String) {
        self.sequences = sequences
        self.sourceSHA256 = sourceSHA256
        self.sourcePath = sourcePath
    }

    public var tokenCount: Int { sequences.reduce(0) { $0 + $1.count } }

    /// A warning when the data gave fewer sequences than `samples` asked for (calibration uses what there is).
    public func shortfall(samples: Int, seqLen: Int) -> String? {
        guard sequences.count < samples else { return nil }
        return "\(sourcePath): asked for \(samples) samples, the data holds only \(sequences.count) sequence\(sequences.count == 1 ? "" : "s") "
            + "of \(seqLen) tokens; calibrating on \(sequences.count) (lower --samples or --seq-len, or give more data)"
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a small, fixed, portable generator, so a seed means the same sample
/// everywhere.
public struct SplitMix64: Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
