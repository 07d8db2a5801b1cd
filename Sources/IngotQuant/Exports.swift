/// Quantizers (RTN INT4/INT8, FP8, AWQ), packing layouts.
@_exported import IngotCore
