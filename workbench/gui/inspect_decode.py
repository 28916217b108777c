"""The decoding view: beam-search trees, what-if decoding from any node, two checkpoints side by side, attention.

Everything the view shows comes from :class:`workbench.core.search.DecodeSession`, which lives in the view's
worker thread (a :class:`~workbench.gui.jobs.JobRunner`); the GUI thread only snapshots the project, sends requests
and draws the answers in its panes (:mod:`workbench.gui.decode_pane`).
``seqwb decode FILE --tree OUT --prefix TEXT --best --attention OUT.npz`` asks the same session the same
questions, so a tree written by the command line opens here unchanged (**Open…**).

- Decoder and settings: any registered decoder, its settings as a form generated from its parameters.  They are
  the project's decoding settings (the same as Inspector ▸ Decoding): each change is one undoable edit of the
  project, saved with it, and an edit in either place shows in the other.  The input decoded last is the
  project's prompt.
- Input: a prime text for a language model, a source sentence for sequence to sequence, an example index for
  captioning (with its picture); examples from the validation data with their references.
- What-if: double-click a node (or type a prefix) to force that prefix and decode the rest (Seq2Seq-Vis).
- Compare: the same input at the current and the best weights, in two panes.
- Attention: the map of the selected hypothesis, for models with an attention block.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QKeySequence, QPalette, QPixmap, QShortcut
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QFileDialog, QFrame, QGroupBox, QHBoxLayout,
                               QLabel, QLineEdit, QMessageBox, QPushButton, QRadioButton, QScrollArea, QSplitter,
                               QVBoxLayout, QWidget)

from workbench.core.project import Project
from workbench.core.project import available_weights
from workbench.core.search import hypothesis_at, prefix_of, read_document, write_document
from workbench.gui.decode_pane import DecodePane, Legend
from workbench.gui.decode_views import SearchTreeView, hypothesis_text, line_text
from workbench.gui.forms import ParamsForm, error_color
from workbench.gui.jobs import JobRunner, first_line
from workbench.gui.style import help_html
from workbench.gui.views import MenuEntry, ViewRegistry
from workbench.schema.params import ParamError, field_info, params_from_dict

TREE_FILTER = "Search trees (*.json)"


def snapshot(project: Project) -> Project:
    """A copy of the design and the (shared, never mutated) checkpoint: what the worker thread may read while the
    user keeps editing the project in the window."""
    copy = Project.from_json(project.to_json())
    copy.vocab = list(project.vocab) if project.vocab is not None else None
    copy.checkpoint = project.checkpoint
    return copy


# ---- the whole view ------------------------------------------------------------------------------------------

class DecodeInspector(QWidget):
    """The decoding view of one :class:`~workbench.gui.document.ProjectDocument` (see the module docstring)."""

    decoded = Signal(object)            # the list of documents now shown (one per pane)
    attentionShown = Signal(int)        # pane index
    infoReady = Signal(object)

    def __init__(self, doc: Any, registry: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.doc = doc
        self.registry = registry
        # one question of each key at a time, ("decode" | "attention" | "image" | "info", pane): a newer one
        # supersedes the older, whose answer is dropped
        self.jobs = JobRunner("decoder", self, thread_name="seqwb-decode", describe=first_line)
        self._session: Any = None           # made and used in the worker thread only
        self._info: Optional[dict[str, Any]] = None
        self._info_requested = False
        self._prefix_ids: Optional[list[int]] = None
        self._prefix_shown = ""
        self._done_text: dict[int, str] = {}
        self.timings: dict[str, float] = {}
        self._build()
        self.doc.projectReplaced.connect(self.reset)
        self.doc.settingsChanged.connect(self._on_settings_changed)
        self.reset()

    # ---- building --------------------------------------------------------------------------------------------
    def _build(self) -> None:
        controls = QWidget()
        col = QVBoxLayout(controls)
        col.setContentsMargins(8, 8, 8, 8)
        col.setSpacing(8)

        box = QGroupBox("Decoder")
        lay = QVBoxLayout(box)
        self.decoder_combo = QComboBox()
        for did, spec in sorted(self.registry.items.get("decoder", {}).items()):
            self.decoder_combo.addItem(spec.title or did, did)
        self.decoder_combo.currentIndexChanged.connect(self._on_decoder_chosen)
        lay.addWidget(self.decoder_combo)
        self.decoder_help = QLabel()
        self.decoder_help.setWordWrap(True)
        self._mute(self.decoder_help)
        lay.addWidget(self.decoder_help)
        self.form_holder = QVBoxLayout()
        lay.addLayout(self.form_holder)
        self.form: Optional[ParamsForm] = None
        col.addWidget(box)

        box = QGroupBox("Input")
        lay = QVBoxLayout(box)
        self.input_label = QLabel("Input")
        lay.addWidget(self.input_label)
        self.input_combo = QComboBox()
        self.input_combo.setEditable(True)
        self.input_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.input_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.input_combo.setMinimumContentsLength(12)
        self.input_combo.lineEdit().returnPressed.connect(self.decode)
        self.input_combo.currentTextChanged.connect(self._on_input_changed)
        lay.addWidget(self.input_combo)
        self.reference = QLabel()
        self.reference.setWordWrap(True)
        self.reference.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._mute(self.reference)
        lay.addWidget(self.reference)
        self.image = QLabel()
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.hide()
        lay.addWidget(self.image)
        lay.addWidget(QLabel("Force the output to start with"))
        row = QHBoxLayout()
        self.prefix_edit = QLineEdit()
        self.prefix_edit.setPlaceholderText("nothing (double-click a node)")
        self.prefix_edit.setClearButtonEnabled(True)
        self.prefix_edit.setToolTip("What-if: the decoder takes these tokens first and searches on from there. "
                                    "Double-click a node of the tree to put its path here and decode.")
        self.prefix_edit.returnPressed.connect(self.decode)
        row.addWidget(self.prefix_edit, 1)
        lay.addLayout(row)
        col.addWidget(box)

        box = QGroupBox("Weights")
        lay = QVBoxLayout(box)
        self.weights_current = QRadioButton("Current")
        self.weights_best = QRadioButton("Best (lowest validation loss)")
        self.weights_current.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.weights_current)
        group.addButton(self.weights_best)
        lay.addWidget(self.weights_current)
        lay.addWidget(self.weights_best)
        self.compare_box = QCheckBox("Compare current and best weights")
        self.compare_box.setToolTip("Decode the input at both weights and show the two trees together")
        self.compare_box.toggled.connect(self._on_compare)
        lay.addWidget(self.compare_box)
        self.side_by_side = QCheckBox("Panes side by side")
        self.side_by_side.setEnabled(False)
        self.side_by_side.setToolTip("Compare: the two panes next to each other, or stacked with their steps "
                                     "aligned (they scroll and zoom together)")
        self.side_by_side.toggled.connect(self._set_side_by_side)
        lay.addWidget(self.side_by_side)
        self.weights_note = QLabel()
        self.weights_note.setWordWrap(True)
        self._mute(self.weights_note)
        lay.addWidget(self.weights_note)
        col.addWidget(box)

        self.decode_button = QPushButton("Decode")
        self.decode_button.setDefault(True)
        self.decode_button.setToolTip("Decode the input (Ctrl+Enter)")
        self.decode_button.clicked.connect(self.decode)
        col.addWidget(self.decode_button)
        for key in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(key), self, activated=self.decode,
                      context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        col.addWidget(self.status)

        box = QGroupBox("Tree")
        lay = QVBoxLayout(box)
        self.show_pruned = QCheckBox("Show pruned")
        self.show_pruned.setToolTip("Show the candidates that scored below the beam (dotted)")
        self.show_pruned.setChecked(True)
        self.show_pruned.toggled.connect(self._apply_tree_options)
        self.fold_dead = QCheckBox("Fold dead beams")
        self.fold_dead.setToolTip("Fold away the lines of beams that were outscored later; their parents show +n")
        self.fold_dead.toggled.connect(self._apply_tree_options)
        row = QHBoxLayout()
        row.addWidget(self.show_pruned)
        row.addWidget(self.fold_dead)
        row.addStretch(1)
        lay.addLayout(row)
        row = QHBoxLayout()
        fit = QPushButton("Fit")
        fit.setToolTip("Zoom to show the whole tree (Home in the tree)")
        fit.clicked.connect(lambda: [p.tree.fit_all() for p in self.panes if p.isVisible()])
        open_button = QPushButton("Open…")
        open_button.setToolTip("Draw a search tree written by 'seqwb decode --tree FILE'")
        open_button.clicked.connect(self.open_tree_dialog)
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip("Write the tree as JSON (the format of 'seqwb decode --tree')")
        self.save_button.clicked.connect(self.save_tree_dialog)
        for button in (fit, open_button, self.save_button):
            row.addWidget(button)
        lay.addLayout(row)
        hint = QLabel("Hover a node: its top-k next tokens. Click: select it and see its attention. "
                      "Double-click: force it as the prefix and decode the rest. Wheel: zoom; drag: pan.")
        hint.setWordWrap(True)
        self._mute(hint)
        lay.addWidget(hint)
        col.addWidget(box)
        col.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidget(controls)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.controls = controls
        self.controls_scroll = scroll

        self.panes = [DecodePane("Current weights"), DecodePane("Best weights")]
        self.panes_split = QSplitter(Qt.Orientation.Vertical)
        for i, pane in enumerate(self.panes):
            self.panes_split.addWidget(pane)
            pane.tree.forceRequested.connect(lambda nid, i=i: self.force_node(nid, i))
            pane.tree.nodeSelected.connect(lambda nid, i=i: self._on_node_selected(i, nid))
            pane.tree.attentionRequested.connect(lambda nid, i=i: self._request_attention(i, nid))
        self.panes[1].hide()
        self._link_panes()
        self.legend = Legend()
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 4, 4, 0)
        right_layout.setSpacing(4)
        right_layout.addWidget(self.legend)
        right_layout.addWidget(self.panes_split, 1)

        main = QSplitter(Qt.Orientation.Horizontal)
        main.addWidget(scroll)
        main.addWidget(right)
        main.setStretchFactor(0, 0)
        main.setStretchFactor(1, 1)
        main.setSizes([320, 1000])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(main)

    def _mute(self, label: QLabel) -> None:
        pal = label.palette()
        color = QColor(pal.color(QPalette.ColorRole.WindowText))
        color.setAlphaF(0.75)
        pal.setColor(QPalette.ColorRole.WindowText, color)
        label.setPalette(pal)

    # ---- project ---------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """A new project: its decoder, settings and prompt, empty panes; the input examples are asked for anew."""
        project = self.doc.project
        self._info = None
        self._info_requested = False
        self._prefix_ids = None
        self._prefix_shown = ""
        self.prefix_edit.clear()
        index = self.decoder_combo.findData(project.decode.decoder)
        self.decoder_combo.blockSignals(True)
        self.decoder_combo.setCurrentIndex(max(index, 0))
        self.decoder_combo.blockSignals(False)
        self._rebuild_form(project.decode.params if index >= 0 else {})
        self.input_combo.blockSignals(True)
        self.input_combo.clear()
        self.input_combo.setEditText(project.decode.prompt)
        self.input_combo.blockSignals(False)
        self._prompt_shown = project.decode.prompt
        self.input_label.setText("Input")
        self.reference.clear()
        self.image.hide()
        for pane in self.panes:
            pane.clear("Choose an input and press Decode.")
        # answers still on their way belong to the previous project
        self.jobs.drop()
        self._done_text.clear()
        self.decode_button.setEnabled(True)
        self._update_weights()
        self._set_status("")
        if self.isVisible():
            self.request_info()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self._update_weights()
        if not self._info_requested:
            # reading the data takes a moment: in the worker, once the view is first seen
            QTimer.singleShot(0, self.request_info)

    def _base_dir(self) -> str:
        return str(Path(self.doc.path).resolve().parent) if self.doc.path else str(Path.cwd())

    def _update_weights(self) -> None:
        avail = available_weights(self.doc.project)
        has_best = "best" in avail
        self.weights_best.setEnabled(has_best)
        self.compare_box.setEnabled(has_best)
        if not has_best:
            self.weights_current.setChecked(True)
            if self.compare_box.isChecked():
                self.compare_box.setChecked(False)
        cur = avail["current"]
        if not cur["trained"]:
            note = "No trained weights for this graph yet: decoding uses freshly initialised weights."
        else:
            note = f"Current: step {cur['step']}."
            if has_best:
                best = avail["best"]
                value = best.get("value")
                note += f" Best: step {best.get('step')}" + (f", {best.get('metric')} {value:.4f}."
                                                             if isinstance(value, float) else ".")
            else:
                note += " Best weights are kept at the first validation of a run."
        self.weights_note.setText(note)

    # ---- decoder form ------------------------------------------------------------------------------------------
    def decoder_id(self) -> str:
        return str(self.decoder_combo.currentData() or "")

    def set_decoder(self, decoder_id: str, settings: dict[str, Any] | None = None) -> None:
        """Choose the project's decoder and settings, as one undoable edit (what choosing them here does)."""
        if self.decoder_combo.findData(decoder_id) < 0:
            raise ValueError(f"no decoder {decoder_id!r}")
        stack = self.doc.undo_stack
        stack.beginMacro(f"Set decoder {decoder_id}")
        try:
            errors = [self.doc.set_setting("decode", "decoder", decoder_id)]
            errors += [self.doc.set_setting("decode", name, value) for name, value in (settings or {}).items()]
        finally:
            stack.endMacro()
        refused = [e for e in errors if e]
        if refused:
            raise ValueError("; ".join(refused))

    def _on_decoder_chosen(self, _index: int) -> None:
        """The combo box: the project's decoder changes (one undo step); the form follows the project."""
        did = self.decoder_id()
        if did and did != self.doc.project.decode.decoder:
            error = self.doc.set_setting("decode", "decoder", did)
            if error:
                self._set_status(error, error=True)
                self._show_project_decoder()

    def _on_settings_changed(self, section: str) -> None:
        if section == "decode":
            self._show_project_decoder()

    def _show_project_decoder(self) -> None:
        """Show the project's decoder, its settings and its prompt (after an edit here, in the inspector, or an
        undo)."""
        decode = self.doc.project.decode
        index = self.decoder_combo.findData(decode.decoder)
        if index >= 0 and index != self.decoder_combo.currentIndex():
            self.decoder_combo.blockSignals(True)
            self.decoder_combo.setCurrentIndex(index)
            self.decoder_combo.blockSignals(False)
        if self.form is None or self._form_decoder != self.decoder_id():
            self._rebuild_form(decode.params)
        else:
            names = set(self.form.rows)
            self.form.set_values({k: v for k, v in decode.params.items() if k in names})
        if decode.prompt != self._prompt_shown:
            self._prompt_shown = decode.prompt
            if self.input_combo.currentText() != decode.prompt:
                self.input_combo.setEditText(decode.prompt)

    _form_decoder = ""
    _prompt_shown = ""

    def _rebuild_form(self, values: dict[str, Any] | None = None) -> None:
        did = self.decoder_id()
        if not did:
            return
        spec = self.registry.decoder(did)
        names = {f.name for f in field_info(spec.params)}
        values = {k: v for k, v in (values or {}).items() if k in names}
        if self.form is not None:
            self.form.setParent(None)
            self.form.deleteLater()
        self.form = ParamsForm(spec.params, values, self._commit_setting, registry=self.registry)
        self._form_decoder = did
        self.form_holder.addWidget(self.form)
        self.decoder_help.setText(help_html(spec.description or ""))
        # wide enough for the controls' own minimum, so nothing is cut off at the right
        width = self.controls.minimumSizeHint().width() + self.controls_scroll.verticalScrollBar().sizeHint().width()
        self.controls_scroll.setMinimumWidth(max(280, width + 4))

    def _commit_setting(self, name: str, value: Any) -> str | None:
        """A decoder setting edited here: checked with the others (a decoder may refuse a combination), then set in
        the project (one undo step); the reason when refused."""
        spec = self.registry.decoder(self.decoder_id())
        assert self.form is not None
        try:
            params_from_dict(spec.params, {**self.form.values(), name: value}, spec.id)
        except (ParamError, ValueError) as exc:
            return str(exc)
        return self.doc.set_setting("decode", name, value)

    def settings(self) -> dict[str, Any]:
        if self.form is None:
            return {}
        self.form.commit_pending()
        return self.form.values()

    # ---- input -----------------------------------------------------------------------------------------------
    def request_info(self) -> None:
        if self._info_requested:
            return
        self._info_requested = True
        project, base = snapshot(self.doc.project), self._base_dir()
        self._submit(lambda s: s.input_info(project, base), self._on_info,
                     lambda msg: self._set_status(f"Cannot read the task's data: {msg}", error=True),
                     key=("info", 0))

    def _on_info(self, info: dict[str, Any]) -> None:
        self._info = info
        self.input_label.setText(info.get("label", "Input"))
        self.input_combo.lineEdit().setPlaceholderText(info.get("hint", ""))
        self.input_combo.setToolTip(info.get("hint", ""))
        current = self.input_combo.currentText()
        self.input_combo.blockSignals(True)
        self.input_combo.clear()
        for prompt, reference in info.get("examples") or []:
            self.input_combo.addItem(prompt, reference)
        self.input_combo.setEditText(current or info.get("default", ""))
        self.input_combo.blockSignals(False)
        self._on_input_changed(self.input_combo.currentText())
        if not info.get("generative", True):
            self.decode_button.setEnabled(False)
            self._set_status(f"The task {self.doc.project.task.id!r} does not generate tokens: there is nothing to "
                             f"decode.", error=True)
        self.infoReady.emit(info)

    def set_input(self, text: str) -> None:
        self.input_combo.setEditText(text)

    def input_text(self) -> str:
        return self.input_combo.currentText()

    def _on_input_changed(self, text: str) -> None:
        reference = ""
        index = self.input_combo.findText(text)
        if index >= 0:
            reference = str(self.input_combo.itemData(index) or "")
        self.reference.setText(f"Reference: {reference}" if reference else "")
        self.reference.setVisible(bool(reference))
        if self._info and self._info.get("image"):
            project, base = snapshot(self.doc.project), self._base_dir()
            self._submit(lambda s: s.image(project, base, text), self._show_image, lambda _m: self.image.hide(),
                         key=("image", 0))

    def _show_image(self, image: Any) -> None:
        if image is None:
            self.image.hide()
            return
        import numpy as np
        rgb = np.ascontiguousarray((np.clip(np.asarray(image), 0, 1) * 255).astype(np.uint8))
        h, w = rgb.shape[:2]
        qimage = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        scale = max(1, 160 // max(w, h))
        self.image.setPixmap(QPixmap.fromImage(qimage).scaled(w * scale, h * scale,
                                                              Qt.AspectRatioMode.KeepAspectRatio,
                                                              Qt.TransformationMode.FastTransformation))
        self.image.setToolTip("The example's picture (the model sees it as its input)")
        self.image.show()

    # ---- prefix ----------------------------------------------------------------------------------------------
    def set_prefix_text(self, text: str) -> None:
        self._prefix_ids = None
        self.prefix_edit.setText(text)

    def _prefix_request(self) -> tuple[Optional[list[int]], str]:
        """Exact token ids when the prefix came from a node and was not edited since, otherwise the typed text."""
        text = self.prefix_edit.text()
        if self._prefix_ids is not None and text == self._prefix_shown:
            return list(self._prefix_ids), ""
        self._prefix_ids = None
        return None, text

    def force_node(self, nid: int, pane: int = 0) -> None:
        """What-if: decode again with the path to ``nid`` of ``pane``'s tree forced as the prefix."""
        doc = self.panes[pane].tree.document()
        if doc is None or nid == 0:
            return
        self._prefix_ids = prefix_of(doc, nid)
        self._prefix_shown = hypothesis_text(doc, nid)
        self.prefix_edit.setText(self._prefix_shown)
        self.decode()

    # ---- decoding --------------------------------------------------------------------------------------------
    def compare(self) -> bool:
        return self.compare_box.isChecked() and self.compare_box.isEnabled()

    def set_compare(self, on: bool) -> None:
        self.compare_box.setChecked(on)

    def set_weights(self, weights: str) -> None:
        (self.weights_best if weights == "best" else self.weights_current).setChecked(True)

    def decode(self) -> None:
        """Decode the input in the worker (both weights when comparing); the panes update when it answers."""
        did = self.decoder_id()
        if not did:
            return
        settings = self.settings()
        if self.form is not None and any(self.form.message(n) for n in self.form.rows):
            self._set_status("Fix the decoder settings marked in red first.", error=True)
            return
        if self._info is not None and not self._info.get("generative", True):
            return
        self._update_weights()          # a run in the window may have saved new (or first best) weights
        prompt = self.input_text()
        if prompt != self.doc.project.decode.prompt:
            # the input decoded last is the project's prompt (Inspector ▸ Decoding ▸ prompt), saved with it
            self._prompt_shown = prompt
            self.doc.set_setting("decode", "prompt", prompt)
        prefix_ids, prefix_text = self._prefix_request()
        project, base = snapshot(self.doc.project), self._base_dir()
        if self.compare():
            targets = [(0, "current"), (1, "best")]
        else:
            targets = [(0, "best" if self.weights_best.isChecked() and self.weights_best.isEnabled() else "current")]
        self.panes[1].setVisible(self.compare())
        self._arrange_panes()
        self._done_text.clear()
        loading = not any(p.tree.document() for p in self.panes)
        self._set_status("Loading the model and the data, then decoding…" if loading else "Decoding…")
        self.decode_button.setEnabled(False)
        for index, weights in targets:
            pane = self.panes[index]
            pane.weights = weights
            pane.has_attention = None       # the graph may have changed since: ask again

            def run(session: Any, weights: str = weights) -> dict[str, Any]:
                t0 = time.perf_counter()
                doc = session.decode(project, base, did, settings, prompt, prefix=prefix_ids,
                                     prefix_text=prefix_text, weights=weights)
                return {"doc": doc, "seconds": time.perf_counter() - t0}

            self._submit(run, lambda r, i=index: self._on_decoded(i, r),
                         lambda msg, i=index: self._on_decode_failed(i, msg), key=("decode", index))

    def _on_decoded(self, index: int, result: dict[str, Any]) -> None:
        doc = result["doc"]
        pane = self.panes[index]
        t0 = time.perf_counter()
        pane.set_document(doc, self._pane_header(doc))
        draw = time.perf_counter() - t0
        self.timings = {"decode_s": result["seconds"], "draw_s": draw, "nodes": float(len(doc["tree"]))}
        self._done_text[index] = (f"{len(doc['tree'])} nodes searched in {result['seconds']:.2f} s, drawn in "
                                  f"{draw * 1000:.0f} ms")
        if not self._pending_decodes():
            self.decode_button.setEnabled(True)
            if self.panes[1].isVisible() and 1 in self._done_text:
                self._set_status(f"Current: {self._done_text[0]}.\nBest: {self._done_text[1]}.")
            else:
                self._set_status(self._done_text[index] + ".")
        if doc.get("prefix_text") and not self.prefix_edit.text():
            self.prefix_edit.setText(doc["prefix_text"])
        pane.select_rank(0, center=False)
        if not self._pending_decodes():
            self.decoded.emit([p.tree.document() for p in self.panes if p.isVisible()])

    def _pending_decodes(self) -> bool:
        return any(self.jobs.pending(("decode", index)) for index in range(len(self.panes)))

    def _on_decode_failed(self, index: int, message: str) -> None:
        self.panes[index].set_message(f"Could not decode: {message}")
        if not self._pending_decodes():
            self.decode_button.setEnabled(True)
        self._set_status(message, error=True)

    def _pane_header(self, doc: dict[str, Any]) -> str:
        which = "Best weights" if doc.get("weights") == "best" else "Current weights"
        step = f"step {doc.get('step')}" if doc.get("trained") else "untrained"
        search = doc.get("search") or {}
        bits = [f"{which} ({step})", f"{doc.get('decoder')}"]
        if "width" in search:
            bits[-1] += f", width {search['width']}"
        if doc.get("prefix"):
            bits.append(f"prefix “{doc.get('prefix_text', '')}”")
        text = line_text(str(doc.get("text", "")))      # an LM may generate only blanks: made visible
        bits.append(f"→ {text if len(text) < 60 else text[:57] + '…'}")
        return " · ".join(bits)

    # ---- attention -------------------------------------------------------------------------------------------
    def _on_node_selected(self, index: int, nid: int) -> None:
        if nid != 0:
            self._request_attention(index, nid)

    def _request_attention(self, index: int, nid: int) -> None:
        pane = self.panes[index]
        doc = pane.tree.document()
        if doc is None or pane.has_attention is False or doc.get("opened_from"):
            if doc is not None and doc.get("opened_from"):
                pane.attention.set_message("Attention needs the model: decode to see it.")
            return
        tokens, finished = hypothesis_at(doc, nid)
        project, base, prompt, weights = snapshot(self.doc.project), self._base_dir(), doc["input"], doc["weights"]
        pane.attention_title.setText(f"Attention for “{hypothesis_text(doc, nid)}”")
        self._submit(lambda s: s.attention(project, base, prompt, tokens, finished, weights=weights),
                     lambda att, i=index: self._on_attention(i, att),
                     lambda msg, i=index: self.panes[i].attention.set_message(f"No attention map: {msg}"),
                     key=("attention", index))

    def _on_attention(self, index: int, att: Optional[dict[str, Any]]) -> None:
        pane = self.panes[index]
        if att is None:
            pane.has_attention = False
            pane.attention_title.setText("Attention")
            pane.attention.set_message("This model has no attention block.")
            return
        pane.has_attention = True
        pane.attention.set_attention(att)
        self.attentionShown.emit(index)

    # ---- files -----------------------------------------------------------------------------------------------
    def open_tree(self, path: str) -> None:
        doc = read_document(path)
        doc = dict(doc, opened_from=str(path))
        self.panes[1].hide()
        self._arrange_panes()
        self.panes[0].weights = doc.get("weights", "current")
        self.panes[0].set_document(doc, f"{Path(path).name} · " + self._pane_header(doc))
        self.panes[0].attention.set_message("Attention needs the model: decode to see it.")
        self._set_status(f"Opened {path}: {len(doc['tree'])} nodes.")

    def open_tree_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open search tree", self._base_dir(), TREE_FILTER)
        if not path:
            return
        try:
            self.open_tree(path)
        except (OSError, ValueError) as exc:
            QMessageBox.warning(self, "Cannot open search tree", str(exc))

    def save_tree_dialog(self) -> None:
        doc = self.panes[0].tree.document()
        if doc is None:
            self._set_status("Decode first: there is no tree to save.", error=True)
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save search tree", str(Path(self._base_dir()) / "tree.json"),
                                              TREE_FILTER)
        if not path:
            return
        try:
            write_document({k: v for k, v in doc.items() if k != "opened_from"}, path)
        except (OSError, ValueError) as exc:
            QMessageBox.warning(self, "Cannot save search tree", str(exc))
            return
        self._set_status(f"Saved {path}")

    # ---- options -----------------------------------------------------------------------------------------------
    def _apply_tree_options(self) -> None:
        for pane in self.panes:
            pane.tree.set_options(show_pruned=self.show_pruned.isChecked(), fold_dead=self.fold_dead.isChecked())

    def _on_compare(self, on: bool) -> None:
        self.side_by_side.setEnabled(on)
        self.weights_current.setEnabled(not on)
        self.weights_best.setEnabled(not on and "best" in available_weights(self.doc.project))
        if not on:
            self.panes[1].hide()
            self._arrange_panes()

    def _set_side_by_side(self, on: bool) -> None:
        self.panes_split.setOrientation(Qt.Orientation.Horizontal if on else Qt.Orientation.Vertical)
        self._arrange_panes()

    def _link_panes(self) -> None:
        """Stacked trees scroll and zoom together, so a step of one sits over the same step of the other."""
        a, b = self.panes[0].tree, self.panes[1].tree
        self._linking = False

        def follow(src: SearchTreeView, dst: SearchTreeView) -> None:
            if self._linking or not self.panes[1].isVisible():
                return
            if self.panes_split.orientation() != Qt.Orientation.Vertical:
                return
            self._linking = True
            try:
                dst.setTransform(src.transform())
                dst.horizontalScrollBar().setValue(src.horizontalScrollBar().value())
            finally:
                self._linking = False

        for src, dst in ((a, b), (b, a)):
            src.horizontalScrollBar().valueChanged.connect(lambda _v, s=src, d=dst: follow(s, d))
            src.zoomed.connect(lambda s=src, d=dst: follow(s, d))

    def _arrange_panes(self) -> None:
        """Trees are wide and short: with two panes one above the other, each pane's n-best list and attention
        map go beside its tree; otherwise below it."""
        beside = self.panes[1].isVisible() and self.panes_split.orientation() == Qt.Orientation.Vertical
        for pane in self.panes:
            pane.arrange(beside)

    # ---- plumbing --------------------------------------------------------------------------------------------
    def _submit(self, fn: Callable[[Any], Any], ok: Callable[[Any], None], fail: Callable[[str], None],
                key: tuple[str, int]) -> None:
        """Ask ``fn(session)`` in the worker; ``ok(result)`` or ``fail(message)`` run on the GUI thread, for the
        newest question of ``key`` only."""
        self.jobs.submit(lambda _job: fn(self._decode_session()), key=key, on_result=ok, on_error=fail)

    def _decode_session(self) -> Any:
        """The session, made the first time the worker thread needs it (torch is imported there, never on the GUI
        thread)."""
        if self._session is None:
            from workbench.core.search import DecodeSession
            self._session = DecodeSession(self.registry)
        return self._session

    def busy(self) -> bool:
        """Whether an answer is still to come."""
        return self.jobs.pending()

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        pal = self.status.palette()
        pal.setColor(QPalette.ColorRole.WindowText, error_color(self) if error else
                     self.palette().color(QPalette.ColorRole.WindowText))
        self.status.setPalette(pal)

    def shutdown(self) -> None:
        """Drop every question: the worker thread ends after the one that runs."""
        self.jobs.stop()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)


# ---- the window's tab ------------------------------------------------------------------------------------------

def register(views: ViewRegistry) -> None:
    """The **Decoding** tab and **Inspect ▸ Decoding and Beam Search** (Ctrl+4, also under View); the view is built
    the first time the tab is shown (nothing is loaded before)."""
    window = views.window
    # Ctrl+4: after Model, Training and Hidden Units (Ctrl+1..3)
    views.register_view(
        "decoding", title="Decoding",
        tip="Beam-search trees, what-if decoding, checkpoints side by side, attention maps",
        build=lambda parent: DecodeInspector(window.doc, window.registry, parent),
        entries=[MenuEntry("&Decoding and Beam Search", menu="inspect", shortcut="Ctrl+4",
                           tip="Decode an input and look at the search tree, what-if prefixes, both checkpoints "
                               "and the attention", in_view_menu=True)])
