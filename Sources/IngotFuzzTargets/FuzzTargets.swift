import Foundation
import IngotCore
import IngotFormats
import IngotQuant
import IngotForward
import IngotModel
import IngotPipeline

/// One entry per parser of untrusted bytes. Each feeds the bytes to the parser and ignores thrown errors: the
/// only failure a fuzzer looks for is a crash (trap, sanitizer report, hang).
public enum FuzzTarget: String, CaseIterable, Sendable {
    case safetensors          // safetensors header + offsets validation
    case safetensorsIndex = "safetensors-index"  // model.safetensors.index.json
    case ingot                // .ingot header, trailer, index, chunk table, chunk decoding
    case json                 // the strict JSON parser every header goes through
    case config               // config.json → model summary and ModelConfig
    case hdf5                 // the HDF5 reader's own checks (signature before libhdf5)
    case quantized            // compressed-tensors / AutoAWQ / FP8 tensors decoded by Ingot's runtime decoders
    case tokenizer            // tokenizer.json → BPE tokenizer, then encoding a fixed text
    case recipe               // recipe YAML (Yams/libyaml) → validated Recipe
    case gguf                 // GGUF header, metadata, tensor infos, block decoding, HF view and config rebuild

    /// Runs the target on one input.
    public func run(_ bytes: [UInt8]) {
        switch self {
        case .safetensors:
            guard let f = try? SafetensorsFile(file: MappedFile(contents: bytes, path: "fuzz.safetensors")) else { return }
            for t in f.tensors { _ = try? f.tensor(named: t.name).floats() }
        case .safetensorsIndex:
            withScratchDirectory { dir in
                let idx = dir + "/" + ShardedSafetensors.indexName
                guard (try? writeFile(idx, bytes)) != nil else { return }
                // One valid shard so that index validation reaches the cross-checks.
                try? writeFile(dir + "/model-00001-of-00001.safetensors", Self.tinyShard)
                _ = try? ShardedSafetensors(indexPath: idx)
            }
        case .ingot:
            guard let f = try? IngotFile(file: MappedFile(contents: bytes, path: "fuzz.ingot")) else { return }
            for t in f.tensors { _ = try? f.tensor(named: t.name).withBytes { $0.count } }
            for b in f.blobs { _ = try? f.fileContents(b.name) }
            for e in f.entries { if let q = e.quantization { _ = try? Dequantize.weights(e.name, info: q, in: f) } }
            _ = try? f.verifyAll()
        case .quantized:
            guard let f = try? SafetensorsFile(file: MappedFile(contents: bytes, path: "fuzz.safetensors")),
                  let d = try? DequantizedSource(f) else { return }
            for t in d.tensors { _ = try? d.tensor(named: t.name).withBytes { $0.count } }
        case .tokenizer:
            guard let j = try? JSON.parse(bytes, rejectDuplicateKeys: false),
                  let t = try? BPETokenizer(json: j, file: "fuzz.json") else { return }
            _ = try? t.encode("Hello world, it's 2026! <|endoftext|> naïve 中文 🙂", addSpecialTokens: true)
        case .json:
            if let v = try? JSON.parse(bytes) { _ = try? JSON.parse(v.serialized()) }
        case .recipe:
            _ = try? Recipe.parse(yaml: String(decoding: bytes, as: UTF8.self), path: "fuzz.yaml")
        case .config:
            if let v = try? JSON.parse(bytes, rejectDuplicateKeys: false) {
                _ = ModelConfigSummary(json: v).fields
                _ = try? ModelConfig(json: v)  // the forward pass's architecture parser
            }
        case .gguf:
            guard let f = try? GGUFFile(file: MappedFile(contents: bytes, path: "fuzz.gguf")) else { return }
            for t in f.tensors { _ = try? f.floats(t) }
            _ = try? GGUFConfig.configJSON(f)
            guard let c = try? GGUFCheckpoint(f) else { return }
            for t in c.tensors { _ = try? c.tensor(named: t.name).withBytes { $0.count } }
            _ = try? c.companionFiles()
        case .hdf5:
            // libhdf5 itself is C and not hardened against malformed files: only inputs that pass Ingot's own
            // signature check reach it, and the fuzzer exercises that check.
            _ = HDF5SignatureCheck.hasSignature(bytes)
        }
    }

    static let tinyShard: [UInt8] = {
        let h = Array(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#.utf8)
        return withUnsafeBytes(of: UInt64(h.count).littleEndian) { Array($0) } + h + [7]
    }()
}

/// Scratch files for targets that read from disk (no fsync: speed matters more than durability here).
func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { throw IOError(.create, path: path, errno: EIO) }
}

func withScratchDirectory(_ body: (String) -> Void) {
    // Memory-backed when available: the index target writes files on every input.
    let root = FileSystem.isDirectory("/dev/shm") ? "/dev/shm" : "/tmp"
    let dir = root + "/ingot-fuzz-\(ProcessInfo.processInfo.processIdentifier)"
    FileSystem.removeTree(dir)
    _ = try? FileSystem.makeDirectory(dir)
    body(dir)
    FileSystem.removeTree(dir)
}
