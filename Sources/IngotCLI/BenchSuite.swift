import ArgumentParser
import Foundation
import IngotCore
import IngotFormats

#if canImport(Glibc)
import Glibc
#endif

/// `ingot bench suite`: every stage once, each in its own child process so that peak RSS is per row, one table
/// (or JSON rows that `scripts/compare-peers` joins with the peers' rows).
struct BenchSuite: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "suite",
        abstract: "Run every stage's benchmark once (each in a child process) and print one table with peak RSS per row.")

    @Argument(help: "Model directory (safetensors + config.json + tokenizer.json), e.g. SmolLM2-135M in bf16.") var model: String
    @Option(help: "Evaluation text for the forward row.") var text: String
    @Option(help: "Tokens the forward row evaluates.") var evalTokens = 2048
    @Option(help: "Window length of the forward row.") var ctx = 512
    @Option(help: "Window length of the forward-long row (one window of it, from the same text).") var longCtx = 2048
    @Option(help: "MoE model for the forward-moe row (with tokenizer.json), e.g. fixtures/tiny-moe-austen.") var moeModel: String?
    @Option(help: "Text for the forward-moe row (default: --text).") var moeText: String?
    @Option(help: "Window length of the forward-moe row.") var moeCtx = 256
    @Option(help: "Tokens the forward-moe row evaluates.") var moeTokens = 2048
    @Option(help: "Synthetic MoE for the forward-moe-synthetic row (scripts/make_synthetic_moe.py: no tokenizer).") var syntheticMoe: String?
    @Option(help: "JSON array of token ids for the forward-moe-synthetic row (one window of --moe-ctx per --moe-tokens).")
    var syntheticTokens: String?
    @Option(help: "Model for the calibrate+awq row (default: MODEL).") var awqModel: String?
    @Option(help: "Calibration text for the calibrate+awq row (default: --text).") var calibText: String?
    @Option(help: "Calibration sequences.") var calibSamples = 32
    @Option(help: "Calibration sequence length.") var calibSeqLen = 256
    @OptionGroup var parallelism: ThreadOptions
    var threads: Int { parallelism.threads }
    @Option(help: "Skip a row (load, convert, pack, unpack, decode, rtn-int4, fp8-e4m3, forward, forward-long, forward-moe, forward-moe-synthetic, calibrate+awq). Repeatable.")
    var skip: [String] = []
    @Option(help: "Scratch directory (default: a fresh one under /tmp, removed afterwards).") var work: String?
    @Flag(help: "Print JSON rows instead of the table.") var json = false

    static let rowNames = ["load", "convert", "pack", "unpack", "decode", "rtn-int4", "fp8-e4m3", "forward", "forward-long", "forward-moe",
                           "forward-moe-synthetic", "calibrate+awq"]

    func validate() throws {
        for s in skip where !Self.rowNames.contains(s) { throw ValidationError("--skip '\(s)': rows are \(Self.rowNames.joined(separator: ", "))") }
        guard evalTokens > 1, ctx > 1, longCtx > 1, moeCtx > 1, moeTokens > 1, calibSamples > 0, calibSeqLen > 1 else {
            throw ValidationError("--eval-tokens, --ctx, --long-ctx, --moe-ctx, --moe-tokens, --calib-samples and --calib-seq-len must be > 1")
        }
        guard (syntheticMoe == nil) == (syntheticTokens == nil) else { throw ValidationError("--synthetic-moe needs --synthetic-tokens, and back") }
    }

    func run() throws {
        try reportingErrors {
            let source = try Checkpoint.open(model)
            let modelBytes = source.totalBytes
            let dir = work ?? (NSTemporaryDirectory() + "ingot-bench-suite-\(getpid())")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { if work == nil { try? FileManager.default.removeItem(atPath: dir) } }
            let t = ["--threads", String(threads)]
            var rows: [BenchRow] = []
            func want(_ row: String) -> Bool { !skip.contains(row) }
            func note(_ row: String) { if !json { FileHandle.standardError.write(Data("bench suite: \(row)…\n".utf8)) } }

            // Every row reads the checkpoint from the page cache, as the peers' rows do (their parent reads it first).
            warmPageCache(Set(source.tensors.map(\.file)).sorted())
            if want("load") {
                note("load")
                let r = try ChildRun.ingot(["bench", "load", model, "--repeat", "1", "--json"], dir: dir)
                let j = try JSON.parse(Array(r.stdout.utf8))
                rows.append(BenchRow(row: "load", what: "open, validate and read every tensor", seconds: j["seconds"]?.doubleValue ?? r.seconds,
                                     bytesIn: modelBytes, peakRSS: r.peakRSSMB))
            }
            if want("convert") {
                note("convert")
                let r = try ChildRun.ingot(["convert", model, dir + "/f32.safetensors", "--dtype", "f32", "--force", "--quiet"] + t, dir: dir)
                rows.append(BenchRow(row: "convert", what: "checkpoint → f32 safetensors file", seconds: r.seconds, bytesIn: modelBytes,
                                     bytesOut: fileSize(dir + "/f32.safetensors"), peakRSS: r.peakRSSMB))
                try? FileManager.default.removeItem(atPath: dir + "/f32.safetensors")
            }
            if want("pack") || want("unpack") || want("decode") {
                note("pack")
                let r = try ChildRun.ingot(["pack", model, dir + "/packed.ingot", "--force", "--quiet"] + t, dir: dir)
                let packed = fileSize(dir + "/packed.ingot")
                if want("pack") {
                    rows.append(BenchRow(row: "pack", what: "lossless .ingot (zstd-3, byte planes)", seconds: r.seconds, bytesIn: modelBytes,
                                         bytesOut: packed, peakRSS: r.peakRSSMB))
                }
                if want("decode") {
                    note("decode")
                    let d = try ChildRun.ingot(["bench", "decode", dir + "/packed.ingot", "--repeat", "3", "--json"] + t, dir: dir)
                    let j = try JSON.parse(Array(d.stdout.utf8))
                    // Rate on the decoded bytes (what the reader gets), as the peer's row.
                    rows.append(BenchRow(row: "decode", what: ".ingot → tensors in memory (best of 3)", seconds: j["seconds"]?.doubleValue ?? d.seconds,
                                         bytesIn: j["bytes"]?.intValue, bytesOut: packed, peakRSS: d.peakRSSMB, note: "GB/s of decoded bytes"))
                }
                if want("unpack") {
                    note("unpack")
                    let u = try ChildRun.ingot(["unpack", dir + "/packed.ingot", dir + "/unpacked.safetensors", "--force", "--quiet"] + t, dir: dir)
                    rows.append(BenchRow(row: "unpack", what: ".ingot → safetensors file", seconds: u.seconds, bytesIn: packed,
                                         bytesOut: fileSize(dir + "/unpacked.safetensors"), peakRSS: u.peakRSSMB))
                }
                for f in ["packed.ingot", "unpacked.safetensors"] { try? FileManager.default.removeItem(atPath: dir + "/" + f) }
            }
            for (row, args, what) in [("rtn-int4", ["--scheme", "rtn-int4", "--group-size", "128"], "INT4 asym g128 → .ingot"),
                                      ("fp8-e4m3", ["--scheme", "fp8-e4m3", "--fp8-granularity", "channel"], "FP8 E4M3 per channel → .ingot")]
            where want(row) {
                note(row)
                let out = dir + "/\(row).ingot"
                let r = try ChildRun.ingot(["quantize", model, "-o", out, "--force", "--quiet"] + args + t, dir: dir)
                rows.append(BenchRow(row: row, what: what, seconds: r.seconds, bytesIn: try quantizedSourceBytes(source),
                                     bytesOut: fileSize(out), peakRSS: r.peakRSSMB))
                try? FileManager.default.removeItem(atPath: out)
            }
            /// One `ingot eval` child: tokens/s of its own timing (windows × ctx ÷ seconds), perplexity in the note.
            // The other rows' models too: a synthetic MoE last read long ago is otherwise read from disk inside its row.
            func warmModel(_ m: String) throws {
                if m != model { warmPageCache(Set(try Checkpoint.open(m).tensors.map(\.file)).sorted()) }
            }
            func forward(_ row: String, _ what: String, model m: String, input: [String], ctx c: Int, tokens: Int) throws {
                note(row)
                try warmModel(m)
                let r = try ChildRun.ingot(["eval", m] + input + ["--max-tokens", String(tokens), "--ctx", String(c), "--json", "--quiet"] + t, dir: dir)
                let j = try JSON.parse(Array(r.stdout.utf8))
                let predictions = j["predictions"]?.intValue ?? 0, windows = j["windows"]?.arrayValue?.count ?? 0
                rows.append(BenchRow(row: row, what: what, seconds: j["seconds"]?.doubleValue ?? r.seconds, tokens: predictions + windows,
                                     peakRSS: r.peakRSSMB, note: String(format: "ppl %.4f", j["perplexity"]?.doubleValue ?? .nan)))
            }
            if want("forward") { try forward("forward", "fp32 perplexity, ctx \(ctx)", model: model, input: ["--text", text], ctx: ctx, tokens: evalTokens) }
            if want("forward-long") {
                try forward("forward-long", "fp32 perplexity, one window of ctx \(longCtx)", model: model, input: ["--text", text], ctx: longCtx,
                            tokens: longCtx)
            }
            if want("forward-moe"), let m = moeModel {
                try forward("forward-moe", "fp32 perplexity of \(FileSystem.baseName(m)), ctx \(moeCtx)", model: m, input: ["--text", moeText ?? text],
                            ctx: moeCtx, tokens: moeTokens)
            }
            if want("forward-moe-synthetic"), let m = syntheticMoe, let ids = syntheticTokens {
                try forward("forward-moe-synthetic", "fp32 perplexity of \(FileSystem.baseName(m)), ctx \(moeCtx)", model: m,
                            input: ["--tokens-json", ids], ctx: moeCtx, tokens: moeTokens)
            }
            if want("calibrate+awq") {
                note("calibrate+awq")
                let m = awqModel ?? model
                try warmModel(m)
                let c = try ChildRun.ingot(["calibrate", m, "--data", calibText ?? text, "--samples", String(calibSamples),
                                            "--seq-len", String(calibSeqLen), "-o", dir + "/cal.ingot", "--force", "--quiet"] + t, dir: dir)
                let a = try ChildRun.ingot(["quantize", m, "--scheme", "awq-int4", "--group-size", "64", "--calib", dir + "/cal.ingot",
                                            "-o", dir + "/awq.ingot", "--force", "--quiet"] + t, dir: dir)
                rows.append(BenchRow(row: "calibrate+awq", what: "\(calibSamples)×\(calibSeqLen) tokens, AWQ INT4 g64 → .ingot",
                                     seconds: c.seconds + a.seconds, tokens: calibSamples * calibSeqLen, peakRSS: max(c.peakRSSMB, a.peakRSSMB),
                                     note: String(format: "%@: calibrate %.1f s + awq %.1f s", FileSystem.baseName(m), c.seconds, a.seconds)))
                for f in ["cal.ingot", "awq.ingot"] { try? FileManager.default.removeItem(atPath: dir + "/" + f) }
            }
            if json {
                emit(JSON.array(rows.map(\.json)).serialized(pretty: true))
            } else {
                emit("ingot bench suite: \(model), threads \(threads == 0 ? "all (\(ProcessInfo.processInfo.activeProcessorCount))" : String(threads))")
                emit(table(["row", "what", "seconds", "rate", "size / quality", "peak RSS"], rows.map(\.cells), rightAlign: [2, 3, 5]))
            }
        }
    }

    /// Reads files through a small reused buffer: into the page cache, not into this process's RSS.
    func warmPageCache(_ paths: [String]) {
        var buffer = [UInt8](repeating: 0, count: 8 << 20)
        for path in paths {
            let fd = open(path, O_RDONLY)
            guard fd >= 0 else { continue }
            while buffer.withUnsafeMutableBytes({ Glibc.read(fd, $0.baseAddress, $0.count) }) > 0 {}
            close(fd)
        }
    }

    /// Bytes of the 2-D weights RTN/FP8 quantize by default (what the rate of those rows is measured against).
    func quantizedSourceBytes(_ source: TensorSource) throws -> Int {
        source.tensors.filter { $0.shape.count == 2 && !$0.name.contains("embed") && !$0.name.contains("lm_head") && !$0.name.contains("norm") }
            .reduce(0) { $0 + $1.byteCount }
    }
}

func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
}

/// One row of the suite, with the same fields the peers' rows have (`scripts/peers_bench.py`).
struct BenchRow {
    var row: String
    var what: String
    var seconds: Double
    var bytesIn: Int?
    var bytesOut: Int?
    var tokens: Int?
    var peakRSS: Double
    var note: String?

    init(row: String, what: String, seconds: Double, bytesIn: Int? = nil, bytesOut: Int? = nil, tokens: Int? = nil,
         peakRSS: Double, note: String? = nil) {
        self.row = row; self.what = what; self.seconds = seconds; self.bytesIn = bytesIn; self.bytesOut = bytesOut
        self.tokens = tokens; self.peakRSS = peakRSS; self.note = note
    }

    var json: JSON {
        .object([("row", .string(row)), ("tool", .string("ingot")), ("what", .string(what)), ("seconds", .double(seconds)),
                 ("bytes_in", bytesIn.map { .int($0) } ?? .null), ("bytes_out", bytesOut.map { .int($0) } ?? .null),
                 ("tokens", tokens.map { .int($0) } ?? .null), ("peak_rss_mb", .double(peakRSS)),
                 ("note", note.map { .string($0) } ?? .null)])
    }

    var cells: [String] {
        let rate: String
        if row.hasPrefix("forward"), let n = tokens { rate = String(format: "%.0f tok/s", Double(n) / seconds) }
        else if row == "calibrate+awq" { rate = "" }
        else if let b = bytesIn { rate = String(format: "%.2f GB/s", Double(b) / seconds / 1e9) }
        else { rate = "" }
        var quality = note ?? ""
        if row == "pack", let i = bytesIn, let o = bytesOut { quality = String(format: "%.1f%% of input", 100 * Double(o) / Double(i)) }
        else if !row.hasPrefix("forward"), row != "calibrate+awq", let o = bytesOut { quality = Format.bytes(o) }
        return [row, what, String(format: "%.2f", seconds), rate, quality, String(format: "%.0f MB", peakRSS)]
    }
}

/// A child `ingot` process, its wall time and its own peak RSS (`wait4`'s `ru_maxrss`, which counts resident
/// mapped file pages as well as anonymous memory). Linux charges the spawning process's peak RSS to the child at
/// `exec`, so the suite itself only reads headers: its own few MB are the floor of every row.
struct ChildRun {
    var stdout: String
    var seconds: Double
    var peakRSSMB: Double

    struct Failed: Error, CustomStringConvertible {
        let command: String, status: Int32, stderr: String
        var description: String { "benchmark step failed (exit \(status)): \(command)\n\(stderr)" }
    }

    static func ingot(_ args: [String], dir: String) throws -> ChildRun {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return try run([exe] + args, dir: dir)
    }

    static func run(_ argv: [String], dir: String) throws -> ChildRun {
        let outPath = dir + "/.child-stdout", errPath = dir + "/.child-stderr"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cArgs + cEnv { free(p) } }
        var pid: pid_t = 0
        let t0 = monotonicSeconds()
        let rc = posix_spawn(&pid, argv[0], &actions, nil, cArgs, cEnv)
        guard rc == 0 else { throw Failed(command: argv.joined(separator: " "), status: rc, stderr: String(cString: strerror(rc))) }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let seconds = monotonicSeconds() - t0
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: outPath)
        try? FileManager.default.removeItem(atPath: errPath)
        let exited = status & 0x7f == 0, code = (status >> 8) & 0xff
        guard exited, code == 0 else {
            throw Failed(command: argv.joined(separator: " "), status: exited ? code : 128 + (status & 0x7f), stderr: err)
        }
        return ChildRun(stdout: out, seconds: seconds, peakRSSMB: Double(usage.ru_maxrss) / 1024)
    }
}
