import ArgumentParser
import IngotCore
import IngotFormats

/// `ingot dequantize SRC DST`: any quantized checkpoint (compressed-tensors, AutoAWQ, DeepSeek FP8, `.ingot`) to
/// plain f32 weights, for inspection and for loading where the quantized layout is not supported.
struct DequantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dequantize",
        abstract: "Write the f32 weights of a quantized checkpoint (exact (q−z)·s products) as safetensors or HDF5.")

    @Argument(help: "Quantized checkpoint.") var source: String
    @Argument(help: "Destination (.safetensors, .h5 or a directory).") var destination: String
    @Flag(help: "Only the dequantized weights, not the tensors that were never quantized.") var weightsOnly = false
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors {
            try claimOutputs([(destination, checkpointKind(destination))], checkpoints: [source], force: output.force, foreign: output.forceForeign)
            let src = try DequantizedSource(Checkpoint.open(source))
            let picked: TensorSource = weightsOnly ? FilteredSource(base: src, keep: src.isQuantized) : src
            var writer = CheckpointWriter(destination: destination)
            writer.overwrite = output.force
            writer.metadata = src.metadata
            let s = try ConversionJob(source: picked, target: nil, progress: TerminalProgress.make(quiet: output.quiet)).run(into: writer)
            if !output.quiet { emit("wrote \(s.tensors) tensors to \(destination)") }
        }
    }
}

/// A source restricted to the tensors `keep` accepts.
final class FilteredSource: TensorSource, @unchecked Sendable {
    let base: TensorSource
    let tensors: [TensorInfo]
    var path: String { base.path }
    var metadata: [(key: String, value: String)] { base.metadata }
    init(base: TensorSource, keep: (String) -> Bool) {
        self.base = base
        tensors = base.tensors.filter { keep($0.name) }
    }
    func tensor(named name: String) throws -> TensorView { try base.tensor(named: name) }
}
