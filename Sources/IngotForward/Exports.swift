/// Reference CPU forward pass (fp32 activations, OpenBLAS sgemm), tokenizer, perplexity.
@_exported import IngotCore
