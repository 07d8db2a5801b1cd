/// Calibration: data loading, per-linear and per-expert activation statistics, coverage.
@_exported import IngotCore
