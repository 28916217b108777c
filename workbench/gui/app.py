"""The window.  For now a read-only project overview (the full editor is its own piece of work).

It shows which project is open, its graph, its training settings and runs, using only core functions.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QApplication, QFileDialog, QLabel, QMainWindow, QMessageBox, QSplitter,
                               QTextEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from workbench import __version__


def default_project(registry):
    """The embedded default project: the char-LM template on the Python standard library's source."""
    from workbench.core.settings import template_project
    project, _ = template_project(registry.template("char-lm"), {}, registry)
    return project


class MainWindow(QMainWindow):
    def __init__(self, registry, project=None, path: str | None = None):
        super().__init__()
        self.registry = registry
        self.project = project if project is not None else default_project(registry)
        self.path = path
        self.resize(1000, 640)
        self._build()
        self.show_project()

    def _build(self) -> None:
        menu = self.menuBar().addMenu("&File")
        act_open = QAction("&Open...", self, shortcut=QKeySequence.StandardKey.Open, triggered=self.open_dialog)
        act_quit = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit, triggered=self.close)
        menu.addAction(act_open)
        menu.addSeparator()
        menu.addAction(act_quit)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(QAction("&About", self, triggered=self.about))

        central = QWidget()
        layout = QVBoxLayout(central)
        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.header)
        split = QSplitter()
        self.graph_tree = QTreeWidget()
        self.graph_tree.setHeaderLabels(["Node", "Type", "Settings"])
        self.details = QTextEdit()
        self.details.setReadOnly(True)
        split.addWidget(self.graph_tree)
        split.addWidget(self.details)
        split.setSizes([550, 450])
        layout.addWidget(split, 1)
        note = QLabel("This window is an overview. Train and inspect with the seqwb command line "
                      "(seqwb train FILE, seqwb probe FILE --gradient-through-time, seqwb record FILE --text ...).")
        note.setWordWrap(True)
        layout.addWidget(note)
        self.setCentralWidget(central)
        from workbench.core.device import describe_device, resolve_device
        self.statusBar().showMessage(f"Device: {describe_device(resolve_device('auto'))}")

    def show_project(self) -> None:
        p = self.project
        name = Path(self.path).name if self.path else "default project (not saved)"
        self.setWindowTitle(f"{p.name} — {name} — Sequence Workbench")
        self.header.setText(f"<h2>{p.name}</h2><p>Task: <b>{p.task.id}</b> &nbsp; File: {name}</p>")
        self.graph_tree.clear()
        for node in p.graph.nodes.values():
            settings = ", ".join(f"{k}={v}" for k, v in node.params.items())
            QTreeWidgetItem(self.graph_tree, [node.id, node.type, settings])
        for i in range(3):
            self.graph_tree.resizeColumnToContents(i)
        lines = [f"<b>Links</b><br>" + "<br>".join(str(ln) for ln in p.graph.links), "<b>Training</b>"]
        t = p.train
        lines.append(f"optimizer {t.optimizer}, lr {t.lr}, batch {t.batch_size}, chunk {t.chunk_len}, "
                     f"clip {t.clip_norm}, steps {t.steps}")
        lines.append("<b>Runs</b>")
        for run in p.history.runs:
            loss = run.series.get("train/loss")
            last = f"loss {loss.value[-1]:.3f} at step {loss.step[-1]}" if loss and loss.value else "no steps"
            lines.append(f"{run.id}: {run.status}, {last}")
        if not p.history.runs:
            lines.append("none yet")
        self.details.setHtml("<br>".join(lines))

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", "", "Sequence Workbench projects (*.seqwb)")
        if path:
            self.open_path(path)

    def open_path(self, path: str) -> bool:
        from workbench.core.errors import WorkbenchError
        from workbench.core.io import load_project
        try:
            self.project = load_project(path, registry=self.registry)
        except (WorkbenchError, OSError) as exc:
            QMessageBox.warning(self, "Cannot open project", str(exc))
            return False
        self.path = path
        self.show_project()
        return True

    def about(self) -> None:
        import PySide6
        QMessageBox.about(self, "About Sequence Workbench",
                          f"Sequence Workbench {__version__}<br>Qt for Python {PySide6.__version__}")


def run_app(path: str | None = None) -> int:
    from workbench.plugin_system import default_registry
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Sequence Workbench")
    app.setOrganizationName("Sequence Workbench")
    registry = default_registry()
    win = MainWindow(registry)
    if path and not win.open_path(path):
        pass  # the window stays on the default project; the message told the user why
    win.show()
    return app.exec()
