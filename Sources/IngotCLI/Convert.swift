import ArgumentParser
import IngotCore
import IngotFormats

/// `ingot convert SRC DST`: safetensors (single or sharded) ⇄ HDF5, optionally changing the float dtype.
struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert between safetensors (single or sharded) and HDF5, optionally changing the float dtype.",
        discussion: """
            DST ending in .safetensors writes one file, .h5 an HDF5 file; anything else a model directory \
            (sharded with model.safetensors.index.json when larger than --max-shard-size, plus config and \
            tokenizer files when SRC is a directory). Without --dtype, tensor bytes are copied unchanged.
            """)

    @Argument(help: "Source checkpoint.") var source: String
    @Argument(help: "Destination (.safetensors, .h5, or a directory).") var destination: String
    @Option(help: "Convert floating tensors to f32, f16 or bf16 (round to nearest even).") var dtype: String?
    @Option(help: "Largest shard for directory outputs (e.g. 5GB, 500MB).") var maxShardSize = "5GB"
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if let d = dtype, DType(name: d).map({ FloatCodecs.convertible.contains($0) }) != true {
            throw ValidationError("--dtype must be f32, f16 or bf16 (got '\(d)')")
        }
        guard let s = Format.parseSize(maxShardSize), s > 0 else {
            throw ValidationError("--max-shard-size must be a size like 5GB or 500MB (got '\(maxShardSize)')")
        }
    }

    func run() throws {
        try reportingErrors {
            try claimOutputs([(destination, checkpointKind(destination))], checkpoints: [source], force: output.force, foreign: output.forceForeign)
            let src = try Checkpoint.open(source)
            let target = dtype.flatMap { DType(name: $0) }
            var writer = CheckpointWriter(destination: destination)
            writer.maxShardSize = Format.parseSize(maxShardSize)!
            writer.metadata = src.metadata
            writer.overwrite = output.force
            if FileSystem.isDirectory(source) { writer.companionsFrom = source } else if src is GGUFCheckpoint { writer.extraFiles = try src.storedCompanionFiles() }
            let stats = try ConversionJob(source: src, target: target, progress: TerminalProgress.make(quiet: output.quiet)).run(into: writer)
            if !output.quiet {
                emit("wrote \(destination): \(stats.tensors) tensors, \(Format.bytes(stats.bytes)) in "
                     + String(format: "%.2f s (%@/s)", stats.seconds, Format.bytes(Int(Double(stats.bytes) / max(stats.seconds, 1e-9)))))
            }
        }
    }
}
