import Foundation
import IngotTestSupport

/// Runs the built `ingot` binary as a user would and captures what it prints.
struct CLIResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// The `ingot` executable next to the test bundle (`INGOT_BINARY` overrides it, e.g. to run a suite against an
/// older build for comparison).
let ingotBinary: String = {
    if let p = ProcessInfo.processInfo.environment["INGOT_BINARY"], !p.isEmpty { return p }
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<3 {
        let candidate = dir.appendingPathComponent("ingot").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return repoRoot + "/.build/debug/ingot"
}()

@discardableResult
func ingot(_ args: [String], shellPrefix: String? = nil) throws -> CLIResult {
    let p = Process()
    if let prefix = shellPrefix {
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        let quoted = ([ingotBinary] + args).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        p.arguments = ["-c", prefix + " " + quoted.joined(separator: " ")]
    } else {
        p.executableURL = URL(fileURLWithPath: ingotBinary)
        p.arguments = args
    }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return CLIResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                     stderr: String(decoding: e, as: UTF8.self))
}

