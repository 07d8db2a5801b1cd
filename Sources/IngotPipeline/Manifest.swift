import Foundation
import IngotCore

/// `ingot-manifest.json`: the provenance a release pipeline attaches to a published variant: Ingot version,
/// recipe, source fingerprint and file hashes, calibration data hash and seed, per-stage wall time, every
/// artifact's SHA-256 and size, and the verification results with the gates applied.
public enum Manifest {
    public static let fileName = "ingot-manifest.json"

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case malformed(String)
        case mismatch(artifact: String, reason: String)
        public var description: String {
            switch self {
            case .malformed(let r): "manifest: \(r)"
            case let .mismatch(a, r): "\(a): \(r)"
            }
        }
    }

    static func write(to path: String, recipe: Recipe, fingerprint: String, outcome: PipelineRun.Outcome, seconds: Double) throws {
        let dir = FileSystem.directoryName(path)
        let source = recipe.resolve(recipe.source)
        var sourceFiles: [JSON] = []
        if FileSystem.isDirectory(source) {
            for (rel, full) in try ArtifactHash.files(source, prefix: "") {
                sourceFiles.append(.object([("path", .string(rel)), ("sha256", .string(try ArtifactHash.sha256(full)))]))
            }
        } else {
            sourceFiles.append(.object([("path", .string(FileSystem.baseName(source))), ("sha256", .string(try ArtifactHash.sha256(source)))]))
        }
        var artifacts: [JSON] = []
        for (rel, full) in try ArtifactHash.files(dir, prefix: "") where rel != fileName {
            let size = (try? FileManager.default.attributesOfItem(atPath: full)[.size] as? Int) ?? 0
            artifacts.append(.object([("path", .string(rel)), ("sha256", .string(try ArtifactHash.sha256(full))), ("bytes", .int(size ?? 0))]))
        }
        var calibration: JSON = .null
        if let c = recipe.calibration {
            let data = recipe.resolve(c.data)
            calibration = .object([("data", .string(c.data)), ("sha256", .string(try ArtifactHash.sha256(data))), ("seed", .int(Int(c.seed))),
                                   ("samples", .int(c.samples)), ("seq_len", .int(c.seqLen))])
        }
        var verify: JSON = .null
        if FileSystem.exists(dir + "/verify.json") { verify = try JSON.parse(FileSystem.read(dir + "/verify.json"), rejectDuplicateKeys: false) }
        let m = JSON.object([
            ("ingot_version", .string(ingotVersion)),
            ("recipe", .object([("path", .string(recipe.path)), ("sha256", .string(try ArtifactHash.sha256(recipe.path))), ("parsed", recipe.json)])),
            ("source", .object([("path", .string(recipe.source)), ("fingerprint", .string(fingerprint)), ("files", .array(sourceFiles))])),
            ("calibration", calibration),
            ("stages", .array(outcome.stages.map { .object([("name", .string($0.name)), ("skipped", .bool($0.skipped)),
                                                            ("seconds", .double($0.seconds))]) })),
            ("total_seconds", .double(seconds)),
            ("artifacts", .array(artifacts)),
            ("verify", verify),
            ("passed", .bool(outcome.passed)),
        ])
        try OutputFile.writeText(m.serialized(pretty: true) + "\n", to: path, overwrite: true)
    }

    /// Checks every artifact listed in the manifest at `path` against its recorded SHA-256 and size.
    /// Returns the number of artifacts checked.
    @discardableResult
    public static func verify(_ path: String) throws -> Int {
        let j: JSON
        do { j = try JSON.parse(FileSystem.read(path, limit: 256 << 20), rejectDuplicateKeys: false) } catch let e as JSONError { throw Failure.malformed("\(path): \(e)") }
        guard let arts = j["artifacts"]?.arrayValue else { throw Failure.malformed("\(path) has no 'artifacts' list") }
        let dir = FileSystem.directoryName(path)
        for a in arts {
            guard let rel = a["path"]?.stringValue, let want = a["sha256"]?.stringValue, !rel.contains("..") else {
                throw Failure.malformed("an artifact entry lacks path or sha256, or escapes the directory")
            }
            let full = dir + "/" + rel
            guard FileSystem.exists(full) else { throw Failure.mismatch(artifact: rel, reason: "listed in the manifest but missing") }
            let have = try ArtifactHash.sha256(full)
            guard have == want else { throw Failure.mismatch(artifact: rel, reason: "SHA-256 \(have) differs from the manifest's \(want)") }
        }
        return arts.count
    }
}
