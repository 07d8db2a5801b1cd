import ArgumentParser
import Foundation
import IngotCore
import IngotFormats
import IngotQuant

/// Exit codes shared by every command: 0 success, 1 a check or gate failed, 2 usage or input error.
public enum ExitStatus {
    public static let checkFailed = ExitCode(1)
    public static let inputError = ExitCode(2)
}

/// Runs a command body, turning any thrown error into one `error: …` line on stderr and exit code 2
/// (argument-parser's own errors and explicit exit codes pass through).
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let e as ExitCode { throw e } catch let e as CleanExit { throw e } catch let e as ValidationError {
        throw e
    } catch {
        printError("\(error)")
        throw error is BadWeights ? ExitStatus.checkFailed : ExitStatus.inputError
    }
}

/// The error to rethrow from a command's `run()` for `error`: argument-parser's own errors and exit codes pass
/// through; anything else is printed as one `error: …` line and becomes exit 1 (a check failed) or 2 (bad input).
func exitStatus(for error: Error) -> Error {
    switch error {
    case is ExitCode, is CleanExit, is ValidationError: return error
    case is BadWeights:
        printError("\(error)")
        return ExitStatus.checkFailed
    default:
        printError("\(error)")
        return ExitStatus.inputError
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data(("error: " + message + "\n").utf8))
}

func printWarning(_ message: String) {
    FileHandle.standardError.write(Data(("warning: " + message + "\n").utf8))
}

/// Options shared by commands that write outputs.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Overwrite the destination if it exists (never an input; a directory only if Ingot wrote it).") var force = false
    @Flag(help: "With --force, also replace a directory holding files Ingot did not write.") var forceForeign = false
    @Flag(help: "No progress output.") var quiet = false
    @OptionGroup var parallelism: ThreadOptions
}

/// `--threads N`: the command runs with N workers (0 = all cores); output bytes do not depend on it.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Worker threads (0 = all cores). Output bytes do not depend on it.") var threads: Int = 0

    func validate() throws {
        guard threads >= 0 else { throw ValidationError("--threads must be ≥ 0") }
    }
}

/// A command with `--threads`: `IngotCommand.execute` runs it with that many workers bound.
protocol Threaded {
    var parallelism: ThreadOptions { get }
}

extension Calibrate: Threaded { var parallelism: ThreadOptions { out.parallelism } }
extension Convert: Threaded { var parallelism: ThreadOptions { output.parallelism } }
extension DequantizeCommand: Threaded { var parallelism: ThreadOptions { output.parallelism } }
extension Merge: Threaded { var parallelism: ThreadOptions { out.parallelism } }
extension Pack: Threaded { var parallelism: ThreadOptions { output.parallelism } }
extension Unpack: Threaded { var parallelism: ThreadOptions { output.parallelism } }
extension Quantize: Threaded { var parallelism: ThreadOptions { out.parallelism } }
extension Export: Threaded { var parallelism: ThreadOptions { out.parallelism } }
extension Eval: Threaded {}
extension Run: Threaded {}
extension BenchSuite: Threaded {}
extension BenchConvert: Threaded {}
extension BenchDecode: Threaded {}
extension BenchEncode: Threaded {}
extension BenchQuantize: Threaded {}

/// Before any work: registers what the command reads (checkpoints with all their files, and other files), then
/// claims every destination it will write, main and side outputs (`Destinations.claim`: never an input, not
/// existing without `--force`, a replaced directory only if Ingot wrote it, writable, locked against other writers).
func claimOutputs(_ outputs: [(path: String?, kind: Destinations.Kind)], checkpoints: [String?], files: [String?] = [],
                  force: Bool, foreign: Bool = false) throws {
    for c in checkpoints.compactMap({ $0 }) { Checkpoint.registerInputs(c) }
    for f in files.compactMap({ $0 }) { InputFiles.register(f) }
    Destinations.allowForeign(foreign)
    for (path, kind) in outputs { if let path { try Destinations.claim(path, kind: kind, overwrite: force) } }
}

/// How a checkpoint destination is written: one file (.safetensors, .h5) or a model directory.
func checkpointKind(_ destination: String) -> Destinations.Kind {
    CheckpointWriter(destination: destination).layout == .directory ? .directory : .file
}

/// Writes `text` to stdout.
func emit(_ text: String) { FileHandle.standardOutput.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8)) }

/// Left-aligned text table.
func table(_ header: [String], _ rows: [[String]], rightAlign: Set<Int> = []) -> String {
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in
            let pad = String(repeating: " ", count: max(0, widths[i] - c.count))
            return rightAlign.contains(i) ? pad + c : c + pad
        }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
    }
    return ([line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")] + rows.map(line))
        .joined(separator: "\n")
}

/// argument-parser reads `--ctx -5` as two options ("Missing value for '--ctx'"); a negative number after a long
/// option is attached to it (`--ctx=-5`), so the option's own check names what is wrong with the value.
public enum NegativeNumbers {
    public static func attach(_ args: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        while i < args.count {
            let a = args[i]
            if a == "--" { out += args[i...]; break }
            if a.hasPrefix("--"), !a.contains("="), a.count > 2, i + 1 < args.count, isNegativeNumber(args[i + 1]) {
                out.append(a + "=" + args[i + 1])
                i += 2
                continue
            }
            out.append(a)
            i += 1
        }
        return out
    }

    static func isNegativeNumber(_ s: String) -> Bool {
        guard s.count > 1, s.hasPrefix("-") else { return false }
        return Double(s) != nil
    }
}
