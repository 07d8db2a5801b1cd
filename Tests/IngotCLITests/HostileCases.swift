import Foundation
import IngotTestSupport

/// The cases of `HostileInputCLITests`, by class: data loss (outputs), crashes, hangs and unbounded reads, silent
/// misreads of a config, unclear messages, and the parsers of untrusted bytes.
enum HostileCases {
    static func c(_ kind: String, _ id: String, _ expect: String, status: Int32 = 2, shell: String? = nil,
                  _ make: @escaping @Sendable (Workspace) throws -> [String]) -> HostileCase {
        HostileCase(kind: kind, id: id, expect: expect, status: status, shell: shell, make: make)
    }

    /// Runs `ingot` while setting a case up (e.g. packing an input); fails the setup if it fails.
    static func setup(_ args: [String]) throws {
        let r = try ingot(args + ["--quiet"])
        guard r.status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: ["setup": args, "stderr": r.stderr]) }
    }

    static let t = #""dtype":"F32","shape":[1],"data_offsets":"#

    /// Seconds before a case counts as hung (`INGOT_HOSTILE_TIMEOUT` shortens it when running an older build).
    static let timeout = Double(ProcessInfo.processInfo.environment["INGOT_HOSTILE_TIMEOUT"] ?? "") ?? 120

    static var all: [HostileCase] { dataLoss + crashes + hangs + misreads + messages + parsers }

    // MARK: data loss

    static let dataLoss: [HostileCase] = [
        c("data-loss", "convert-into-dir-holding-source", "would overwrite or remove the input") { w in
            let m = try w.model("victim/model"); w.write("victim/notes.txt", "mine")
            return ["convert", m, w.path("victim"), "--force", "--quiet"]
        },
        c("data-loss", "convert-onto-source-dir", "is an input") { w in let m = try w.model(); return ["convert", m, m, "--force", "--quiet"] },
        c("data-loss", "convert-onto-source-dir-trailing-slash", "input") { w in let m = try w.model(); return ["convert", m, m + "/", "--force", "--quiet"] },
        c("data-loss", "convert-force-onto-foreign-dir", "files Ingot did not write") { w in
            w.write("dst/notes.txt", "mine"); return ["convert", w.smallCheckpoint("s.safetensors"), w.path("dst"), "--force", "--quiet"]
        },
        c("data-loss", "convert-force-onto-foreign-file-as-dir", "files Ingot did not write") { w in
            w.write("dst", "a file"); return ["convert", w.smallCheckpoint("s.safetensors"), w.path("dst"), "--force", "--quiet"]
        },
        c("data-loss", "convert-exists-no-force", "destination exists") { w in
            w.write("x.safetensors", "x"); return ["convert", w.smallCheckpoint("s.safetensors"), w.path("x.safetensors")]
        },
        c("data-loss", "convert-dir-exists-no-force", "destination exists") { w in
            w.write("d/model.safetensors", "x"); return ["convert", w.smallCheckpoint("s.safetensors"), w.path("d")]
        },
        c("data-loss", "convert-onto-symlink-to-source", "input") { w in
            let s = w.smallCheckpoint("s.safetensors")
            try FileManager.default.createSymbolicLink(atPath: w.path("link.safetensors"), withDestinationPath: s)
            return ["convert", s, w.path("link.safetensors"), "--force"]
        },
        c("data-loss", "convert-onto-hard-link-of-source", "input") { w in
            let s = w.smallCheckpoint("s.safetensors"); link(s, w.path("hl.safetensors"))
            return ["convert", s, w.path("hl.safetensors"), "--force"]
        },
        c("data-loss", "convert-onto-itself", "input") { w in let s = w.smallCheckpoint("s.safetensors"); return ["convert", s, s, "--force"] },
        c("data-loss", "convert-h5-onto-itself", "input") { w in
            let s = w.smallCheckpoint("s.safetensors"); try setup(["convert", s, w.path("s.h5")])
            return ["convert", w.path("s.h5"), w.path("s.h5"), "--force"]
        },
        c("data-loss", "convert-file-output-onto-dir", "is a directory") { w in
            w.write("d.safetensors/keep.txt", "mine"); return ["convert", w.smallCheckpoint("s.safetensors"), w.path("d.safetensors"), "--force"]
        },
        c("data-loss", "convert-companion-dir-holding-source", "input") { w in
            let m = try w.model("out/src"); return ["convert", m, w.path("out"), "--force", "--quiet"]
        },
        c("data-loss", "pack-onto-source-ingot", "input") { w in
            try setup(["pack", w.smallCheckpoint("s.safetensors"), w.path("a.ingot")]); return ["pack", w.path("a.ingot"), w.path("a.ingot"), "--force"]
        },
        c("data-loss", "pack-exists-no-force", "destination exists") { w in
            w.write("a.ingot", "x"); return ["pack", w.smallCheckpoint("s.safetensors"), w.path("a.ingot")]
        },
        c("data-loss", "pack-onto-directory", "is a directory") { w in
            w.write("d.ingot/keep", "mine"); return ["pack", w.smallCheckpoint("s.safetensors"), w.path("d.ingot"), "--force"]
        },
        c("data-loss", "unpack-into-dir-holding-source", "input") { w in
            w.dir("u"); try setup(["pack", w.smallCheckpoint("s.safetensors"), w.path("u/a.ingot")]); return ["unpack", w.path("u/a.ingot"), w.path("u"), "--force"]
        },
        c("data-loss", "unpack-exists-no-force", "destination exists") { w in
            try setup(["pack", w.smallCheckpoint("s.safetensors"), w.path("a.ingot")]); w.write("o.safetensors", "x")
            return ["unpack", w.path("a.ingot"), w.path("o.safetensors")]
        },
        c("data-loss", "verify-json-onto-quantized-model", "input") { w in
            try setup(["pack", w.model, w.path("b.ingot"), "--level", "0"])
            return ["verify", w.model, w.path("b.ingot"), "--text", w.heldout, "--ctx", "64", "--max-tokens", "256", "--json", w.path("b.ingot"), "--quiet"]
        },
        c("data-loss", "verify-json-onto-config", "input") { w in
            let m = try w.model(); return ["verify", m, m, "--text", w.heldout, "--ctx", "64", "--max-tokens", "256", "--json", m + "/config.json", "--quiet"]
        },
        c("data-loss", "verify-json-exists-no-force", "destination exists") { w in
            w.write("r.json", "{}")
            return ["verify", w.model, w.model, "--text", w.heldout, "--ctx", "64", "--max-tokens", "256", "--json", w.path("r.json"), "--quiet"]
        },
        c("data-loss", "verify-html-onto-text", "input") { w in
            let t = w.write("t.txt", String(repeating: "It was a truth universally acknowledged. ", count: 50))
            return ["verify", w.model, w.model, "--text", t, "--ctx", "64", "--max-tokens", "256", "--html", t, "--quiet"]
        },
        c("data-loss", "verify-json-unwritable-before-work", "cannot create") { w in
            ["verify", w.model, w.model, "--text", w.heldout, "--ctx", "64", "--max-tokens", "256", "--json", "/proc/ingot-r.json", "--quiet"]
        },
        c("data-loss", "verify-html-missing-dir-before-work", "No such file or directory") { w in
            ["verify", w.model, w.model, "--text", w.heldout, "--ctx", "64", "--max-tokens", "256", "--html", w.path("no/such/r.html"), "--quiet"]
        },
        c("data-loss", "quantize-report-onto-config", "input") { w in
            let m = try w.model(); return ["quantize", m, "-o", w.path("q.ingot"), "--report", m + "/config.json", "--force", "--quiet"]
        },
        c("data-loss", "quantize-report-unwritable-before-main-output", "cannot create") { w in
            ["quantize", w.model, "-o", w.path("q.ingot"), "--report", "/proc/ingot-r.json", "--quiet"]
        },
        c("data-loss", "quantize-report-exists-no-force", "destination exists") { w in
            w.write("r.json", "[]"); return ["quantize", w.model, "-o", w.path("q.ingot"), "--report", w.path("r.json"), "--quiet"]
        },
        c("data-loss", "quantize-onto-source-dir", "input") { w in let m = try w.model(); return ["quantize", m, "-o", m, "--force", "--quiet"] },
        c("data-loss", "quantize-awq-log-exists-no-force", "destination exists") { w in
            w.write("log.json", "{}")
            return ["quantize", w.model, "--scheme", "awq-int4", "--data", w.heldout, "--samples", "2", "--seq-len", "64", "--awq-log", w.path("log.json"),
                    "-o", w.path("q.ingot"), "--quiet"]
        },
        c("data-loss", "quantize-awq-log-onto-data", "input") { w in
            let t = w.write("t.txt", "Emma Woodhouse, handsome, clever, and rich. ")
            return ["quantize", w.model, "--scheme", "awq-int4", "--data", t, "--seq-len", "8", "--awq-log", t, "-o", w.path("q.ingot"), "--force", "--quiet"]
        },
        c("data-loss", "export-into-parent-of-source", "input") { w in
            let m = try w.model("p/m"); return ["export", m, "--to", "compressed-tensors", "-o", w.path("p"), "--force", "--quiet"]
        },
        c("data-loss", "export-force-onto-foreign-dir", "files Ingot did not write") { w in
            w.write("dst/thesis.tex", "mine"); return ["export", w.model, "--to", "fp8", "-o", w.path("dst"), "--force", "--quiet"]
        },
        c("data-loss", "export-exists-no-force", "destination exists") { w in
            w.write("dst/x", "mine"); return ["export", w.model, "--to", "fp8", "-o", w.path("dst"), "--quiet"]
        },
        c("data-loss", "calibrate-onto-data", "input") { w in
            let t = w.write("t.txt", "Emma Woodhouse, handsome, clever, and rich. ")
            return ["calibrate", w.model, "--data", t, "--seq-len", "8", "-o", t, "--force", "--quiet"]
        },
        c("data-loss", "calibrate-exists-no-force", "destination exists") { w in
            w.write("c.ingot", "x"); return ["calibrate", w.model, "--data", w.heldout, "-o", w.path("c.ingot"), "--quiet"]
        },
        c("data-loss", "merge-onto-own-shard", "input") { w in
            try setup(["pack", w.model, w.path("x.ingot"), "--level", "0", "--max-shard-size", "6MB"])
            return ["merge", w.path("x.ingot"), "-o", w.path("x-00001-of-00002.ingot"), "--force"]
        },
        c("data-loss", "dequantize-onto-source", "input") { w in let s = w.smallCheckpoint("s.safetensors"); return ["dequantize", s, s, "--force"] },
        c("data-loss", "run-output-is-source-dir", "files Ingot did not write") { w in
            let m = try w.model()
            let r = w.write("r.yaml", "source: \(m)\noutput: \(m)\nquantize: {scheme: rtn-int4}\n")
            return ["run", r, "--quiet"]
        },
        c("data-loss", "run-output-foreign-dir", "files Ingot did not write") { w in
            w.write("out/notes.txt", "mine")
            return ["run", w.write("r.yaml", "source: \(w.model)\noutput: \(w.path("out"))\nquantize: {scheme: rtn-int4}\n"), "--quiet"]
        },
        c("data-loss", "concurrent-writer-holds-lock", "another ingot process is writing",
          shell: "exec 9>>'{DIR}/.o.ingot.ingot-lock' && flock -n 9 &&") { w in
            w.write(".o.ingot.ingot-lock", "")
            return ["pack", w.smallCheckpoint("s.safetensors"), w.path("o.ingot")]
        },
    ]

    // MARK: crashes

    static let aliasBomb: String = {
        var y = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1...9 { y += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
        return y + "source: m\noutput: o\nquantize: {scheme: rtn-int4}\n"
    }()

    static let crashes: [HostileCase] = [
        c("crash", "recipe-alias-bomb", "expands to more than") { w in ["run", w.write("r.yaml", aliasBomb), "--quiet"] },
        c("crash", "recipe-2MB", "larger than 1 MiB") { w in ["run", w.write("r.yaml", "# " + String(repeating: "x", count: 2 << 20) + "\n"), "--quiet"] },
        c("crash", "recipe-deep-nesting", "nested deeper") { w in ["run", w.write("r.yaml", "a: " + String(repeating: "[", count: 200)), "--quiet"] },
        c("crash", "eval-ctx-100000", "exceeds max_position_embeddings 512") { w in ["eval", w.model, "--text", w.long, "--ctx", "100000", "--quiet"] },
        c("crash", "calibrate-seq-len-100000", "exceeds max_position_embeddings 512") { w in
            ["calibrate", w.model, "--data", w.long, "--seq-len", "100000", "--samples", "1", "-o", w.path("c.ingot"), "--quiet"]
        },
        c("crash", "verify-ctx-100000", "exceeds max_position_embeddings") { w in ["verify", w.model, w.model, "--text", w.long, "--ctx", "100000", "--quiet"] },
        c("crash", "eval-ctx-needs-more-memory-than-machine", "of memory for the forward pass") { w in
            ["eval", try w.model(config: ["max_position_embeddings": 100_000_000]), "--text", w.heldout, "--ctx", "3000000", "--quiet"]
        },
        c("crash", "run-recipe-ctx-100000", "exceeds max_position_embeddings") { w in
            ["run", w.write("r.yaml", "source: \(w.model)\noutput: \(w.path("o"))\nquantize: {scheme: rtn-int4}\nverify: {text: \(w.heldout), ctx: 100000}\n"), "--quiet"]
        },
        c("crash", "hdf5-write-fails-file-size-limit", "full.h5", shell: "ulimit -f 256;") { w in ["convert", w.model, w.path("full.h5"), "--quiet"] },
        c("crash", "hdf5-unpack-fails-file-size-limit", "full.h5", shell: "ulimit -f 256;") { w in
            try setup(["pack", w.model, w.path("m.ingot"), "--level", "0"]); return ["unpack", w.path("m.ingot"), w.path("full.h5"), "--quiet"]
        },
        c("crash", "safetensors-write-fails-file-size-limit", "disk full", shell: "ulimit -f 256;") { w in
            ["convert", w.model, w.path("full.safetensors"), "--quiet"]
        },
        c("crash", "directory-write-fails-file-size-limit", "disk full", shell: "ulimit -f 256;") { w in ["convert", w.model, w.path("full"), "--quiet"] },
        c("crash", "eval-max-tokens-negative", "--max-tokens must be at least 2") { w in ["eval", w.model, "--text", w.heldout, "--max-tokens", "-3"] },
        c("crash", "eval-max-tokens-negative-attached", "--max-tokens must be at least 2") { w in ["eval", w.model, "--text", w.heldout, "--max-tokens=-3"] },
        c("crash", "verify-max-tokens-zero", "--max-tokens must be at least 2") { w in ["verify", w.model, w.model, "--text", w.heldout, "--max-tokens", "0"] },
        c("crash", "eval-stride-zero", "--stride") { w in ["eval", w.model, "--text", w.heldout, "--stride", "0"] },
        c("crash", "eval-token-id-beyond-vocab", "outside the vocabulary") { w in
            ["eval", w.model, "--tokens-json", w.write("ids.json", "[1, 2, 99999, 4]"), "--ctx", "4", "--quiet"]
        },
        c("crash", "eval-token-id-negative", "outside the vocabulary") { w in
            ["eval", w.model, "--tokens-json", w.write("ids.json", "[1, 2, -7, 4]"), "--ctx", "4", "--quiet"]
        },
    ]

    // MARK: hangs and unbounded reads

    static let hangs: [HostileCase] = [
        c("hang", "fifo-config-eval", "FIFO") { w in
            let m = try w.model(); unlink(m + "/config.json"); w.fifo("m/config.json"); return ["eval", m, "--text", w.heldout, "--quiet"]
        },
        c("hang", "fifo-config-inspect", "FIFO") { w in let m = try w.model(); unlink(m + "/config.json"); w.fifo("m/config.json"); return ["inspect", m] },
        c("hang", "fifo-tokenizer", "FIFO") { w in
            let m = try w.model(); unlink(m + "/tokenizer.json"); w.fifo("m/tokenizer.json"); return ["eval", m, "--text", w.heldout, "--quiet"]
        },
        c("hang", "fifo-weights", "FIFO") { w in let m = try w.model(); unlink(m + "/model.safetensors"); w.fifo("m/model.safetensors"); return ["inspect", m] },
        c("hang", "fifo-safetensors-file", "FIFO") { w in ["inspect", w.fifo("x.safetensors")] },
        c("hang", "fifo-ingot-file", "FIFO") { w in ["inspect", w.fifo("x.ingot")] },
        c("hang", "fifo-h5-file", "FIFO") { w in ["inspect", w.fifo("x.h5")] },
        c("hang", "fifo-shard-index", "FIFO") { w in w.dir("d"); return ["inspect", w.fifo("d/model.safetensors.index.json").replacingOccurrences(of: "/model.safetensors.index.json", with: "")] },
        c("hang", "fifo-recipe", "FIFO") { w in ["run", w.fifo("r.yaml")] },
        c("hang", "fifo-companion-on-convert", "FIFO") { w in
            let m = try w.model(); unlink(m + "/generation_config.json"); w.fifo("m/generation_config.json")
            return ["convert", m, w.path("out"), "--quiet"]
        },
        c("hang", "fifo-calibration-file", "FIFO") { w in
            ["quantize", w.model, "--scheme", "awq-int4", "--calib", w.fifo("c.ingot"), "-o", w.path("q.ingot"), "--quiet"]
        },
        c("hang", "dev-zero-as-text", "larger than 256 MiB") { w in ["eval", w.model, "--text", "/dev/zero", "--quiet"] },
        c("hang", "dev-zero-as-data", "larger than 256 MiB") { w in ["calibrate", w.model, "--data", "/dev/zero", "-o", w.path("c.ingot"), "--quiet"] },
        c("hang", "dev-zero-as-tokens-json", "larger than 256 MiB") { w in ["verify", w.model, w.model, "--tokens-json", "/dev/zero", "--quiet"] },
        c("hang", "dev-zero-as-recipe", "character device") { _ in ["run", "/dev/zero"] },
        c("hang", "dev-zero-as-config", "character device") { w in
            let m = try w.model(); unlink(m + "/config.json")
            try FileManager.default.createSymbolicLink(atPath: m + "/config.json", withDestinationPath: "/dev/zero")
            return ["eval", m, "--text", w.heldout, "--quiet"]
        },
        c("hang", "dev-zero-as-checkpoint", "character device") { _ in ["inspect", "/dev/zero"] },
        c("hang", "directory-as-text", "is a directory") { w in ["eval", w.model, "--text", w.dir("texts"), "--quiet"] },
        c("hang", "directory-as-data", "is a directory") { w in ["calibrate", w.model, "--data", w.dir("data"), "-o", w.path("c.ingot"), "--quiet"] },
        c("hang", "directory-as-tokens-json", "is a directory") { w in ["verify", w.model, w.model, "--tokens-json", w.dir("ids.json"), "--quiet"] },
        c("hang", "directory-as-recipe", "is a directory") { w in ["run", w.dir("r.yaml")] },
        c("hang", "directory-as-calibration", "is a directory") { w in
            ["quantize", w.model, "--scheme", "awq-int4", "--calib", w.dir("c.ingot"), "-o", w.path("q.ingot"), "--quiet"]
        },
    ]

    // MARK: silent misreads

    /// JSON values for a config edit (plain property-list values, never mutated).
    struct Edits: @unchecked Sendable { let values: [String: Any] }

    static func cfg(_ id: String, _ expect: String, _ edits: [String: Any]) -> HostileCase {
        let e = Edits(values: edits)
        return c("misread", id, expect) { w in ["eval", try w.model(config: e.values), "--text", w.heldout, "--ctx", "64", "--max-tokens", "128", "--quiet"] }
    }

    static let misreads: [HostileCase] = [
        cfg("hidden-act-gelu", #"config.json: hidden_act = "gelu" is not supported"#, ["hidden_act": "gelu"]),
        cfg("hidden-act-relu", "hidden_act", ["hidden_act": "relu"]),
        cfg("hidden-act-gelu-new", "hidden_act", ["hidden_act": "gelu_new"]),
        cfg("hidden-act-number", "hidden_act", ["hidden_act": 3]),
        cfg("rms-norm-eps-negative", "rms_norm_eps", ["rms_norm_eps": -1]),
        cfg("rms-norm-eps-zero", "rms_norm_eps", ["rms_norm_eps": 0]),
        cfg("rms-norm-eps-string", "rms_norm_eps", ["rms_norm_eps": "1e-5"]),
        cfg("rms-norm-eps-underflows-f32", "rms_norm_eps", ["rms_norm_eps": 1e-60]),
        cfg("rope-theta-zero", "rope_theta", ["rope_theta": 0]),
        cfg("rope-theta-negative", "rope_theta", ["rope_theta": -10000]),
        cfg("rope-theta-string", "rope_theta", ["rope_theta": "10000"]),
        cfg("rope-theta-overflows-f32", "rope_theta", ["rope_theta": 1e300]),
        c("misread", "rope-theta-infinite-literal", "rope_theta") { w in
            ["eval", try w.model(rawConfig: { $0.replacingOccurrences(of: "10000.0", with: "1e400") }), "--text", w.heldout, "--ctx", "64", "--quiet"]
        },
        cfg("kv-heads-string", "num_key_value_heads", ["num_key_value_heads": "2"]),
        cfg("kv-heads-not-dividing", "num_key_value_heads", ["num_key_value_heads": 4]),
        cfg("head-dim-odd", "head_dim", ["head_dim": 31]),
        cfg("head-dim-float", "head_dim", ["head_dim": 32.5]),
        cfg("mlp-bias", "mlp_bias", ["mlp_bias": true]),
        cfg("attention-bias", "attention_bias", ["attention_bias": true]),
        cfg("partial-rotary-factor", "partial_rotary_factor", ["partial_rotary_factor": 0.5]),
        cfg("tie-word-embeddings-string", "tie_word_embeddings", ["tie_word_embeddings": "yes"]),
        cfg("max-position-negative", "max_position_embeddings", ["max_position_embeddings": -1]),
        cfg("rope-type-linear", "rope_type = linear", ["rope_parameters": ["rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0]]),
        cfg("rope-scaling-not-object", "rope_scaling", ["rope_parameters": NSNull(), "rope_scaling": "yarn"]),
        cfg("sliding-window-set", "sliding_window", ["sliding_window": 128]),
        cfg("model-type-unknown", "model_type = gpt2", ["model_type": "gpt2"]),
        cfg("hidden-size-missing", "hidden_size", ["hidden_size": NSNull()]),
        cfg("heads-zero", "num_attention_heads", ["num_attention_heads": 0]),
        cfg("experts-per-token-above-experts", "num_experts_per_tok", ["num_experts_per_tok": 9]),
        cfg("hidden-size-vs-weights", "hidden_size = 256", ["hidden_size": 256]),
        cfg("intermediate-size-vs-weights", "intermediate_size = 512", ["intermediate_size": 512]),
        cfg("vocab-size-vs-weights", "vocab_size = 5000", ["vocab_size": 5000]),
        cfg("head-dim-vs-weights", "num_attention_heads × head_dim = 96", ["head_dim": 16]),
        cfg("more-layers-than-weights", "model.layers.4.", ["num_hidden_layers": 5]),
        c("misread", "integer-tensor-in-weight-slot", "a weight must be a floating-point tensor") { w in
            let m = try w.model(copyWeights: true)
            let p = m + "/model.safetensors"
            var bytes = [UInt8](FileManager.default.contents(atPath: p)!)
            let n = Int(bytes[0..<8].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            var header = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
            // Same byte width, so the file stays valid: model.norm.weight BF16 → I16.
            let r = header.range(of: #""model.norm.weight":{"dtype":"BF16""#)!
            header.replaceSubrange(r, with: #""model.norm.weight":{"dtype":"I16" "#)
            bytes.replaceSubrange(8..<(8 + n), with: Array(header.utf8))
            FileManager.default.createFile(atPath: p, contents: Data(bytes))
            return ["eval", m, "--text", w.heldout, "--ctx", "64", "--max-tokens", "128", "--quiet"]
        },
        c("misread", "integer-tensor-quantized", "only floating-point weights are quantized") { w in
            let header = #"{"layer.up_proj.weight":{"dtype":"I32","shape":[4,4],"data_offsets":[0,64]}}"#
            return ["quantize", w.write("i.safetensors", w.safetensors(header, [UInt8](repeating: 1, count: 64))), "--group-size", "4", "-o", w.path("q.ingot")]
        },
        c("misread", "integer-tensor-exported", "only floating-point weights are quantized") { w in
            let header = #"{"layer.up_proj.weight":{"dtype":"I32","shape":[4,4],"data_offsets":[0,64]}}"#
            return ["export", w.write("i.safetensors", w.safetensors(header, [UInt8](repeating: 1, count: 64))), "--to", "fp8", "-o", w.path("e")]
        },
        c("misread", "ignore-invalid-regex", "--ignore 're:([': not a valid regular expression") { w in
            ["quantize", w.model, "--ignore", "re:([", "-o", w.path("q.ingot"), "--quiet"]
        },
        c("misread", "override-invalid-regex", "--override") { w in
            ["quantize", w.model, "--override", "re:(*=rtn-int8", "-o", w.path("q.ingot"), "--quiet"]
        },
        c("misread", "export-ignore-unbalanced-glob", "unbalanced") { w in
            ["export", w.model, "--to", "compressed-tensors", "--ignore", "model.[layers", "-o", w.path("e"), "--quiet"]
        },
        c("misread", "recipe-ignore-invalid-regex", "quantize.ignore") { w in
            ["run", w.write("r.yaml", "source: \(w.model)\noutput: \(w.path("o"))\nquantize: {scheme: rtn-int4, ignore: [\"re:a(\"]}\n"), "--quiet"]
        },
        c("misread", "samples-beyond-text-warns", "warning: ", status: 0) { w in
            let t = w.write("short.txt", String(repeating: "Anne Elliot walked by the sea at Lyme. ", count: 40))
            return ["calibrate", w.model, "--data", t, "--samples", "1000", "--seq-len", "64", "-o", w.path("c.ingot"), "--quiet"]
        },
    ]

    // MARK: unclear messages

    static let messages: [HostileCase] = [
        c("message", "garbage-config-names-file", "m/config.json") { w in ["eval", try w.model(rawConfig: { _ in "{garbage" }), "--text", w.heldout, "--quiet"] },
        c("message", "garbage-config-inspect-names-file", "m/config.json") { w in ["inspect", try w.model(rawConfig: { _ in "[1,2" })] },
        c("message", "garbage-tokenizer-names-file", "tokenizer.json") { w in
            let m = try w.model(); unlink(m + "/tokenizer.json"); w.write("m/tokenizer.json", "{nope"); return ["eval", m, "--text", w.heldout, "--quiet"]
        },
        c("message", "garbage-index-names-file", "model.safetensors.index.json") { w in w.write("d/model.safetensors.index.json", "{"); return ["inspect", w.path("d")] },
        c("message", "garbage-tokens-json-names-file", "ids.json") { w in ["eval", w.model, "--tokens-json", w.write("ids.json", "[1, 2,"), "--quiet"] },
        c("message", "garbage-jsonl-names-file-and-line", "x.jsonl:2") { w in
            ["calibrate", w.model, "--data", w.write("x.jsonl", "{\"text\": \"ok\"}\n{bad\n"), "-o", w.path("c.ingot"), "--quiet"]
        },
        c("message", "garbage-recipe-names-file", "r.yaml") { w in ["run", w.write("r.yaml", "source: [unclosed\n")] },
        c("message", "garbage-manifest-names-file", "ingot-manifest.json") { w in w.write("d/ingot-manifest.json", "{x"); return ["verify-file", w.path("d")] },
        c("message", "truncated-ingot-says-truncated", "truncated") { w in
            try setup(["pack", w.smallCheckpoint("s.safetensors"), w.path("a.ingot")])
            let b = [UInt8](FileManager.default.contents(atPath: w.path("a.ingot"))!)
            return ["inspect", w.write("t.ingot", Array(b[0..<(b.count / 2)]))]
        },
        c("message", "truncated-ingot-header-only", "truncated") { w in
            try setup(["pack", w.smallCheckpoint("s.safetensors"), w.path("a.ingot")])
            let b = [UInt8](FileManager.default.contents(atPath: w.path("a.ingot"))!)
            return ["inspect", w.write("t.ingot", Array(b[0..<40]))]
        },
        c("message", "ingot-wrong-magic", "magic") { w in
            try setup(["pack", w.smallCheckpoint("s.safetensors"), w.path("a.ingot")])
            var b = [UInt8](FileManager.default.contents(atPath: w.path("a.ingot"))!); b[0] = 0x58
            return ["inspect", w.write("t.ingot", b)]
        },
        c("message", "text-file-as-model", "m.txt") { w in ["eval", w.write("m.txt", "hello"), "--text", w.heldout] },
        c("message", "negative-ctx", "--ctx must be at least 2") { w in ["eval", w.model, "--text", w.heldout, "--ctx", "-5"] },
        c("message", "negative-samples", "--samples must be ≥ 1") { w in ["calibrate", w.model, "--data", w.heldout, "--samples", "-5", "-o", w.path("c.ingot")] },
        c("message", "negative-seq-len", "--seq-len") { w in ["calibrate", w.model, "--data", w.heldout, "--seq-len", "-512", "-o", w.path("c.ingot")] },
        c("message", "negative-threads", "--threads must be ≥ 0") { w in ["convert", w.model, w.path("o.safetensors"), "--threads", "-1"] },
        c("message", "negative-group-size", "--group-size must be positive") { w in ["quantize", w.model, "--group-size", "-32", "-o", w.path("q.ingot")] },
        c("message", "negative-level", "--level must be between 0 and 22") { w in ["pack", w.model, w.path("a.ingot"), "--level", "-1"] },
        c("message", "negative-seed", "-1") { w in ["calibrate", w.model, "--data", w.heldout, "--seed", "-1", "-o", w.path("c.ingot")] },
        c("message", "negative-min-expert-tokens", "--min-expert-tokens") { w in
            ["calibrate", w.model, "--data", w.heldout, "--min-expert-tokens", "-1", "-o", w.path("c.ingot")]
        },
        c("message", "negative-max-shard-size", "--max-shard-size") { w in ["convert", w.model, w.path("o"), "--max-shard-size", "-5GB"] },
        c("message", "negative-chunk-size", "--chunk-size") { w in ["pack", w.model, w.path("a.ingot"), "--chunk-size", "-4096"] },
        c("message", "negative-max-ppl-delta-is-a-number", "fewer than one window") { w in ["verify", w.model, w.model, "--tokens-json", w.write("ids.json", "[1]"), "--max-ppl-delta", "-1", "--quiet"] },
        c("message", "unknown-scheme", "'rtn-int3' is invalid for '--scheme") { w in ["quantize", w.model, "--scheme", "rtn-int3", "-o", w.path("q.ingot")] },
        c("message", "unknown-export-format", "--to must be") { w in ["export", w.model, "--to", "onnx", "-o", w.path("e")] },
        c("message", "calib-and-data", "give --calib or --data, not both") { w in
            ["quantize", w.model, "--scheme", "awq-int4", "--calib", w.heldout, "--data", w.heldout, "-o", w.path("q.ingot")]
        },
        c("message", "verify-without-text", "give exactly one of --text or --tokens-json") { w in ["verify", w.model, w.model] },
        c("message", "merge-without-shards", "no shards found") { w in ["merge", w.path("none.ingot")] },
        c("message", "verify-file-dir-without-manifest", "no ingot-manifest.json") { w in ["verify-file", w.dir("d")] },
        c("message", "unknown-option", "Unknown option") { w in ["convert", w.model, w.path("o"), "--frobnicate"] },
        c("message", "awq-without-calibration", "needs calibration") { w in ["quantize", w.model, "--scheme", "awq-int4", "-o", w.path("q.ingot"), "--quiet"] },
        c("message", "text-shorter-than-ctx", "tokens") { w in ["eval", w.model, "--text", w.write("t.txt", "Emma."), "--ctx", "64", "--quiet"] },
        c("message", "empty-text", "0 tokens, fewer than one window of 64") { w in ["eval", w.model, "--text", w.write("t.txt", ""), "--ctx", "64", "--quiet"] },
        c("message", "pack-destination-suffix", "destination must end in .ingot") { w in ["pack", w.model, w.path("a.bin")] },
    ]

    // MARK: parsers of untrusted bytes

    static func st(_ id: String, _ expect: String, _ header: String, _ data: [UInt8] = [], declared: UInt64? = nil) -> HostileCase {
        c("parser", id, expect) { w in ["inspect", w.write("x.safetensors", w.safetensors(header, data, declared: declared))] }
    }

    static let parsers: [HostileCase] = [
        c("parser", "safetensors-3-bytes", "truncated") { w in ["inspect", w.write("x.safetensors", [1, 2, 3])] },
        st("header-past-end", "past the end", "{}", declared: 500),
        st("header-over-cap", "exceeds the 100000000-byte limit", "{}", declared: 200_000_000),
        c("parser", "header-not-utf8", "UTF-8") { w in ["inspect", w.write("x.safetensors", [4, 0, 0, 0, 0, 0, 0, 0, 0x7B, 0xFF, 0xFE, 0x7D])] },
        st("header-not-json", "JSON", "{nope"),
        st("header-array", "header is not a JSON object", "[1]"),
        st("overlapping-offsets", "overlaps", #"{"a":{\#(t)[0,4]},"b":{\#(t)[2,6]}}"#, [UInt8](repeating: 0, count: 6)),
        st("gap-between-tensors", "gap before data", #"{"a":{\#(t)[4,8]}}"#, [UInt8](repeating: 0, count: 8)),
        st("offsets-past-end", "past the 8-byte data section", #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, [UInt8](repeating: 0, count: 8)),
        st("uncovered-bytes", "tensors cover 4 of 8 data bytes", #"{"a":{\#(t)[0,4]}}"#, [UInt8](repeating: 0, count: 8)),
        st("shape-dtype-size-mismatch", "shape × dtype size is 4", #"{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}}"#, [UInt8](repeating: 0, count: 8)),
        st("shape-overflow", "overflows", #"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, [UInt8](repeating: 0, count: 8)),
        st("negative-dimension", "not a non-negative integer", #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, [UInt8](repeating: 0, count: 4)),
        st("unknown-dtype", "Q9", #"{"a":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}}"#, [0]),
        st("duplicate-name", "twice", #"{"a":{\#(t)[0,4]},"a":{\#(t)[4,8]}}"#, [UInt8](repeating: 0, count: 8)),
        st("metadata-not-string", "is not a string", #"{"__metadata__":{"k":1}}"#),
        c("parser", "index-missing-shard", "gone.safetensors") { w in
            w.write("d/model.safetensors.index.json", #"{"weight_map":{"a":"gone.safetensors"}}"#); return ["inspect", w.path("d")]
        },
        c("parser", "index-dotdot-shard", "leaves the model directory") { w in
            w.write("d/model.safetensors.index.json", #"{"weight_map":{"a":"../x.safetensors"}}"#); return ["inspect", w.path("d")]
        },
        c("parser", "index-absolute-shard", "leaves the model directory") { w in
            w.write("d/model.safetensors.index.json", #"{"weight_map":{"a":"/etc/passwd"}}"#); return ["inspect", w.path("d")]
        },
        c("parser", "directory-without-checkpoint", "no .safetensors") { w in ["inspect", w.dir("empty")] },
        c("parser", "path-does-not-exist", "No such file") { w in ["inspect", w.path("nope.safetensors")] },
        c("parser", "text-named-h5", "not an HDF5 file") { w in ["inspect", w.write("q.h5", String(repeating: "plain text, not hdf5", count: 10))] },
        c("parser", "hdf5-signature-then-garbage", "libhdf5 cannot open the file") { w in ["inspect", w.write("r.h5", [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A] + [UInt8](repeating: 0xAB, count: 600))] },
        c("parser", "ingot-flipped-index-byte", "t.ingot") { w in
            try setup(["pack", w.smallCheckpoint("s.safetensors"), w.path("a.ingot")])
            var b = [UInt8](FileManager.default.contents(atPath: w.path("a.ingot"))!); b[b.count - 60] ^= 1
            return ["inspect", w.write("t.ingot", b)]
        },
    ]

    // MARK: recording

    final class Table: @unchecked Sendable { let lock = NSLock() }
    static let table = Table()

    static func record(_ c: HostileCase, status: Int32, message: String, intact: Bool, changed: String) {
        guard let path = ProcessInfo.processInfo.environment["INGOT_HOSTILE_TABLE"], !path.isEmpty else { return }
        let msg = message.replacingOccurrences(of: "|", with: "\\|").prefix(160)
        let row = "| \(c.kind) | \(c.id) | \(status == -1 ? "timeout" : String(status)) | \(msg) | \(intact ? "yes" : "NO: " + changed) |\n"
        table.lock.lock(); defer { table.lock.unlock() }
        if let h = FileHandle(forWritingAtPath: path) { h.seekToEndOfFile(); h.write(Data(row.utf8)); try? h.close() }
        else { FileManager.default.createFile(atPath: path, contents: Data(row.utf8)) }
    }

    static func difference(_ a: [String: Workspace.Entry], _ b: [String: Workspace.Entry]) -> String {
        let added = b.keys.filter { a[$0] == nil }.sorted(), removed = a.keys.filter { b[$0] == nil }.sorted()
        let changed = a.keys.filter { b[$0] != nil && b[$0] != a[$0] }.sorted()
        return (added.map { "+" + $0 } + removed.map { "-" + $0 } + changed.map { "~" + $0 }).prefix(5).joined(separator: " ")
    }
}
