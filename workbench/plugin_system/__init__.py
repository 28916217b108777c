"""Plugin system: specs, parameters and the loader.  Imports neither torch nor Qt."""

from workbench.plugin_system.loader import (DisabledPlugin, PluginFailure, PluginNote, Registry,
                                            UnknownContributionError, default_registry, discover,
                                            make_plugin_manager)
from workbench.schema.params import ParamError, param
from workbench.schema.specs import (BlockSpec, CellSpec, DecoderSpec, FeatureTrackSpec, NoParams, PortSpec,
                                           TaskSpec, TemplateSpec, resolve)

__all__ = [
    "BlockSpec", "CellSpec", "DecoderSpec", "DisabledPlugin", "FeatureTrackSpec", "NoParams", "ParamError",
    "PluginFailure", "PluginNote", "PortSpec", "Registry", "TaskSpec", "TemplateSpec", "UnknownContributionError",
    "default_registry", "discover", "make_plugin_manager", "param", "resolve",
]
