"""A shared project file stays in its folder: the data it names outside its folder is read only once confirmed.

A project names its data files (the task's settings marked ``ui="path"``).  A file received from someone else can
name ``~/.ssh/id_rsa`` or ``/etc/passwd`` as its corpus; training would put that text into the model, its
vocabulary and its samples, all saved into the file that goes back.  So:

* When a front end opens a project file (the window, any ``seqwb`` command), :func:`guard_file` lists the data
  paths that lead outside the file's folder (absolute paths, ``..``, links that point out) and, unless they were
  confirmed for this file before, blocks them in this process.
* Everything that reads a task's data (training, evaluation, the data preview, recording, decoding) passes the
  gate :func:`check_task_paths` first, which raises :class:`OutsideDataError` for a blocked path: nothing is read.
* Confirming (the window's question, ``--allow-outside-data``) unblocks them and is remembered per file, in the
  user's config folder (never in the project file, which would let a file confirm itself).
* Paths the user sets (``--set task.corpus=...``, the inspector) are the user's own choice and are not blocked;
  saving a project remembers them for its file.

Only paths named by a file that was opened are ever blocked, so a project built in code (tests, scripts) reads what
it names.  Plain Python, no Qt.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from workbench.schema.errors import WorkbenchError

#: the file, in the user's config folder, that remembers which outside data each project file may read
STORE_FILE = "data-access.json"
STORE_FORMAT = "seqwb-data-access"


def config_dir() -> Path:
    """The user's config folder: ``$SEQWB_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/seqwb``, else ``~/.config/seqwb``
    (the folder of the plugin settings too; the engine cannot import the plugin system's copy of this rule)."""
    if os.environ.get("SEQWB_CONFIG_DIR"):
        return Path(os.environ["SEQWB_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "seqwb"


@dataclass(frozen=True)
class OutsidePath:
    """A data path of a project that leads outside the project file's folder."""

    key: str          # the setting: "task.corpus"
    value: str        # as the project writes it
    resolved: str     # where it leads (absolute, links followed)

    def describe(self) -> str:
        shown = self.value if self.value == self.resolved else f"{self.value} ({self.resolved})"
        return f"{self.key} = {shown}"


class OutsideDataError(WorkbenchError):
    """A task was about to read data outside its project's folder that nobody confirmed; nothing was read."""

    def __init__(self, message: str, paths: list[OutsidePath]):
        super().__init__(message)
        self.paths = paths


def _real(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


def _inside(path: str, folder: str) -> bool:
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:       # another drive on Windows
        return False


def path_fields(spec: Any) -> list[str]:
    """The task settings that name files or folders (``ui="path"``)."""
    from workbench.schema.params import field_info
    try:
        return [f.name for f in field_info(spec.params) if f.ui == "path"]
    except (TypeError, AttributeError):
        return []


def outside_of(spec: Any, params: Any, base_dir: str | os.PathLike[str]) -> list[OutsidePath]:
    """The data paths of a task's ``params`` (a dict or its parameters dataclass) that lead outside ``base_dir``,
    resolved as the tasks resolve them (``~`` expanded, relative to ``base_dir``)."""
    folder = _real(base_dir)
    out = []
    for name in path_fields(spec):
        value = params.get(name) if isinstance(params, dict) else getattr(params, name, None)
        if not isinstance(value, str) or not value.strip():
            continue            # empty: the task's built-in data
        given = Path(os.path.expanduser(value))
        resolved = _real(given if given.is_absolute() else Path(folder) / given)
        if not _inside(resolved, folder):
            out.append(OutsidePath(f"task.{name}", value, resolved))
    return out


def project_outside_paths(project: Any, registry: Any, project_file: str | os.PathLike[str]) -> list[OutsidePath]:
    """The data paths of ``project`` that lead outside the folder of ``project_file``."""
    task_id = getattr(project.task, "id", "")
    if not task_id or registry is None or not registry.has("task", task_id):
        return []
    return outside_of(registry.task(task_id), project.task.params, Path(_real(project_file)).parent)


# ---- what is blocked in this process, and what the user confirmed ------------------------------------------------

_lock = threading.Lock()
#: folder of an opened file -> {resolved path: (project file, setting)} not confirmed: the gate refuses these
_blocked: dict[str, dict[str, tuple[str, str]]] = {}


def _store_path() -> Path:
    return config_dir() / STORE_FILE


def _read_store() -> dict[str, Any]:
    try:
        doc = json.loads(_store_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = doc.get("files") if isinstance(doc, dict) and doc.get("format") == STORE_FORMAT else None
    return files if isinstance(files, dict) else {}


def remembered(project_file: str | os.PathLike[str]) -> set[str]:
    """The outside paths confirmed for ``project_file`` (in this or an earlier session)."""
    entry = _read_store().get(_real(project_file))
    allowed = entry.get("allowed") if isinstance(entry, dict) else None
    return {p for p in allowed if isinstance(p, str)} if isinstance(allowed, list) else set()


def remember(project_file: str | os.PathLike[str], paths: Iterable[str]) -> None:
    """Remember that ``project_file`` may read ``paths`` (resolved); best effort (a config folder that cannot be
    written only means the question comes again)."""
    from workbench.atomic import atomic_write
    paths = set(paths)
    if not paths:
        return
    key = _real(project_file)
    files = _read_store()
    entry = files.get(key) if isinstance(files.get(key), dict) else {}
    known = remembered(project_file)
    if paths <= known:
        return
    entry = {"allowed": sorted(known | paths),
             "confirmed": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    files[key] = entry
    try:
        _store_path().parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(_store_path(), "w") as fh:
            json.dump({"format": STORE_FORMAT, "files": files}, fh, indent=1)
    except OSError:
        pass


@dataclass
class Guarded:
    """What :func:`guard_file` found: ``pending`` paths are blocked until confirmed; ``confirmed`` were confirmed
    for this file before (or now, with ``allow``)."""

    pending: list[OutsidePath]
    confirmed: list[OutsidePath]


def guard_file(project: Any, registry: Any, project_file: str | os.PathLike[str], *, allow: bool = False) -> Guarded:
    """A project file was opened: block its outside data paths that were not confirmed for it.  With ``allow``
    (the user confirmed just now) they are confirmed and remembered instead."""
    outside = project_outside_paths(project, registry, project_file)
    known = remembered(project_file) if outside else set()
    confirmed = [o for o in outside if o.resolved in known]
    pending = [o for o in outside if o.resolved not in known]
    folder = str(Path(_real(project_file)).parent)
    with _lock:
        blocked = _blocked.setdefault(folder, {})
        for o in confirmed:
            blocked.pop(o.resolved, None)
    if allow and pending:
        confirm(project_file, pending)
        return Guarded([], confirmed + pending)
    with _lock:
        for o in pending:
            _blocked[folder][o.resolved] = (str(project_file), o.key)
    return Guarded(pending, confirmed)


def confirm(project_file: str | os.PathLike[str], paths: list[OutsidePath], *, save: bool = True) -> None:
    """The user confirmed ``paths`` for ``project_file``: unblock them, and remember it (``save``)."""
    folder = str(Path(_real(project_file)).parent)
    with _lock:
        blocked = _blocked.get(folder, {})
        for o in paths:
            blocked.pop(o.resolved, None)
    if save:
        remember(project_file, [o.resolved for o in paths])


def allow_paths(spec: Any, params: Any, base_dir: str | os.PathLike[str]) -> None:
    """Paths the user set (``--set``, the inspector): the user's own choice, never blocked."""
    folder = _real(base_dir)
    with _lock:
        blocked = _blocked.get(folder, {})
        for o in outside_of(spec, params, base_dir):
            blocked.pop(o.resolved, None)


def blocked_paths(spec: Any, params: Any, base_dir: str | os.PathLike[str]) -> list[OutsidePath]:
    """The outside paths of these task settings that the gate would refuse now."""
    folder = _real(base_dir)
    with _lock:
        blocked = dict(_blocked.get(folder, {}))
    if not blocked:
        return []
    return [o for o in outside_of(spec, params, base_dir) if o.resolved in blocked]


def special_files(spec: Any, params: Any, base_dir: str | os.PathLike[str]) -> list[tuple[str, str, str]]:
    """``(setting, value, what it is)`` for each data path that is a pipe, a device or a socket: reading one would
    wait for ever (a pipe) or never end (``/dev/zero``), whichever task reads it."""
    import stat

    kinds = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    out = []
    for name in path_fields(spec):
        value = params.get(name) if isinstance(params, dict) else getattr(params, name, None)
        if not isinstance(value, str) or not value.strip():
            continue
        given = Path(os.path.expanduser(value))
        try:
            mode = os.stat(given if given.is_absolute() else Path(base_dir) / given).st_mode
        except (OSError, ValueError):
            continue              # missing or unreadable: the task says so in its own words
        what = next((words for test, words in kinds if test(mode)), None)
        if what is not None:
            out.append((f"task.{name}", value, what))
    return out


def check_task_paths(spec: Any, params: Any, base_dir: str | os.PathLike[str] | None) -> None:
    """The gate, before a task reads its data: :class:`OutsideDataError` for a path outside the project's folder
    that its file named and nobody confirmed, and :class:`DataError` for a path that is not a file or a folder
    (a pipe, a device): only regular files are read as data."""
    from workbench.schema.errors import DataError
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    special = special_files(spec, params, base)
    if special:
        key, value, what = special[0]
        raise DataError(f"{key} = {value} is {what}, not a data file: only regular files are read as data")
    if base_dir is None:
        return
    refused = blocked_paths(spec, params, base_dir)
    if not refused:
        return
    with _lock:
        source = _blocked.get(_real(base_dir), {}).get(refused[0].resolved, ("the project file", ""))[0]
    raise OutsideDataError(outside_message(source, refused), refused)


def outside_message(project_file: str, paths: list[OutsidePath]) -> str:
    """One line: which data, from which file, that it was not read, and how to allow it."""
    names = "; ".join(o.describe() for o in paths)
    return (f"{project_file} names data outside its folder ({names}), which is read only once you confirm it for "
            f"this file: if you trust the file, run again with --allow-outside-data (the window asks when the file "
            f"is opened), or set the path to data of your own")


def remember_users_paths(project: Any, registry: Any, project_file: str | os.PathLike[str]) -> None:
    """Saving ``project`` to ``project_file``: the outside paths it names that are not blocked (the user's own,
    or confirmed) are remembered for this file, so that opening it again does not ask about them."""
    outside = project_outside_paths(project, registry, project_file)
    if not outside:
        return
    folder = str(Path(_real(project_file)).parent)
    with _lock:
        blocked = set(_blocked.get(folder, {}))
    remember(project_file, [o.resolved for o in outside if o.resolved not in blocked])


def relative_data_paths(project: Any, registry: Any, project_file: str | os.PathLike[str]) -> list[str]:
    """Store data paths relative to the project file where they lie inside its folder (an absolute path there
    would break when the folder is moved or shared); changes ``project`` in place, returns the settings changed."""
    task_id = getattr(project.task, "id", "")
    if not task_id or registry is None or not registry.has("task", task_id):
        return []
    folder = Path(_real(project_file)).parent
    changed = []
    for name in path_fields(registry.task(task_id)):
        value = project.task.params.get(name)
        if not isinstance(value, str) or not value.strip() or not os.path.isabs(os.path.expanduser(value)):
            continue
        absolute = Path(os.path.abspath(os.path.expanduser(value)))
        try:
            relative = absolute.relative_to(folder)
        except ValueError:
            try:       # the folder reached through a link: compare where both really are
                relative = Path(_real(absolute)).relative_to(folder)
            except ValueError:
                continue
        project.task.params[name] = relative.as_posix()
        changed.append(f"task.{name}")
    return changed


def forget_blocks() -> None:
    """Tests: start from a process that opened no file."""
    with _lock:
        _blocked.clear()
