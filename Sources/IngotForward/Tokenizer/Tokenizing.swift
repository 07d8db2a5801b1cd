/// Anything that turns text into token ids (the BPE tokenizer, or a test double).
public protocol Tokenizing: Sendable {
    /// Token ids of `text`; with `addSpecialTokens` the tokenizer's post-processor template (e.g. BOS) is applied.
    func encode(_ text: String, addSpecialTokens: Bool) throws -> [Int]
}
