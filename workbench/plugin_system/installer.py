"""Installing and uninstalling plugins with pip, for the window's Plugins ▸ Install… (no Qt here).

The window runs :func:`install` or :func:`uninstall` on a worker thread with a ``progress`` callback that gets
pip's output line by line, then shows the :class:`PipResult`: pip's own message when it failed, otherwise which
distributions changed and whether the new plugins can be loaded now (``default_registry(refresh=True)`` after
:func:`importlib.invalidate_caches`, which :func:`install` has called) or a restart is needed (a plugin whose
code is already imported was upgraded or removed: Python cannot unload a module).

A source is a wheel (``*.whl``), a folder with a ``pyproject.toml`` or ``setup.py``, or a requirement as pip takes
it (``seqwb-indrnn``, ``seqwb-indrnn>=0.2``).  Nothing of torch or Qt is imported.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import queue
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Optional, Sequence

from workbench.hookspecs import ENTRY_POINT_GROUP
from workbench.plugin_system.user_settings import normalize
from workbench.schema.errors import WorkbenchError

__all__ = ["InstallError", "PipResult", "install", "install_command", "source_kind", "uninstall"]

Progress = Callable[[str], None]


class InstallError(WorkbenchError):
    """The source cannot be installed as given (not a wheel, folder or requirement); pip was not run."""


@dataclass
class PipResult:
    """What a pip run did.  ``message`` is one line for the window: pip's error when it failed."""

    ok: bool
    action: str                     # "install" or "uninstall"
    source: str
    command: list[str]
    output: str                     # everything pip printed
    message: str
    #: distribution names (as pip reports them) installed or removed
    changed: list[str] = field(default_factory=list)
    #: a changed distribution's plugin code is imported already: the change applies after a restart
    restart_needed: bool = False


def source_kind(source: str) -> str:
    """``"wheel"``, ``"folder"`` or ``"requirement"``; :class:`InstallError` with the reason otherwise."""
    text = (source or "").strip()
    if not text:
        raise InstallError("nothing to install: give a wheel (.whl), a folder or a package name")
    path = Path(text).expanduser()
    if text.endswith(".whl"):
        if not path.is_file():
            raise InstallError(f"no such wheel: {text}")
        return "wheel"
    if path.is_dir():
        if not ((path / "pyproject.toml").is_file() or (path / "setup.py").is_file()):
            raise InstallError(f"{text} is a folder without pyproject.toml or setup.py: not a Python package")
        return "folder"
    if os.sep in text or text.startswith("."):
        raise InstallError(f"no such file or folder: {text}")
    from packaging.requirements import InvalidRequirement, Requirement
    try:
        Requirement(text)
    except InvalidRequirement as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InstallError(f"{text!r} is neither a wheel, a folder nor a package name ({why})") from None
    return "requirement"


def install_command(source: str, *, python: Optional[str] = None, target: Optional[str] = None,
                    extra: Sequence[str] = ()) -> list[str]:
    """The pip command :func:`install` runs: this interpreter's pip (``--python`` another environment's)."""
    kind = source_kind(source)
    arg = str(Path(source).expanduser().resolve()) if kind in ("wheel", "folder") else source.strip()
    return [*_pip(python), "install", "--upgrade", *(["--target", target] if target else []), *extra, arg]


def install(source: str, progress: Optional[Progress] = None, *, python: Optional[str] = None,
            target: Optional[str] = None, extra: Sequence[str] = (),
            cancelled: Optional[Callable[[], bool]] = None) -> PipResult:
    """``pip install --upgrade SOURCE`` into the running environment (``python``: another interpreter's;
    ``target``: a folder, as the tests use), with pip's output passed to ``progress`` line by line."""
    command = install_command(source, python=python, target=target, extra=extra)
    result = _run(command, "install", source, progress, cancelled)
    if result.ok:
        result.changed = _installed_names(result.output)
        importlib.invalidate_caches()     # so that discovery finds the new distributions in this process
        result.restart_needed = python is None and any(_imported(name) for name in result.changed)
        result.message = _summary("installed", result.changed, result.restart_needed) if result.changed else \
            "nothing to install: the requirement is met already"
    return result


def uninstall(distribution: str, progress: Optional[Progress] = None, *, python: Optional[str] = None,
              cancelled: Optional[Callable[[], bool]] = None) -> PipResult:
    """``pip uninstall --yes DISTRIBUTION``; a plugin whose code is imported is gone after a restart."""
    name = (distribution or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise InstallError(f"{distribution!r} is not a distribution name")
    if normalize(name) == "sequence-workbench":
        raise InstallError("Sequence Workbench itself cannot be uninstalled from its window")
    loaded = python is None and _imported(name)
    result = _run([*_pip(python), "uninstall", "--yes", name], "uninstall", name, progress, cancelled)
    if result.ok:
        result.changed = [name] if re.search(r"Successfully uninstalled", result.output) else []
        result.restart_needed = loaded
        result.message = _summary("removed", [name], loaded) if result.changed else f"{name} is not installed"
    return result


def _pip(python: Optional[str]) -> list[str]:
    # -u and no version check: output arrives line by line, without a nag about pip's own version
    base = [sys.executable, "-u", "-m", "pip"]
    return [*base, *(["--python", python] if python else []), "--disable-pip-version-check", "--no-input"]


def _run(command: list[str], action: str, source: str, progress: Optional[Progress],
         cancelled: Optional[Callable[[], bool]]) -> PipResult:
    lines: list[str] = []
    env = dict(os.environ, PIP_PROGRESS_BAR="off", PYTHONUNBUFFERED="1")
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                bufsize=1)
    except OSError as exc:
        return PipResult(False, action, source, command, "", f"cannot run pip: {exc}")
    assert proc.stdout is not None
    # pip can be silent for a long time (a download, a build): its output is read in a thread of its own, so that
    # a cancel is noticed within a tenth of a second, not at pip's next line
    received: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(proc.stdout, received), name="seqwb-pip-output",
                              daemon=True)
    reader.start()
    stopped = False
    while True:
        try:
            line = received.get(timeout=0.1)
        except queue.Empty:
            pass                    # nothing new: only the cancel is checked
        else:
            if line is None:        # pip closed its output: it has ended
                break
            lines.append(line.rstrip("\n"))
            if progress is not None:
                progress(lines[-1])
        if cancelled is not None and cancelled():
            proc.terminate()
            stopped = True
            break
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:   # a stopped pip that does not end: it must not hold the window's worker
        proc.kill()
        code = proc.wait()
    reader.join(timeout=5)
    output = "\n".join(lines)
    if stopped:
        return PipResult(False, action, source, command, output, "cancelled; pip was stopped")
    if code != 0:
        return PipResult(False, action, source, command, output, _pip_error(lines, code))
    return PipResult(True, action, source, command, output, "")


def _read_lines(stream: IO[str], received: "queue.Queue[str | None]") -> None:
    try:
        for line in stream:
            received.put(line)
    except (OSError, ValueError):   # the pipe was closed under us: pip was stopped
        pass
    finally:
        received.put(None)


def _pip_error(lines: list[str], code: int) -> str:
    """pip's own explanation: its ``ERROR:`` lines, else its last line."""
    errors = [ln.strip() for ln in lines if ln.strip().startswith("ERROR:")]
    if errors:
        return " ".join(errors)
    last = next((ln.strip() for ln in reversed(lines) if ln.strip()), "")
    return f"pip failed (exit code {code}){': ' + last if last else ''}"


def _installed_names(output: str) -> list[str]:
    """``Successfully installed a-1.0 b_c-2.0rc1`` -> ``["a", "b_c"]``."""
    found = re.search(r"^Successfully installed (.+)$", output, re.M)
    if not found:
        return []
    return [re.sub(r"-[^-]+$", "", item) for item in found.group(1).split()]


def _imported(distribution: str) -> bool:
    """Whether a module that a ``seqwb.plugins`` entry point of ``distribution`` names is imported already."""
    wanted = normalize(distribution)
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        try:
            name = dist.metadata["Name"] if dist is not None else ""
        except Exception:  # noqa: BLE001 - broken metadata: not ours to judge here
            continue
        if normalize(name or "") == wanted and ep.value.partition(":")[0] in sys.modules:
            return True
    return False


def _summary(verb: str, names: list[str], restart: bool) -> str:
    what = ", ".join(names)
    return f"{verb} {what}; " + ("restart Sequence Workbench to use the change (its plugin code is loaded)"
                                 if restart else ("its plugins can be loaded now" if verb == "installed"
                                                  else "its plugins are gone"))
