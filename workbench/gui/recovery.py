"""Autosave and crash recovery for the main window.

While the project in a window has unsaved changes, a :class:`RecoveryManager` writes a copy of it (a normal
project file) to the per-user recovery folder every few minutes and after each training checkpoint.  The user's
own file is never touched.  A save, a clean close, or replacing the project (after the user answered Save or
Discard) removes the copy.  So a copy that is still there when the app starts means a window ended without
closing: a crash, a kill, a power cut.  :func:`offer_recovery` then lists those copies (original path, time, what
they hold) and offers Restore / Discard / Later.  A restored project is marked modified, and Save writes it to its
original path (or asks for one, Save As, if it never had one).

Files, per document (a random id, so two windows or two processes never write the same files)::

    <recovery folder>/<id>.seqwb   the project (written atomically by workbench.core.projectfile.save_project)
    <recovery folder>/<id>.json    what it is: original path, project name, time, contents (written after it)
    <recovery folder>/<id>.lock    locked (flock / msvcrt) by the process whose window owns the id

The lock tells a live window's copy (skip it) from an orphan (offer it): the operating system drops the lock when
the process dies, however it dies.  The recovery folder is ``$SEQWB_RECOVERY_DIR`` when set (tests and
benchmarks), else ``QStandardPaths.AppDataLocation / "recovery"``.

Writing happens in a worker thread (a :class:`~workbench.gui.jobs.JobRunner`) on a snapshot of the project taken
in the GUI thread (the checkpoint's tensors are shared: a run replaces them, never changes them).  Offering and
restoring copies goes through a :class:`RecoveryHost`, the window's file controller.  Nothing here computes model
results.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

from PySide6.QtCore import QObject, QStandardPaths, QTimer, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout,
                               QWidget)

from workbench import __version__
from workbench.atomic import atomic_write
from workbench.gui.app_settings import app_settings
from workbench.gui.jobs import JobRunner

RECOVERY_ENV = "SEQWB_RECOVERY_DIR"
META_FORMAT = "seqwb-recovery"
META_VERSION = 1
#: autosave interval while there are unsaved changes (settings key ``recovery/intervalSeconds`` overrides it)
DEFAULT_INTERVAL_S = 180
MIN_INTERVAL_S = 5


def recovery_dir() -> Path:
    """The per-user recovery folder (not created here)."""
    env = os.environ.get(RECOVERY_ENV)
    if env:
        return Path(env)
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    if not base:
        base = str(Path.home() / ".local" / "share" / "sequence-workbench")
    return Path(base) / "recovery"


def configured_interval_s() -> float:
    """``recovery/intervalSeconds`` from the app's settings, else :data:`DEFAULT_INTERVAL_S`."""
    value = app_settings().value("recovery/intervalSeconds", DEFAULT_INTERVAL_S)
    try:
        return max(float(MIN_INTERVAL_S), float(value))
    except (TypeError, ValueError):
        return float(DEFAULT_INTERVAL_S)


# ---- the lock that says "a live window owns this id" -------------------------------------------------------------

class DocumentLock:
    """An exclusive, non-blocking lock on ``<id>.lock``, held by an open file until :meth:`release`.  The
    operating system releases it when the process ends, so a crashed window's lock is free again."""

    def __init__(self, path: Path):
        self.path = path
        self._fh: Any = None

    def try_acquire(self) -> bool:
        if self._fh is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+b")       # noqa: SIM115 - kept open: the open file is the lock
        try:
            if os.name == "nt":
                import msvcrt
                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        self._fh = fh
        return True

    @property
    def held(self) -> bool:
        return self._fh is not None

    def release(self, remove: bool = False) -> None:
        if self._fh is None:
            return
        if remove:      # while still holding it, so nobody locks a file that is about to go
            with contextlib.suppress(OSError):
                self.path.unlink()
        with contextlib.suppress(OSError):
            self._fh.close()
        self._fh = None


# ---- what is in the folder -------------------------------------------------------------------------------------------

@dataclass
class RecoveryEntry:
    """One recovery copy left by a window that did not close."""

    id: str
    folder: Path
    original_path: Optional[str]
    name: str
    saved_at: float          # time.time() of the write
    contents: str
    pid: int = 0
    host: str = ""
    #: the fingerprint of the original file the copy's project was read from (None: unknown, or never saved)
    disk_version: Optional[tuple] = None

    @property
    def data_path(self) -> Path:
        return self.folder / f"{self.id}.seqwb"

    @property
    def meta_path(self) -> Path:
        return self.folder / f"{self.id}.json"

    @property
    def lock_path(self) -> Path:
        return self.folder / f"{self.id}.lock"

    def saved_text(self) -> str:
        return _dt.datetime.fromtimestamp(self.saved_at).strftime("%Y-%m-%d %H:%M:%S")

    def original_text(self) -> str:
        if not self.original_path:
            return "never saved (untitled)"
        return self.original_path + (" (changed on disk since: Save merges)" if self.file_changed_since() else "")

    def file_changed_since(self) -> bool:
        """Whether the original file was saved again after the window read it (by another program): restoring
        the copy then offers a merge on Save, so what was saved meanwhile is kept too."""
        from workbench.core.project_store import fingerprint
        return bool(self.original_path and self.disk_version is not None
                    and fingerprint(self.original_path) != self.disk_version)


def describe_contents(project: Any) -> str:
    """What a copy holds, in words: task, blocks, runs, trained weights."""
    runs = len(project.history.runs)
    ckpt = project.checkpoint
    parts = [f"task {project.task.id}", f"{len(project.graph.nodes)} blocks", f"{runs} run{'s' if runs != 1 else ''}"]
    parts.append(f"weights at step {ckpt.step}" if ckpt is not None and ckpt.weights else "no trained weights")
    return ", ".join(parts)


def _entry_from_meta(meta_path: Path) -> Optional[RecoveryEntry]:
    try:
        doc = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != META_FORMAT:
        return None
    rid = meta_path.stem
    original = doc.get("original_path")
    try:
        return RecoveryEntry(id=rid, folder=meta_path.parent,
                             original_path=str(original) if isinstance(original, str) and original else None,
                             name=str(doc.get("name") or "(unnamed)"), saved_at=float(doc.get("saved_at") or 0.0),
                             contents=str(doc.get("contents") or ""), pid=int(doc.get("pid") or 0),
                             host=str(doc.get("host") or ""), disk_version=_version(doc.get("disk_version")))
    except (TypeError, ValueError):
        return None


def _version(value: Any) -> Optional[tuple]:
    return tuple(value) if isinstance(value, list) and len(value) == 4 and all(
        isinstance(v, int) for v in value) else None


def find_orphans(folder: Path | None = None) -> list[tuple[RecoveryEntry, DocumentLock]]:
    """Recovery copies whose window is gone, newest first, each with its lock *held* by the caller (so another
    window starting at the same moment does not offer the same copy); release the locks when done."""
    folder = folder or recovery_dir()
    if not folder.is_dir():
        return []
    found = []
    for meta in sorted(folder.glob("*.json")):
        entry = _entry_from_meta(meta)
        if entry is None or not entry.data_path.is_file():
            continue          # not ours, unreadable, or a write that never finished: left alone
        lock = DocumentLock(entry.lock_path)
        if not lock.try_acquire():
            continue          # a live window (in this process or another) owns it
        found.append((entry, lock))
    for stray in folder.glob("*.lock"):     # a window that ended before its first copy was written: tidy up
        if stray.with_suffix(".json").exists() or stray.with_suffix(".seqwb").exists():
            continue
        lock = DocumentLock(stray)
        with contextlib.suppress(OSError):
            if lock.try_acquire():
                lock.release(remove=True)
    found.sort(key=lambda pair: pair[0].saved_at, reverse=True)
    return found


def remove_entry_files(entry: RecoveryEntry, lock: DocumentLock | None) -> None:
    """Remove a copy: its description first (so a half-removed copy is never offered), then the data."""
    for path in (entry.meta_path, entry.data_path):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    if lock is not None:
        lock.release(remove=True)


def _describe(exc: BaseException) -> str:
    # the whole message: a write fails for reasons of the disk, which take more than a line to say
    return str(exc) if str(exc) else f"{type(exc).__name__}: {exc}"


# ---- one window's autosave -------------------------------------------------------------------------------------

class RecoveryManager(QObject):
    """Autosaves a window's document while it has unsaved changes; removes the copy when it is saved, replaced
    or the window closes cleanly.  ``saved(path)`` / ``failed(message)`` come in the GUI thread.

    ``RecoveryManager(doc, registry, bridge=..., log=..., show_message=..., parent=...)``: with the window's run
    ``bridge`` it also writes after each training checkpoint; a failure is reported once (until a write succeeds
    again) through ``log(text, "error")`` and ``show_message(text, ms)``."""

    saved = Signal(str)
    failed = Signal(str)

    def __init__(self, doc: Any, registry: Any, *, bridge: Any = None,
                 log: Optional[Callable[[str, str], Any]] = None,
                 show_message: Optional[Callable[[str, int], Any]] = None, parent: QObject | None = None,
                 interval_s: float | None = None, folder: Path | None = None):
        super().__init__(parent)
        self.doc = doc
        self.registry = registry
        self._log = log
        self._show_message = show_message
        self.folder = Path(folder) if folder is not None else recovery_dir()
        self.id = uuid.uuid4().hex
        self._lock = DocumentLock(self._path(".lock"))
        self._io = threading.Lock()         # a write and a removal never overlap
        self._generation = 0                # bumped by every removal: a write of an older generation is dropped
        self._writing = False
        self._again = False
        self._reported_failure = False
        self.writes = 0
        #: the fingerprint of the version of the original file the document is based on (set by the window's file
        #: controller), kept in the copy's description
        self.disk_version: Callable[[], Any] = lambda: None
        self.timer = QTimer(self)
        self.timer.setInterval(round(1000 * (interval_s if interval_s is not None else configured_interval_s())))
        self.timer.timeout.connect(self.autosave)
        self.jobs = JobRunner("autosave", self, describe=_describe)
        self.doc.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self.doc.projectReplaced.connect(self.remove)
        if bridge is not None:       # after each training checkpoint (the window merged it first: it connected first)
            bridge.stateSaved.connect(lambda _state: self.autosave())
            bridge.runEnded.connect(lambda _end: self.autosave())
        # deleted without closing (no closeEvent): the copy stays, as after a crash, and the lock goes
        self.destroyed.connect(lambda *_a, lock=self._lock: lock.release())
        if self.doc.is_modified():
            self.timer.start()

    # ---- paths ---------------------------------------------------------------------------------------------
    def _path(self, suffix: str) -> Path:
        return self.folder / f"{self.id}{suffix}"

    @property
    def data_path(self) -> Path:
        return self._path(".seqwb")

    @property
    def meta_path(self) -> Path:
        return self._path(".json")

    def has_copy(self) -> bool:
        return self.meta_path.exists() or self.data_path.exists()

    def set_interval(self, seconds: float) -> None:
        self.timer.setInterval(round(1000 * max(0.001, seconds)))

    # ---- writing -------------------------------------------------------------------------------------------
    def _on_clean_changed(self, clean: bool) -> None:
        if clean:
            self.timer.stop()
            # deferred, with this object as the context: a window being deleted (as in a crash) also clears its
            # undo stack, and that must not remove the copy
            QTimer.singleShot(0, self, self._remove_if_clean)
        elif not self.timer.isActive():
            self.timer.start()

    def _remove_if_clean(self) -> None:
        if not self.doc.is_modified():
            self.remove()

    def autosave(self) -> bool:
        """Write the copy now (in the worker) if the document has unsaved changes; False when there is nothing to
        write.  A write asked for while one runs happens right after it."""
        if not self.doc.is_modified():
            return False
        if self._writing:
            self._again = True
            return True
        if not self._lock.held:
            try:
                locked = self._lock.try_acquire()
            except OSError as exc:
                self._fail(f"cannot write to the recovery folder {self.folder}: {exc}")
                return False
            if not locked:
                self._fail(f"the recovery file {self._path('.lock')} is locked by another process")
                return False
        from workbench.core.projectfile import project_plugins_used
        from workbench.core.runs import snapshot_project
        project = snapshot_project(self.doc.project)
        meta = {"format": META_FORMAT, "version": META_VERSION, "app_version": __version__,
                "original_path": str(Path(self.doc.path).resolve()) if self.doc.path else None,
                "name": project.name, "saved_at": time.time(), "contents": describe_contents(project),
                "pid": os.getpid(), "host": socket.gethostname(),
                "disk_version": list(self.disk_version() or ()) or None}
        plugins = project_plugins_used(project, self.registry)
        self._writing, self._again = True, False
        generation, data_path = self._generation, self.data_path
        self.jobs.submit(lambda _job: self._write(generation, project, plugins, meta),
                         on_result=lambda _none: self._on_written(generation, str(data_path), ""),
                         on_error=lambda error: self._on_written(generation, str(data_path), error))
        return True

    def _write(self, generation: int, project: Any, plugins: list, meta: dict) -> None:   # the writer thread
        from workbench.core.projectfile import save_project
        with self._io:
            if generation == self._generation:     # not removed meanwhile (saved, replaced, closed)
                self.folder.mkdir(parents=True, exist_ok=True)
                save_project(project, self.data_path, plugins_used=plugins, backup=False)
                with atomic_write(self.meta_path, "w") as fh:
                    json.dump(meta, fh, indent=1)

    def _on_written(self, generation: int, path: str, error: str) -> None:
        self._writing = False
        if error:
            self._fail(error)
        elif generation == self._generation:
            self.writes += 1
            self._reported_failure = False
            self.saved.emit(path)
        if not self.doc.is_modified():
            self.remove()           # saved while this wrote
        elif self._again:
            self.autosave()

    def _fail(self, message: str) -> None:
        self.failed.emit(message)
        if not self._reported_failure:      # once until a write succeeds again, not every few minutes
            self._reported_failure = True
            text = f"Autosave failed: {message}"
            if self._log is not None:
                self._log(f"{text} (the project itself is not affected; save it to be safe)", "error")
            if self._show_message is not None:
                self._show_message(text, 15000)

    def wait(self, timeout_s: float = 30.0) -> bool:
        """Block until no write runs (tests, closing)."""
        from PySide6.QtCore import QCoreApplication
        deadline = time.monotonic() + timeout_s
        while self._writing:
            QCoreApplication.processEvents()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    # ---- removing ------------------------------------------------------------------------------------------
    def remove(self, *_args: Any) -> None:
        """The copy is no longer needed (saved, replaced, closed cleanly): remove it and drop any write that
        is still running."""
        self._generation += 1
        with self._io:
            for path in (self.meta_path, self.data_path):
                with contextlib.suppress(OSError):     # gone already, or the folder never could be made
                    path.unlink()
        self._lock.release(remove=True)

    def close_clean(self) -> None:
        """The window closes after the user answered about unsaved changes: nothing to recover."""
        self.timer.stop()
        self.wait(30.0)
        self.remove()

    def adopt(self, entry: RecoveryEntry, lock: DocumentLock) -> None:
        """Take over a restored copy: its files become this window's (so the copy stays on disk, never a gap)."""
        self.remove()
        self.id = entry.id
        self.folder = entry.folder
        self._lock = lock
        self.destroyed.connect(lambda *_a, lk=lock: lk.release())


# ---- offering the copies at start ------------------------------------------------------------------------------

class RecoveryDialog(QDialog):
    """Lists the copies left by windows that did not close; Restore / Discard / Later.  ``action`` and
    ``entry`` say what was chosen (tests call :meth:`choose` instead of clicking)."""

    def __init__(self, entries: list[RecoveryEntry], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Recover unsaved work")
        self.entries = entries
        self.action = "later"
        self.entry: Optional[RecoveryEntry] = None
        layout = QVBoxLayout(self)
        many = len(entries) > 1
        text = ("Sequence Workbench did not close properly last time. "
                + ("These projects had unsaved changes; they were saved automatically:" if many else
                   "This project had unsaved changes; it was saved automatically:"))
        label = QLabel(text)
        label.setWordWrap(True)
        layout.addWidget(label)
        self.list = QTreeWidget()
        self.list.setRootIsDecorated(False)
        self.list.setHeaderLabels(["Project", "Original file", "Saved", "Contains"])
        for entry in entries:
            item = QTreeWidgetItem([entry.name, entry.original_text(), entry.saved_text(), entry.contents])
            item.setToolTip(1, entry.original_text())
            item.setToolTip(3, entry.contents)
            self.list.addTopLevelItem(item)
        for col in range(4):
            self.list.resizeColumnToContents(col)
        self.list.setCurrentItem(self.list.topLevelItem(0))
        layout.addWidget(self.list)
        hint = QLabel("Restore opens the selected copy in this window, marked as modified: Save writes it to its "
                      "original file. Discard deletes the copy. Later keeps it and asks again next time.")
        hint.setWordWrap(True)
        layout.addWidget(hint)
        buttons = QDialogButtonBox()
        self.restore_button = buttons.addButton("Restore", QDialogButtonBox.ButtonRole.AcceptRole)
        self.discard_button = buttons.addButton("Discard", QDialogButtonBox.ButtonRole.DestructiveRole)
        self.later_button = buttons.addButton("Later", QDialogButtonBox.ButtonRole.RejectRole)
        for button, action in ((self.restore_button, "restore"), (self.discard_button, "discard"),
                               (self.later_button, "later")):
            button.clicked.connect(lambda _c=False, a=action: self.choose(a))
        self.restore_button.setDefault(True)
        layout.addWidget(buttons)
        widths = sum(self.list.columnWidth(c) for c in range(4))
        self.resize(min(1100, max(640, widths + 40)), 300)

    def rows(self) -> list[list[str]]:
        return [[self.list.topLevelItem(i).text(c) for c in range(4)] for i in range(self.list.topLevelItemCount())]

    def select(self, index: int) -> None:
        self.list.setCurrentItem(self.list.topLevelItem(index))

    def choose(self, action: str) -> None:
        self.action = action
        row = self.list.indexOfTopLevelItem(self.list.currentItem()) if self.list.currentItem() else 0
        self.entry = self.entries[max(0, row)]
        if action == "later":
            self.reject()
        else:
            self.accept()


class RecoveryHost(Protocol):
    """What offering and restoring copies needs from a window (its
    :class:`~workbench.gui.file_controller.FileController` is one)."""

    registry: Any
    recovery: RecoveryManager                   # the window's autosave, which takes a restored copy over

    @property
    def dialog_parent(self) -> QWidget: ...

    def may_replace_project(self) -> bool:
        """Stop a live run and settle unsaved changes, asking; False when the user chose to keep them."""

    def restore_project(self, project: Any, path: str | None, disk_version: Any = None) -> None:
        """Show ``project`` in the window, marked modified, with ``path`` as its file (None: untitled);
        ``disk_version``: the version of that file the copy was based on."""

    def log(self, text: str, kind: str = "info") -> None: ...

    def show_message(self, text: str, timeout_ms: int = 6000) -> None: ...


def offer_recovery(host: RecoveryHost, folder: Path | None = None) -> str:
    """At start: offer the copies that windows which did not close left behind.  Returns what happened:
    ``"none"`` (nothing to offer), ``"restored"``, ``"discarded"`` (all copies offered were discarded) or
    ``"later"``."""
    from PySide6.QtWidgets import QMessageBox
    result = "none"
    while True:
        orphans = find_orphans(folder)
        if not orphans:
            return result
        dialog = RecoveryDialog([e for e, _ in orphans], host.dialog_parent)
        dialog.exec()
        chosen = dialog.entry
        locks = {e.id: lock for e, lock in orphans}
        try:
            if dialog.action == "discard" and chosen is not None:
                remove_entry_files(chosen, locks.pop(chosen.id))
                result = "discarded"
                continue          # the others, if any, are offered again
            if dialog.action == "restore" and chosen is not None:
                if not host.may_replace_project():
                    return "later"
                if restore_entry(host, chosen, locks[chosen.id]):
                    locks.pop(chosen.id)      # the window owns it now
                    return "restored"
                QMessageBox.warning(host.dialog_parent, "Cannot restore",
                                    f"The recovery copy of “{chosen.name}” could not be read; it is kept in "
                                    f"{chosen.folder} ({chosen.id}.seqwb).")
                return "later"
            return "later"
        finally:
            for lock in locks.values():
                lock.release()


def restore_entry(host: RecoveryHost, entry: RecoveryEntry, lock: DocumentLock) -> bool:
    """Load a copy into ``host``'s window: modified, with the original path (Save goes there; Save As if it had
    none); the window's autosave takes the copy's files over."""
    from workbench.core.projectfile import load_project
    from workbench.schema.errors import WorkbenchError
    try:
        project = load_project(entry.data_path, registry=host.registry)
    except (WorkbenchError, OSError, ValueError) as exc:
        host.log(f"Cannot restore {entry.data_path}: {exc}", "error")
        return False
    host.restore_project(project, entry.original_path, entry.disk_version)
    host.recovery.adopt(entry, lock)
    where = entry.original_path or "a new file (Save asks for a name)"
    host.show_message(f"Restored “{entry.name}” from {entry.saved_text()}; Save writes it to {where}", 15000)
    host.log(f"Restored the autosaved copy of “{entry.name}” ({entry.contents}) from {entry.saved_text()}")
    return True
