"""The plugin API: every name a plugin may use, and nothing else.

This module is the contract between Sequence Workbench and its plugins, with :mod:`workbench.hookspecs` (the
hooks themselves).  Plugins import from here only; the modules behind these names are internal and may move
between releases.  The built-in plugins follow the same rule (an import-linter contract checks it).

Plain data (specs, parameters, errors, the hook marker) is imported at once.  The classes plugins subclass
(:class:`Cell`, :class:`Block`, :class:`Task`, ...) need torch, so they are imported on first use: a plugin's
registration module can ``from workbench.api import hookimpl, CellSpec, param`` without importing torch, as
discovery requires.

Versioning: :data:`API_VERSION` is MAJOR.MINOR.  A plugin declares the versions it supports in the module its
entry point names, ``SEQWB_API = ">=1.2,<2"``.  A minor version adds names (1.1 added this module; 1.2 added
``last_step``, ``IGNORE``, ``Provider`` and ``ContributionConflictError``, with namespaced ids and
``Cell.after_step``); a major version changes or removes one.  The import paths that plugins used before 1.1 (``workbench.core.cells``,
``workbench.plugin_system.specs``, ...) keep working through 1.x.

=====================  ======================================================================================
Names                  What they are for
=====================  ======================================================================================
``hookimpl``           marks a plugin's hook implementations (the hooks: :mod:`workbench.hookspecs`)
``CellSpec`` ...       the specs a hook returns: ``CellSpec``, ``BlockSpec``, ``TaskSpec``, ``DecoderSpec``,
                       ``TemplateSpec``, ``FeatureTrackSpec``, with ``PortSpec`` and ``PORT_TYPES``
``param``              a parameter field with its range, choices and help (drives forms and ``--set``)
``Cell``               one recurrent step (``State`` is its tuple of tensors)
``Block``              a node of the model graph (``BuildContext`` is what its factory gets)
``Task``               data, batching, loss and metrics (``StreamLMTask`` for language-model streams); ``IGNORE``
                       is the target id of padded steps, ``last_step`` picks each sequence's last real step
``DecodeResult`` ...   what a decoder returns, with ``SearchTree``, ``LazySearchTree``, ``TreeNode``,
                       ``prime``, ``token_label`` and ``map_state`` (reorders a nested model state)
``Graph`` ...          templates wire a graph between ``TASK_INPUT`` and ``TASK_OUTPUT``
``WorkbenchError`` ... errors whose text is the one line a user sees: ``DataError``, ``TrainingError``,
                       ``PluginCodeError``; ``ContributionConflictError`` (an id two distributions register)
``Provider``           who provides a contribution (distribution, version, entry point)
=====================  ======================================================================================
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from workbench.hookspecs import API_ATTRIBUTE, API_VERSION, hookimpl
from workbench.schema.errors import ContributionConflictError, DataError, TrainingError, WorkbenchError
from workbench.schema.params import ParamError, param
from workbench.schema.registry import Provider
from workbench.schema.specs import (PORT_TYPES, BlockSpec, CellSpec, DecoderSpec, FeatureTrackSpec, NoParams,
                                    PortSpec, TaskSpec, TemplateSpec)

if TYPE_CHECKING:  # noqa: F401 - the lazy names below, for type checkers and import-linter
    from workbench.core.blocks import Block, BuildContext, map_state
    from workbench.core.cells import Cell, State
    from workbench.core.decode import DecodeResult, LazySearchTree, SearchTree, TreeNode, prime, token_label
    from workbench.core.graph import TASK_INPUT, TASK_OUTPUT, Graph
    from workbench.core.plugin_checks import PluginCodeError
    from workbench.core.tasks import IGNORE, Batch, StreamLMTask, Task, last_step, sha256_file, sha256_text

#: name -> the internal module that defines it; imported on first use (these modules import torch)
_LAZY = {
    "Cell": "workbench.core.cells", "State": "workbench.core.cells",
    "Block": "workbench.core.blocks", "BuildContext": "workbench.core.blocks", "map_state": "workbench.core.blocks",
    "Task": "workbench.core.tasks", "StreamLMTask": "workbench.core.tasks", "Batch": "workbench.core.tasks",
    "sha256_file": "workbench.core.tasks", "sha256_text": "workbench.core.tasks",
    "IGNORE": "workbench.core.tasks", "last_step": "workbench.core.tasks",
    "DecodeResult": "workbench.core.decode", "SearchTree": "workbench.core.decode",
    "LazySearchTree": "workbench.core.decode", "TreeNode": "workbench.core.decode", "prime": "workbench.core.decode",
    "token_label": "workbench.core.decode",
    "Graph": "workbench.core.graph", "TASK_INPUT": "workbench.core.graph", "TASK_OUTPUT": "workbench.core.graph",
    "PluginCodeError": "workbench.core.plugin_checks",
}

__all__ = [
    "API_ATTRIBUTE", "API_VERSION", "hookimpl",
    "BlockSpec", "CellSpec", "DecoderSpec", "FeatureTrackSpec", "NoParams", "PORT_TYPES", "PortSpec", "TaskSpec",
    "TemplateSpec", "ParamError", "param",
    "ContributionConflictError", "DataError", "Provider", "TrainingError", "WorkbenchError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"workbench.api has no {name!r}; the plugin API is: {', '.join(sorted(__all__))}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value   # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
