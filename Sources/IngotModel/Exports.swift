/// Model graph: config.json per architecture, checkpoint names mapped to roles, AWQ mappings as data.
@_exported import IngotCore
