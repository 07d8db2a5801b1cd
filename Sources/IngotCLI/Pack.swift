import ArgumentParser
import IngotCore
import IngotFormats
import IngotPipeline

/// `ingot pack SRC DST.ingot`: any readable checkpoint into the compressed, checksummed native container.
struct Pack: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pack a checkpoint into an .ingot file (zstd, byte planes, checksums; see formats/ingot.md).")

    @Argument(help: "Source checkpoint (.safetensors, model directory, .h5, .ingot).") var source: String
    @Argument(help: "Destination .ingot file.") var destination: String
    @Option(help: "zstd level (1-19; 0 stores every chunk raw, mmap-able in place).") var level: Int32 = 3
    @Option(help: "Chunk size (e.g. 4MiB); chunks are compressed and decoded independently.") var chunkSize = "4MiB"
    @Option(help: "Split into NAME-0000k-of-0000n.ingot shards above this size (e.g. 5GB).") var maxShardSize: String?
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard destination.hasSuffix(".ingot") else { throw ValidationError("destination must end in .ingot") }
        guard let c = Format.parseSize(chunkSize), c >= 4096, c <= 1 << 30, c % 4096 == 0 else {
            throw ValidationError("--chunk-size must be a multiple of 4KiB between 4KiB and 1GiB (got '\(chunkSize)')")
        }
        guard (0...22).contains(level) else { throw ValidationError("--level must be between 0 and 22") }
        if let m = maxShardSize, Format.parseSize(m) ?? 0 <= 0 { throw ValidationError("--max-shard-size must be a size like 5GB") }
    }

    func run() throws {
        try reportingErrors {
            // Shard names depend on the sizes: PackJob claims them all before writing any.
            try claimOutputs([(maxShardSize == nil ? destination : nil, .file)], checkpoints: [source], force: output.force,
                             foreign: output.forceForeign)
            let src = try Checkpoint.open(source)
            var job = PackJob(source: src, destination: destination)
            job.options.level = level == 0 ? nil : level
            job.options.chunkSize = Format.parseSize(chunkSize)!
            job.maxShardSize = maxShardSize.flatMap(Format.parseSize)
            job.overwrite = output.force
            job.progress = TerminalProgress.make(quiet: output.quiet)
            if FileSystem.isDirectory(source) { job.companionsFrom = source } else { job.companions = try src.storedCompanionFiles() }
            job.metadata = [("source", .string(source))]
            let s = try job.run()
            if !output.quiet {
                emit(String(format: "packed %d tensors, %@ → %@ (%.1f%%) in %.2f s", s.tensors, Format.bytes(s.rawBytes),
                            Format.bytes(s.storedBytes), 100 * Double(s.storedBytes) / Double(max(s.rawBytes, 1)), s.seconds))
            }
        }
    }
}

/// `ingot unpack SRC.ingot DST`: back to safetensors (file or model directory) or HDF5, byte for byte.
struct Unpack: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Unpack an .ingot file to safetensors (.safetensors or a model directory) or HDF5 (.h5).")

    @Argument(help: "Source .ingot file.") var source: String
    @Argument(help: "Destination (.safetensors, .h5, or a directory).") var destination: String
    @Option(help: "Largest shard for directory outputs.") var maxShardSize = "5GB"
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors {
            try claimOutputs([(destination, checkpointKind(destination))], checkpoints: [source], force: output.force, foreign: output.forceForeign)
            let src = try Checkpoint.open(source)
            var writer = CheckpointWriter(destination: destination)
            writer.maxShardSize = Format.parseSize(maxShardSize) ?? 5_000_000_000
            writer.metadata = src.metadata
            writer.overwrite = output.force
            writer.extraFiles = try src.storedCompanionFiles()
            let s = try ConversionJob(source: src, target: nil, progress: TerminalProgress.make(quiet: output.quiet)).run(into: writer)
            if !output.quiet { emit("unpacked \(s.tensors) tensors (\(Format.bytes(s.bytes))) to \(destination)") }
        }
    }
}

/// `ingot verify-file X.ingot`: every checksum, every padding byte. Exit 1 when anything is corrupt.
struct VerifyFile: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify-file",
        abstract: "Verify every checksum of an .ingot file, and its artifacts against an ingot-manifest.json (exit 1 if anything differs).")

    @Argument(help: "An .ingot file (or shard set), or an ingot-manifest.json / a directory holding one.") var path: String

    func run() throws {
        let manifest = FileSystem.isDirectory(path) ? path + "/" + Manifest.fileName
            : path.hasSuffix(".json") ? path : FileSystem.directoryName(path) + "/" + Manifest.fileName
        if FileSystem.isDirectory(path) || path.hasSuffix(".json") || FileSystem.exists(manifest) {
            guard FileSystem.exists(manifest) else { printError("\(path): no \(Manifest.fileName)"); throw ExitStatus.inputError }
            do {
                let n = try Manifest.verify(manifest)
                emit("ok: \(manifest): \(n) artifacts match their SHA-256")
            } catch let e as Manifest.Failure {
                printError("\(e)")
                throw { if case .malformed = e { return ExitStatus.inputError } else { return ExitStatus.checkFailed } }()
            }
            if FileSystem.isDirectory(path) || path.hasSuffix(".json") { return }
        }
        let src: TensorSource
        do { src = try Checkpoint.open(path) } catch {
            printError("\(error)")
            throw error is IOError ? ExitStatus.inputError : ExitStatus.checkFailed
        }
        guard let v = src as? ChecksumVerifiable else {
            printError("\(path): not an .ingot file; only .ingot files carry checksums")
            throw ExitStatus.inputError
        }
        do { try v.verifyAll() } catch {
            printError("\(error)")
            throw ExitStatus.checkFailed
        }
        emit("ok: \(path): \(src.tensors.count) tensors, every checksum verified")
    }
}
