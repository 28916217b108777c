"""Files from the main window: File ▸ New from Template, Open, Open Recent, Save, Save As and Close, the question
about unsaved changes, and the window's title (the project, its file, modified or not).

One :class:`~workbench.gui.document.ProjectDocument` lives as long as the window; opening another file replaces
the project inside it (``replace_project``), so the undo actions, the canvas and the docks stay connected to the
same object.  A live run is stopped (after asking) and merged before another project replaces the one it trains.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QFileDialog, QMenu, QMessageBox, QStyle, QWidget

from workbench.gui.actions import make_action, theme_icon
from workbench.gui.app_settings import add_recent_file, forget_recent_file, recent_files, set_recent_files

FILE_FILTER = "Sequence Workbench projects (*.seqwb)"


def default_project(registry: Any) -> Any:
    """The embedded default project: the char-LM template on the Python standard library's source."""
    from workbench.core.settings import template_project
    project, _ = template_project(registry.template("char-lm"), {}, registry)
    return project


class FileController(QObject):
    """``FileController(window, runs, recovery, untitled_kind)``: the File actions (``act_new``, ``act_open``,
    ``act_save``, ``act_save_as``, ``act_close``) and ``recent_menu``, for the window to place.

    ``untitled_kind`` says what an unsaved project is: ``"default"`` (the embedded default project), ``"new"``
    (from a template) or ``""`` (it has a file).  Of the window it uses ``doc``, ``registry``, ``inspector``,
    ``keep_view_state()`` / ``restore_view_state()`` (the canvas and inspector layout, saved with the project),
    ``update_title()``, ``log()`` and ``show_message()``; of ``runs`` (the
    :class:`~workbench.gui.run_controller.RunController`) ``stop_run_first()`` and ``update_actions()``.  It is
    what :func:`workbench.gui.recovery.offer_recovery` restores a copy through (a
    :class:`~workbench.gui.recovery.RecoveryHost`)."""

    def __init__(self, window: Any, runs: Any, recovery: Any, untitled_kind: str = ""):
        super().__init__(window)
        self.window = window
        self.doc = window.doc
        self.registry = window.registry
        self.runs = runs
        self.recovery = recovery
        self.untitled_kind = untitled_kind
        SK = QKeySequence.StandardKey
        SP = QStyle.StandardPixmap
        self.act_new = make_action(window, "&New from Template…", self.new_from_template, shortcut=SK.New,
                                   tip="Start a new project from a template",
                                   icon=theme_icon("document-new", SP.SP_FileIcon))
        self.act_open = make_action(window, "&Open…", self.open_dialog, shortcut=SK.Open, tip="Open a project file",
                                    icon=theme_icon("document-open", SP.SP_DialogOpenButton))
        self.act_save = make_action(window, "&Save", self.save, shortcut=SK.Save, tip="Save the project",
                                    icon=theme_icon("document-save", SP.SP_DialogSaveButton))
        self.act_save_as = make_action(window, "Save &As…", self.save_as, shortcut=SK.SaveAs,
                                       tip="Save the project under another name")
        self.act_close = make_action(window, "&Close", self.close_project, shortcut=SK.Close,
                                     tip="Close the project (the window goes back to the default project)")
        self.recent_menu = QMenu("Open &Recent", window)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._fill_recent_menu()

    @property
    def dialog_parent(self) -> QWidget:
        return self.window

    def log(self, text: str, kind: str = "info") -> None:
        self.window.log(text, kind)

    def show_message(self, text: str, timeout_ms: int = 6000) -> None:
        self.window.show_message(text, timeout_ms)

    # ---- the title ---------------------------------------------------------------------------------------
    def title(self) -> str:
        """``<project> — <file, or that it is not saved>[*] — Sequence Workbench`` (``[*]``: where Qt shows that
        the window is modified)."""
        path = self.doc.path
        if path:
            where = Path(path).name
        elif self.untitled_kind == "default":
            where = "default project, not saved"
        else:
            where = "not saved"
        return f"{self.doc.project.name} — {where}[*] — Sequence Workbench"

    # ---- before the project goes -------------------------------------------------------------------------
    def maybe_save(self) -> bool:
        """Ask Save / Discard / Cancel when there are unsaved changes; True when it is fine to go on."""
        self.window.inspector.commit_pending()
        if not self.doc.is_modified():
            return True
        where = Path(self.doc.path).name if self.doc.path else "this project"
        answer = QMessageBox.question(
            self.window, "Unsaved changes",
            f"“{self.doc.project.name}” ({where}) has unsaved changes.\nSave them before going on?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def may_replace_project(self) -> bool:
        """A live run stopped (after asking) and unsaved changes saved or discarded: False when the user chose
        to keep either."""
        return self.runs.stop_run_first() and self.maybe_save()

    def replace(self, project: Any, path: str | None, untitled_kind: str = "") -> None:
        """Put ``project`` (from ``path``, or unsaved: ``untitled_kind``) in the window, without asking."""
        self.untitled_kind = untitled_kind
        self.doc.replace_project(project, path)
        self.window.update_title()
        self.runs.update_actions()
        self.window.restore_view_state()

    def restore_project(self, project: Any, path: str | None) -> None:
        """A recovered copy: in the window, marked modified, with the path of the file it came from (Save writes
        there; without one, Save asks for a name)."""
        self.replace(project, path, "" if path else "new")
        self.doc.undo_stack.resetClean()      # restored, not saved: the title says modified and closing asks
        self.window.update_title()

    # ---- File ▸ ... --------------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open project", self._last_dir(), FILE_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str) -> bool:
        """Open ``path`` in this window; on any error the message is shown and the current project stays."""
        if not self.may_replace_project():
            return False
        from workbench.core.projectfile import load_project
        from workbench.schema.errors import MissingPluginError, WorkbenchError
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            project = load_project(path, registry=self.registry)
        except MissingPluginError as exc:
            QApplication.restoreOverrideCursor()
            QMessageBox.warning(self.window, "A plugin is missing",
                                f"{exc}\n\nNothing was opened. Install the plugin, then open the file again "
                                f"(Plugins ▸ Plugin Manager lists what is installed).")
            return False
        except (WorkbenchError, OSError, ValueError) as exc:
            QApplication.restoreOverrideCursor()
            if not Path(path).exists():
                forget_recent_file(path)   # a recent file that has gone stays gone
            QMessageBox.warning(self.window, "Cannot open project", str(exc))
            return False
        QApplication.restoreOverrideCursor()
        self.replace(project, str(path))
        add_recent_file(str(path))
        self.show_message(f"Opened {path}")
        return True

    def save(self) -> bool:
        if not self.doc.path:
            return self.save_as()
        return self.save_to(self.doc.path)

    def save_as(self) -> bool:
        start = self.doc.path or str(Path(self._last_dir()) / f"{_slug(self.doc.project.name)}.seqwb")
        path, _ = QFileDialog.getSaveFileName(self.window, "Save project as", start, FILE_FILTER)
        if not path:
            return False
        if not path.endswith(".seqwb"):
            path += ".seqwb"
            if Path(path).exists():
                answer = QMessageBox.question(self.window, "Replace file?", f"{path} exists already. Replace it?",
                                              QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                              QMessageBox.StandardButton.Cancel)
                if answer != QMessageBox.StandardButton.Yes:
                    return False
        return self.save_to(path)

    def save_to(self, path: str) -> bool:
        """Write the project to ``path`` (no questions); it becomes the project's file."""
        from workbench.core.projectfile import project_plugins_used, save_project
        from workbench.schema.errors import WorkbenchError
        self.window.inspector.commit_pending()
        project = self.doc.project
        self.window.keep_view_state()
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            save_project(project, path, plugins_used=project_plugins_used(project, self.registry))
        except (WorkbenchError, OSError, ValueError, TypeError) as exc:
            QApplication.restoreOverrideCursor()
            QMessageBox.warning(self.window, "Cannot save project", f"Could not save to {path}:\n{exc}")
            return False
        QApplication.restoreOverrideCursor()
        self.doc.path = str(path)
        self.untitled_kind = ""
        self.doc.undo_stack.setClean()
        add_recent_file(str(path))
        self.window.update_title()
        self.show_message(f"Saved {path}")
        return True

    def close_project(self) -> bool:
        """File ▸ Close: back to the embedded default project."""
        if not self.may_replace_project():
            return False
        self.replace(default_project(self.registry), None, "default")
        return True

    def new_from_template(self) -> bool:
        if not self.may_replace_project():
            return False
        from workbench.gui.new_project import NewFromTemplateDialog
        dialog = NewFromTemplateDialog(self.registry, self.window)
        if dialog.exec() != NewFromTemplateDialog.DialogCode.Accepted or dialog.project is None:
            return False
        self.replace(dialog.project, None, "new")
        self.show_message(f"New project from the template {dialog.template_id()!r}; Save asks for a file name")
        return True

    def _last_dir(self) -> str:
        if self.doc.path:
            return str(Path(self.doc.path).resolve().parent)
        recent = recent_files()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    # ---- recent files ------------------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        return recent_files()

    def add_recent(self, path: str) -> None:
        add_recent_file(path)

    def _fill_recent_menu(self) -> None:
        menu = self.recent_menu
        menu.clear()
        files = recent_files()
        for i, path in enumerate(files):
            label = f"&{i + 1} {Path(path).name}" if i < 9 else Path(path).name
            act = menu.addAction(label)
            act.setToolTip(path)
            act.setStatusTip(path)
            act.triggered.connect(lambda _c=False, p=path: self.open_path(p))
        if files:
            menu.addSeparator()
            menu.addAction("Clear Recent Files", lambda: set_recent_files([]))
        else:
            empty = menu.addAction("No recent files")
            empty.setEnabled(False)
        menu.setToolTipsVisible(True)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-]+", "-", name).strip("-").lower() or "project"
