"""The inspector's data preview: what the project's task reads from its data, before anything trains — the size of
each split, the vocabulary, the first examples and what one training batch looks like.

The numbers come from :func:`workbench.core.data_preview.preview_data` (the same function as ``seqwb data FILE``),
run in a worker thread by one :class:`DataPreviewer` per window; the inspector rebuilds its forms often (every
selection), so the previewer keeps the newest answer and each :class:`DataPreviewPanel` only shows it.  A preview
is read again when the task's settings, the batch size or the chunk length change while it is shown, and when the
user asks (**Read the data**).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (QHBoxLayout, QHeaderView, QLabel, QProgressBar, QPushButton, QSizePolicy,
                               QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from workbench.gui.forms import show_note
from workbench.gui.jobs import JobRunner

#: examples the panel shows
EXAMPLES = 5
#: how long settings must rest before the data is read again (typing a path, stepping a spin box)
SETTLE_MS = 400


def preview_key(project: Any, base_dir: Optional[str]) -> str:
    """What the preview depends on: the task and its settings, the data's folder, the vocabulary kept in the
    project, and the batch size and chunk length one batch is cut with."""
    vocab = project.vocab
    return json.dumps([project.task.id, project.task.params, base_dir or "", len(vocab) if vocab else 0,
                       project.train.batch_size, project.train.chunk_len], sort_keys=True, default=str)


class DataPreviewer(QObject):
    """Reads a project's data in a worker thread and keeps the newest answer.  ``changed`` is emitted when an
    answer, a failure or progress arrives, or a read starts."""

    changed = Signal()

    def __init__(self, document: Any, parent: QObject | None = None):
        super().__init__(parent)
        self.doc = document
        self.jobs = JobRunner("data-preview", self, thread_name="seqwb-data-preview")
        self.key = ""                       # of the answer shown (or the read under way)
        self.result: Optional[dict[str, Any]] = None
        self.error = ""
        self.busy = False
        self.stage = ""                     # what the task is reading, from its progress reports
        self.done, self.total = 0, 0
        self.wanted = False                 # a panel is open
        # read by itself once the user has touched the task (chose it, edited its settings) or asked for a read;
        # never just because a window opened on a project (reading a corpus costs seconds of CPU)
        self.follow = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SETTLE_MS)
        self._timer.timeout.connect(self.refresh)
        document.settingsChanged.connect(self._on_settings)
        document.projectReplaced.connect(self._on_project_replaced)

    def base_dir(self) -> Optional[str]:
        return str(Path(self.doc.path).resolve().parent) if self.doc.path else None

    def current_key(self) -> str:
        return preview_key(self.doc.project, self.base_dir())

    def up_to_date(self) -> bool:
        return self.key == self.current_key() and (self.result is not None or bool(self.error) or self.busy)

    def refresh(self, force: bool = False) -> None:
        """Read the data again unless the newest answer (or the read under way) is for the current settings."""
        self._timer.stop()
        project = self.doc.project
        if not project.task.id:
            self.jobs.drop()
            self.key, self.result, self.error, self.busy = "", None, "", False
            self.changed.emit()
            return
        if not force and self.up_to_date():
            return
        self.follow = True
        from workbench.core.project import Project
        snapshot = Project.from_json(project.to_json())     # the worker reads a copy; the user keeps editing
        snapshot.vocab = list(project.vocab) if project.vocab is not None else None
        base = self.base_dir()
        self.key = self.current_key()
        self.busy, self.error, self.stage, self.done, self.total = True, "", "reading the data", 0, 0
        registry = self.doc.registry

        def read(job: Any) -> dict[str, Any]:
            from workbench.core.data_preview import preview_data

            def progress(stage: str, done: int, total: int) -> None:
                self.stage = stage          # read on the GUI thread with the report below
                job.report(int(done), int(total))
            return preview_data(snapshot, registry, base, examples=EXAMPLES, progress=progress)

        self.jobs.submit(read, key="preview", on_result=self._on_result, on_error=self._on_error,
                         on_progress=self._on_progress)
        self.changed.emit()

    def schedule(self) -> None:
        """Read again once the settings rest (while a panel shows the preview)."""
        if self.wanted:
            self._timer.start()

    def _on_settings(self, section: str) -> None:
        if section == "task":
            self.follow = True
        if section in ("task", "train") and (self.follow or self.result is not None) and \
                self.key != self.current_key():
            self.schedule()

    def _on_project_replaced(self) -> None:
        self.jobs.drop()
        self._timer.stop()
        self.follow = False
        self.key, self.result, self.error, self.busy = "", None, "", False
        self.changed.emit()

    def _on_result(self, result: dict[str, Any]) -> None:
        self.busy, self.result, self.error = False, result, ""
        self.changed.emit()

    def _on_error(self, message: str) -> None:
        self.busy, self.result, self.error = False, None, message
        self.changed.emit()

    def _on_progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        self.changed.emit()

    def shutdown(self) -> None:
        self._timer.stop()
        self.jobs.stop()


class DataPreviewPanel(QWidget):
    """The preview as the inspector shows it: a summary, a progress bar while reading, the first examples and one
    batch's tensors.  Built anew with every inspector rebuild; shows what its :class:`DataPreviewer` holds."""

    def __init__(self, previewer: DataPreviewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.previewer = previewer
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        row = QHBoxLayout()
        self.read_button = QPushButton("Read the data")
        self.read_button.setToolTip("Read the task's data as training will, and show what it holds "
                                    "(seqwb data FILE on the command line)")
        self.read_button.clicked.connect(lambda: self.previewer.refresh(force=True))
        row.addWidget(self.read_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        layout.addWidget(self.progress)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.status)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.summary)
        self.examples = _table(["#", "example"])      # one column per field once the data is read
        self.examples.setToolTip("The first examples of the training split, as one batch has them")
        layout.addWidget(self.examples)
        self.batch = _table(["tensor", "shape", "type"])
        self.batch.setToolTip("One training batch at the project's batch size and chunk length; T: time steps, "
                              "B: examples")
        layout.addWidget(self.batch)
        previewer.changed.connect(self.show_preview)
        self.show_preview()

    def show_preview(self) -> None:
        p = self.previewer
        if not p.doc.project.task.id:
            self._show_nothing("Choose a task first: drag one from the palette's Tasks onto the canvas.")
            return
        stale = not p.up_to_date()
        self.progress.setVisible(p.busy)
        if p.busy:
            # never a "busy" bar: its animation repaints all the time and slows the reading thread down
            self.progress.setRange(0, max(p.total, 1))
            self.progress.setValue(min(p.done, p.total))
            show_note(self.status, f"Reading the data: {p.stage}…")
        elif p.error and not stale:
            show_note(self.status, f"Cannot read the data: {p.error}", error=True)
        elif p.result is None or stale:
            show_note(self.status, "Not read yet: press Read the data to see the splits, the vocabulary, the first "
                                   "examples and one batch." if p.result is None else
                      "The settings changed since this was read: press Read the data to read them again.")
        else:
            show_note(self.status, f"Read in {p.result['seconds']:.2f} s.")
        result = p.result if p.result is not None and (not p.error or stale) else None
        self.summary.setVisible(result is not None)
        self.examples.setVisible(bool(result and result["examples"]))
        self.batch.setVisible(bool(result and result["batch"]))
        if result is not None:
            self._fill(result)

    def _where(self, path: str) -> str:
        """A data file as the user knows it: relative to the project's folder when it is inside it, else whole
        (a project without a file has no folder: "../../tmp/reviews.csv" from wherever the app started is no
        help)."""
        if path.startswith("<") or Path(path).is_absolute():
            return path
        base = Path(self.previewer.base_dir() or Path.cwd())
        return path if not path.startswith("..") else str((base / path).resolve())

    def _show_nothing(self, text: str) -> None:
        self.progress.hide()
        show_note(self.status, text)
        for widget in (self.summary, self.examples, self.batch):
            widget.hide()
        self.read_button.setEnabled(False)

    def _fill(self, result: dict[str, Any]) -> None:
        from workbench.core.data_preview import count_text
        self.read_button.setEnabled(True)
        lines = []
        files = [self._where(str(r.get("path"))) for r in result["files"].values()
                 if isinstance(r, dict) and r.get("path")]
        if files:
            lines.append("<b>Data</b>: " + html.escape(", ".join(dict.fromkeys(files))))
        lines.append("<b>Splits</b>: " + ", ".join(f"{name} {count_text(s['count'], s['unit'])}"
                                                  for name, s in result["splits"].items()))
        if result["sizes"]:
            lines.append("<b>Sizes</b>: " + ", ".join(f"{html.escape(k)} {v:,}" for k, v in result["sizes"].items()))
        batch = result["batch"]
        if batch:
            lines.append(f"<b>One batch</b>: {batch['count']:,} {html.escape(batch['count_unit'])}; "
                         f"{batch['batches_per_epoch']:,} batches per epoch")
        elif result["batch_error"]:
            lines.append(f"<b>No batch</b>: {html.escape(result['batch_error'])}")
        self.summary.setText("<br>".join(lines))
        self.examples.clear()
        rows = result["examples"]
        # one column per field, the short ones first (a label, a length) and the longest last, where the table
        # stretches: in a narrow inspector the label of a long review stays in view
        keys = sorted(rows[0], key=lambda k: sum(len(r.get(k, "")) for r in rows)) if rows else []
        self.examples.setColumnCount(len(keys) + 1)
        self.examples.setHeaderLabels(["#", *keys])
        head = self.examples.header()
        for column in range(len(keys)):
            head.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        for i, row in enumerate(rows, 1):
            item = QTreeWidgetItem([str(i), *(row.get(k, "").replace("\n", "⏎") for k in keys)])
            for column, key in enumerate(keys, 1):
                item.setToolTip(column, row.get(key, ""))
            self.examples.addTopLevelItem(item)
        _fit_rows(self.examples)
        self.batch.clear()
        for t in batch.get("tensors", []) if batch else []:
            shape = " × ".join(f"{a}={n}" for a, n in zip(t["axes"], t["shape"])) or "scalar"
            self.batch.addTopLevelItem(QTreeWidgetItem([t["key"], shape, t["dtype"]]))
        _fit_rows(self.batch)


def _table(headers: list[str]) -> QTreeWidget:
    table = QTreeWidget()
    table.setHeaderLabels(headers)
    table.setRootIsDecorated(False)
    table.setUniformRowHeights(True)
    table.setAlternatingRowColors(True)
    table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    head = table.header()
    head.setStretchLastSection(True)
    for column in range(len(headers) - 1):
        head.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
    return table


def _fit_rows(table: QTreeWidget) -> None:
    """As tall as its rows: the inspector scrolls, the table does not."""
    rows = table.topLevelItemCount()
    row_height = table.sizeHintForRow(0) if rows else 0
    table.setFixedHeight(table.header().sizeHint().height() + rows * row_height + 2 * table.frameWidth() + 2)
