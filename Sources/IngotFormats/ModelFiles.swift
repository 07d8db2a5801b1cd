import IngotCore

/// The non-tensor files of a Hugging Face model directory that travel with its weights.
public enum ModelFiles {
    /// Config, generation and tokenizer files copied along by `convert`, `pack`, `export`.
    public static let companions = [
        "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt", "chat_template.jinja",
        "added_tokens.json",
    ]

    /// The companion files present in `directory`, in the order above.
    public static func present(in directory: String) -> [String] {
        companions.filter { FileSystem.exists(directory + "/" + $0) && !FileSystem.isDirectory(directory + "/" + $0) }
    }
}
