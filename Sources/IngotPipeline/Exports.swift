/// Recipes and the end-to-end run loop.
@_exported import IngotCore
