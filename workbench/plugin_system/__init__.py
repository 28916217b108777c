"""Plugin system: specs, parameters and the loader.  Imports neither torch nor Qt."""

from workbench.plugin_system.loader import (PluginFailure, Registry, UnknownContributionError, default_registry,
                                            discover, make_plugin_manager)
from workbench.plugin_system.params import ParamError, param
from workbench.plugin_system.specs import (BlockSpec, CellSpec, DecoderSpec, PortSpec, TaskSpec, TemplateSpec,
                                           resolve)

__all__ = [
    "BlockSpec", "CellSpec", "DecoderSpec", "ParamError", "PluginFailure", "PortSpec", "Registry", "TaskSpec",
    "TemplateSpec", "UnknownContributionError", "default_registry", "discover", "make_plugin_manager", "param",
    "resolve",
]
