"""The plugin contract, part one: one hook per contribution kind.  Part two is :mod:`workbench.api`, the names
a plugin may use.

Plugins are modules (or objects) exposed through the ``seqwb.plugins`` entry-point group, built-ins included.
Each hook is called once at discovery, with no arguments, and returns a list of plain-data specs (see
:mod:`workbench.api`).  Implementations must not import torch or Qt at module level or inside the hook: specs
name their code as ``"module:attr"`` strings that are imported only when used.

Example::

    from workbench.api import CellSpec, hookimpl

    SEQWB_API = ">=1.0,<2"      # the versions of this contract the plugin supports (see API_VERSION)

    @hookimpl
    def seqwb_cells():
        # ids are namespaced by the distribution that ships them (here "my-cells")
        return [CellSpec(id="my-cells.mgu", title="Minimal gated unit", version="1.0", params=MGUParams,
                         factory="my_cells.mgu:MGUCell", gates=("f",))]
"""

from __future__ import annotations

import pluggy

from workbench.schema.specs import (BlockSpec, CellSpec, DecoderSpec, FeatureTrackSpec, TaskSpec,
                                           TemplateSpec)

PROJECT_NAME = "seqwb"
ENTRY_POINT_GROUP = "seqwb.plugins"
#: Version of this contract: MAJOR.MINOR.  A minor version adds hooks, optional spec fields or names of
#: :mod:`workbench.api` (plugins written for an older minor version keep working); a major version changes or
#: removes something.  1.1 added :mod:`workbench.api`; 1.2 added namespaced ids (``DISTRIBUTION.NAME``), the
#: specs' ``former_ids``, ``Cell.after_step`` and ``workbench.api.last_step`` / ``IGNORE``.  A plugin declares the versions it supports as
#: ``SEQWB_API = ">=1.0,<2"`` in the module its entry point names (or, for a plugin object, as an attribute of it):
#: a PEP 440 version specifier (``>=1.0,<2``, ``==1.*``, ``~=1.1``).  A plugin whose range excludes API_VERSION is
#: reported and not loaded; a plugin that declares nothing is loaded, with a note.
API_VERSION = "1.2"
#: the attribute a plugin module sets to declare the API versions it supports
API_ATTRIBUTE = "SEQWB_API"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class SeqwbHookSpecs:
    """All hooks of Sequence Workbench."""

    @hookspec
    def seqwb_cells(self) -> list[CellSpec]:
        """Called once at discovery.  Return the recurrent cells this plugin adds.

        A cell's factory is called as ``factory(input_size, hidden_size, params)`` and returns a
        :class:`workbench.api.Cell` (a ``torch.nn.Module`` with ``init_state``, ``step`` and optionally a
        fused ``sequence``).  Every cell becomes a choice of the recurrent-layer blocks.
        """

    @hookspec
    def seqwb_architectures(self) -> list[BlockSpec]:
        """Called once at discovery.  Return the block types (graph nodes) this plugin adds.

        A block's factory is called as ``factory(params, in_sizes, out_sizes, ctx)`` and returns a
        :class:`workbench.api.Block`.  Ports are typed; sizes are inferred along links.
        """

    @hookspec
    def seqwb_tasks(self) -> list[TaskSpec]:
        """Called once at discovery.  Return the tasks this plugin adds.

        A task's factory is called as ``factory(params, base_dir)`` and returns a
        :class:`workbench.api.Task`: data reading, vocabulary, batching, loss, metrics.
        """

    @hookspec
    def seqwb_decoders(self) -> list[DecoderSpec]:
        """Called once at discovery.  Return the decoders this plugin adds.

        A decoder's factory is called as ``factory(model, task, params, prompt=..., device=..., generator=...)``
        and returns a :class:`workbench.api.DecodeResult`.  Decoders only use ``model.start`` and
        ``model.step``, so every decoder works with every generative model.
        """

    @hookspec
    def seqwb_templates(self) -> list[TemplateSpec]:
        """Called once at discovery.  Return pre-wired projects.

        A template's factory is called as ``factory(params)`` and returns the project as a JSON-ready ``dict``
        (see :mod:`workbench.core.project`).  It must not import torch.
        """

    @hookspec
    def seqwb_feature_tracks(self) -> list[FeatureTrackSpec]:
        """Called once at discovery.  Return the feature tracks this plugin adds to unit search.

        A track's factory is called as ``factory(text)`` and returns one number per character of ``text`` (a
        sequence or numpy array of ``len(text)`` values: 1/0 for yes/no features, counts for depths).  Tracks
        appear in the window's unit search and in ``seqwb units --feature ID``.
        """


#: hook name -> spec kind, in the order the loader calls them
HOOKS = {
    "seqwb_cells": "cell",
    "seqwb_architectures": "architecture",
    "seqwb_tasks": "task",
    "seqwb_decoders": "decoder",
    "seqwb_templates": "template",
    "seqwb_feature_tracks": "feature_track",
}
