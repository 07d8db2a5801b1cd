/// Verification: perplexity delta, KL divergence, top-token agreement, reconstruction error, gates.
@_exported import IngotCore
