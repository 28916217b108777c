"""Registration data (specs, params, templates) for the text part of the built-in catalog.  No torch here.

The hook modules (cells, architectures, tasks, decoders, templates) collect these lists.
"""

from __future__ import annotations

from workbench.plugin_system.specs import BlockSpec, DecoderSpec, TaskSpec, TemplateSpec

BLOCKS: list[BlockSpec] = []
TASKS: list[TaskSpec] = []
DECODERS: list[DecoderSpec] = []
TEMPLATES: list[TemplateSpec] = []
