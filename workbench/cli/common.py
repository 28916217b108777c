"""What every ``seqwb`` command shares: exit codes, the usage error, the registry, opening and saving projects,
``--set``, JSON output and notes on stderr.

Opening and saving go through :mod:`workbench.core.project_store`: opening tidies what crashed saves left beside the
file, saving holds the project's lock and merges a version someone else saved meanwhile (no run is dropped).  Data
outside the project's folder is read only when confirmed (``--allow-outside-data``, remembered per file:
:mod:`workbench.core.data_access`).  Once a project file is opened, what the command prints passes a filter that
shows control characters as escapes: names and messages from a file must not drive the terminal.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

#: set by ``--allow-outside-data`` while the command line is parsed (reset whenever a parser is built)
ALLOW_OUTSIDE_DATA = False
#: the version of each file this process read or last wrote (real path -> fingerprint): a save merges in a version
#: someone else wrote since
_known: dict[str, Any] = {}
#: the project locks this process holds for the rest of its life (``seqwb train``), by real path
_held: dict[str, Any] = {}


class UsageError(Exception):
    """Bad input on the command line: exit code 2."""


def registry():
    from workbench.plugin_system import default_registry
    return default_registry()


def settings(items: list[str] | None) -> dict[str, str]:
    from workbench.schema.params import ParamError, parse_assignments
    try:
        return parse_assignments(items or [])
    except ParamError as exc:
        raise UsageError(str(exc)) from None


class _AllowOutsideData(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None) -> None:
        global ALLOW_OUTSIDE_DATA
        ALLOW_OUTSIDE_DATA = True
        setattr(namespace, self.dest, True)


def add_data_flags(sp: argparse.ArgumentParser) -> None:
    """``--allow-outside-data`` on a command that reads a project's data."""
    global ALLOW_OUTSIDE_DATA
    ALLOW_OUTSIDE_DATA = False        # a new parser: nothing parsed yet (in-process callers parse many times)
    sp.add_argument("--allow-outside-data", action=_AllowOutsideData, nargs=0, default=False,
                    help="read data files outside the project's folder that the file names (absolute paths, '..'); "
                         "remembered for this file")


# ---- what reaches the terminal ------------------------------------------------------------------------------

#: C0 controls but tab and newline, DEL, C1 controls, and the marks that reorder text on screen (bidi overrides)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``): what a file supplies is printed, never
    obeyed by the terminal."""
    text = text.replace("\r\n", "\n")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
                        text)


class _PrintableStream:
    """A text stream that writes :func:`printable` text to the stream it wraps."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(printable(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def guard_output() -> None:
    """From here on, what this process prints on stdout and stderr shows control characters as escapes."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, _PrintableStream):
            setattr(sys, name, _PrintableStream(stream))


# ---- project files ------------------------------------------------------------------------------------------

def _real(path: str | os.PathLike) -> str:
    return os.path.realpath(os.fspath(path))


def open_project(path: str, reg=None):
    """Read the project file ``path`` (tidying what crashed saves left beside it first); every problem is one
    clear line.  Its data outside its folder is blocked unless confirmed (``--allow-outside-data``)."""
    from workbench.core.data_access import guard_file
    from workbench.core.project_store import open_shared
    from workbench.core.projectfile import ProjectFileWarning
    guard_output()
    if not os.path.lexists(path):
        raise FileNotFoundError(f"no such project file: {path}")
    reg = reg if reg is not None else registry()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ProjectFileWarning)
        opened = open_shared(path, registry=reg)
    for text in dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, ProjectFileWarning)):
        note(text)           # once, in words (not a Python warning with a file name and line)
    for text in opened.tidied.notes():
        note(text)
    _known[_real(path)] = opened.fingerprint
    guarded = guard_file(opened.project, reg, path, allow=ALLOW_OUTSIDE_DATA)
    if ALLOW_OUTSIDE_DATA and guarded.confirmed:
        note("reading data outside the project's folder, as --allow-outside-data allows (remembered for this "
             "file): " + "; ".join(o.describe() for o in guarded.confirmed))
    # pending paths are said by the command that would read them (the gate's error), or by seqwb info
    return opened.project


def hold_lock(path: str, program: str) -> None:
    """Hold ``path``'s lock until this process ends (``seqwb train``): a second writer is refused, naming us.
    A lock its holder left behind when it died is taken over, with a note."""
    import atexit

    from workbench.core.projectfile.lock import ProjectLock
    key = _real(path)
    if key in _held:
        return
    lock = ProjectLock(path, program)
    taken_over = lock.acquire()
    if taken_over:
        note(taken_over)
    _held[key] = lock
    atexit.register(lock.release)


def release_lock(path: str) -> None:
    lock = _held.pop(_real(path), None)
    if lock is not None:
        lock.release()


def heartbeat(path: str) -> None:
    """A long command says it is still alive (other machines judge a lock they cannot see by it)."""
    lock = _held.get(_real(path))
    if lock is not None:
        lock.refresh()


def save(project, path: str, registry, *, program: str = "seqwb") -> None:
    """Save ``project`` to ``path`` under its lock.  If someone else saved the file since this process read it,
    their version is merged in (no run is dropped) and a note says what was kept.  Data paths inside the
    project's folder are stored relative to it."""
    from workbench.core.data_access import relative_data_paths, remember_users_paths
    from workbench.core.project_store import save_shared
    from workbench.core.projectfile import project_plugins_used
    relative_data_paths(project, registry, path)
    key = _real(path)
    saved = save_shared(project, path, known=_known.get(key), plugins_used=project_plugins_used(project, registry),
                        program=program, lock=_held.get(key), registry=registry)
    _known[key] = saved.fingerprint
    remember_users_paths(project, registry, path)
    for text in saved.notes:
        note(text)


def apply_settings(project, items, registry) -> list[str]:
    from workbench.core.data_access import allow_paths
    from workbench.core.settings import apply_project_settings
    from workbench.schema.errors import UnknownContributionError
    from workbench.schema.params import ParamError
    given = settings(items)
    try:
        changed = apply_project_settings(project, given, registry)
    except (ParamError, UnknownContributionError) as exc:
        raise UsageError(str(exc)) from None
    typed = {key[5:]: project.task.params.get(key[5:]) for key in given if key.startswith("task.")}
    if typed and project.task.id and registry.has("task", project.task.id):
        # a path typed on the command line is the user's own choice, not the file's: never held back
        spec = registry.task(project.task.id)
        for opened in list(_known):
            allow_paths(spec, typed, os.path.dirname(opened))
    return changed


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def finite(x: Any) -> Any:
    """A JSON-safe metric: non-finite numbers become null; lists (a confusion matrix) are kept, element-wise."""
    if isinstance(x, (list, tuple)):
        return [finite(v) for v in x]
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


def note(msg: str) -> None:
    sys.stderr.write(f"seqwb: {printable(msg)}\n")


def load_model(args: Any, project: Any, reg: Any, *, weights: str = "current", session: Any = None) -> Any:
    """The project's model at ``weights`` for an inference command (``--device``, ``--best``): one
    :class:`~workbench.core.training.session.ModelSession`, the process's threads set once, a clear usage error
    for weights that do not exist or a device that is not there."""
    from workbench.core.device import default_threads
    from workbench.core.training.session import ModelSession, set_cpu_threads
    from workbench.schema.errors import TrainingError
    session = session or ModelSession(reg)
    try:
        loaded = session.load(project, Path(args.file).resolve().parent, weights, getattr(args, "device", None))
    except (ValueError, TrainingError) as exc:
        if isinstance(exc, TrainingError) and "do not fit" in str(exc):
            raise
        raise UsageError(str(exc)) from None
    notice = set_cpu_threads(loaded.device, project.train.threads or default_threads(behind_window=False))
    if notice:
        note(notice)
    return loaded
