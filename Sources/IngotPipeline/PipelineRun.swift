import Foundation
import IngotCalibration
import IngotCore
import IngotFormats
import IngotForward
import IngotQuant
import IngotVerify

/// `ingot run RECIPE.yaml`: calibrate → quantize (`model.ingot`) → exports → verify → manifest, in the recipe's
/// output directory. Stages talk only through artifacts on disk. A stage is skipped when its output exists and
/// its stamp (`.ingot-run/STAGE.json`) records the same input key (hash of its settings and inputs) and the same
/// output hash, so a run killed mid-stage resumes where it stopped; `force` redoes everything.
public struct PipelineRun {
    public var recipe: Recipe
    public var force = false
    public var progress: (String) -> ProgressReporter = { _ in SilentProgress() }
    /// One line per stage event (start, skip, done).
    public var log: (String) -> Void = { _ in }

    public init(recipe: Recipe) { self.recipe = recipe }

    public struct StageRecord: Sendable {
        public var name: String
        public var skipped: Bool
        public var seconds: Double
        public var outputs: [String]
    }

    public struct Outcome {
        public var stages: [StageRecord] = []
        public var verify: VerifyResult?
        public var gates: [Gates.Outcome] = []
        public var passed: Bool { gates.allSatisfy(\.passed) }
        public var manifestPath = ""
    }

    var out: String { recipe.resolve(recipe.output) }
    var stampDir: String { out + "/.ingot-run" }

    public func run() throws -> Outcome {
        let t0 = monotonicSeconds()
        var outcome = Outcome()
        let sourcePath = recipe.resolve(recipe.source)
        let opened = try OpenedModel(path: sourcePath)
        if let c = recipe.calibration {
            try ForwardLimits.check(opened.model.config, length: c.seqLen, sequences: 1, logits: false, option: "calibration.seq_len")
        }
        if let v = recipe.verify { try ForwardLimits.check(opened.model.config, length: v.ctx, sequences: 1, logits: true, option: "verify.ctx") }
        try claimOutputDirectory()
        try FileSystem.makeDirectory(stampDir)
        let fingerprint = try ModelFingerprint.compute(opened.model.source)

        // calibrate
        var calibrationHash: String? = nil
        if let c = recipe.calibration {
            let data = recipe.resolve(c.data)
            let path = out + "/calibration.ingot"
            let key = stageKey("calibrate", [("settings", recipe.json["calibration"] ?? .null), ("model", .string(fingerprint)),
                                             ("data", .string(try ArtifactHash.sha256(data)))])
            outcome.stages.append(try stage("calibrate", key: key, outputs: [path]) {
                let d = try CalibrationData.load(path: data, tokenizer: opened.tokenizer, samples: c.samples, seqLen: c.seqLen, seed: c.seed)
                if let w = d.shortfall(samples: c.samples, seqLen: c.seqLen) { log("warning: " + w) }
                var cal = Calibrator(model: opened.model, settings: c.settings)
                cal.progress = progress("calibrate")
                var result = try cal.run(d)
                result.provenance += [("seed", .int(Int(truncatingIfNeeded: c.seed))), ("samples", .int(c.samples)), ("seq_len", .int(c.seqLen))]
                try CalibrationArtifact.write(result, to: path, overwrite: true)
            })
            calibrationHash = try ArtifactHash.sha256(path)
        }

        // quantize
        let model = out + "/model.ingot"
        let q = recipe.quantize
        let usesCalibration = q.usesCalibration
        let qKey = stageKey("quantize", [("settings", recipe.json["quantize"] ?? .null), ("model", .string(fingerprint)),
                                         ("calibration", usesCalibration ? .string(calibrationHash ?? "") : .null)])
        outcome.stages.append(try stage("quantize", key: qKey, outputs: [model]) {
            var plan = q.plan
            var source: TensorSource = opened.quantizationSource
            var meta: [(key: String, value: JSON)] = [("source", .string(recipe.source)), ("scheme", .string(q.scheme.name))]
            var stream: StreamingAWQSource?
            if usesCalibration {
                let cal = try CalibrationArtifact.read(out + "/calibration.ingot", lazySamples: true)
                let o = try ActivationAware.prepare(checkpoint: opened.quantizationSource, model: opened.model, calibration: cal, plan: &plan, awq: q.awq,
                                                    rounding: q.rounding,
                                                    gptq: { var g = GPTQ(); g.clipSearch = q.clip; g.oneSidedClip = !q.symmetricClip; return g }(),
                                                    staticActivations: q.activations == "static", clip: q.clip, oneSidedClip: !q.symmetricClip,
                                                    searchTokens: q.searchTokens,
                                                    propagateError: q.propagateError)
                source = o.source
                meta += o.metadata
                stream = o.awq
            }
            var job = QuantizeJob(source: source, modelDirectory: FileSystem.isDirectory(sourcePath) ? sourcePath : nil, plan: plan, destination: model)
            job.overwrite = true
            job.metadata = meta
            job.progress = progress("quantize")
            try job.run()
            if let stream { try OutputFile.writeText(stream.result.jsonWithoutTimes.serialized(pretty: true) + "\n", to: out + "/awq-log.json", overwrite: true) }
        })
        let modelHash = try ArtifactHash.sha256(model)

        // exports (repacking the stored codes of model.ingot)
        for f in recipe.exports {
            let dir = out + "/" + f.name
            let key = stageKey("export", [("format", .string(f.name)), ("model", .string(modelHash))])
            outcome.stages.append(try stage("export-" + f.name, key: key, outputs: [dir]) {
                let src = try Checkpoint.open(model)
                var job = ExportJob(source: src, modelDirectory: nil, format: f, plan: q.plan, destination: dir)
                job.overwrite = true
                job.storedCompanions = try src.storedCompanionFiles()
                job.progress = progress("export")
                try job.run()
            })
        }

        // verify
        if let v = recipe.verify {
            let text = recipe.resolve(v.text)
            let json = out + "/verify.json", html = out + "/verify.html"
            let key = stageKey("verify", [("settings", recipe.json["verify"] ?? .null), ("model", .string(fingerprint)),
                                          ("quantized", .string(modelHash)), ("text", .string(try ArtifactHash.sha256(text)))])
            outcome.stages.append(try stage("verify", key: key, outputs: [json, html]) {
                let quantized = try OpenedModel(path: model)
                var ids = try evaluationTokens(text, tokenizer: opened.tokenizer)
                if let m = v.maxTokens { ids = Array(ids.prefix(m)) }
                var r = try Verification.run(original: opened.model, quantized: quantized.model, tokens: ids, context: v.ctx, progress: progress("verify"))
                r.weightErrors = try Verification.weightErrors(original: opened.model.source, quantized: quantized.model.source)
                let gates = v.gates.check(r)
                try OutputFile.writeText(r.json(gates: gates).serialized(pretty: true) + "\n", to: json, overwrite: true)
                let coverage = FileSystem.exists(out + "/calibration.ingot")
                    ? try CalibrationArtifact.read(out + "/calibration.ingot").layers.map { $0.experts.map(\.routedTokens) } : nil
                try OutputFile.writeText(HTMLReport.render(title: "ingot run: \(recipe.output)", result: r, gates: gates, expertTokens: coverage), to: html, overwrite: true)
            })
            // The gates are applied to the stored report, also when the stage was skipped.
            let report = try JSON.parse(FileSystem.read(json), rejectDuplicateKeys: false)
            outcome.gates = (report["gates"]?.arrayValue ?? []).map {
                Gates.Outcome(gate: $0["gate"]?.stringValue ?? "?", limit: $0["limit"]?.doubleValue ?? .nan,
                              value: $0["value"]?.doubleValue ?? .nan, passed: $0["passed"]?.boolValue ?? false)
            }
        }

        outcome.manifestPath = out + "/ingot-manifest.json"
        try Manifest.write(to: outcome.manifestPath, recipe: recipe, fingerprint: fingerprint, outcome: outcome, seconds: monotonicSeconds() - t0)
        return outcome
    }

    /// Registers the recipe's inputs, then takes the output directory for this run: new, empty, or one a run
    /// wrote (it holds `.ingot-run`), never one holding an input; locked so two runs never share it.
    func claimOutputDirectory() throws {
        Checkpoint.registerInputs(recipe.resolve(recipe.source))
        InputFiles.register(recipe.path)
        if let c = recipe.calibration { InputFiles.register(recipe.resolve(c.data)) }
        if let v = recipe.verify { InputFiles.register(recipe.resolve(v.text)) }
        if FileSystem.exists(out), !FileSystem.exists(stampDir) {
            guard FileSystem.isDirectory(out) else { throw OutputError.wrongKind(out, reason: "is a file; a run writes a directory") }
            let names = try FileSystem.list(out)
            if !names.isEmpty { throw OutputError.foreign(out, names: names) }
        }
        try FileSystem.makeDirectory(FileSystem.directoryName(out))
        try Destinations.claim(out, kind: .workDirectory, overwrite: true)
        try FileSystem.makeDirectory(out)
        // Everything inside a run's directory is the run's: a stage replaces its export directory even if an
        // older Ingot wrote it without a marker.
        Destinations.allowForeign(true)
    }

    /// Runs `body` unless the stamp says its outputs are current.
    func stage(_ name: String, key: String, outputs: [String], _ body: () throws -> Void) throws -> StageRecord {
        let stamp = stampDir + "/" + name + ".json"
        if !force, FileSystem.exists(stamp), outputs.allSatisfy(FileSystem.exists),
           let j = try? JSON.parse(FileSystem.read(stamp), rejectDuplicateKeys: false), j["key"]?.stringValue == key,
           j["outputs"]?.stringValue == (try? outputHash(outputs)) {
            log("stage=\(name) status=skipped reason=up-to-date")
            return StageRecord(name: name, skipped: true, seconds: 0, outputs: outputs)
        }
        log("stage=\(name) status=start")
        let t0 = monotonicSeconds()
        try? FileManager.default.removeItem(atPath: stamp)
        try body()
        let seconds = monotonicSeconds() - t0
        try OutputFile.writeText(JSON.object([("key", .string(key)), ("outputs", .string(try outputHash(outputs)))]).serialized(pretty: true) + "\n", to: stamp, overwrite: true)
        log(String(format: "stage=%@ status=done seconds=%.2f", name, seconds))
        return StageRecord(name: name, skipped: false, seconds: seconds, outputs: outputs)
    }

    func outputHash(_ outputs: [String]) throws -> String {
        try outputs.map { try ArtifactHash.sha256($0) }.joined(separator: ",")
    }

    func stageKey(_ name: String, _ inputs: [(key: String, value: JSON)]) -> String {
        var h = SHA256()
        h.update(JSON.object([("stage", .string(name)), ("ingot", .string(ingotVersion))] + inputs).serialized())
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }
}

/// Evaluation tokens: token ids from `.json` / `.safetensors` (or any file with `tokenIDs`: a JSON array of ids,
/// or `input_ids` rows concatenated), else UTF-8 text tokenized with the model's tokenizer.
public func evaluationTokens(_ path: String, tokenizer: BPETokenizer?, tokenIDs: Bool = false) throws -> [Int] {
    if path.hasSuffix(".safetensors") {
        return try CalibrationData.load(path: path, tokenizer: nil, samples: .max, seqLen: .max, seed: 0).sequences.flatMap { $0 }
    }
    if tokenIDs || path.hasSuffix(".json") {
        let j: JSON
        do { j = try JSON.parse(FileSystem.read(path, streams: true)) } catch let e as JSONError {
            throw CalibrationData.Failure.badTokens(path: path, reason: "not JSON (\(e))")
        }
        let rows = j.arrayValue?.map { $0.arrayValue ?? [$0] } ?? []
        let ids = rows.flatMap { $0.compactMap(\.intValue) }
        guard !ids.isEmpty, ids.count == rows.reduce(0, { $0 + $1.count }) else {
            throw CalibrationData.Failure.badTokens(path: path, reason: "expected a JSON array of token ids (or of sequences of ids)")
        }
        return ids
    }
    guard let tokenizer else { throw CalibrationData.Failure.needsTokenizer(path) }
    return try tokenizer.encode(String(decoding: try FileSystem.read(path, streams: true), as: UTF8.self), addSpecialTokens: false)
}


extension AWQ.Result {
    /// The log without wall times, so identical runs write identical bytes.
    var jsonWithoutTimes: JSON {
        guard case .object(let kv) = json else { return json }
        return .object(kv.filter { $0.key != "seconds" })
    }
}
