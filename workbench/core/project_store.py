"""Opening and saving a project file when others may be at it too: the command line, the window, another machine.

* Opening tidies the folder (:func:`tidy_folder`): the temporary files of saves that were killed, and a lock
  file whose holder is gone.  Then it reads the file and remembers its :func:`fingerprint`.
* Saving (:func:`save_shared`) holds the project's lock (:mod:`workbench.core.projectfile.lock`) while it writes,
  unless the caller holds it already.  If the file changed on disk since the saver read it, the saver either merges
  that version in (:func:`workbench.core.project_merge.merge_projects`: no run is ever dropped) or, when asked to,
  raises :class:`FileChangedError` so that a person can choose (the window's Reload / Keep mine).

Reading a project (:func:`workbench.core.projectfile.load_project`) never writes; only these front-end helpers do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from workbench.atomic import remove_stale_temps
from workbench.core.project import Project
from workbench.core.project_merge import MergeResult, merge_projects
from workbench.core.projectfile import load_project, save_project
from workbench.core.projectfile.lock import ProjectLock, remove_stale_lock
from workbench.schema.errors import WorkbenchError

#: (device, inode, size, modification time in ns) of a file: any save (an atomic replace) changes it
Fingerprint = tuple[int, int, int, int]


def fingerprint(path: str | os.PathLike[str]) -> Fingerprint | None:
    """What tells one version of a file on disk from the next; None when there is no file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class FileChangedError(WorkbenchError):
    """The file on disk is not the version the saver read or last wrote (see :func:`save_shared`)."""


@dataclass
class Tidied:
    """What opening a project removed: temporary files of killed saves, and a stale lock (its holder)."""

    temps: list[Path] = field(default_factory=list)
    stale_lock: Any = None

    def notes(self) -> list[str]:
        out = []
        if self.temps:
            out.append(f"removed {len(self.temps)} temporary file{'s' if len(self.temps) != 1 else ''} that "
                       f"interrupted saves left in {self.temps[0].parent}")
        if self.stale_lock is not None:
            out.append(f"removed the lock left by {self.stale_lock.describe()}, which is no longer running")
        return out


def tidy_folder(path: str | os.PathLike[str]) -> Tidied:
    """Remove what crashed writers left beside ``path``: their temporary files (of any file of the folder, written
    on this machine by a process that is gone) and the project's lock file when its holder is gone."""
    target = Path(os.path.realpath(os.fspath(path)))
    folder = target.parent
    temps = remove_stale_temps(folder, target.name) + remove_stale_temps(folder, None)
    return Tidied(temps=temps, stale_lock=remove_stale_lock(target))


@dataclass
class Opened:
    project: Project
    fingerprint: Fingerprint | None
    tidied: Tidied


def open_shared(path: str | os.PathLike[str], registry: Any = None, *, tidy: bool = True) -> Opened:
    """Tidy the folder (``tidy``), then read the project and remember which version of the file it came from."""
    tidied = tidy_folder(path) if tidy else Tidied()
    before = fingerprint(path)
    project = load_project(path, registry=registry)
    after = fingerprint(path)
    # a save that landed while we read: the version we have is the one before or the one after, so say we have
    # the older one (a later save then merges rather than overwrites)
    return Opened(project, before if before == after else None, tidied)


@dataclass
class Saved:
    fingerprint: Fingerprint | None
    notes: list[str]
    merge: MergeResult | None = None        # set when the file had changed and was merged in


def save_shared(project: Project, path: str | os.PathLike[str], *, known: Fingerprint | None,
                plugins_used: list[dict[str, Any]] | None = None, program: str = "seqwb",
                lock: ProjectLock | None = None, on_change: Literal["merge", "raise", "overwrite"] = "merge",
                registry: Any = None, overwrite_read_only: bool = False, backup: bool = True) -> Saved:
    """Save ``project`` to ``path`` as one writer among several.

    ``known`` is the fingerprint of the version the saver read or last wrote (None: it never saw the file, as for
    Save As or a new file; an existing file is then replaced after the caller's own question).  The project's
    lock is held while this runs: ``lock`` when the caller holds it already, else one taken (and released) here,
    naming ``program``; a live holder raises :class:`~workbench.core.projectfile.lock.ProjectLockedError`.  When
    the file changed since ``known``: ``on_change="merge"`` reads that version and merges it into ``project`` (in
    place: the caller keeps the result); ``"raise"`` raises :class:`FileChangedError` before anything is written;
    ``"overwrite"`` replaces it (the user chose so).  Errors of the disk raise
    :class:`~workbench.core.projectfile.format.ProjectSaveError`.
    """
    own = lock is None or not lock.held
    if own:
        lock = ProjectLock(path, program)
        lock.acquire()
    notes: list[str] = []
    merge = None
    try:
        now = fingerprint(path)
        if known is not None and now is not None and now != known and on_change != "overwrite":
            if on_change == "raise":
                raise FileChangedError(f"{path} changed on disk since it was opened or saved here")
            merge, note = _merge_from_disk(project, path, registry)
            if note:
                notes.append(note)
        notes += save_project(project, path, plugins_used=plugins_used, backup=backup,
                              overwrite_read_only=overwrite_read_only)
        return Saved(fingerprint(path), notes, merge)
    finally:
        if own and lock is not None:
            lock.release()


def _merge_from_disk(project: Project, path: str | os.PathLike[str], registry: Any) -> tuple[MergeResult | None, str]:
    try:
        theirs = load_project(path, registry=registry)
    except (WorkbenchError, OSError) as exc:
        # unreadable now (damaged by whoever wrote it): it is kept as the .bak of this save
        return None, (f"{Path(path).name} had changed on disk and cannot be read ({exc}); it is kept as "
                      f"{Path(path).name}.bak")
    merge = merge_projects(project, theirs)
    return merge, (f"{Path(path).name} had changed on disk since it was read here; merged: {merge.describe()}"
                   if merge.changed else "")
