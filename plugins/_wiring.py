"""What the built-in templates share: a chain of blocks between the task's input and output, and the project
document a template returns (private to the built-in plugins; not plugin API)."""

from __future__ import annotations

from typing import Any

from workbench.api import TASK_INPUT, TASK_OUTPUT, Graph

COLUMN = 220   # canvas units between the nodes of a chain


def chain(*blocks: tuple[str, str, dict[str, Any]], source: str = "tokens", target: str = "logits") -> Graph:
    """The task's ``source`` port -> ``blocks`` (``(node id, block type, params)``, each block's ``y`` into the
    next one's ``x``) -> the task's ``target`` port, laid out left to right."""
    g = Graph()
    g.add_node(TASK_INPUT, id="input", pos=(0, 0))
    for i, (node_id, kind, params) in enumerate(blocks, 1):
        g.add_node(kind, params, id=node_id, pos=(COLUMN * i, 0))
    g.add_node(TASK_OUTPUT, id="output", pos=(COLUMN * (len(blocks) + 1), 0))
    ids = [node_id for node_id, _, _ in blocks]
    g.connect("input", source, ids[0], "x")
    for src, dst in zip(ids, ids[1:]):
        g.connect(src, "y", dst, "x")
    g.connect(ids[-1], "y", "output", target)
    return g


def project(name: str, graph: Graph, task: dict, train: dict, notes: str, decode: dict | None = None) -> dict:
    """A template's project document (see workbench.core.project.Project.from_json)."""
    doc = graph.to_json()
    out = {"name": name, "graph": {"nodes": doc["nodes"], "links": doc["links"]}, "ui": doc["ui"], "task": task,
           "train": train, "notes": notes}
    if decode is not None:
        out["decode"] = decode
    return out
