"""Files from the main window: File ▸ New (empty, or from a template), Open, Open Recent, Save, Save As and Close, the question
about unsaved changes, and the window's title (the project, its file, modified or not).

One :class:`~workbench.gui.document.ProjectDocument` lives as long as the window; opening another file replaces
the project inside it (``replace_project``), so the undo actions, the canvas and the docks stay connected to the
same object.  A live run is stopped (after asking) and merged before another project replaces the one it trains.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, Qt, Signal
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


#: what opening a file in the background goes through, as its progress says
_OPEN_STAGES = ("starting PyTorch, which reads the weights", "reading the file")


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

    #: a file opened by :meth:`open_in_background` is in the window (True) or could not be read (False)
    opened = Signal(bool)

    def __init__(self, window: Any, runs: Any, recovery: Any, untitled_kind: str = ""):
        super().__init__(window)
        self.loading_path: str | None = None      # the file being read in the background (open_in_background)
        self._loader: Any = None
        self.window = window
        self.doc = window.doc
        self.registry = window.registry
        self.runs = runs
        self.recovery = recovery
        self.untitled_kind = untitled_kind
        SK = QKeySequence.StandardKey
        SP = QStyle.StandardPixmap
        self.act_new = make_action(window, "&New…", self.new_from_template, shortcut=SK.New,
                                   tip="Start a new project: an empty one, or from a template",
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
        from workbench.gui.shared_file import SharedFile
        # the file among other writers: watched, saved under its lock, merged, read-only and outside data asked
        self.shared = SharedFile(self)
        if recovery is not None:
            recovery.disk_version = lambda: self.shared.known     # kept with each autosaved copy

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
        if self.loading_path:
            return f"Opening {Path(self.loading_path).name}…[*] — Sequence Workbench"
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
        if self.is_loading():
            self.show_message(f"{Path(str(self.loading_path)).name} is still being opened; wait for it first")
            return False
        return self.runs.stop_run_first() and self.maybe_save()

    def replace(self, project: Any, path: str | None, untitled_kind: str = "") -> None:
        """Put ``project`` (from ``path``, or unsaved: ``untitled_kind``) in the window, without asking."""
        self.untitled_kind = untitled_kind
        # a project from a template or an empty one has the name it was given, not one anybody chose
        self.doc.replace_project(project, path, auto_name=project.name if untitled_kind in ("default", "new")
                                 else None)
        self.shared.track(path)
        self.window.update_title()
        self.runs.update_actions()
        self.window.restore_view_state()

    def restore_project(self, project: Any, path: str | None, disk_version: Any = None) -> None:
        """A recovered copy: in the window, marked modified, with the path of the file it came from (Save writes
        there; without one, Save asks for a name).  ``disk_version``: the fingerprint of the file the copy was
        based on; if the file changed since, Save offers to merge rather than overwrite what was saved meanwhile."""
        self.replace(project, path, "" if path else "new")
        if path:
            self.shared.track(path, disk_version)
            self.shared.dismiss_current()       # a copy based on an older version: Save asks to merge
            self.shared.guard_outside_data(project, path)
        self.doc.auto_name = None             # whoever named the project before the crash, it keeps that name
        self.doc.undo_stack.resetClean()      # restored, not saved: the title says modified and closing asks
        self.window.update_title()

    # ---- File ▸ ... --------------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open project", self._last_dir(), FILE_FILTER)
        if path:
            self.open_path(path)

    def announce_open(self, path: str) -> str:
        """Say that ``path`` is being opened (title, status bar, canvas) before anything reads it; returns the
        label the progress uses.  ``seqwb FILE`` calls it before the window's first paint."""
        size = Path(path).stat().st_size if Path(path).exists() else 0
        label = f"{Path(path).name}" + (f" ({size / 1e6:.1f} MB)" if size >= 100_000 else "")
        self.loading_path = str(path)
        self.window.update_title()
        self.window.set_loading(f"Opening {label}: {_OPEN_STAGES[0]}…", 0, len(_OPEN_STAGES))
        return label

    def open_in_background(self, path: str, then: Optional[Callable[[], Any]] = None) -> None:
        """Open ``path`` in a window that has painted already (``seqwb FILE``): the file is read in a worker thread
        (with its tensors, which need PyTorch: seconds for a file with weights) while the status bar and the canvas
        say what is happening; the window's parts are disabled until it is in.  A file that cannot be read leaves
        the window on the default project with the reason shown.  ``then()`` runs afterwards either way, and
        ``opened`` says how it went."""
        from workbench.gui.jobs import JobRunner
        if self._loader is None:
            self._loader = JobRunner("open project", self, thread_name="seqwb-open")
        registry = self.registry
        label = self.announce_open(path)
        stages = _OPEN_STAGES
        started = time.perf_counter()

        def read(job: Any) -> dict[str, Any]:
            from workbench.core.project_store import open_shared
            from workbench.schema.errors import MissingPluginError, WorkbenchError
            if _has_tensors(path):
                import torch  # noqa: F401 - the longest part of reading a file with weights; said as a stage
            job.report(1, len(stages))
            try:
                opened = open_shared(path, registry=registry)      # tidies what crashed saves left first
                return {"project": opened.project, "version": opened.fingerprint, "tidied": opened.tidied.notes()}
            except MissingPluginError as exc:
                return {"error": str(exc), "missing": True}
            except (WorkbenchError, OSError, ValueError) as exc:
                return {"error": str(exc), "missing": False}

        def progress(done: int, total: int) -> None:
            self.window.set_loading(f"Opening {label}: {stages[min(done, total - 1)]}…", done, total)

        def finish(result: dict[str, Any]) -> None:
            self.loading_path = None
            self.window.set_loading(None)
            project = result.get("project")
            if project is not None:
                self.replace(project, str(path))
                self.shared.track(str(path), result.get("version"))
                for text in result.get("tidied", ()):
                    self.log(text)
                add_recent_file(str(path))
                self.show_message(f"Opened {path} in {time.perf_counter() - started:.1f} s")
                self.shared.guard_outside_data(project, str(path))
            else:
                self.replace(default_project(self.registry), None, "default")
                if not Path(path).exists():
                    forget_recent_file(path)
                title = "A plugin is missing" if result.get("missing") else "Cannot open project"
                QMessageBox.warning(self.window, title, f"{result['error']}\n\nThe window shows the default "
                                                        f"project instead.")
            self.opened.emit(project is not None)
            if then is not None:
                then()

        def failed(message: str) -> None:
            finish({"error": message, "missing": False})

        self._loader.submit(read, key="open", on_result=finish, on_error=failed, on_progress=progress)

    def is_loading(self) -> bool:
        return self.loading_path is not None

    def open_path(self, path: str) -> bool:
        """Open ``path`` in this window; on any error the message is shown and the current project stays."""
        if not self.may_replace_project():
            return False
        from workbench.core.project_store import open_shared
        from workbench.schema.errors import MissingPluginError, WorkbenchError
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            opened = open_shared(path, registry=self.registry)      # tidies what crashed saves left first
            project = opened.project
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
        self.shared.track(str(path), opened.fingerprint)
        for text in opened.tidied.notes():
            self.log(text)
        add_recent_file(str(path))
        self.show_message(f"Opened {path}")
        self.shared.guard_outside_data(project, str(path))
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
        """Write the project to ``path``; it becomes the project's file.  A project whose name nobody chose (a
        template's, "untitled") is named after the file first, as one undoable rename.  Among other writers
        (:class:`~workbench.gui.shared_file.SharedFile`): a file changed on disk is merged or reloaded (asked), a
        file another process writes is not touched, a read-only file is replaced only if the user says so."""
        from workbench.core.data_access import remember_users_paths
        self.window.inspector.commit_pending()
        if self.doc.has_automatic_name() and Path(path).stem:
            self.doc.set_setting("name", "name", Path(path).stem)
        if Path(path).resolve() != (Path(self.doc.path).resolve() if self.doc.path else None):
            self._make_data_paths_relative(path)
        self.window.keep_view_state()
        if not self.shared.save(str(path)):
            return False
        remember_users_paths(self.doc.project, self.registry, path)    # the paths the user chose: not asked again
        self.doc.path = str(path)
        self.doc.auto_name = None
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
        if dialog.template_id() is None:
            self.show_message("New empty project: drag a task from the palette's Tasks onto the canvas, then wire "
                              "blocks between its input and output")
        else:
            self.show_message(f"New project from the template {dialog.template_id()!r}; Save asks for a file name")
        return True

    def _last_dir(self) -> str:
        """Where a file dialog starts: the project's folder; for a project without a file, the folder of the data
        it reads (the user's work is there), else that of the last file opened, else the home folder."""
        if self.doc.path:
            return str(Path(self.doc.path).resolve().parent)
        data = self._data_paths()
        if data:
            return str(Path(next(iter(data.values()))).parent)
        recent = recent_files()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    def _data_paths(self) -> dict[str, str]:
        """The task's file settings (``ui="path"``) that hold an absolute path: a project without a file can only
        name its data that way (the file picker makes a path relative to the project's folder once there is one)."""
        from workbench.schema.params import field_info
        spec = self.doc.task_spec()
        if spec is None:
            return {}
        params = self.doc.project.task.params
        return {f.name: str(params[f.name]) for f in field_info(spec.params)
                if f.ui == "path" and isinstance(params.get(f.name), str) and params[f.name]
                and Path(params[f.name]).is_absolute()}

    def _make_data_paths_relative(self, target: str) -> None:
        """Before a project is first saved: its data files in the target's folder (or below it) are named relative
        to the project file, so the folder can be moved whole (one undoable edit per path)."""
        folder = Path(target).resolve().parent
        for name, value in self._data_paths().items():
            try:
                relative = Path(value).resolve().relative_to(folder)
            except ValueError:
                continue            # elsewhere on the disk: the absolute path stays
            self.doc.set_setting("task", name, relative.as_posix())

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


def _has_tensors(path: str) -> bool:
    """Whether the project file holds tensors (weights, history): reading those needs PyTorch."""
    import zipfile
    if not Path(path).is_file():
        return False        # a pipe would block here for ever; reading the file says what it is
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith(".safetensors") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-]+", "-", name).strip("-").lower() or "project"
