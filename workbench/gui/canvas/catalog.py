"""What can be added to the canvas: one entry per task, one per block type (and per cell for recurrent blocks).

Shared by the palette dock and the Tab quick-search so both list the same things in the same order.  Everything
comes from the registry: a plugin's new task, block or cell appears here without any GUI code.  A task entry sets
the project's task (a project has one: dropping another replaces it); a block entry adds a node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

from workbench.gui.style import category_sort_key, category_title, help_html
from workbench.schema.params import field_info
from workbench.schema.specs import PORT_TYPES

MIME_TYPE = "application/x-seqwb-block"   # drag payload: JSON {"type": ..., "params": {...}} or {"task": ...}
TASKS = "tasks"                           # the category of task entries


@dataclass(frozen=True)
class BlockEntry:
    type_id: str
    title: str
    category: str
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    keywords: str = ""       # lower-case text the search matches, besides the title
    tooltip: str = ""
    task: str = ""           # a task entry: the task id (``type_id`` is empty)
    short_title: str = ""    # the title under its category's heading in the palette ("GRU" under recurrent layers)

    def payload(self) -> dict[str, Any]:
        """What a drag carries (:data:`MIME_TYPE`)."""
        return {"task": self.task} if self.task else {"type": self.type_id, "params": dict(self.params)}

    def matches(self, text: str) -> bool:
        """Every word of ``text`` occurs in the title, the type id or the keywords (case-insensitive)."""
        hay = f"{self.title} {self.type_id} {self.keywords}".lower()
        return all(word in hay for word in text.lower().split())

    def rank(self, text: str) -> int:
        """0: a title word starts with the text; 1: the title contains it; 2: only the id or keywords do."""
        text = text.lower().strip()
        title = self.title.lower()
        if not text or any(w.startswith(text) for w in title.replace("·", " ").split()):
            return 0
        return 1 if text in title else 2


def _ports_text(title: str, ports) -> str:
    if not ports:
        return ""
    return f"{title}: " + ", ".join(f"{escape(p.name)} ({escape(p.type)})" for p in ports)


def _tooltip(title: str, description: str, inputs, outputs, source: str) -> str:
    lines = [f"<b>{escape(title)}</b>"]
    if description:
        lines.append(help_html(description))
    ports = [t for t in (_ports_text("Inputs", inputs), _ports_text("Outputs", outputs)) if t]
    if ports:
        lines.append("<br>".join(ports))
    if source:
        lines.append(f"<i>{escape(source)}</i>")
    # rich text, so Qt word-wraps a long description instead of showing one screen-wide line
    return "<p>" + "</p><p>".join(lines) + "</p>"


def block_entries(registry: Any, task_spec: Any = None) -> list[BlockEntry]:
    """All entries, sorted by category (inputs/outputs first) and then as the plugins listed them."""
    entries = task_entries(registry, task_spec.id if task_spec is not None else "")
    cells = list(registry.items.get("cell", {}).values())
    for spec in registry.items.get("architecture", {}).values():
        source = f"{spec.id} · {spec.distribution or spec.plugin}" if (spec.distribution or spec.plugin) else spec.id
        # searched "by name": id, title, category and cell; descriptions mention other blocks too often
        kw = f"{spec.category} {category_title(spec.category)}".lower()
        try:
            cell_fields = [f.name for f in field_info(spec.params) if f.ui == "cell"]
        except TypeError:
            cell_fields = []
        if spec.category == "recurrent" and cell_fields and cells:
            # one entry per registered cell, so "gru" finds a GRU layer directly
            for cell in cells:
                title = f"{spec.title} · {cell.title}"
                desc = f"{spec.description} Cell: {cell.title}. {cell.description}".strip()
                entries.append(BlockEntry(spec.id, title, spec.category, desc, {cell_fields[0]: cell.id},
                                          f"{kw} {cell.id} {cell.title}".lower(),
                                          _tooltip(title, desc, spec.inputs, spec.outputs, source),
                                          short_title=cell.title))
        else:
            entries.append(BlockEntry(spec.id, spec.title, spec.category, spec.description, {}, kw,
                                      _tooltip(spec.title, spec.description, spec.inputs, spec.outputs, source)))
    order = {id(e): i for i, e in enumerate(entries)}
    entries.sort(key=lambda e: (category_sort_key(e.category), order[id(e)]))
    return entries


def task_entries(registry: Any, current: str = "") -> list[BlockEntry]:
    """One entry per registered task, built-in or from a plugin, with its title and help; ``current`` (the
    project's task) says so in its tooltip."""
    entries = []
    for spec in registry.items.get("task", {}).values():
        source = f"{spec.id} · {spec.distribution or spec.plugin}" if (spec.distribution or spec.plugin) else spec.id
        what = ("The project's task now." if spec.id == current else
                "Drop it on the canvas to make it the project's task: a project has one, so it replaces the "
                "task there, keeping the links whose port types still fit.")
        desc = f"{spec.description} {what}".strip()
        entries.append(BlockEntry("", spec.title, TASKS, desc, {}, f"task {spec.id} {TASKS}".lower(),
                                  _task_tooltip(spec, desc, source), task=spec.id))
    return entries


def _task_tooltip(spec: Any, description: str, source: str) -> str:
    lines = [f"<b>{escape(spec.title)}</b>", help_html(description)]
    ports = [t for t in (_ports_text("Feeds the model", spec.inputs), _ports_text("Reads back", spec.outputs)) if t]
    if ports:
        lines.append("<br>".join(ports))
    lines.append(f"<i>{escape(source)}</i>")
    return "<p>" + "</p><p>".join(lines) + "</p>"


def port_tooltip(name: str, port_type: str, doc: str = "", size: int | None = None, required: bool = True) -> str:
    lines = [f"<b>{escape(name)}</b>: {escape(port_type)}", escape(PORT_TYPES.get(port_type, ""))]
    if doc:
        lines.append(escape(doc))
    if size is not None:
        lines.append(f"size {size}")
    if not required:
        lines.append("optional")
    return "<br>".join(x for x in lines if x)
