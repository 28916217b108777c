"""Plugins ▸ Install Plugin… and Uninstall Plugin…: pip from the window, as Orange's add-on manager does it.

The dialog computes nothing itself.  Its worker thread (a :class:`~workbench.gui.jobs.JobRunner`) runs
:func:`workbench.plugin_system.installer.install` or :func:`~workbench.plugin_system.installer.uninstall`, whose
output arrives line by line and is shown as it comes; then, unless the change needs a restart (a plugin whose code
is loaded already was upgraded or removed: Python cannot unload a module), the same worker discovers the plugins
again.  Back on the GUI thread the window's registry takes the new tables in place
(:meth:`~workbench.plugin_system.loader.Registry.update_from`) and :func:`refresh_window` redraws what lists
plugins: the palette, the canvas's blocks, the problems and the inspector's choices.  A failure shows pip's own
message; a plugin that installed but fails to load is named with its error.
"""

from __future__ import annotations

import collections
import functools
import html
import sys
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QFontDatabase
from PySide6.QtWidgets import (QComboBox, QDialog, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit,
                               QProgressBar, QPushButton, QVBoxLayout, QWidget)

from workbench.gui.forms import show_note
from workbench.gui.jobs import Job, JobRunner
from workbench.gui.views import MenuEntry, ViewRegistry
from workbench.plugin_system.user_settings import BUILTIN_DISTRIBUTION, normalize

INSTALL, UNINSTALL = "install", "uninstall"
LOG_LINES = 5000          # pip's output kept in the dialog (a build can print thousands of lines)
DRAIN_MS = 100            # how often pip's lines are moved from the worker to the log
STOPPED = "<b>Stopped:</b> pip was stopped before it finished (what it had installed by then stays installed)."
KIND_WORDS = {"cell": "cell", "architecture": "block", "task": "task", "decoder": "decoder",
              "template": "template", "feature_track": "feature track"}


def third_party_distributions(registry: Any) -> list[str]:
    """Every installed distribution that brings plugins, but Sequence Workbench itself: loaded, failed or
    disabled (the ones Uninstall can offer)."""
    names: dict[str, str] = {}
    found = [d for d, _e, _v in registry.plugins] + [f.distribution for f in registry.failures] + \
        [d.distribution for d in getattr(registry, "disabled", ())]
    for dist in found:
        if dist and not dist.startswith("(") and normalize(dist) != BUILTIN_DISTRIBUTION:
            names.setdefault(normalize(dist), dist)
    return sorted(names.values(), key=str.lower)


def contributions_of(registry: Any, distributions: list[str]) -> list[str]:
    """``"cell seqwb-x.mgu"`` for every contribution of ``distributions`` that ``registry`` holds."""
    wanted = {normalize(d) for d in distributions}
    return [f"{KIND_WORDS.get(kind, kind)} {spec.id}" for kind, spec in registry.all()
            if normalize(spec.distribution or "") in wanted]


def refresh_window(window: Any) -> None:
    """Show the window's registry as it is now: palette entries, canvas blocks (a block type that was missing may
    be there now, or the other way round), the project's problems and the inspector's lists of cells, tasks and
    decoders.  Anything the window does not have (a test's bare widget) is skipped."""
    palette = getattr(window, "palette_widget", None)
    if palette is not None:
        palette.refresh()
    view = getattr(window, "view", None)
    if view is not None:
        selected = view.selected_node_ids()
        view.graph_scene.rebuild()
        for node_id in selected:
            item = view.graph_scene.nodes.get(node_id)
            if item is not None:
                item.setSelected(True)
    doc = getattr(window, "doc", None)
    if doc is not None:
        doc.graphChanged.emit()     # the analysis is redone against the plugins installed now
    inspector = getattr(window, "inspector", None)
    if inspector is not None:
        inspector.show_nodes(list(inspector.selection))   # rebuilt: its forms list the registry's choices anew


class PipDialog(QDialog):
    """Install (a wheel, a folder or a package name) or uninstall (an installed plugin distribution) with pip.

    ``pip_options`` go to the installer as they are (the tests install into a ``target`` folder, offline);
    ``pluginsChanged`` is emitted once the registry took the plugins installed now, to redraw what lists them.
    (A signal, not a callback kept here: a bound method of the parent held by this child makes a reference cycle
    that the garbage collector may break while Qt is deleting the two.)"""

    pluginsChanged = Signal()

    def __init__(self, registry: Any, mode: str = INSTALL, parent: QWidget | None = None, *,
                 distribution: str = "", pip_options: Optional[dict[str, Any]] = None):
        super().__init__(parent)
        self.registry = registry
        self.mode = mode
        self.pip_options = dict(pip_options or {})
        self.result: Any = None                  # the last PipResult
        self.loaded: list[str] = []              # contributions the last change brought in
        self._job: Optional[Job] = None
        self._was_cancelled = False
        self._lines: collections.deque[str] = collections.deque()   # pip's lines, from the worker thread
        self.runner = JobRunner("plugin install", self, thread_name="seqwb-pip")
        self._drain = QTimer(self)
        self._drain.setInterval(DRAIN_MS)
        self._drain.timeout.connect(self._show_lines)

        installing = mode == INSTALL
        self.setWindowTitle(("Install a Plugin" if installing else "Uninstall a Plugin") + " — Sequence Workbench")
        self.resize(720, 480)
        python = html.escape(sys.executable)
        intro = QLabel(
            ("Installs a plugin with pip into the Python environment Sequence Workbench runs in "
             f"(<code>{python}</code>).  Give a wheel (<code>.whl</code>), a folder with a "
             "<code>pyproject.toml</code>, or a package name from the package index, such as "
             "<code>seqwb-indrnn</code> or <code>seqwb-indrnn&gt;=0.2</code>.") if installing else
            ("Removes a plugin distribution with <code>pip uninstall</code> from the Python environment Sequence "
             f"Workbench runs in (<code>{python}</code>).  A plugin whose code is loaded stays in use until "
             "Sequence Workbench restarts."))
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)

        row = QHBoxLayout()
        self.source_edit: Optional[QLineEdit] = None
        self.dist_combo: Optional[QComboBox] = None
        if installing:
            self.source_edit = QLineEdit(self)
            self.source_edit.setPlaceholderText("a wheel, a folder or a package name")
            self.source_edit.setClearButtonEnabled(True)
            self.source_edit.textChanged.connect(self._check_source)
            self.source_edit.returnPressed.connect(self.start)
            wheel = QPushButton("&Wheel…", self)
            wheel.setToolTip("Choose a wheel file (.whl)")
            wheel.clicked.connect(self._choose_wheel)
            folder = QPushButton("&Folder…", self)
            folder.setToolTip("Choose a folder with a pyproject.toml or setup.py (a plugin's source)")
            folder.clicked.connect(self._choose_folder)
            row.addWidget(self.source_edit, 1)
            row.addWidget(wheel)
            row.addWidget(folder)
        else:
            self.dist_combo = QComboBox(self)
            names = third_party_distributions(registry)
            self.dist_combo.addItems(names)
            if distribution and distribution in names:
                self.dist_combo.setCurrentText(distribution)
            self.dist_combo.currentTextChanged.connect(self._check_source)
            row.addWidget(QLabel("Distribution:", self))
            row.addWidget(self.dist_combo, 1)

        self.check_label = QLabel(self)        # what the source is, or why it cannot be installed
        self.check_label.setWordWrap(True)
        self.check_label.setTextFormat(Qt.TextFormat.PlainText)   # paths and names are shown as they are
        self.log = QPlainTextEdit(self)
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_LINES)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setPlaceholderText("pip's output appears here as it runs.")
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 0)           # pip says nothing about how far it is: a busy bar
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.result_label = QLabel(self)
        self.result_label.setWordWrap(True)
        self.result_label.setTextFormat(Qt.TextFormat.RichText)   # what it holds is escaped
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.run_button = QPushButton("&Install" if installing else "&Uninstall", self)
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("&Stop pip", self)
        self.cancel_button.setToolTip("Stop pip; what it installed so far may stay installed")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = QPushButton("&Close", self)
        self.close_button.setAutoDefault(False)
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.progress, 1)
        buttons.addStretch(1)       # the buttons keep their size while the progress bar is hidden
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(row)
        layout.addWidget(self.check_label)
        layout.addWidget(self.log, 1)
        layout.addWidget(self.result_label)
        layout.addLayout(buttons)
        self._check_source()

    # ---- the source ------------------------------------------------------------------------------------------
    def source(self) -> str:
        if self.source_edit is not None:
            return self.source_edit.text().strip()
        return self.dist_combo.currentText() if self.dist_combo is not None else ""

    def set_source(self, text: str) -> None:
        if self.source_edit is not None:
            self.source_edit.setText(text)
        elif self.dist_combo is not None:
            self.dist_combo.setCurrentText(text)

    def _check_source(self, *_: Any) -> bool:
        """Say what the source is (or why pip would not be run), and allow Install only for a usable one."""
        from workbench.plugin_system.installer import InstallError, install_command, source_kind
        text = self.source()
        running = self.running()
        if self.mode == UNINSTALL:
            ok = bool(text)
            show_note(self.check_label, f"pip uninstall --yes {text}" if ok else
                      "No plugin distribution is installed (the built-in plugins cannot be uninstalled).", not ok)
        elif not text:
            ok = False
            show_note(self.check_label, "Nothing to install yet.")
        else:
            try:
                kind = source_kind(text)
                command = install_command(text, **{k: v for k, v in self.pip_options.items()
                                                   if k in ("python", "target", "extra")})
            except InstallError as exc:
                ok = False
                show_note(self.check_label, str(exc), error=True)
            else:
                ok = True
                what = {"wheel": "A wheel", "folder": "A folder: pip builds it, then installs it",
                        "requirement": "A package name: pip downloads it from the package index"}[kind]
                show_note(self.check_label, f"{what}.  Runs: pip {' '.join(command[command.index('install'):])}")
        self.run_button.setEnabled(ok and not running)
        return ok

    def _choose_wheel(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a plugin wheel", str(Path.home()),
                                              "Wheels (*.whl);;All files (*)")
        if path:
            self.set_source(path)

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a plugin's folder (with pyproject.toml)",
                                                str(Path.home()))
        if path:
            self.set_source(path)

    # ---- running pip -----------------------------------------------------------------------------------------
    def running(self) -> bool:
        return self._job is not None and self.runner.pending()

    def start(self) -> bool:
        """Run pip on the source in the worker thread; False when the source is not usable or pip runs already."""
        if self.running() or not self._check_source():
            return False
        from workbench.plugin_system import installer
        source, mode, options = self.source(), self.mode, dict(self.pip_options)
        lines = self._lines

        def work(job: Job) -> tuple[Any, Any]:
            from workbench.plugin_system import discover
            if mode == INSTALL:
                result = installer.install(source, lines.append, cancelled=lambda: job.cancelled, **options)
            else:
                result = installer.uninstall(source, lines.append, cancelled=lambda: job.cancelled,
                                             **{k: v for k, v in options.items() if k == "python"})
            # the plugins are discovered again here, off the GUI thread (a plugin's import may take a while)
            fresh = discover() if result.ok and result.changed and not result.restart_needed else None
            return result, fresh

        self._was_cancelled = False
        self.log.clear()
        self._lines.clear()
        self.result_label.clear()
        self.log.appendPlainText(f"$ pip {mode} {source}")
        self.progress.show()
        self.cancel_button.setEnabled(True)
        self.run_button.setEnabled(False)
        self.close_button.setEnabled(False)
        self._drain.start()
        self._job = self.runner.submit(work, key="pip", on_result=self._finished, on_error=self._failed,
                                       on_cancelled=self._stopped)
        return True

    def cancel(self) -> None:
        if self._job is not None:
            self._was_cancelled = True
            self._job.cancel()
            self.cancel_button.setEnabled(False)
            show_note(self.result_label, "Stopping pip…")

    def _show_lines(self) -> None:
        while self._lines:
            self.log.appendPlainText(self._lines.popleft())

    def _done(self) -> None:
        self._drain.stop()
        self._show_lines()
        self._job = None
        self.progress.hide()
        self.cancel_button.setEnabled(False)
        self.close_button.setEnabled(True)
        self._check_source()

    def _failed(self, message: str) -> None:
        self._done()
        show_note(self.result_label, f"<b>Not {self.mode}ed:</b> {html.escape(message)}", error=True)

    def _stopped(self) -> None:
        self._done()
        show_note(self.result_label, STOPPED, error=True)

    def _finished(self, answer: tuple[Any, Any]) -> None:
        result, fresh = answer
        self.result = result
        self._done()
        if not result.ok:
            stopped = self._was_cancelled
            show_note(self.result_label, STOPPED if stopped else f"<b>pip failed:</b> {html.escape(result.message)}",
                      error=True)
            return
        text = html.escape(result.message)
        problems: list[str] = []
        if fresh is not None:
            self.registry.update_from(fresh)
            wanted = {normalize(name) for name in result.changed}
            self.loaded = contributions_of(self.registry, result.changed)
            problems = [f.message() for f in self.registry.failures if normalize(f.distribution or "") in wanted]
            self.pluginsChanged.emit()
            if self.mode == INSTALL:
                text = (f"Installed {html.escape(', '.join(result.changed))}; "
                        + (f"loaded now: {html.escape(', '.join(self.loaded))}." if self.loaded
                           else "it registers no plugin contribution."))
            else:
                text = f"Removed {html.escape(', '.join(result.changed))}; its plugins are gone from the window."
        if problems:
            show_note(self.result_label, text + "<br><b>But:</b> " + "<br>".join(html.escape(p) for p in problems),
                      error=True)
        else:
            show_note(self.result_label, text)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if self.running():
            # pip is not left running behind a closed dialog: it is stopped, and the dialog closes once it has
            self.cancel()
            event.ignore()
            return
        # A combo box being destroyed with the dialog emits currentTextChanged: no slot of this half-destroyed
        # dialog may run then (Qt aborts with "pure virtual method called").
        if self.dist_combo is not None:
            self.dist_combo.currentTextChanged.disconnect(self._check_source)
        if self.source_edit is not None:
            self.source_edit.textChanged.disconnect(self._check_source)
        self._drain.stop()
        super().closeEvent(event)


def open_pip_dialog(window: Any, mode: str, distribution: str = "", **options: Any) -> PipDialog:
    """Show the install or uninstall dialog over ``window``, refreshing it when plugins change."""
    dialog = PipDialog(window.registry, mode, window, distribution=distribution, **options)
    dialog.pluginsChanged.connect(functools.partial(refresh_window, window))
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog


def register(views: ViewRegistry) -> None:
    """Plugins ▸ Install Plugin… and Plugins ▸ Uninstall Plugin… (menu entries only: each opens a new dialog)."""
    window = views.window
    views.register_view("pluginInstall", entries=[
        MenuEntry("&Install Plugin…", menu="plugins", name="install",
                  slot=lambda: open_pip_dialog(window, INSTALL),
                  tip="Install a plugin with pip from a wheel, a folder or the package index, and load it"),
        MenuEntry("&Uninstall Plugin…", menu="plugins", name="uninstall",
                  slot=lambda: open_pip_dialog(window, UNINSTALL),
                  tip="Remove an installed plugin distribution with pip"),
    ])
