"""Plain data that the engine, the plugin system and plugins all speak: parameters, specs, errors, the registry.

This package imports nothing from the rest of the workbench, and neither torch nor Qt: it is the bottom layer
(docs/architecture.md).
"""
