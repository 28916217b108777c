"""Atomic file writes: a temporary file in the same folder, fsync, ``os.replace``."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import socket
import time
from pathlib import Path
from typing import IO, Iterator

#: A temporary file of a save that nobody has written to for this long is left over from a save that was killed
#: (an active save writes continuously; its fsync takes seconds, not minutes).  The rule for temporary files
#: written on another machine sharing the folder, whose pid means nothing here.
STALE_TEMP_SECONDS = 15 * 60
#: A temporary file of an older version (a pid in its name, but no host tag) whose writer is not running here is
#: stale once untouched this long: without the host tag it might be a writer on another machine.
DEAD_WRITER_TEMP_SECONDS = 30


def host_tag() -> str:
    """Six hex digits that stand for this machine in temporary names: a pid in the name means something only to
    the machine that wrote it, so the sweep must know whether the writer ran here."""
    return hashlib.sha1(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:6]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Write ``path`` all or nothing: readers see the old file or the complete new one, never a part.

    A new file gets the permissions of any newly created file (``0o666`` less the umask); a replaced one keeps
    its own."""
    target = Path(path)
    folder = target.resolve().parent
    remove_stale_temps(folder, target.name)
    tmp, fd = create_temp(folder, target.name, ".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        copy_mode(target, tmp)
        os.replace(tmp, target)
        fsync_dir(folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def temp_name(directory: Path, stem: str, suffix: str) -> Path:
    """A temporary name beside ``directory/stem`` that :func:`remove_stale_temps` recognises."""
    # Hidden (".") so file browsers do not show it; random so that two saves never share a temp file; with the
    # pid and the machine's tag, so that whoever opens or saves the project next can tell the leftover of a killed
    # save at once (remove_stale_temps): ".p.seqwb.22487.9f3a1c-0b1c2d3e4f5a.tmp".
    return directory / f".{stem}.{os.getpid()}.{host_tag()}-{secrets.token_hex(6)}{suffix}"


def create_temp(directory: Path, stem: str, suffix: str) -> tuple[Path, int]:
    """Create a new temporary file for ``directory/stem`` and open it for writing: ``(path, fd)``."""
    while True:
        tmp = temp_name(directory, stem, suffix)
        try:
            # 0o666 & ~umask, like a normally created file (tempfile.mkstemp would give 0o600: files only their
            # owner could read, which a user who shares a folder does not expect of a saved tree or recording)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        return tmp, fd


def copy_mode(target: Path, tmp: Path) -> None:
    """Give ``tmp`` the permissions of the file it replaces, if there is one (a user's chmod survives a save)."""
    if target.exists():
        with contextlib.suppress(OSError):
            shutil.copymode(target, tmp)


def fsync_dir(folder: Path) -> None:
    """Make a rename durable (best effort: not every platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_pattern(name: str | None) -> re.Pattern[str]:
    # ".<name>.<pid>.<host tag>-<random>[.bak].tmp" (this version), ".<name>.<pid>.<random>[.bak].tmp" and
    # ".<name>.<random>[.bak].tmp" (older versions): the temporary files of atomic_write and of project saves.
    # Without a name: any name, but only this version's form (a pid and a host tag), which nothing else makes.
    if name is None:
        return re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.(?P<host>[0-9a-f]{6})-[0-9a-f]{12}(?:\.bak)?\.tmp")
    return re.compile(rf"\.(?P<name>{re.escape(name)})\.(?:(?P<pid>\d+)\.)?(?:(?P<host>[0-9a-f]{{6}})-)?"
                      rf"[A-Za-z0-9_]{{6,16}}(?:\.bak)?\.tmp")


def _writer_is_gone(pid: int) -> bool:
    """True only if no process ``pid`` runs on this machine (never guessed: any doubt counts as alive)."""
    if os.name != "posix" or pid <= 0 or pid == os.getpid():
        return False  # on Windows os.kill(pid, 0) would terminate the process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # e.g. PermissionError: it exists, it is someone else's
    return False


def remove_stale_temps(folder: str | os.PathLike, name: str | None, *, now: float | None = None) -> list[Path]:
    """Delete the temporary files that killed saves of ``folder/name`` left behind; returns what was deleted.

    A temporary file counts as stale when it was written on this machine (its host tag) by a process that is no
    longer running (the pid in its name): at once, since nothing will ever finish it.  A file of an older version
    (a pid but no host tag) is stale when its writer is not running here and it was not touched for
    :data:`DEAD_WRITER_TEMP_SECONDS`; any other (another machine's) when it was not touched for
    :data:`STALE_TEMP_SECONDS`.  Files being written by a live save are never touched; nothing else in the folder
    is.  ``name=None`` sweeps the leftovers of every file in the folder that this version wrote (a project that
    was deleted or renamed since leaves its leftovers too).  Best effort: errors are ignored (a save or an open
    must not fail because a leftover could not be removed).
    """
    pattern = _temp_pattern(name)
    now = time.time() if now is None else now
    here = host_tag()
    removed: list[Path] = []
    try:
        entries = list(os.scandir(os.fspath(folder)))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        pid, host = match.group("pid"), match.group("host")
        if pid is not None and host == here:
            stale = _writer_is_gone(int(pid))
        elif pid is not None and host is None:
            stale = age >= DEAD_WRITER_TEMP_SECONDS and _writer_is_gone(int(pid))
        else:
            stale = False
        if stale or age >= STALE_TEMP_SECONDS:
            try:
                os.unlink(entry.path)
            except OSError:
                continue
            removed.append(Path(entry.path))
    return removed
