import ArgumentParser
import Foundation
import IngotCore
import IngotForward
import IngotFormats
import IngotModel

/// `ingot eval MODEL --text FILE`: perplexity with the reference forward pass.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Perplexity of a model of any family Ingot reads on a text file or token ids, with the reference forward pass.")

    @Argument(help: "Model directory (config.json, weights, tokenizer.json), a quantized export, or an .ingot file.") var model: String
    @Option(help: "UTF-8 text file (tokenized with the model's tokenizer.json, no special tokens).") var text: String?
    @Option(help: "JSON array of token ids instead of --text.") var tokensJson: String?
    @Option(help: "Window length.") var ctx: Int = 512
    @Option(help: "Use at most this many tokens.") var maxTokens: Int?
    @Option(help: "Sliding windows advancing by this many tokens (default: non-overlapping).") var stride: Int?
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "No progress output.") var quiet = false
    @OptionGroup var parallelism: ThreadOptions

    func validate() throws {
        guard (text == nil) != (tokensJson == nil) else { throw ValidationError("give exactly one of --text or --tokens-json") }
        guard ctx >= 2 else { throw ValidationError("--ctx must be at least 2") }
        if let m = maxTokens, m < 2 { throw ValidationError("--max-tokens must be at least 2") }
        if let s = stride, s < 1 || s > ctx { throw ValidationError("--stride must be between 1 and --ctx") }
    }

    func run() throws {
        do { try execute() } catch { throw exitStatus(for: error) }
    }

    func execute() throws {
        // Quantized checkpoints (compressed-tensors, AutoAWQ, FP8, .ingot) run on their dequantized weights.
        let opened = try OpenedModel(path: model)
        let m = opened.model
        try ForwardLimits.check(m.config, length: ctx, sequences: 1, logits: true, option: "--ctx")
        var ids = try evaluationTokens(text: text, tokensJson: tokensJson, tokenizer: opened.tokenizer)
        if let mx = maxTokens { ids = Array(ids.prefix(mx)) }
        let r = try Perplexity.evaluate(m, tokens: ids, context: ctx, stride: stride, progress: TerminalProgress.make(quiet: quiet || json))
        let tps = Double(r.windows.count * ctx) / max(r.seconds, 1e-9)
        if json {
            emit(JSON.object([("perplexity", .double(r.perplexity)), ("predictions", .int(r.predictions)),
                              ("windows", .array(r.windows.map { .object([("start", .int($0.start)), ("predictions", .int($0.predictions)),
                                                                          ("nll", .double($0.nll))]) })),
                              ("context", .int(ctx)), ("seconds", .double(r.seconds)), ("tokens_per_second", .double(tps))]).serialized(pretty: true))
        } else {
            for (i, w) in r.windows.enumerated() {
                emit(String(format: "window %3d  tokens %6d-%6d  ppl %9.4f", i, w.start, w.start + ctx, exp(w.nll / Double(max(w.predictions, 1)))))
            }
            emit(String(format: "perplexity %.4f over %d predictions (%d windows of %d) in %.2f s, %.0f tokens/s",
                        r.perplexity, r.predictions, r.windows.count, ctx, r.seconds, tps))
        }
    }
}
