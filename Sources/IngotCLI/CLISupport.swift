import ArgumentParser
import Foundation
import IngotCore
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
    @Flag(help: "Overwrite the destination if it exists.") var force = false
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
