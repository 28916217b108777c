"""The advisory lock a writer holds beside a project file: ``.NAME.lock``, naming the process and the machine.

Whoever trains a project from the command line holds it from before the file is read until the process ends; every
save (the window's, the command line's) holds it while it writes.  A second writer that finds it held is refused
with a message that names the holder, so no two writers ever replace each other's work unseen.

The lock is an operating-system lock on the open lock file (``flock``; ``msvcrt.locking`` on Windows), which the
system releases when its process ends, however it ends.  The file's text (JSON: pid, host, program, user, since)
is only there to name the holder.  So a lock file left by a process that was killed is free to take, and is taken
over with a note.  Where the file system has no locks (some network shares), or a holder on another machine is
seen through a share that does not pass locks on, the text decides: a holder on this machine whose process is gone,
or one on another machine that has not refreshed the file for :data:`HEARTBEAT_STALE_SECONDS`, is stale.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import getpass
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.schema.errors import WorkbenchError

#: A holder refreshes the lock file's time at least this often while it works (a run's steps, the window's timer).
HEARTBEAT_SECONDS = 60.0
#: A lock whose operating-system lock cannot be seen, and whose file was not refreshed for this long, is stale.
HEARTBEAT_STALE_SECONDS = 5 * 60.0


def lock_path(project_path: str | os.PathLike[str]) -> Path:
    """The lock file of a project: hidden, beside it (``c.seqwb`` -> ``.c.seqwb.lock``)."""
    path = Path(os.path.realpath(os.fspath(project_path)))
    return path.with_name(f".{path.name}.lock")


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or held) a project's lock, as its lock file says."""

    pid: int
    host: str
    program: str
    user: str = ""
    since: str = ""

    def describe(self) -> str:
        """``seqwb train (pid 4242 on box, user ann, since 21:03:10)``."""
        when = self.since
        try:
            stamp = _dt.datetime.fromisoformat(self.since).astimezone()
            today = _dt.datetime.now().astimezone().date()
            when = stamp.strftime("%H:%M:%S" if stamp.date() == today else "%Y-%m-%d %H:%M")
        except (TypeError, ValueError):
            pass
        bits = [f"pid {self.pid} on {self.host or 'an unknown machine'}"]
        if self.user:
            bits.append(f"user {self.user}")
        if when:
            bits.append(f"since {when}")
        return f"{self.program or 'another program'} ({', '.join(bits)})"

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "host": self.host, "program": self.program, "user": self.user, "since": self.since}

    @classmethod
    def parse(cls, text: bytes) -> "LockHolder | None":
        """The holder a lock file names; None for an empty or foreign file.  Printable text only: the name
        reaches a terminal and a dialog."""
        try:
            doc = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("pid"), int):
            return None

        def field(key: str) -> str:
            value = doc.get(key)
            return "".join(ch for ch in value if ch.isprintable())[:200] if isinstance(value, str) else ""

        return cls(pid=int(doc["pid"]), host=field("host"), program=field("program"), user=field("user"),
                   since=field("since"))


class ProjectLockedError(WorkbenchError):
    """Another process holds the project's lock: ``holder`` (None when its lock file does not say who)."""

    def __init__(self, message: str, holder: LockHolder | None):
        super().__init__(message)
        self.holder = holder


def this_holder(program: str) -> LockHolder:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):   # no name for this uid (containers)
        user = ""
    return LockHolder(pid=os.getpid(), host=socket.gethostname(), program=program, user=user,
                      since=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))


def _process_is_gone(pid: int) -> bool:
    """True only if no process ``pid`` runs on this machine (any doubt counts as running)."""
    if os.name != "posix" or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _stale_by_its_text(holder: LockHolder | None, age: float) -> bool:
    """Without an operating-system lock to go by: is the holder the file names gone?"""
    if holder is None:
        return age >= HEARTBEAT_STALE_SECONDS
    if holder.host == socket.gethostname():
        return holder.pid == os.getpid() or _process_is_gone(holder.pid)
    return age >= HEARTBEAT_STALE_SECONDS


class ProjectLock:
    """``ProjectLock(project_path, program)``: :meth:`acquire` it (or ``with``), :meth:`release` it when done.

    ``program`` names this process in the lock file (``"seqwb train"``, ``"Sequence Workbench window"``)."""

    def __init__(self, project_path: str | os.PathLike[str], program: str):
        self.project_path = Path(os.fspath(project_path))
        self.path = lock_path(project_path)
        self.program = program
        self._fd: int | None = None
        self._refreshed = 0.0
        self.took_over: LockHolder | None = None   # the dead holder whose lock acquire() took over

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "ProjectLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def acquire(self) -> str:
        """Take the lock; returns a note when a stale lock was taken over ("" otherwise).  Raises
        :class:`ProjectLockedError` naming the holder when a live process holds it."""
        if self._fd is not None:
            return ""
        for _ in range(20):      # a holder releasing (unlinking) as we open: open the new file again
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
                             | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0), 0o644)
            except OSError as exc:
                if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                    # a folder nobody here may write in: nobody here can save there either, so no writer to
                    # keep out; the save itself will say that it cannot write
                    return ""
                raise WorkbenchError(f"cannot lock {self.project_path}: {exc.strerror or exc} ({self.path})") from None
            try:
                locked = _try_lock(fd)
            except OSError:
                os.close(fd)
                raise
            if locked is False:
                holder = _read_holder(fd)
                os.close(fd)
                raise ProjectLockedError(self._held_message(holder), holder)
            if not _same_file(fd, self.path):
                os.close(fd)        # unlinked by its holder between our open and our lock: try the new one
                continue
            previous = _read_holder(fd)
            if locked is None and previous is not None:
                # no operating-system locks here: the text is all there is to go by
                age = time.time() - os.fstat(fd).st_mtime
                if not _stale_by_its_text(previous, age):
                    os.close(fd)
                    raise ProjectLockedError(self._held_message(previous), previous)
            self._fd = fd
            self._write(this_holder(self.program))
            if previous is not None and (previous.pid, previous.host) != (os.getpid(), socket.gethostname()):
                self.took_over = previous
                return (f"took over the lock of {self.project_path.name} left by {previous.describe()}, which is "
                        f"no longer running")
            return ""
        raise WorkbenchError(f"cannot lock {self.project_path}: its lock file {self.path} keeps changing")

    def _held_message(self, holder: LockHolder | None) -> str:
        who = holder.describe() if holder is not None else f"another program (see {self.path})"
        return f"{self.project_path} is in use: {who} is writing it"

    def _write(self, holder: LockHolder) -> None:
        assert self._fd is not None
        data = json.dumps(holder.to_json()).encode("utf-8")
        with contextlib.suppress(OSError):     # the name is a courtesy; the lock itself is held already
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, data, 0) if hasattr(os, "pwrite") else os.write(self._fd, data)
        self._refreshed = time.monotonic()

    def refresh(self) -> None:
        """Say "still here" (the heartbeat other machines go by); cheap, and at most once a minute."""
        if self._fd is None or time.monotonic() - self._refreshed < HEARTBEAT_SECONDS:
            return
        self._refreshed = time.monotonic()
        with contextlib.suppress(OSError, NotImplementedError):
            if os.utime in os.supports_fd:
                os.utime(self._fd)
            else:
                os.utime(self.path)

    def release(self) -> None:
        """Give the lock up and remove the lock file (while still holding it: nobody locks a file about to go)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if _same_file(fd, self.path):
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.close(fd)


def read_holder(project_path: str | os.PathLike[str]) -> LockHolder | None:
    """Who holds the project's lock now; None when nobody does (no lock file, or a stale one)."""
    path = lock_path(project_path)
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_BINARY", 0))
    except OSError:
        return None
    try:
        locked = _try_lock(fd)
        holder = _read_holder(fd)
        if locked is False:
            return holder
        if locked is None and holder is not None:
            return None if _stale_by_its_text(holder, time.time() - os.fstat(fd).st_mtime) else holder
        return None
    finally:
        os.close(fd)      # closing drops a lock we may just have taken


def remove_stale_lock(project_path: str | os.PathLike[str]) -> LockHolder | None:
    """Opening a project tidies up: a lock file whose holder is gone is removed.  Returns that holder."""
    path = lock_path(project_path)
    if not path.exists():
        return None
    lock = ProjectLock(project_path, "")
    try:
        lock.acquire()
    except (WorkbenchError, OSError):
        return None       # held by a live process (or not ours to judge): left alone
    lock.release()
    return lock.took_over


def _try_lock(fd: int) -> bool | None:
    """True: locked; False: another process holds it; None: this file system has no locks."""
    try:
        if os.name == "nt":
            import msvcrt
            # a byte far past the text, so that others can still read who holds it
            os.lseek(fd, 1 << 20, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)   # type: ignore[attr-defined]
            os.lseek(fd, 0, os.SEEK_SET)
        else:
            import fcntl
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES, getattr(errno, "EDEADLOCK", -1)):
            return False
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return None
        raise


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _read_holder(fd: int) -> LockHolder | None:
    try:
        data = os.pread(fd, 4096, 0) if hasattr(os, "pread") else _read_from_start(fd)
    except OSError:
        return None
    return LockHolder.parse(data)


def _read_from_start(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 4096)
