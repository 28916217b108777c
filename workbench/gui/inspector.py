"""The inspector dock: the selected node's parameters, or, with nothing selected, the project's settings.

Every form is generated from a parameters dataclass (:mod:`workbench.gui.forms`); every accepted change goes
through :class:`~workbench.gui.document.ProjectDocument` (``set_node_param`` / ``set_setting``), so it is one
undo command, and a refused value comes back as a message that the form shows under the field.  The inspector
only listens to the document to refresh what it shows; it keeps no copy of the project.
"""

from __future__ import annotations

import dataclasses
import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from workbench.core.graph import TASK_INPUT, TASK_OUTPUT, split_nested_params
from workbench.gui.data_preview import DataPreviewer, DataPreviewPanel
from workbench.gui.forms import CollapsibleSection, ParamsForm
from workbench.gui.style import help_html
from workbench.schema.params import field_info, param, params_to_dict
from workbench.schema.specs import PORT_TYPES

#: inspector sections, by the key under which their folded state is saved
PROJECT_SECTIONS = ("project", "task", "data", "train", "decode")
NODE_SECTIONS = ("node.params", "node.ports")


class Inspector(QWidget):
    """Shows and edits the selection.  ``show_nodes([...])`` is called when the canvas selection changes."""

    stateChanged = Signal()

    def __init__(self, document: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.doc = document
        self.node_id: str | None = None          # the node shown, None in project mode
        self.selection: list[str] = []
        self.forms: dict[str, ParamsForm] = {}   # "node" or a project section key -> its form
        self.sections: dict[str, CollapsibleSection] = {}
        self._collapsed: set[str] = set()
        self._ports_label: QLabel | None = None
        self._rebuild_pending = False
        self._decoder_built: str | None = None
        self._task_shown = document.project.task.id
        self.previewer = DataPreviewer(document, self)
        self.preview: DataPreviewPanel | None = None

        self.title = QLabel()
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.title.setContentsMargins(6, 6, 6, 2)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        # a dock narrower than the form (the user's choice) scrolls to the cut-off fields rather than hiding them
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.title)
        layout.addWidget(self.scroll, 1)

        document.nodeChanged.connect(self._on_node_changed)
        document.nodeRemoved.connect(self._on_node_removed)
        document.settingsChanged.connect(self._on_settings_changed)
        document.projectReplaced.connect(self._on_project_replaced)
        document.graphChanged.connect(self._refresh_ports)
        self._rebuild()

    # ---- public --------------------------------------------------------------------------------------------
    def show_nodes(self, node_ids: list[str]) -> None:
        ids = [n for n in node_ids if n in self.doc.graph.nodes]
        self.selection = ids
        self.node_id = ids[0] if len(ids) == 1 else None
        self._schedule_rebuild()

    def state(self) -> dict[str, Any]:
        """What to save in the project file: which sections are folded, and the node shown."""
        return {"collapsed": sorted(self._collapsed), "node": self.node_id}

    def set_state(self, state: Any) -> None:
        if not isinstance(state, dict):
            return
        collapsed = state.get("collapsed") or []
        self._collapsed = {str(k) for k in collapsed if isinstance(k, str)}
        for key, section in self.sections.items():
            section.set_expanded(key not in self._collapsed)

    def form(self, key: str = "node") -> ParamsForm | None:
        return self.forms.get(key)

    def commit_pending(self) -> None:
        for form in list(self.forms.values()):
            form.commit_pending()

    def flush(self) -> None:
        """Rebuild now if a rebuild is pending (tests, and before reading the forms)."""
        if self._rebuild_pending:
            self._rebuild()

    # ---- building ------------------------------------------------------------------------------------------
    def _schedule_rebuild(self) -> None:
        # Deferred: the request may come from inside a signal of a widget that the rebuild deletes.
        if not self._rebuild_pending:
            self._rebuild_pending = True
            QTimer.singleShot(0, self._rebuild)

    def _rebuild(self) -> None:
        self._rebuild_pending = False
        old = self.scroll.takeWidget()
        if old is not None:
            old.deleteLater()
        self.forms.clear()
        self.sections.clear()
        self._ports_label = None
        self.preview = None
        self.previewer.wanted = False
        self._task_shown = self.doc.project.task.id
        content = QWidget()
        content.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self._content_layout = QVBoxLayout(content)
        self._content_layout.setContentsMargins(6, 2, 6, 6)
        if self.node_id is not None and self.node_id in self.doc.graph.nodes:
            self._build_node(self.node_id)
        elif len(self.selection) > 1:
            self._build_multi(self.selection)
        else:
            self.node_id = None
            self._build_project()
        self._content_layout.addStretch(1)
        self.scroll.setWidget(content)
        self.stateChanged.emit()

    def _section(self, key: str, title: str) -> CollapsibleSection:
        section = CollapsibleSection(title, key)
        section.set_expanded(key not in self._collapsed)
        section.toggled.connect(lambda expanded, k=key: self._on_section_toggled(k, expanded))
        self.sections[key] = section
        self._content_layout.addWidget(section)
        return section

    def _on_section_toggled(self, key: str, expanded: bool) -> None:
        if expanded:
            self._collapsed.discard(key)
        else:
            self._collapsed.add(key)
        self.stateChanged.emit()

    def _base_dir(self) -> str | None:
        return str(Path(self.doc.path).resolve().parent) if self.doc.path else None

    # project mode
    def _build_project(self) -> None:
        doc, project, registry = self.doc, self.doc.project, self.doc.registry
        self._set_project_title()

        section = self._section("project", "Project")
        form = ParamsForm(_project_fields(), {"name": project.name},
                          lambda n, v: doc.set_setting("name", n, v))
        self.forms["project"] = section.add(form)
        if project.notes:
            section.add(_note(project.notes, rich=True))

        self._build_task()

        section = self._section("train", "Training")
        form = ParamsForm(type(project.train), params_to_dict(project.train),
                          lambda n, v: doc.set_setting("train", n, v), registry=registry, base_dir=self._base_dir)
        self.forms["train"] = section.add(form)

        section = self._section("decode", "Decoding")
        choice = ParamsForm(_decode_fields(tuple(sorted(registry.items.get("decoder", {})))),
                            {"decoder": project.decode.decoder, "prompt": project.decode.prompt},
                            lambda n, v: doc.set_setting("decode", n, v))
        self.forms["decode"] = section.add(choice)
        self._decoder_holder = QWidget()
        QVBoxLayout(self._decoder_holder).setContentsMargins(0, 4, 0, 0)
        section.add(self._decoder_holder)
        self._build_decoder_params()

    def _build_task(self) -> None:
        """The task's section (its settings, with a file picker for each data path) and the data preview."""
        doc, project, registry = self.doc, self.doc.project, self.doc.registry
        task_spec = doc.task_spec()
        if not project.task.id:
            section = self._section("task", "Task: none yet")
            section.add(_note("A project has one task: the data, the loss and the metrics. Drag one from the "
                              "palette's Tasks onto the canvas; its input and output nodes appear there."))
            return
        title = task_spec.title if task_spec is not None else project.task.id
        section = self._section("task", f"Task: {title}")
        if task_spec is None:
            section.add(_note(f"The task {project.task.id!r} is not installed."))
            return
        if task_spec.description:
            section.add(_note(task_spec.description, rich=True))
        form = ParamsForm(task_spec.params, dict(project.task.params),
                          lambda n, v: doc.set_setting("task", n, v), registry=registry, base_dir=self._base_dir)
        self.forms["task"] = section.add(form)
        section = self._section("data", "Data preview")
        self.preview = DataPreviewPanel(self.previewer)
        section.add(self.preview)
        section.toggled.connect(self._on_preview_toggled)
        self._on_preview_toggled(section.is_expanded())

    def _on_preview_toggled(self, expanded: bool) -> None:
        previewer = self.previewer
        previewer.wanted = expanded
        if expanded and (previewer.follow or previewer.result is not None) and not previewer.up_to_date():
            previewer.schedule()

    def _set_project_title(self) -> None:
        self.title.setText(f"<b>{html.escape(self.doc.project.name)}</b><br>Project settings — select a node on "
                           f"the canvas to edit its parameters.")

    def _build_decoder_params(self) -> None:
        layout = self._decoder_holder.layout()
        while layout.count():
            item = layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.forms.pop("decoder", None)
        doc = self.doc
        decoder = doc.project.decode.decoder
        self._decoder_built = decoder
        if not doc.registry.has("decoder", decoder):
            layout.addWidget(_note(f"The decoder {decoder!r} is not installed."))
            return
        spec = doc.registry.decoder(decoder)
        if spec.description:
            layout.addWidget(_note(spec.description, rich=True))
        form = ParamsForm(spec.params, dict(doc.project.decode.params),
                          lambda n, v: doc.set_setting("decode", n, v), registry=doc.registry)
        self.forms["decoder"] = form
        layout.addWidget(form)

    # node mode
    def _build_node(self, node_id: str) -> None:
        doc, registry = self.doc, self.doc.registry
        node = doc.graph.nodes[node_id]
        if node.type in (TASK_INPUT, TASK_OUTPUT):
            task = doc.task_spec()
            what = "feeds the model" if node.type == TASK_INPUT else "reads the model's output"
            task_name = task.title if task is not None else doc.project.task.id
            side = "input" if node.type == TASK_INPUT else "output"
            self.title.setText(f"<b>{html.escape(node_id)}</b> — task {side}"
                               f"<br>The task <i>{html.escape(task_name)}</i> {what} here. Its ports come from the "
                               f"task; drop another task from the palette to replace it.")
            self._build_task()
            self._build_ports(node_id)
            return
        if not registry.has("architecture", node.type):
            self.title.setText(f"<b>{html.escape(node_id)}</b><br>The block type {html.escape(node.type)!r} is "
                               f"not installed.")
            return
        spec = registry.block(node.type)
        provider = registry.provider("architecture", spec.id) if hasattr(registry, "provider") else None
        source = provider.describe() if provider is not None else spec.distribution or spec.plugin
        self.title.setText(f"<b>{html.escape(node_id)}</b> — {html.escape(spec.title)}<br>"
                           f"<small>block type <code>{html.escape(spec.id)}</code>"
                           f"{' · from ' + html.escape(source) if source else ''}</small>")
        if spec.description:
            self._content_layout.addWidget(_note(spec.description, rich=True))
        section = self._section("node.params", "Parameters")
        values = {**params_to_dict(spec.params()), **node.params}
        form = ParamsForm(spec.params, values, lambda n, v, nid=node_id: doc.set_node_param(nid, n, v),
                          registry=registry, base_dir=self._base_dir)
        self.forms["node"] = section.add(form)
        self._build_cell_forms(node_id, spec)
        self._build_ports(node_id)

    def _cells_of(self, node_id: str, spec: Any) -> dict[str, str]:
        """The cell chosen by each ``ui="cell"`` field of the node (e.g. {"cell": "lstm"})."""
        node = self.doc.graph.nodes[node_id]
        return {i.name: node.params.get(i.name, i.default) for i in field_info(spec.params) if i.ui == "cell"}

    def _build_cell_forms(self, node_id: str, spec: Any) -> None:
        """The chosen cell's own parameters (stored in the node as ``cell.NAME``), in their own section."""
        doc, registry = self.doc, self.doc.registry
        _, nested = split_nested_params(spec.params, doc.graph.nodes[node_id].params)
        self._node_cells = self._cells_of(node_id, spec)
        for field_name, cell_id in self._node_cells.items():
            if not registry.has("cell", cell_id):
                continue
            cell_spec = registry.cell(cell_id)
            section = self._section(f"node.{field_name}", f"Cell: {cell_spec.title}")
            # which distribution the cell comes from: a third-party cell in a built-in block is not the block's
            provider = registry.provider("cell", cell_id) if hasattr(registry, "provider") else None
            if provider is not None:
                section.add(_note(f"Cell {cell_id} from {provider.describe()}"))
            if cell_spec.description:
                section.add(_note(cell_spec.description, rich=True))
            values = {**params_to_dict(cell_spec.params()), **nested.get(field_name, {})}
            form = ParamsForm(cell_spec.params, values,
                              lambda n, v, nid=node_id, f=field_name: doc.set_node_param(nid, f"{f}.{n}", v),
                              registry=registry, base_dir=self._base_dir)
            self.forms[f"node.{field_name}"] = section.add(form)

    def _build_ports(self, node_id: str) -> None:
        section = self._section("node.ports", "Ports")
        self._ports_label = section.add(_note(""))
        self._ports_label.setTextFormat(Qt.TextFormat.RichText)
        self._refresh_ports()

    def _build_multi(self, ids: list[str]) -> None:
        self.title.setText(f"<b>{len(ids)} nodes selected</b><br>Select one node to edit its parameters.")
        self._content_layout.addWidget(_note(", ".join(ids)))

    # ---- keeping up with the document ----------------------------------------------------------------------
    def _on_node_changed(self, node_id: str) -> None:
        form = self.forms.get("node")
        if node_id == self.node_id and form is not None:
            node = self.doc.graph.nodes[node_id]
            spec = self.doc.registry.block(node.type)
            if self._cells_of(node_id, spec) != getattr(self, "_node_cells", {}):
                self._schedule_rebuild()  # another cell: another parameter form
                return
            form.set_values({**params_to_dict(spec.params()), **node.params})
            _, nested = split_nested_params(spec.params, node.params)
            for field_name, cell_id in self._node_cells.items():
                cell_form = self.forms.get(f"node.{field_name}")
                if cell_form is not None and self.doc.registry.has("cell", cell_id):
                    cell_spec = self.doc.registry.cell(cell_id)
                    cell_form.set_values({**params_to_dict(cell_spec.params()), **nested.get(field_name, {})})

    def _on_node_removed(self, node_id: str) -> None:
        if node_id in self.selection:
            self.show_nodes([n for n in self.selection if n != node_id])

    def _on_settings_changed(self, section: str) -> None:
        project = self.doc.project
        if section == "task" and self._task_shown != project.task.id:
            self._schedule_rebuild()      # another task: another form (or none)
            return
        if section == "task" and "task" in self.forms:
            self.forms["task"].set_values(dict(project.task.params))
            return
        if self.node_id is not None:
            return
        if section == "name" and "project" in self.forms:
            self.forms["project"].set_values({"name": project.name})
            self._set_project_title()
        elif section == "train" and "train" in self.forms:
            self.forms["train"].set_values(params_to_dict(project.train))
        elif section == "decode" and "decode" in self.forms:
            self.forms["decode"].set_values({"decoder": project.decode.decoder, "prompt": project.decode.prompt})
            current = self.forms.get("decoder")
            if current is not None and self._decoder_built == project.decode.decoder:
                current.set_values(dict(project.decode.params))
            else:
                # another decoder: other fields (deferred, the combo that asked may still be in its signal)
                QTimer.singleShot(0, self._build_decoder_params)

    def _on_project_replaced(self) -> None:
        self.selection = []
        self.node_id = None
        self._schedule_rebuild()

    def _refresh_ports(self) -> None:
        if self._ports_label is None or self.node_id is None or self.node_id not in self.doc.graph.nodes:
            return
        doc = self.doc
        report = doc.report()
        ins, outs = report.ports.get(self.node_id, ((), ()))
        incoming = doc.graph.incoming(self.node_id)
        outgoing = doc.graph.outgoing(self.node_id)
        lines = []
        for heading, ports, is_input in (("Inputs", ins, True), ("Outputs", outs, False)):
            if not ports:
                continue
            lines.append(f"<b>{heading}</b>")
            for p in ports:
                if is_input:
                    ln = incoming.get(p.name)
                    size = report.sizes.get((ln.src, ln.src_port)) if ln else None
                    peer = html.escape(f"from {ln.src}.{ln.src_port}") if ln else \
                        ("<i>not connected</i>" if p.required else "<i>optional, not connected</i>")
                else:
                    size = report.sizes.get((self.node_id, p.name))
                    peers = [f"{ln.dst}.{ln.dst_port}" for ln in outgoing if ln.src_port == p.name]
                    # escaped names, unescaped markup: "<i>not connected</i>" showed its tags as text here
                    peer = html.escape("to " + ", ".join(peers)) if peers else "<i>not connected</i>"
                size_text = f", size {size}" if size is not None else ""
                doc_text = PORT_TYPES.get(p.type, "")
                lines.append(f"&nbsp;&nbsp;{html.escape(p.name)}: <span title='{html.escape(doc_text)}'>"
                             f"{html.escape(p.type)}</span>{size_text} — {peer}")
        self._ports_label.setText("<br>".join(lines) or "<i>no ports</i>")


def _note(text: str, rich: bool = False) -> QLabel:
    """A wrapped note; ``rich``: a plugin's description, with its Markdown ```code``` shown as code."""
    label = QLabel(help_html(text) if rich else text)
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setContentsMargins(0, 0, 0, 4)
    return label


@dataclasses.dataclass
class _ProjectFields:
    name: str = param("untitled", help="the project's name, shown in the title bar")


def _project_fields() -> type:
    return _ProjectFields


_DECODE_FIELDS: dict[tuple[str, ...], type] = {}


def _decode_fields(decoders: tuple[str, ...]) -> type:
    """The decoder choice as a parameters dataclass, so it gets the same form (and refusals) as everything else."""
    if decoders not in _DECODE_FIELDS:
        _DECODE_FIELDS[decoders] = dataclasses.make_dataclass("Decoding", [
            ("decoder", str, param(decoders[0] if decoders else "greedy", choices=decoders or None,
                                   help="how text is generated from the trained model")),
            ("prompt", str, param("", help="the text decoding starts from")),
        ])
    return _DECODE_FIELDS[decoders]
