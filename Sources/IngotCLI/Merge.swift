import ArgumentParser
import IngotCore
import IngotFormats
import IngotCalibration

/// `ingot merge NAME.ingot`: joins `NAME-0000i-of-0000N.ingot` (from `quantize|calibrate --shard i/N` or `pack
/// --max-shard-size`) into one file, byte-identical to what a single run writes.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Join NAME-0000i-of-0000N.ingot shards into NAME.ingot (the bytes one unsplit run writes).")

    @Argument(help: "The set: NAME.ingot, or any one of its shard files.") var set: String
    @Option(name: .shortAndLong, help: "Merged file (default: NAME.ingot).") var output: String?
    @OptionGroup var out: OutputOptions

    func run() throws {
        try reportingErrors {
            let name = Self.setName(set)
            guard let count = try IngotShardSet.shardCount(name) else {
                throw ValidationError("no shards found for '\(name)' (expected \(IngotShardSet.shardName(name, index: 1, count: 2)) and so on)")
            }
            let destination = output ?? name
            guard destination.hasSuffix(".ingot") else { throw ValidationError("the merged file must end in .ingot") }
            let t0 = monotonicSeconds()
            let paths = (1...count).map { IngotShardSet.shardName(name, index: $0, count: count) }
            try claimOutputs([(destination, .file)], checkpoints: [], files: paths, force: out.force, foreign: out.forceForeign)
            if let missing = paths.first(where: { !FileSystem.exists($0) }) {
                throw NativeError.missingShard(file: name, shard: FileSystem.baseName(missing))
            }
            if try IngotFile(path: paths[0]).metadataJSON["ingot_calibration"] != nil {
                // Shares of a split calibration: statistics are added up, not copied.
                let cal = try CalibrationArtifact.merge(paths, into: destination, overwrite: out.force)
                if !out.quiet {
                    emit(CoverageReport(cal).text + String(format: "\nmerged %d shares → %@ in %.2f s", count, destination,
                                                           monotonicSeconds() - t0))
                }
                return
            }
            guard let shards = try IngotShardSet.open(name) else { throw NativeError.missingShard(file: name, shard: FileSystem.baseName(paths[0])) }
            let s = try ShardMerge.merge(shards, into: destination, overwrite: out.force)
            if !out.quiet {
                emit(String(format: "merged %d shards, %d tensors → %@ (%@) in %.2f s", s.shards, s.tensors, destination,
                            Format.bytes(s.bytes), monotonicSeconds() - t0))
            }
        }
    }

    /// `model-00002-of-00004.ingot` → `model.ingot`; anything else is taken as the set's name.
    static func setName(_ path: String) -> String {
        let suffix = "-00000-of-00000.ingot"
        guard path.hasSuffix(".ingot"), path.count > suffix.count else { return path }
        let tail = path.suffix(suffix.count)
        let pattern = zip(tail, suffix).allSatisfy { t, p in p == "0" ? t.isASCII && t.isNumber : t == p }
        return pattern ? String(path.dropLast(suffix.count)) + ".ingot" : path
    }
}
