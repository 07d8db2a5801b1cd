import ArgumentParser
import IngotCore

/// `ingot`: the command-line entry point. One file per subcommand.
public struct IngotCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ingot",
        abstract: "Turn LLM checkpoints into deployable quantized artifacts.",
        version: ingotVersion,
        subcommands: [Inspect.self, Convert.self, Pack.self, Unpack.self, Merge.self, VerifyFile.self, Diff.self, Quantize.self, Export.self, DequantizeCommand.self, Eval.self, Calibrate.self, Verify.self, Run.self, Bench.self]
    )

    public init() {}

    /// Runs a parsed command with the workers its `--threads` asks for bound for everything it calls.
    public static func execute(_ command: inout ParsableCommand) throws {
        let workers = (command as? Threaded)?.parallelism.threads ?? 0
        try Parallelism.withWorkers(workers) { try command.run() }
    }
}

