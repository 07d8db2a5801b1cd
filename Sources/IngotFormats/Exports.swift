/// Checkpoint containers: safetensors (single and sharded), HDF5, the native .ingot format, and runtime exports.
@_exported import IngotCore
