"""Saving a project file: the members (JSON, the history's numbers, the tensor members streamed from the tensors'
memory), the manifest with every member's size and sha256, and the atomic replacement of the target with a
``.bak`` of the previous version."""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import os
import shutil
import stat
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable

import numpy as np
import safetensors.numpy

from workbench import __version__
from workbench.atomic import copy_mode, create_temp, fsync_dir, remove_stale_temps, temp_name
from workbench.core.project import History, Project
from workbench.core.projectfile import format as fmt
from workbench.core.projectfile.format import (HISTORY, HISTORY_ARRAYS, MAGIC_FORMAT, MANIFEST, OPTIMIZER, PROJECT,
                                               STATE, TRAINER_STATE, VOCAB, WEIGHTS, ProjectSaveError,
                                               ReadOnlyProjectError, describe_kind, human_bytes)
from workbench.core.projectfile.tensors import tensor_chunks

_MIB = 1 << 20


@dataclass(frozen=True)
class _Member:
    name: str
    data: bytes
    compress: int  # zipfile.ZIP_DEFLATED or zipfile.ZIP_STORED
    # A member written in pieces straight from memory (the tensor members: their safetensors header, then every
    # tensor's bytes read from the tensor itself); ``data`` is then empty.
    chunks: tuple[Any, ...] | None = None

    @property
    def size(self) -> int:
        return len(self.data) if self.chunks is None else sum(_nbytes(c) for c in self.chunks)


def _nbytes(chunk: Any) -> int:
    return chunk.nbytes if isinstance(chunk, memoryview) else len(chunk)


def save_project(project: Project, path: str | os.PathLike[str], *, plugins_used: list[dict[str, Any]] | None = None,
                 backup: bool = True, overwrite_read_only: bool = False) -> list[str]:
    """Write ``project`` to ``path`` atomically; with ``backup`` the previous file is kept as ``<name>.bak``.
    Returns notes for the user (e.g. that no backup could be kept because ``<name>.bak`` is a folder).

    ``plugins_used`` (usually :func:`project_plugins_used`) goes into the manifest, so that a machine without
    one of those plugins can say which distribution to install.  On any error the target is left untouched, and
    an error of the disk is one :class:`ProjectSaveError` that names the file and says that it was not saved.
    A read-only file is not replaced (:class:`ReadOnlyProjectError`) unless ``overwrite_read_only``: ask first,
    as editors do.  A path that is a folder, a pipe or a device is refused, saying what it is.
    """
    target = _save_target(path, overwrite_read_only)
    checkpoint = project.checkpoint
    tensor_members: list[_Member] = []
    if checkpoint is not None:  # only views of the tensors' memory: the writer copies them piece by piece
        tensor_members = [_tensor_member(WEIGHTS, checkpoint.weights, "weights"),
                          _tensor_member(OPTIMIZER, checkpoint.optimizer, "optimizer"),
                          _tensor_member(STATE, checkpoint.tensors, "tensors")]
    members = _json_members(project) + tensor_members
    if checkpoint is not None:
        members.append(_json_member(TRAINER_STATE, {
            "graph_hash": checkpoint.graph_hash,
            "step": int(checkpoint.step),
            "epoch": int(checkpoint.epoch),
            "optimizer_meta": checkpoint.optimizer_meta,
            "trainer_state": checkpoint.trainer_state,
        }))

    def manifest(digests: dict[str, str]) -> _Member:
        doc = _manifest_for(members, [digests[m.name] for m in members], plugins_used or [])
        return _json_member(MANIFEST, doc, pretty=True)

    return _write_atomically(target, members, manifest, backup=backup)


def _tensor_member(name: str, tensors: dict[str, Any], what: str) -> _Member:
    return _Member(name, b"", zipfile.ZIP_STORED, chunks=tensor_chunks(tensors, what))


def _json_members(project: Project) -> list[_Member]:
    members = [_json_member(PROJECT, project.to_json(), pretty=True)]
    if project.vocab is not None:
        members.append(_json_member(VOCAB, list(project.vocab)))
    history_doc, history_arrays = _encode_history(project.history)
    members.append(_json_member(HISTORY, history_doc))
    members.append(_Member(HISTORY_ARRAYS, history_arrays, zipfile.ZIP_STORED))
    return members


def _manifest_for(members: list[_Member], digests: list[str], plugins_used: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "format": MAGIC_FORMAT,
        "format_version": fmt.FORMAT_VERSION,
        "app_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "plugins": [dict(entry) for entry in plugins_used],
        "members": {m.name: {"size": m.size, "sha256": digest} for m, digest in zip(members, digests)},
    }


class _StreamWriter:
    """Writes a member given as pieces of memory through a few small reusable buffers: each slice is copied into
    a buffer, hashed there (sha256, on a worker thread) and written from there (zipfile's CRC-32 and the write), so
    the checksums always describe the very bytes in the file, even if a tensor changes while it is being saved
    (a checkpoint shared with a running trainer).  Copying into a reused buffer costs little (no fresh memory to
    fault in); hashing overlaps with the CRC and the write, since hashlib, zlib and file writes release the GIL.
    A 10-million-parameter checkpoint is ~166 MB (weights, Adam's two moments, best weights): its sha256 takes
    ~0.15 s of one core, about a third of a save's CPU time (benchmarks/project_io.py)."""

    SLICE = 4 * _MIB
    DEPTH = 3

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._buffers: list[memoryview] = []

    def __enter__(self) -> "_StreamWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def write(self, chunks: tuple[Any, ...], out: IO[bytes]) -> str:
        """Write ``chunks`` one after another to ``out``; returns the sha256 of what was written."""
        if not self._buffers:
            self._buffers = [memoryview(bytearray(self.SLICE)) for _ in range(self.DEPTH)]
            if (os.cpu_count() or 1) > 1:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqwb-sha256")
        digest = hashlib.sha256()
        pending: list[Any] = []   # one future per buffer in use, oldest first (the worker keeps their order)
        turn = 0
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                for start in range(0, view.nbytes, self.SLICE):
                    piece = view[start:start + self.SLICE]
                    if len(pending) == self.DEPTH:
                        pending.pop(0).result()   # that buffer is free again
                    buf = self._buffers[turn % self.DEPTH][:len(piece)]
                    turn += 1
                    buf[:] = piece
                    if self._pool is None:
                        digest.update(buf)
                    else:
                        pending.append(self._pool.submit(digest.update, buf))
                    out.write(buf)
        finally:
            for future in pending:
                future.result()
        return digest.hexdigest()


def _json_default(obj: Any) -> Any:
    # Numpy scalars/arrays (and tensors) slip into metrics and probe results; store them as plain numbers.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _json_member(name: str, obj: Any, *, pretty: bool = False) -> _Member:
    # pretty for the small members people read and diff (manifest, project); the others can be large (probes,
    # vocabularies) and json's fast C encoder only runs without indent.
    # ensure_ascii: lone surrogates in user text would make UTF-8 encoding fail; escaped they round-trip.
    # allow_nan (the default) is kept on purpose: a diverged run has NaN metrics and they must survive.
    text = json.dumps(obj, indent=1 if pretty else None, separators=None if pretty else (",", ":"),
                      ensure_ascii=True, default=_json_default)
    return _Member(name, text.encode("ascii"), zipfile.ZIP_DEFLATED)


def _encode_history(history: History) -> tuple[dict[str, Any], bytes]:
    """history.json (everything but the numbers) and history.safetensors (the numbers of every series)."""
    arrays: dict[str, np.ndarray] = {}
    runs = []
    for run in history.runs:
        series_doc = []
        for name, series in run.series.items():
            if len(series.step) != len(series.value):
                raise ValueError(f"run {run.id}: series {name!r} has {len(series.step)} steps but "
                                 f"{len(series.value)} values")
            key = _unique_key(f"{run.id}/{name}", arrays)
            arrays[f"{key}/step"] = np.asarray(series.step, dtype=np.int64)
            arrays[f"{key}/value"] = np.asarray(series.value, dtype=np.float64)
            series_doc.append({"name": name, "key": key})
        runs.append({
            "id": run.id, "started": run.started, "settings": run.settings, "status": run.status,
            "message": run.message, "series": series_doc, "gtt": run.gtt, "samples": run.samples,
        })
    return {"runs": runs}, safetensors.numpy.save(arrays)


def _unique_key(base: str, arrays: dict[str, np.ndarray]) -> str:
    # Run ids and series names may both contain "/", so "a/b" + "c" and "a" + "b/c" would collide; the key
    # actually used is stored in history.json, so any suffix works.
    key, n = base, 1
    while f"{key}/step" in arrays or f"{key}/value" in arrays:
        n += 1
        key = f"{base}#{n}"
    return key


# ---- atomic write ---------------------------------------------------------------------------------------------

def _save_target(path: str | os.PathLike[str], overwrite_read_only: bool) -> Path:
    given = Path(os.fspath(path))
    try:
        st = os.stat(given)                       # through any symbolic link: what would be replaced
    except FileNotFoundError:
        # a new file (or a link to a file not there yet: the file is created where the link points)
        return Path(os.path.realpath(given)) if given.is_symlink() else given
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ProjectSaveError(f"{given} was not saved: it is a symbolic link that loops (nothing was written)",
                                   exc.errno) from None
        raise ProjectSaveError(f"{given} was not saved: {exc.strerror or exc} (nothing was written)",
                               exc.errno) from None
    # Replace the file a link points to, not the link itself.
    target = Path(os.path.realpath(given)) if given.is_symlink() else given
    if not stat.S_ISREG(st.st_mode):
        raise ProjectSaveError(f"{given} was not saved: it is {describe_kind(st.st_mode)}, not a project file "
                               f"(nothing was written)", errno.EISDIR if stat.S_ISDIR(st.st_mode) else None)
    if not overwrite_read_only and _read_only(target, st):
        raise ReadOnlyProjectError(f"{given} is read-only, so it was not saved (the file is unchanged): make it "
                                   f"writable, or save under another name", errno.EACCES)
    return target


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise what :func:`save_project` would raise before writing ``path`` (read-only, a folder, a pipe...), so that
    a long job (training) can refuse before it starts rather than fail at its first save."""
    _save_target(path, overwrite_read_only=False)


def _read_only(target: Path, st: os.stat_result) -> bool:
    # The mode bits, as editors check them: even a user who may replace it (the owner of the folder, root) is
    # asked before a file marked read-only is replaced.
    return not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(target, os.W_OK)


def _write_atomically(target: Path, members: list[_Member], manifest: Callable[[dict[str, str]], _Member], *,
                      backup: bool) -> list[str]:
    notes: list[str] = []
    directory = target.parent
    existed = target.exists()
    remove_stale_temps(directory, target.name)  # what saves of this file that were killed left behind
    try:
        tmp, fd = create_temp(directory, target.name, ".tmp")
    except OSError as exc:
        raise _save_error(target, exc, "creating its temporary file", existed, members) from exc
    stage = "writing it"
    try:
        with os.fdopen(fd, "wb") as fh:
            _write_zip(fh, members, manifest)
            fh.flush()
            os.fsync(fh.fileno())
        copy_mode(target, tmp)
        if backup and existed:
            stage = "keeping the previous version as .bak"
            note = _keep_backup(target)
            if note:
                notes.append(note)
        stage = "putting it in place"
        os.replace(tmp, target)
    except BaseException as exc:
        _remove_quietly(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, ProjectSaveError):
            raise _save_error(target, exc, stage, existed, members) from exc
        raise
    _fsync_directory(directory)
    return notes


def _save_error(target: Path, exc: OSError, stage: str, existed: bool, members: list[_Member]) -> ProjectSaveError:
    """One line that names the project, says it was not saved, why, and what is on disk now."""
    kept = ("the file on disk is intact (the previous version)" if existed else "nothing was written")
    size = human_bytes(sum(m.size for m in members))
    code = exc.errno
    if code == errno.ENOSPC:
        why = (f"the disk has no room for a new file in {target.parent} (no free space, or no free inodes)"
               if stage.startswith("creating") else f"the disk is full ({target.parent}; the project needs about "
                                                    f"{size})")
    elif code == getattr(errno, "EDQUOT", -1):
        why = f"the disk quota is used up ({target.parent}; the project needs about {size})"
    elif code == errno.EROFS:
        why = f"{target.parent} is on a read-only file system"
    elif code in (errno.EACCES, errno.EPERM):
        why = f"no permission to write in {target.parent}"
    elif code == errno.EFBIG:
        why = f"the file ({size}) is larger than this file system allows"
    else:
        why = f"{exc.strerror or exc} while {stage}"
    return ProjectSaveError(f"{target} was not saved: {why}; {kept}", code)


def _write_zip(fh: IO[bytes], members: list[_Member], manifest: Callable[[dict[str, str]], _Member]) -> None:
    """Write ``members``, then the manifest made by ``manifest(sha256 by member name)`` (the checksums are computed
    while the members are written); the zip's directory lists the manifest first, so listings show it first."""
    stamp = time.localtime()[:6]
    digests: dict[str, str] = {}
    with zipfile.ZipFile(fh, "w", allowZip64=True) as zf, _StreamWriter() as streamer:
        for member in [*members, None]:
            if member is None:
                member = manifest(digests)
            info = zipfile.ZipInfo(member.name, date_time=stamp)
            info.compress_type = member.compress
            info.external_attr = 0o644 << 16  # rw-r--r-- for unzip tools
            if member.chunks is not None:
                # Streamed piece by piece from the tensors' memory (zipfile computes the CRC-32 as it goes); the
                # size is given up front so that zipfile picks zip64 headers for members of 4 GiB and more.
                info.file_size = member.size
                with zf.open(info, "w") as out:
                    digests[member.name] = streamer.write(member.chunks, out)
                continue
            digests[member.name] = hashlib.sha256(member.data).hexdigest()
            # writestr with the bytes we already hold: no extra copy.  JSON members are deflated at level 1: a
            # long run's history.json deflates ~3x faster than at the default level 6 and ends up only slightly
            # larger (the tensors are stored, not compressed).
            zf.writestr(info, member.data,
                        compresslevel=1 if member.compress == zipfile.ZIP_DEFLATED else None)
        # The central directory is written from zf.filelist when the zip is closed: put the manifest first there.
        zf.filelist.insert(0, zf.filelist.pop())


def _keep_backup(target: Path) -> str | None:
    """Make ``<name>.bak`` a copy of ``target`` without ever moving ``target`` away; returns a note for the user
    when there is no backup to keep (``<name>.bak`` is a folder, say: it is never touched)."""
    backup = target.with_name(target.name + ".bak")
    try:
        mode = os.lstat(backup).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        # os.replace cannot put a file where a folder is, and must never remove someone's folder or pipe
        return f"no backup of the previous version was kept: {backup} is {describe_kind(mode)}"
    tmp = temp_name(target.parent, target.name, ".bak.tmp")
    try:
        try:
            os.link(target, tmp)  # instant, and the old contents stay reachable after target is replaced
        except (OSError, AttributeError, NotImplementedError):
            shutil.copy2(target, tmp)  # FAT, some network shares and sandboxes have no hard links
        os.replace(tmp, backup)
    except BaseException:
        _remove_quietly(tmp)
        raise
    return None


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable on POSIX (best effort; shared with atomic_write).
    fsync_dir(directory)
