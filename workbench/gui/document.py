"""The open project as a Qt document: the core Graph plus an undo stack.  One source of truth.

The canvas, the inspector and the problems panel observe this object's signals and change the project only
through its edit methods, each of which pushes one :class:`QUndoCommand` (Orange canvas's ``scheme`` /
``document/commands.py`` split).  Nothing here computes model results: validation is
:func:`workbench.core.graph.analyze`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from workbench.core.graph import GraphReport, Link, Node, check_link
from workbench.core.project import Project
from workbench.core.task_choice import TaskChange, analyze_project, forget_task_state, plan_task_change
from workbench.schema.params import ParamError, apply_settings, params_from_dict, params_to_dict

Pos = tuple[float, float]


class ProjectDocument(QObject):
    nodeAdded = Signal(str)                 # node id
    nodeRemoved = Signal(str)               # node id
    nodeMoved = Signal(str)                 # node id (new position in graph.ui)
    nodeChanged = Signal(str)               # node id: params changed
    linkAdded = Signal(object)              # Link
    linkRemoved = Signal(object)            # Link
    settingsChanged = Signal(str)           # "task" | "train" | "decode" | "name"
    graphChanged = Signal()                 # after any structural or parameter change
    problemsChanged = Signal(list)          # list[str] from analyze()
    projectReplaced = Signal()              # a different project was loaded into this document
    runsDeleted = Signal()                  # runs left the history (delete_runs), or came back (its undo)

    def __init__(self, registry: Any, project: Project, path: str | None = None, parent: QObject | None = None,
                 *, auto_name: str | None = None):
        super().__init__(parent)
        self.registry = registry
        self.project = project
        self.path = path
        # The name the project got without anyone choosing it (a template's, "untitled"), None once it has a file
        # or the user renamed it: such a name follows a new task and the file the project is first saved as.
        self.auto_name = auto_name
        self.undo_stack = QUndoStack(self)
        self._report: GraphReport | None = None
        self.graphChanged.connect(self._revalidate)

    # ---- reading -------------------------------------------------------------------------------------------
    @property
    def graph(self):
        return self.project.graph

    def task_spec(self):
        return self.registry.task(self.project.task.id) if self.registry.has("task", self.project.task.id) else None

    def task_sizes(self) -> dict[str, int]:
        return dict((self.project.data or {}).get("sizes") or {})

    def report(self) -> GraphReport:
        if self._report is None:
            self._report = analyze_project(self.project, self.registry)
        return self._report

    def has_automatic_name(self) -> bool:
        return self.auto_name is not None and self.project.name == self.auto_name

    def _revalidate(self) -> None:
        self._report = None
        self.problemsChanged.emit(self.report().problems)

    def position(self, node_id: str) -> Pos:
        ui = self.graph.ui.get(node_id) or {}
        return float(ui.get("x", 0.0)), float(ui.get("y", 0.0))

    def is_modified(self) -> bool:
        return not self.undo_stack.isClean()

    def replace_project(self, project: Project, path: str | None, auto_name: str | None = None) -> None:
        """Load another project into this document (after the user answered the unsaved-changes question);
        ``auto_name``: see ``__init__``."""
        self.project = project
        self.path = path
        self.auto_name = auto_name
        self.undo_stack.clear()
        self._report = None
        self.projectReplaced.emit()
        self.graphChanged.emit()

    # ---- edits (each pushes one undo command) --------------------------------------------------------------
    def add_node(self, type_id: str, pos: Pos, params: dict | None = None) -> str:
        node_id = self.graph.new_id(type_id)
        self.undo_stack.push(AddNodes(self, [(Node(node_id, type_id, dict(params or {})), pos)], [],
                                      f"Add {type_id}"))
        return node_id

    def remove_nodes(self, node_ids: list[str]) -> None:
        ids = [n for n in node_ids if n in self.graph.nodes]
        if ids:
            self.undo_stack.push(RemoveNodes(self, ids))

    def move_nodes(self, moves: dict[str, tuple[Pos, Pos]], text: str | None = None) -> None:
        """``{node_id: (old_pos, new_pos)}``: one command for a whole drag (or an auto-layout: ``text``)."""
        moves = {k: v for k, v in moves.items() if k in self.graph.nodes and v[0] != v[1]}
        if moves:
            self.undo_stack.push(MoveNodes(self, moves, text))

    def connect_ports(self, src: str, src_port: str, dst: str, dst_port: str) -> str | None:
        """Link two ports; returns the reason when the link is refused (and changes nothing)."""
        reason = check_link(self.graph, src, src_port, dst, dst_port, self.registry, self.task_spec())
        if reason is None:
            self.undo_stack.push(Connect(self, Link(src, src_port, dst, dst_port)))
        return reason

    def disconnect_link(self, link: Link) -> None:
        if link in self.graph.links:
            self.undo_stack.push(Disconnect(self, [link]))

    def set_node_param(self, node_id: str, name: str, value: Any) -> str | None:
        """Parse, validate and set one parameter (``cell.NAME`` for the chosen cell's own); returns the error
        message if the value is refused."""
        from workbench.core.settings import set_node_param_value
        node = self.graph.nodes[node_id]
        try:
            after = set_node_param_value(node.type, node.params, name, value, self.registry, node_id)
        except (ParamError, LookupError) as exc:
            return str(exc)
        if after == node.params:
            return None
        self.undo_stack.push(SetNodeParams(self, node_id, dict(node.params), after, f"Set {node_id}.{name}"))
        return None

    def set_setting(self, section: str, name: str, value: Any) -> str | None:
        """Project settings: ``train`` (TrainConfig), ``task`` / ``decode`` params, or ``name``."""
        p = self.project
        try:
            if section == "train":
                new_train = apply_settings(p.train, {name: value}, "train")
                before, after = params_to_dict(p.train), params_to_dict(new_train)
            elif section == "task":
                spec = self.registry.task(p.task.id)
                cur = params_from_dict(spec.params, p.task.params, "task", ignore_unknown=True)
                new = apply_settings(cur, {name: value}, "task")
                before, after = dict(p.task.params), {**p.task.params, name: getattr(new, name)}
            elif section == "decode":
                if name == "decoder":
                    self.registry.decoder(value)
                    before, after = {"decoder": p.decode.decoder}, {"decoder": value}
                elif name == "prompt":
                    before, after = {"prompt": p.decode.prompt}, {"prompt": str(value)}
                else:
                    spec = self.registry.decoder(p.decode.decoder)
                    cur = params_from_dict(spec.params, p.decode.params, "decode", ignore_unknown=True)
                    new = apply_settings(cur, {name: value}, "decode")
                    before, after = dict(p.decode.params), {**p.decode.params, name: getattr(new, name)}
            elif section == "name":
                before, after = {"name": p.name}, {"name": str(value)}
            else:
                return f"unknown settings section {section!r}"
        except (ParamError, LookupError) as exc:
            return str(exc)
        if before != after:
            self.undo_stack.push(SetSettings(self, section, name, before, after))
        return None

    def set_task(self, task_id: str, pos: Pos | None = None) -> str | None:
        """Make ``task_id`` the project's task (one undo command): its nodes are added where missing (the input at
        ``pos``), and the links to the task nodes that still fit are kept.  Returns what happened, for the status
        bar; raises nothing for an unknown task (the message says so)."""
        if not self.registry.has("task", task_id):
            return f"the task {task_id!r} is not installed"
        spec = self.registry.task(task_id)
        change = plan_task_change(self.project, spec, self.registry, pos)
        if change.task.id == self.project.task.id and change.same_task:
            return f"the project's task is {spec.title} already"
        replaced = self.project.task.id and self.project.task.id != task_id
        name = spec.title if self.has_automatic_name() or not self.project.name else self.project.name
        self.undo_stack.push(SetTask(self, change, name, f"Set task {spec.title}"))
        if not replaced:
            return f"the project's task is {spec.title}"
        kept = sum(1 for ln in self.graph.links if self.graph.nodes[ln.src].type == "task-input"
                   or self.graph.nodes[ln.dst].type == "task-output")
        dropped = len(change.dropped)
        text = f"the task is {spec.title} now; {kept} link{'s' if kept != 1 else ''} to the task kept"
        if dropped:
            text += f", {dropped} removed (" + "; ".join(change.dropped) + ")"
        return text

    def delete_runs(self, run_ids: list[str]) -> bool:
        """Remove runs from the project's history (one undo step); False when none of them is there."""
        present = {r.id for r in self.project.history.runs}
        ids = [r for r in run_ids if r in present]
        if not ids:
            return False
        self.undo_stack.push(DeleteRuns(self, ids))
        return True

    # ---- clipboard ----------------------------------------------------------------------------------------
    def copy_nodes(self, node_ids: list[str]) -> str:
        """JSON for the clipboard: the nodes, their positions and the links among them."""
        ids = [n for n in node_ids if n in self.graph.nodes]
        nodes = [{"id": n, "type": self.graph.nodes[n].type, "params": dict(self.graph.nodes[n].params),
                  "pos": list(self.position(n))} for n in ids]
        links = [[ln.src, ln.src_port, ln.dst, ln.dst_port] for ln in self.graph.links
                 if ln.src in ids and ln.dst in ids]
        return json.dumps({"seqwb-nodes": 1, "nodes": nodes, "links": links})

    def paste_nodes(self, text: str, offset: Pos = (40.0, 40.0)) -> list[str]:
        """Paste clipboard JSON as new nodes (new ids), with the links among them; one undo command."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("seqwb-nodes") != 1:
                return []
            items = data["nodes"]
            links = data.get("links") or []
        except (ValueError, KeyError, TypeError):
            return []
        taken = set(self.graph.nodes)
        mapping: dict[str, str] = {}
        new_nodes: list[tuple[Node, Pos]] = []
        for item in items:
            stem = str(item["type"]).split(".")[-1]
            n = 1
            while f"{stem}{n}" in taken:
                n += 1
            new_id = f"{stem}{n}"
            taken.add(new_id)
            mapping[item["id"]] = new_id
            x, y = item.get("pos", (0.0, 0.0))
            new_nodes.append((Node(new_id, str(item["type"]), dict(item.get("params") or {})),
                              (float(x) + offset[0], float(y) + offset[1])))
        new_links = [Link(mapping[a], b, mapping[c], d) for a, b, c, d in links if a in mapping and c in mapping]
        if new_nodes:
            self.undo_stack.push(AddNodes(self, new_nodes, new_links, f"Paste {len(new_nodes)} node(s)"))
        return [n.id for n, _ in new_nodes]

    # ---- primitive mutations (only commands call these) -------------------------------------------------------
    def _insert_node(self, node: Node, pos: Pos) -> None:
        self.graph.nodes[node.id] = node
        self.graph.ui[node.id] = {"x": float(pos[0]), "y": float(pos[1])}
        self.nodeAdded.emit(node.id)

    def _delete_node(self, node_id: str) -> None:
        self.graph.nodes.pop(node_id)
        self.graph.ui.pop(node_id, None)
        self.nodeRemoved.emit(node_id)

    def _add_link(self, link: Link, index: int | None = None) -> None:
        if index is None or index >= len(self.graph.links):
            self.graph.links.append(link)
        else:
            self.graph.links.insert(index, link)
        self.linkAdded.emit(link)

    def _remove_link(self, link: Link) -> None:
        self.graph.links.remove(link)
        self.linkRemoved.emit(link)

    def _set_pos(self, node_id: str, pos: Pos) -> None:
        self.graph.ui[node_id] = {"x": float(pos[0]), "y": float(pos[1])}
        self.nodeMoved.emit(node_id)

    def _set_params(self, node_id: str, params: dict) -> None:
        self.graph.nodes[node_id].params = dict(params)
        self.nodeChanged.emit(node_id)


# ---- undo commands -----------------------------------------------------------------------------------------

class AddNodes(QUndoCommand):
    def __init__(self, doc: ProjectDocument, nodes: list[tuple[Node, Pos]], links: list[Link], text: str):
        super().__init__(text)
        self.doc, self.nodes, self.links = doc, nodes, links

    def redo(self) -> None:
        for node, pos in self.nodes:
            self.doc._insert_node(copy.deepcopy(node), pos)
        for ln in self.links:
            self.doc._add_link(ln)
        self.doc.graphChanged.emit()

    def undo(self) -> None:
        for ln in reversed(self.links):
            self.doc._remove_link(ln)
        for node, _ in reversed(self.nodes):
            self.doc._delete_node(node.id)
        self.doc.graphChanged.emit()


class RemoveNodes(QUndoCommand):
    def __init__(self, doc: ProjectDocument, node_ids: list[str]):
        super().__init__(f"Delete {', '.join(node_ids)}")
        self.doc = doc
        g = doc.graph
        self.nodes = [(copy.deepcopy(g.nodes[n]), doc.position(n)) for n in node_ids]
        self.order = list(g.nodes)  # to restore the original node order
        self.links = [ln for ln in g.links if ln.src in node_ids or ln.dst in node_ids]
        self.link_index = {ln: i for i, ln in enumerate(g.links)}

    def redo(self) -> None:
        for ln in self.links:
            self.doc._remove_link(ln)
        for node, _ in self.nodes:
            self.doc._delete_node(node.id)
        self.doc.graphChanged.emit()

    def undo(self) -> None:
        for node, pos in self.nodes:
            self.doc._insert_node(copy.deepcopy(node), pos)
        g = self.doc.graph
        g.nodes = {k: g.nodes[k] for k in self.order if k in g.nodes} | {k: v for k, v in g.nodes.items()
                                                                        if k not in self.order}
        # back in their old places, so the saved file is the same as before the delete
        for ln in sorted(self.links, key=lambda x: self.link_index[x]):
            self.doc._add_link(ln, self.link_index[ln])
        self.doc.graphChanged.emit()


class MoveNodes(QUndoCommand):
    def __init__(self, doc: ProjectDocument, moves: dict[str, tuple[Pos, Pos]], text: str | None = None):
        super().__init__(text or ("Move" if len(moves) > 1 else f"Move {next(iter(moves))}"))
        self.doc, self.moves = doc, moves

    def redo(self) -> None:
        for nid, (_, new) in self.moves.items():
            self.doc._set_pos(nid, new)

    def undo(self) -> None:
        for nid, (old, _) in self.moves.items():
            self.doc._set_pos(nid, old)


class Connect(QUndoCommand):
    """Link two ports; a link already on the input port is replaced (and restored on undo)."""

    def __init__(self, doc: ProjectDocument, link: Link):
        super().__init__(f"Link {link.src} → {link.dst}")
        self.doc, self.link = doc, link
        self.replaced = [ln for ln in doc.graph.links if ln.dst == link.dst and ln.dst_port == link.dst_port]

    def redo(self) -> None:
        for ln in self.replaced:
            self.doc._remove_link(ln)
        self.doc._add_link(self.link)
        self.doc.graphChanged.emit()

    def undo(self) -> None:
        self.doc._remove_link(self.link)
        for ln in self.replaced:
            self.doc._add_link(ln)
        self.doc.graphChanged.emit()


class Disconnect(QUndoCommand):
    def __init__(self, doc: ProjectDocument, links: list[Link]):
        super().__init__("Unlink" if len(links) > 1 else f"Unlink {links[0].src} → {links[0].dst}")
        self.doc, self.links = doc, links

    def redo(self) -> None:
        for ln in self.links:
            self.doc._remove_link(ln)
        self.doc.graphChanged.emit()

    def undo(self) -> None:
        for ln in self.links:
            self.doc._add_link(ln)
        self.doc.graphChanged.emit()


class SetNodeParams(QUndoCommand):
    def __init__(self, doc: ProjectDocument, node_id: str, before: dict, after: dict, text: str):
        super().__init__(text)
        self.doc, self.node_id, self.before, self.after = doc, node_id, before, after

    def redo(self) -> None:
        self.doc._set_params(self.node_id, self.after)
        self.doc.graphChanged.emit()

    def undo(self) -> None:
        self.doc._set_params(self.node_id, self.before)
        self.doc.graphChanged.emit()


class SetSettings(QUndoCommand):
    def __init__(self, doc: ProjectDocument, section: str, name: str, before: dict, after: dict):
        super().__init__(f"Set {section}.{name}" if section != "name" else "Rename project")
        self.doc, self.section, self.before, self.after = doc, section, before, after

    def _apply(self, values: dict) -> None:
        p = self.doc.project
        if self.section == "train":
            p.train = dataclasses.replace(p.train, **values)
        elif self.section == "task":
            p.task.params = dict(values)
        elif self.section == "decode":
            if "decoder" in values:
                p.decode.decoder = values["decoder"]
            elif "prompt" in values:
                p.decode.prompt = values["prompt"]
            else:
                p.decode.params = dict(values)
        elif self.section == "name":
            p.name = values["name"]
        self.doc.settingsChanged.emit(self.section)
        if self.section == "task":
            self.doc.graphChanged.emit()

    def redo(self) -> None:
        self._apply(self.after)

    def undo(self) -> None:
        self._apply(self.before)


class SetTask(QUndoCommand):
    """The project's task chosen or replaced (:func:`workbench.core.task_choice.plan_task_change`): the task and its
    settings, the task nodes it lacked, the links moved or dropped, and an automatic project name.  What was read
    from or trained on the old task's data (vocabulary, sizes, checkpoint) goes with it; undo brings it all back."""

    def __init__(self, doc: ProjectDocument, change: TaskChange, name: str, text: str):
        super().__init__(text)
        p = doc.project
        self.doc, self.change = doc, change
        self.before = (copy.deepcopy(p.task), p.vocab, copy.deepcopy(p.data), p.checkpoint, p.name, doc.auto_name)
        self.name = name
        self.link_index = {ln: i for i, ln in enumerate(doc.graph.links)}

    def redo(self) -> None:
        doc, p = self.doc, self.doc.project
        for ln in self.change.remove_links:
            doc._remove_link(ln)
        if self.change.task.id != p.task.id:
            forget_task_state(p)
        p.task = copy.deepcopy(self.change.task)
        renamed = self.name != p.name
        if renamed and doc.has_automatic_name():
            doc.auto_name = self.name
        p.name = self.name
        for node, pos in self.change.add_nodes:
            doc._insert_node(copy.deepcopy(node), pos)
        # the task nodes take the new task's ports before links are attached to them
        doc.settingsChanged.emit("task")
        for ln in self.change.add_links:
            doc._add_link(ln)
        if renamed:
            doc.settingsChanged.emit("name")
        doc.graphChanged.emit()

    def undo(self) -> None:
        doc, p = self.doc, self.doc.project
        for ln in reversed(self.change.add_links):
            doc._remove_link(ln)
        for node, _ in reversed(self.change.add_nodes):
            doc._delete_node(node.id)
        task, vocab, data, checkpoint, name, auto_name = self.before
        p.task, p.vocab, p.data, p.checkpoint = copy.deepcopy(task), vocab, copy.deepcopy(data), checkpoint
        renamed = p.name != name
        p.name, doc.auto_name = name, auto_name
        doc.settingsChanged.emit("task")
        for ln in sorted(self.change.remove_links, key=lambda x: self.link_index[x]):
            doc._add_link(ln, self.link_index[ln])
        if renamed:
            doc.settingsChanged.emit("name")
        doc.graphChanged.emit()


class DeleteRuns(QUndoCommand):
    """Remove runs from the project's history; undo puts them back where they were."""

    def __init__(self, doc: ProjectDocument, run_ids: list[str]):
        super().__init__(f"Delete {', '.join(run_ids)}")
        self.doc = doc
        self.removed = [(i, r) for i, r in enumerate(doc.project.history.runs) if r.id in run_ids]

    def redo(self) -> None:
        ids = {r.id for _, r in self.removed}
        self.doc.project.history.runs[:] = [r for r in self.doc.project.history.runs if r.id not in ids]
        self.doc.runsDeleted.emit()

    def undo(self) -> None:
        runs = self.doc.project.history.runs
        for i, run in self.removed:
            runs.insert(min(i, len(runs)), run)
        self.doc.runsDeleted.emit()
