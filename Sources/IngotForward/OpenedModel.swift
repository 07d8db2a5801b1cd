import IngotCore
import IngotFormats
import IngotModel

/// A checkpoint opened for the reference forward pass: any readable container (quantized ones on their
/// dequantized weights), its `config.json`, and its `tokenizer.json` when present (stored inside `.ingot` files
/// or beside the weights).
public struct OpenedModel {
    public var model: ReferenceModel
    public var tokenizer: BPETokenizer?
    /// The undecoded checkpoint.
    public var checkpoint: TensorSource
    /// What quantizers and exports read: the checkpoint, with gpt-oss's fused experts as per-expert linears.
    public var quantizationSource: TensorSource

    public init(path: String) throws {
        let checkpoint = try Checkpoint.open(path)
        let stored = try checkpoint.storedCompanionFiles()
        let dir = FileSystem.isDirectory(path) ? path : FileSystem.directoryName(path)
        func companion(_ name: String) throws -> [UInt8]? {
            if let s = stored.first(where: { $0.name == name }) { return s.bytes }
            return FileSystem.exists(dir + "/" + name) ? try FileSystem.read(dir + "/" + name) : nil
        }
        guard let configBytes = try companion("config.json") else {
            throw SourceError.notACheckpoint(path: path, reason: "no config.json beside the weights (or stored in the .ingot file)")
        }
        // Errors name the file: the one beside the weights, or the copy stored in the .ingot file.
        func name(_ file: String) -> String { stored.contains { $0.name == file } ? "\(path) (stored \(file))" : dir + "/" + file }
        let config: ModelConfig
        do { config = try ModelConfig(json: JSON.parse(configBytes, rejectDuplicateKeys: false)) } catch let e as JSONError {
            throw FileContentError(path: name("config.json"), reason: e.description)
        } catch let e as ModelConfig.Failure {
            throw FileContentError(path: name("config.json"), reason: e.reason)
        }
        self.checkpoint = checkpoint
        quantizationSource = try LinearizedExperts.wrap(checkpoint, config: config)
        model = ReferenceModel(source: try DequantizedSource(checkpoint), config: config)
        tokenizer = try companion("tokenizer.json").map { bytes in
            let json: JSON
            do { json = try JSON.parse(bytes, rejectDuplicateKeys: false) } catch let e as JSONError {
                throw FileContentError(path: name("tokenizer.json"), reason: e.description)
            }
            return try BPETokenizer(json: json, file: name("tokenizer.json"))
        }
    }

    /// The source `quantize`/`export` read from `path`: the checkpoint itself, or with gpt-oss's fused experts
    /// linearized when its config says gpt-oss. A checkpoint without a readable config is quantized as it is
    /// (data-free schemes need none), except a gpt-oss one, whose config error is reported.
    public static func quantizationSource(path: String) throws -> TensorSource {
        let checkpoint = try Checkpoint.open(path)
        let dir = FileSystem.isDirectory(path) ? path : FileSystem.directoryName(path)
        let bytes = try checkpoint.storedCompanionFiles().first { $0.name == "config.json" }?.bytes
            ?? (FileSystem.exists(dir + "/config.json") ? FileSystem.read(dir + "/config.json") : nil)
        guard let bytes, let json = try? JSON.parse(bytes, rejectDuplicateKeys: false) else { return checkpoint }
        do {
            return try LinearizedExperts.wrap(checkpoint, config: ModelConfig(json: json))
        } catch {
            if json["model_type"]?.stringValue == ModelConfig.Family.gptOss.rawValue { throw error }
            return checkpoint
        }
    }
}
