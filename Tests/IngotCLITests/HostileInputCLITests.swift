import Foundation
import IngotTestSupport
import Testing

/// Hostile and careless inputs across every command, as a new user would give them: each case must exit with
/// its status (2: exactly one `error: …` line naming the problem), within a time limit (no hangs), and leave every
/// file it was given byte-identical, with nothing added beside them (no partial output, temporary or lock).
///
/// `INGOT_HOSTILE_TABLE=FILE` appends one Markdown row per case (class, case, exit, first stderr line, files
/// intact); with `INGOT_BINARY=…` the same cases run against another build, for before/after tables.
@Suite struct HostileInputCLITests {
    @Test(arguments: HostileCases.all) func hostileInput(_ c: HostileCase) throws {
        let w = try Workspace(c.id)
        defer { w.remove() }
        let args = try c.make(w)
        let before = try w.snapshot()
        let r = try runWithTimeout(args, shell: c.shell?.replacingOccurrences(of: "{DIR}", with: w.root), seconds: HostileCases.timeout)
        var after = try w.snapshot()
        // A case that succeeds may add its output; nothing given to it may change.
        if c.status == 0 { after = after.filter { before[$0.key] != nil } }
        let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: true)
        let first = (lines.first.map(String.init) ?? "").replacingOccurrences(of: w.root, with: "$DIR")
        let intact = before == after
        HostileCases.record(c, status: r.timedOut ? -1 : r.status, message: first, intact: intact,
                            changed: HostileCases.difference(before, after))
        #expect(!r.timedOut, "\(c.id): timed out (hang)")
        #expect(r.status == c.status, "\(c.id): exit \(r.status), stderr:\n\(r.stderr)")
        if c.status == 2 {
            #expect(lines.count == 1 && first.hasPrefix("error: "), "\(c.id): not one error line:\n\(r.stderr)")
        }
        #expect(first.contains(c.expect), "\(c.id): expected '\(c.expect)' in:\n\(r.stderr)")
        #expect(intact, "\(c.id): files changed: \(HostileCases.difference(before, after))")
    }
}

struct HostileCase: Sendable, CustomTestStringConvertible {
    let kind: String
    let id: String
    let expect: String
    var status: Int32 = 2
    var shell: String? = nil
    let make: @Sendable (Workspace) throws -> [String]
    var testDescription: String { "\(kind)/\(id)" }
}

/// One directory per case holding everything the case gives `ingot`.
final class Workspace: @unchecked Sendable {
    let root: String
    let model = fixture("tiny-moe-austen")
    let heldout = fixture("texts/persuasion-heldout.txt")
    /// Over 100,000 tokens (what a long --ctx needs before anything is allocated).
    let long = fixture("texts/persuasion.txt")

    init(_ id: String) throws {
        root = NSTemporaryDirectory() + "ingot-hostile-\(id)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }

    func path(_ name: String) -> String { root + "/" + name }

    @discardableResult func write(_ name: String, _ text: String) -> String { write(name, Array(text.utf8)) }
    @discardableResult func write(_ name: String, _ bytes: [UInt8]) -> String {
        let p = path(name)
        try? FileManager.default.createDirectory(atPath: FileSystemPath.parent(p), withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }

    @discardableResult func dir(_ name: String) -> String {
        try? FileManager.default.createDirectory(atPath: path(name), withIntermediateDirectories: true)
        return path(name)
    }

    @discardableResult func fifo(_ name: String) -> String {
        let p = path(name)
        mkfifo(p, 0o644)
        return p
    }

    /// A model directory: the fixture's files as symlinks, `config.json` edited (keys set, or removed with NSNull).
    @discardableResult func model(_ name: String = "m", config edits: [String: Any] = [:], rawConfig: ((String) -> String)? = nil,
                                  copyWeights: Bool = false) throws -> String {
        let d = dir(name)
        for f in ["model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
            if copyWeights {
                try FileManager.default.copyItem(atPath: model + "/" + f, toPath: d + "/" + f)
            } else {
                try FileManager.default.createSymbolicLink(atPath: d + "/" + f, withDestinationPath: model + "/" + f)
            }
        }
        var text = try String(contentsOfFile: model + "/config.json", encoding: .utf8)
        if !edits.isEmpty {
            var j = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
            for (k, v) in edits { if v is NSNull { j.removeValue(forKey: k) } else { j[k] = v } }
            // rope_parameters carries rope_theta too: edit both places.
            if let t = edits["rope_theta"], var rp = j["rope_parameters"] as? [String: Any] { rp["rope_theta"] = t; j["rope_parameters"] = rp }
            text = String(decoding: try JSONSerialization.data(withJSONObject: j, options: [.sortedKeys]), as: UTF8.self)
        }
        if let rawConfig { text = rawConfig(text) }
        write(name + "/config.json", text)
        return d
    }

    /// A one-tensor safetensors file.
    @discardableResult func smallCheckpoint(_ name: String) -> String {
        let header = #"{"a.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#
        return write(name, safetensors(header, [UInt8](repeating: 0, count: 16)))
    }

    func safetensors(_ header: String, _ data: [UInt8], declared: UInt64? = nil) -> [UInt8] {
        withUnsafeBytes(of: (declared ?? UInt64(header.utf8.count)).littleEndian) { Array($0) } + Array(header.utf8) + data
    }

    enum Entry: Equatable { case bytes(Data), big(size: Int, mtime: Int, inode: UInt64), special(String), directory }

    /// Every entry under the workspace (symlinks followed for content): small files by bytes, large ones by size,
    /// modification time and inode (any write changes them), FIFOs and devices by kind (never opened).
    func snapshot() throws -> [String: Entry] {
        var out: [String: Entry] = [:]
        guard let e = FileManager.default.enumerator(atPath: root) else { return out }
        while let rel = e.nextObject() as? String {
            let p = root + "/" + rel
            var st = stat()
            guard stat(p, &st) == 0 else { out[rel] = .special("dangling"); continue }
            switch st.st_mode & S_IFMT {
            case S_IFDIR: out[rel] = .directory
            case S_IFREG:
                if st.st_size <= 1 << 20 {
                    out[rel] = .bytes(FileManager.default.contents(atPath: p) ?? Data())
                } else {
                    out[rel] = .big(size: Int(st.st_size), mtime: Int(st.st_mtim.tv_sec) * 1_000_000_000 + Int(st.st_mtim.tv_nsec), inode: UInt64(st.st_ino))
                }
            default: out[rel] = .special(String(st.st_mode & S_IFMT))
            }
        }
        return out
    }
}

enum FileSystemPath {
    static func parent(_ p: String) -> String { (p as NSString).deletingLastPathComponent }
}

struct TimedResult { let status: Int32, stdout: String, stderr: String, timedOut: Bool }

/// Runs `ingot args` (under `sh -c` with a prefix such as `ulimit -f 64;`), killing it after `seconds`.
func runWithTimeout(_ args: [String], shell: String?, seconds: Double) throws -> TimedResult {
    let p = Process()
    if let prefix = shell {
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        let quoted = ([ingotBinary] + args).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        p.arguments = ["-c", prefix + " exec " + quoted.joined(separator: " ")]
    } else {
        p.executableURL = URL(fileURLWithPath: ingotBinary)
        p.arguments = args
    }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    let done = DispatchSemaphore(value: 0)
    p.terminationHandler = { _ in done.signal() }
    try p.run()
    final class Box: @unchecked Sendable { var o = Data(), e = Data() }
    let box = Box(), reads = DispatchGroup()
    DispatchQueue.global().async(group: reads) { box.o = out.fileHandleForReading.readDataToEndOfFile() }
    DispatchQueue.global().async(group: reads) { box.e = err.fileHandleForReading.readDataToEndOfFile() }
    var timedOut = false
    if done.wait(timeout: .now() + seconds) == .timedOut {
        timedOut = true
        p.terminate()
        if done.wait(timeout: .now() + 10) == .timedOut { kill(p.processIdentifier, SIGKILL); done.wait() }
    }
    reads.wait()
    return TimedResult(status: p.terminationStatus, stdout: String(decoding: box.o, as: UTF8.self),
                       stderr: String(decoding: box.e, as: UTF8.self), timedOut: timedOut)
}
