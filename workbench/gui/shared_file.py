"""The window's file among other writers: the command line, another window, a file synced from elsewhere.

:class:`SharedFile` belongs to the window's :class:`~workbench.gui.file_controller.FileController`.  It

* watches the project's file (a file-system watcher on the file and its folder, and a poll for file systems that
  send no notifications).  When the file changes on disk, it offers **Reload** (the version on disk replaces the
  window's) or **Keep Mine** (save now, as a merge: the runs saved meanwhile are kept, the window's design and
  settings win; :func:`workbench.core.project_merge.merge_projects`).  It never overwrites silently: a Save that
  finds the file changed asks the same question first;
* saves through :func:`workbench.core.project_store.save_shared`, which holds the project's lock while it writes.
  A file another process is writing (``seqwb train`` holds its lock for the whole run) is not saved: the message
  names the holder, and the window keeps its changes (and its autosave);
* asks before replacing a read-only file, as editors do (Replace / Save As / Cancel);
* asks before the data a newly opened file names outside its folder is read (Allow / Don't Allow), remembered per
  file (:mod:`workbench.core.data_access`).

Every question goes through :meth:`SharedFile.choose` (asked while the user saves: it waits for the answer) or
:meth:`SharedFile.ask_later` (the file changed while the user did something else: shown without blocking), which
tests replace.  Nothing here computes model results.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QFileSystemWatcher, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

#: how often the file's fingerprint is compared when no notification came (network shares send none)
POLL_MS = 2000
PROGRAM = "Sequence Workbench window"


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and os.path.realpath(a) == os.path.realpath(b)


class SharedFile(QObject):
    """``SharedFile(files)``: ``files`` is the window's FileController (its ``window``, ``doc``, ``registry``,
    ``runs``, ``replace()``, ``log()``, ``show_message()``)."""

    def __init__(self, files: Any):
        super().__init__(files)
        self.files = files
        self.doc = files.doc
        self.path: str | None = None
        self.known: Any = None               # fingerprint of the version the window read or wrote
        self._dismissed: Any = None          # a version the user answered "Later" for: not asked again
        self._busy = False                   # saving, reloading or asking: the watcher waits
        self._merge_next = False             # the user chose Keep Mine: the next save merges without asking again
        self.watcher = QFileSystemWatcher(self)
        self.watcher.fileChanged.connect(lambda _p: self._soon())
        self.watcher.directoryChanged.connect(lambda _p: self._soon())
        self.poll = QTimer(self)
        self.poll.setInterval(POLL_MS)
        self.poll.timeout.connect(self.check_disk)
        self.track(self.doc.path)

    # ---- which file, which version ---------------------------------------------------------------------------
    def track(self, path: str | None, fingerprint: Any = "now") -> None:
        """The window shows ``path`` as of ``fingerprint`` (by default: the version on disk now)."""
        from workbench.core.project_store import fingerprint as fp
        watched = self.watcher.files() + self.watcher.directories()
        if watched:
            self.watcher.removePaths(watched)
        self.path = str(path) if path else None
        self.known = (fp(path) if fingerprint == "now" else fingerprint) if path else None
        self._dismissed = None
        if self.path is None:
            self.poll.stop()
            return
        # the folder too: an atomic save replaces the file, and a watch on the old file sees only its removal
        self.watcher.addPaths([p for p in (self.path, str(Path(self.path).resolve().parent)) if os.path.exists(p)])
        self.poll.start()

    def dismiss_current(self) -> None:
        """Do not offer Reload / Keep Mine for the version on disk now (a restored copy: Save asks instead)."""
        from workbench.core.project_store import fingerprint
        self._dismissed = fingerprint(self.path) if self.path else None

    def _soon(self) -> None:
        QTimer.singleShot(200, self, self.check_disk)     # let a burst of events (a save: create, rename) settle

    def check_disk(self) -> bool:
        """Compare the file on disk with the version the window has; offer Reload / Keep Mine when it changed.
        Returns True when it had changed."""
        from workbench.core.project_store import fingerprint
        if self._busy or self.path is None or self.known is None:
            return False
        now = fingerprint(self.path)
        if now == self.known or now == self._dismissed:
            return False
        if now is None:
            self.files.log(f"{self.path} was removed or moved on disk; Save writes it again", "error")
            self._dismissed = now
            return True
        if self.path not in self.watcher.files():
            self.watcher.addPath(self.path)        # the replaced file is a new one: watch it again
        self.offer_reload_or_merge(now)
        return True

    # ---- the questions ---------------------------------------------------------------------------------------
    def _question(self, title: str, text: str, options: list[tuple[str, str]], default: str
                  ) -> tuple[QMessageBox, Callable[[], str]]:
        """A question box with one button per ``(key, label)`` (the last one is Escape's), and a function that
        tells which key was chosen once it is answered."""
        box = QMessageBox(QMessageBox.Icon.Question, title, text, parent=self.files.window)
        buttons = {}
        for key, label in options:
            role = QMessageBox.ButtonRole.RejectRole if key == options[-1][0] else QMessageBox.ButtonRole.AcceptRole
            buttons[box.addButton(label, role)] = key
            if key == default:
                box.setDefaultButton(list(buttons)[-1])
        box.setEscapeButton(list(buttons)[-1])
        return box, lambda: buttons.get(box.clickedButton(), options[-1][0])

    def choose(self, title: str, text: str, options: list[tuple[str, str]], default: str) -> str:
        """Ask ``text`` with one button per ``(key, label)``; returns the key chosen (the last option's on
        Escape).  Tests replace this method."""
        box, chosen = self._question(title, text, options, default)
        box.exec()
        return chosen()

    def ask_later(self, title: str, text: str, options: list[tuple[str, str]], default: str,
                  then: Callable[[str], Any]) -> None:
        """As :meth:`choose`, but without waiting: the question is shown over the window (window-modal, not
        blocking the event loop: the file changed while the user was doing something else) and ``then(key)`` runs
        when it is answered.  Tests replace this method."""
        box, chosen = self._question(title, text, options, default)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _code: then(chosen()))
        box.open()

    def _holder_text(self) -> str:
        from workbench.core.projectfile.lock import read_holder
        holder = read_holder(self.path) if self.path else None
        return f" ({holder.describe()} is writing it now)" if holder is not None else ""

    def offer_reload_or_merge(self, now: Any) -> None:
        name = Path(str(self.path)).name
        unsaved = "\n\nThe window has unsaved changes: Reload discards them." if self.doc.is_modified() else ""
        self._busy = True          # one question at a time; the watcher waits for the answer
        self.ask_later(
            "File changed on disk",
            f"{name} was changed on disk by another program{self._holder_text()}.\n\nReload shows the version "
            f"on disk. Keep Mine saves the window's version now, as a merge: the runs saved meanwhile are kept."
            f"{unsaved}",
            [("reload", "Reload"), ("keep", "Keep Mine"), ("later", "Later")], "keep",
            lambda choice: self._answered(choice, now))

    def _answered(self, choice: str, now: Any) -> None:
        self._busy = False
        if choice == "reload":
            self.reload()
        elif choice == "keep":
            self._merge_next = True
            try:
                self.files.save()
            finally:
                self._merge_next = False
        else:
            self._dismissed = now      # asked again at the next change, and by Save

    def reload(self) -> bool:
        """Replace the window's project with the version on disk (a live run is stopped first, after asking)."""
        from workbench.core.project_store import open_shared
        from workbench.schema.errors import WorkbenchError
        if self.path is None or not self.files.runs.stop_run_first():
            return False
        path = self.path
        self._busy = True
        QApplication.setOverrideCursor(_wait_cursor())
        try:
            opened = open_shared(path, registry=self.files.registry)
        except (WorkbenchError, OSError, ValueError) as exc:
            QApplication.restoreOverrideCursor()
            self._busy = False
            QMessageBox.warning(self.files.window, "Cannot reload", f"{exc}\n\nThe window keeps its version.")
            return False
        QApplication.restoreOverrideCursor()
        self._busy = False
        self.files.replace(opened.project, path)
        self.track(path, opened.fingerprint)
        self.guard_outside_data(opened.project, path)
        self.files.show_message(f"Reloaded {path}")
        return True

    def guard_outside_data(self, project: Any, path: str | None) -> bool:
        """A project from ``path`` was opened: ask before the data it names outside its folder is read.  Returns
        True when nothing is held back."""
        from workbench.core.data_access import confirm, guard_file
        if not path:
            return True
        guarded = guard_file(project, self.files.registry, path)
        if not guarded.pending:
            return True
        listed = "\n".join(f"  {o.describe()}" for o in guarded.pending)
        choice = self.choose(
            "Data outside the project's folder",
            f"{Path(path).name} reads data outside its folder:\n\n{listed}\n\nA project received from someone else "
            f"can name any file here (a key, a password file); training would put its text into the model and the "
            f"file. Allow reading it for this file? (Remembered for this file.)",
            [("allow", "Allow"), ("deny", "Don't Allow")], "deny")
        if choice == "allow":
            confirm(path, guarded.pending)
            self.files.log(f"Reading data outside the project's folder, as allowed for {Path(path).name}: "
                           + "; ".join(o.describe() for o in guarded.pending))
            return True
        self.files.log(f"Not reading data outside the project's folder ({'; '.join(o.key for o in guarded.pending)}):"
                       f" training and the data preview say so until the path is changed or the file is opened "
                       f"again and allowed", "error")
        return False

    # ---- saving ----------------------------------------------------------------------------------------------
    def save(self, path: str) -> bool:
        """Write the window's project to ``path`` among other writers (see the module docstring); True when
        saved.  Failures are shown; the window's project is never lost."""
        from workbench.core.project_store import FileChangedError, save_shared
        from workbench.core.projectfile import ReadOnlyProjectError, project_plugins_used
        from workbench.core.projectfile.lock import ProjectLockedError
        from workbench.schema.errors import WorkbenchError
        window = self.files.window
        project = self.doc.project
        same_file = _same(path, self.path)
        on_change = "merge" if self._merge_next else "raise"
        overwrite_read_only = False
        self._busy = True
        try:
            while True:
                QApplication.setOverrideCursor(_wait_cursor())
                try:
                    saved = save_shared(project, path, known=self.known if same_file else None,
                                        plugins_used=project_plugins_used(project, self.files.registry),
                                        program=PROGRAM, on_change=on_change, registry=self.files.registry,
                                        overwrite_read_only=overwrite_read_only)
                except FileChangedError:
                    QApplication.restoreOverrideCursor()
                    choice = self.choose(
                        "File changed on disk",
                        f"{Path(path).name} was changed on disk since the window read it{self._holder_text()}."
                        f"\n\nKeep Mine saves the window's version as a merge: the runs saved meanwhile are kept. "
                        f"Reload shows the version on disk (the window's unsaved changes are discarded).",
                        [("keep", "Keep Mine"), ("reload", "Reload"), ("cancel", "Cancel")], "keep")
                    if choice == "keep":
                        on_change = "merge"
                        continue
                    if choice == "reload":
                        self._busy = False
                        self.reload()
                    return False
                except ReadOnlyProjectError:
                    QApplication.restoreOverrideCursor()
                    choice = self.choose(
                        "Read-only file", f"{Path(path).name} is read-only.\n\nReplace it anyway (it stays "
                                          f"read-only), or save under another name?",
                        [("replace", "Replace"), ("save_as", "Save As…"), ("cancel", "Cancel")], "save_as")
                    if choice == "replace":
                        overwrite_read_only = True
                        continue
                    if choice == "save_as":
                        self._busy = False
                        return bool(self.files.save_as())
                    return False
                except ProjectLockedError as exc:
                    QApplication.restoreOverrideCursor()
                    QMessageBox.warning(window, "File in use",
                                        f"{exc}.\n\nThe window's project was not saved; it keeps your changes (and "
                                        f"its autosave). Save again when that has finished (the window then offers "
                                        f"to merge), or Save As another file.")
                    return False
                except (WorkbenchError, OSError, ValueError, TypeError) as exc:
                    QApplication.restoreOverrideCursor()
                    QMessageBox.warning(window, "Cannot save project", str(exc))
                    return False
                QApplication.restoreOverrideCursor()
                break
        finally:
            self._busy = False
        for note in saved.notes:
            self.files.log(note)
        if saved.merge is not None and saved.merge.changed:
            # runs came into the history (and perhaps a newer checkpoint): the views of the history read it again
            self.doc.runsDeleted.emit()
            self.doc.graphChanged.emit()
        self.track(path, saved.fingerprint)
        return True


def _wait_cursor() -> Any:
    return Qt.CursorShape.WaitCursor
