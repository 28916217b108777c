"""The project file ``*.seqwb``: one zip of JSON and safetensors members; versioned, written atomically, never pickled.

Layout (format 1)::

    manifest.json          format magic + version, app version, plugins used, size and sha256 of every member
    project.json           Project.to_json(): graph (nodes, links, ui block), task, train/decode configs, data, notes
    vocab.json             the vocabulary (a list of strings), when the project has one
    history.json           runs: settings, status, message, probes, samples, and the *names* of their series
    history.safetensors    the numbers of every series: "<key>/step" (int64) and "<key>/value" (float64)
    weights.safetensors    checkpoint.weights    } only when the project has a checkpoint
    optimizer.safetensors  checkpoint.optimizer  }
    state.safetensors      checkpoint.tensors    }
    trainer_state.json     graph_hash, step, epoch, optimizer_meta, trainer_state

Only JSON and safetensors are ever parsed, so opening a file cannot run code; any other member is ignored (with a
:class:`ProjectFileWarning`).  Every way a file can be broken ends in one :class:`ProjectFileError` whose message
names the file (and the member), never in a zipfile/json/struct exception.  Reading never writes anything.

Saving writes a temporary file next to the target, fsyncs it, keeps the previous version as ``<name>.bak`` and
then renames over the target, so a crash leaves either the old or the new file, never half of one; the hidden
temporary file a killed save leaves behind is removed by a later save of the same file once it is stale
(:func:`workbench.atomic.remove_stale_temps`).

Format changes: bump :data:`FORMAT_VERSION`, register a migration from the previous version with
:func:`register_migration`, and add a fixture file of the old version to ``tests/fixtures/projects``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io as _io
import json
import math
import os
import re
import shutil
import sys
import time
import warnings
import zipfile
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import numpy as np
import safetensors.numpy

from workbench import __version__
from workbench.atomic import copy_mode, create_temp, fsync_dir, remove_stale_temps, temp_name
from workbench.schema.errors import MissingPluginError, ProjectFileError
from workbench.core.graph import TASK_INPUT, TASK_OUTPUT
from workbench.core.project import Checkpoint, History, Project, Run, Series
from workbench.schema.params import field_info

__all__ = [
    "FORMAT_VERSION",
    "MAGIC_FORMAT",
    "MIGRATIONS",
    "ProjectFileWarning",
    "load_project",
    "project_plugins_used",
    "read_manifest",
    "register_migration",
    "save_project",
]

FORMAT_VERSION: int = 1
MAGIC_FORMAT = "seqwb-project"

#: ``from_version -> fn``: ``fn`` turns the JSON members of a file of ``from_version`` into those of
#: ``from_version + 1``.  It receives and returns ``{"manifest", "project", "vocab", "history", "trainer_state"}``
#: (absent members are ``None``).  Format 1 is the first format, so the chain starts empty.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}

MANIFEST = "manifest.json"
PROJECT = "project.json"
VOCAB = "vocab.json"
HISTORY = "history.json"
HISTORY_ARRAYS = "history.safetensors"
WEIGHTS = "weights.safetensors"
OPTIMIZER = "optimizer.safetensors"
STATE = "state.safetensors"
TRAINER_STATE = "trainer_state.json"
KNOWN_MEMBERS = frozenset({MANIFEST, PROJECT, VOCAB, HISTORY, HISTORY_ARRAYS, WEIGHTS, OPTIMIZER, STATE,
                           TRAINER_STATE})

# Refuse absurd archives before decompressing anything (sizes come from the zip directory; zipfile never
# returns more bytes than a member declares, so the declared size bounds the memory we use).
_GIB = 1 << 30
_MIB = 1 << 20
MAX_MEMBER_BYTES = 4 * _GIB
MAX_TOTAL_BYTES = 8 * _GIB
BOMB_MIN_BYTES = 10 * _MIB
BOMB_MAX_RATIO = 1000

# safetensors metadata key holding the tensor names in their original order (safetensors sorts them on disk).
_ORDER_KEY = "seqwb.order"


class ProjectFileWarning(UserWarning):
    """A project file was read, but something in it was skipped (e.g. members this version does not know)."""


def register_migration(from_version: int, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Register ``fn`` as the step from format ``from_version`` to ``from_version + 1`` (see :data:`MIGRATIONS`)."""
    if isinstance(from_version, bool) or not isinstance(from_version, int) or from_version < 0:
        raise ValueError(f"from_version must be a non-negative int, got {from_version!r}")
    if from_version in MIGRATIONS:
        raise ValueError(f"a migration from format {from_version} is registered already")
    MIGRATIONS[from_version] = fn


# =============================================================================================================
# saving
# =============================================================================================================

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
                 backup: bool = True) -> None:
    """Write ``project`` to ``path`` atomically; with ``backup`` the previous file is kept as ``<name>.bak``.

    ``plugins_used`` (usually :func:`project_plugins_used`) goes into the manifest, so that a machine without
    one of those plugins can say which distribution to install.  On any error the target is left untouched.
    """
    target = _save_target(path)
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

    _write_atomically(target, members, manifest, backup=backup)


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
        "format_version": FORMAT_VERSION,
        "app_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "plugins": [dict(entry) for entry in plugins_used],
        "members": {m.name: {"size": m.size, "sha256": digest} for m, digest in zip(members, digests)},
    }


def _sha256(data: Any) -> str:
    return hashlib.sha256(data).hexdigest()


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


# torch dtype name -> safetensors dtype name, for the dtypes both know (safetensors has no complex numbers).
_SAFETENSORS_DTYPES = {
    "float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16",
    "int64": "I64", "int32": "I32", "int16": "I16", "int8": "I8",
    "uint64": "U64", "uint32": "U32", "uint16": "U16", "uint8": "U8", "bool": "BOOL",
    "float8_e5m2": "F8_E5M2", "float8_e4m3fn": "F8_E4M3",
}


def _tensor_member(member: str, tensors: dict[str, Any], what: str) -> _Member:
    """A safetensors member of ``tensors`` whose bytes are written straight from the tensors' memory.

    The layout is safetensors' (https://github.com/huggingface/safetensors, "Format"): an 8-byte little-endian
    header length N, N bytes of JSON ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
    {...}}`` and then the tensors' raw little-endian bytes one after another, offsets relative to the end of the
    header.  No serialised copy of the tensors is made (only tensors on a GPU or not contiguous are copied): the
    member is the header plus one memoryview per tensor, which the writer streams through small buffers
    (:class:`_StreamWriter`).
    """
    import torch  # torch is imported only when tensors are written: reading a manifest must stay fast

    if sys.byteorder != "little":  # the raw memory is not the file's byte order: let safetensors convert
        return _Member(member, _tensor_bytes(tensors, what), zipfile.ZIP_STORED)
    prepared = []
    for index, (name, tensor) in enumerate(tensors.items()):
        if not isinstance(name, str):
            raise TypeError(f"checkpoint.{what}: tensor names must be strings, got {name!r}")
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"checkpoint.{what}[{name!r}] is a {type(tensor).__name__}, not a torch.Tensor")
        dtype = _SAFETENSORS_DTYPES.get(str(tensor.dtype).removeprefix("torch."))
        if dtype is None:
            raise TypeError(f"checkpoint.{what}[{name!r}] has dtype {tensor.dtype}, which a project file cannot "
                            f"store")
        t = tensor.detach()
        if t.device.type != "cpu":
            t = t.to("cpu")
        t = t.contiguous()  # a no-op for the usual contiguous tensor
        # Widest elements first (as safetensors does), so that with the header padded to 8 bytes every tensor
        # starts at a multiple of its element size (readers that map the file, like safetensors', use it in place).
        prepared.append((-t.element_size(), index, name, dtype, t))
    prepared.sort(key=lambda item: item[:2])
    header: dict[str, Any] = {}
    chunks: list[Any] = []
    offset = 0
    for _, _, name, dtype, t in prepared:
        nbytes = t.numel() * t.element_size()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + nbytes]}
        if nbytes:
            # uint8 view of the tensor's own memory (numpy knows no bfloat16; the view also covers bool)
            chunks.append(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
        offset += nbytes
    header["__metadata__"] = {_ORDER_KEY: json.dumps(list(tensors))}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    text += b" " * (-len(text) % 8)  # padded with spaces to 8 bytes, like safetensors' own writer
    return _Member(member, b"", zipfile.ZIP_STORED, chunks=(len(text).to_bytes(8, "little") + text, *chunks))


def _tensor_bytes(tensors: dict[str, Any], what: str) -> bytes:
    """safetensors bytes of ``tensors`` made by the safetensors library (used on big-endian machines only)."""
    import torch  # torch is imported only when tensors are written: reading a manifest must stay fast
    import safetensors.torch

    prepared: dict[str, Any] = {}
    storages: set[int] = set()
    for name, tensor in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"checkpoint.{what}: tensor names must be strings, got {name!r}")
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"checkpoint.{what}[{name!r}] is a {type(tensor).__name__}, not a torch.Tensor")
        t = tensor.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr and ptr in storages:
            # Tied weights and views share memory, which safetensors refuses; each gets its own copy.
            t = t.clone()
            ptr = t.untyped_storage().data_ptr()
        storages.add(ptr)
        prepared[name] = t
    return safetensors.torch.save(prepared, metadata={_ORDER_KEY: json.dumps(list(prepared))})


# ---- atomic write ---------------------------------------------------------------------------------------------

def _save_target(path: str | os.PathLike[str]) -> Path:
    target = Path(os.fspath(path))
    if target.is_symlink():
        # Replace the file the link points to, not the link itself.
        target = Path(os.path.realpath(target))
    if target.is_dir():
        raise IsADirectoryError(f"{target} is a directory")
    return target


def _write_atomically(target: Path, members: list[_Member], manifest: Callable[[dict[str, str]], _Member], *,
                      backup: bool) -> None:
    directory = target.parent
    remove_stale_temps(directory, target.name)  # what saves of this file that were killed left behind
    tmp, fd = create_temp(directory, target.name, ".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            _write_zip(fh, members, manifest)
            fh.flush()
            os.fsync(fh.fileno())
        copy_mode(target, tmp)
        if backup and target.exists():
            _keep_backup(target)
        os.replace(tmp, target)
    except BaseException:
        _remove_quietly(tmp)
        raise
    _fsync_directory(directory)


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
            digests[member.name] = _sha256(member.data)
            # writestr with the bytes we already hold: no extra copy.  JSON members are deflated at level 1: a
            # long run's history.json deflates ~3x faster than at the default level 6 and ends up only slightly
            # larger (the tensors are stored, not compressed).
            zf.writestr(info, member.data,
                        compresslevel=1 if member.compress == zipfile.ZIP_DEFLATED else None)
        # The central directory is written from zf.filelist when the zip is closed: put the manifest first there.
        zf.filelist.insert(0, zf.filelist.pop())


def _keep_backup(target: Path) -> None:
    """Make ``<name>.bak`` a copy of ``target`` without ever moving ``target`` away."""
    backup = target.with_name(target.name + ".bak")
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


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable on POSIX (best effort; shared with atomic_write).
    fsync_dir(directory)


# =============================================================================================================
# reading
# =============================================================================================================

def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a project file, after checking that it is one (format magic, sane zip).

    The format version is not checked, so that callers can report what made a newer file; compare
    ``manifest["format_version"]`` with :data:`FORMAT_VERSION` yourself.
    """
    label = _label(path)
    with _reading(label), _Archive.open(path, label) as archive:
        return archive.manifest


def load_project(path: str | os.PathLike[str], *, registry: Any = None, weights: bool = True) -> Project:
    """Read a project file; raises :class:`ProjectFileError` (one clear line) for anything wrong with it.

    ``registry`` (a :class:`~workbench.plugin_system.loader.Registry`): when given, every plugin contribution the
    project needs must be installed, otherwise :class:`MissingPluginError` names each one and what provides it.

    ``weights=False`` is the quick read (``seqwb info``, file lists): the tensor members are neither read nor
    verified, and a project with a checkpoint gets a :class:`Checkpoint` with the right ``graph_hash``, ``step``,
    ``epoch`` and JSON state but empty ``weights``, ``optimizer`` and ``tensors``.
    """
    label = _label(path)
    with _reading(label), _Archive.open(path, label) as archive:
        project = _load(archive, registry=registry, weights=weights)
        ignored = archive.unknown_members()
    # Warned outside _reading: with warnings turned into errors, the warning must not become a ProjectFileError.
    if ignored:
        warnings.warn(f"{label}: ignored member(s) this version does not know: {', '.join(ignored)}",
                      ProjectFileWarning, stacklevel=2)
    return project


def _load(archive: "_Archive", *, registry: Any, weights: bool) -> Project:
    label = archive.label
    _check_version(archive.manifest, label)
    archive.check_listing()
    doc = {
        "manifest": archive.manifest,
        "project": archive.json(PROJECT, required=True),
        "vocab": archive.json(VOCAB),
        "history": archive.json(HISTORY),
        "trainer_state": archive.json(TRAINER_STATE),
    }
    doc = _migrate(doc, archive.manifest["format_version"], label)
    project = _project_from(doc, label)
    if registry is not None:
        # Before the big members are read: a missing plugin is the quickest answer to give.
        _check_plugins(doc.get("manifest"), project, registry, label)
    project.history = _history_from(doc.get("history"), archive)
    project.checkpoint = _checkpoint_from(doc.get("trainer_state"), archive, weights=weights)
    return project


def _label(path: str | os.PathLike[str]) -> str:
    return os.fsdecode(os.fspath(path))


@contextlib.contextmanager
def _reading(label: str) -> Iterator[None]:
    """The boundary: whatever goes wrong while reading leaves as one ProjectFileError naming the file."""
    try:
        yield
    except ProjectFileError:
        raise
    except MemoryError:
        raise
    except OSError as exc:
        raise ProjectFileError(f"{label} cannot be read: {exc.strerror or exc}") from exc
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ProjectFileError(f"{label} is truncated or corrupt ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - nothing but ProjectFileError may leave a load
        raise ProjectFileError(f"{label} cannot be read ({type(exc).__name__}: {exc})") from exc


class _Archive:
    """An open project zip whose directory was checked; reads members against the manifest's checksums."""

    def __init__(self, zf: zipfile.ZipFile, label: str):
        self.zf = zf
        self.label = label
        self.infos = {info.filename: info for info in zf.infolist()}
        self.manifest: dict[str, Any] = {}

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: str | os.PathLike[str], label: str) -> Iterator["_Archive"]:
        with open(path, "rb") as fh:
            head = fh.read(4)
            fh.seek(0)
            try:
                zf = zipfile.ZipFile(fh)
            except zipfile.BadZipFile:
                if head[:2] == b"PK":
                    raise ProjectFileError(f"{label} is truncated or corrupt") from None
                raise ProjectFileError(f"{label} is not a Sequence Workbench project (not a zip file)") from None
            with zf:
                _check_directory(zf.infolist(), label)
                archive = cls(zf, label)
                archive.manifest = _parse_manifest(archive, label)
                yield archive

    def has(self, name: str) -> bool:
        return name in self.infos

    def unknown_members(self) -> list[str]:
        return [name for name in self.infos if name not in KNOWN_MEMBERS]

    def raw(self, name: str) -> bytes:
        info = self.infos[name]
        if info.flag_bits & 0x1:
            raise ProjectFileError(f"{self.label}: member {name} is encrypted")
        try:
            return self.zf.read(info)
        except NotImplementedError as exc:
            raise ProjectFileError(f"{self.label}: member {name} uses an unsupported compression ({exc})") from exc
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
            raise ProjectFileError(f"{self.label}: member {name} is corrupt ({exc})") from exc

    def check_listing(self) -> None:
        """The manifest's member table is well formed and every member it lists is in the zip."""
        members = self.manifest.get("members")
        if not isinstance(members, dict):
            raise ProjectFileError(f"{self.label}: manifest.json is malformed (no member table)")
        for name, entry in members.items():
            if not (isinstance(entry, dict) and _is_int(entry.get("size")) and isinstance(entry.get("sha256"), str)):
                raise ProjectFileError(f"{self.label}: manifest.json is malformed (bad entry for {name!r})")
            if name not in self.infos:
                raise ProjectFileError(f"{self.label}: member {name} is missing (the file is incomplete)")

    def read(self, name: str) -> bytes:
        """A member's bytes, checked against the size and sha256 the manifest recorded."""
        entry = self._entry(name)
        data = self.raw(name)
        self._verify(name, entry, data, _sha256(data))
        return data

    def tensor_members(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """The tensors of the safetensors members ``names`` (present ones), each member verified against its sha256.

        A stored member (as this version writes them) is read straight from the file into the tensors, each
        allocated once with its own memory: no intermediate bytes object, no second copy.  The sha256 of what was
        read is computed on a worker thread while the next tensor is read (hashlib releases the GIL), and checked
        before anything is returned.  The zip's CRC-32 of those members is not checked as well: the sha256 covers
        the same bytes.  Members compressed by other zip tools take the general path (read, checked, parsed).
        """
        names = [name for name in names if self.has(name)]
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqwb-sha256") \
            if (os.cpu_count() or 1) > 1 else None
        try:
            pending = []
            for name in names:
                entry = self._entry(name)
                read = self._read_stored_tensors(name, pool)
                if read is None:
                    data = self.read(name)   # checked against its sha256 here
                    pending.append((name, entry, _read_tensors(_io.BytesIO(data), len(data), self.label, name), None))
                else:
                    pending.append((name, entry, *read))
            out = {}
            for name, entry, tensors, digest in pending:
                if digest is not None:
                    self._verify_digest(name, entry, digest if isinstance(digest, str) else digest.result())
                out[name] = tensors
            return out
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _read_stored_tensors(self, name: str, pool: ThreadPoolExecutor | None) -> tuple[dict[str, Any], Any] | None:
        """``(tensors, sha256 or its future)`` of a stored member read from the file; None if it is compressed."""
        info = self.infos[name]
        if info.flag_bits & 0x1:
            raise ProjectFileError(f"{self.label}: member {name} is encrypted")
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            return None
        fh = self.zf.fp
        # The local file header (the zip "APPNOTE", 4.3.7): 30 fixed bytes, then the name and the extra field,
        # whose lengths are at offsets 26 and 28; the member's data follows them.
        fh.seek(info.header_offset)
        local = fh.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise ProjectFileError(f"{self.label}: member {name} is corrupt (bad local header)")
        fh.seek(info.header_offset + 30 + int.from_bytes(local[26:28], "little")
                + int.from_bytes(local[28:30], "little"))
        digest = hashlib.sha256()
        update = digest.update if pool is None else (lambda data: pool.submit(digest.update, data))
        try:
            tensors = _read_tensors(fh, info.file_size, self.label, name, update)
        except ProjectFileError:
            # A header that does not parse: if the member is damaged, say so (checksum mismatch) rather than
            # describe the damage; otherwise read() passes and the same error is raised from its bytes.
            _read_tensors(_io.BytesIO(self.read(name)), info.file_size, self.label, name)
            raise
        return tensors, (digest.hexdigest() if pool is None else pool.submit(digest.hexdigest))

    def _entry(self, name: str) -> dict[str, Any]:
        entry = self.manifest["members"].get(name)
        if entry is None:
            raise ProjectFileError(f"{self.label}: member {name} is not listed in the manifest")
        return entry

    def _verify(self, name: str, entry: dict[str, Any], data: Any, digest: str) -> None:
        if len(data) != entry["size"]:
            raise ProjectFileError(f"{self.label}: member {name} is corrupt (checksum mismatch)")
        self._verify_digest(name, entry, digest)

    def _verify_digest(self, name: str, entry: dict[str, Any], digest: str) -> None:
        if digest != entry["sha256"].lower() or self.infos[name].file_size != entry["size"]:
            raise ProjectFileError(f"{self.label}: member {name} is corrupt (checksum mismatch)")

    def json(self, name: str, *, required: bool = False) -> Any:
        if not self.has(name):
            if required:
                raise ProjectFileError(f"{self.label}: member {name} is missing")
            return None
        return _parse_json(self.read(name), self.label, name)

    def arrays(self, name: str) -> dict[str, np.ndarray]:
        data = self.read(name)
        try:
            return safetensors.numpy.load(data)
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise ProjectFileError(f"{self.label}: member {name} is not a valid safetensors file ({exc})") from exc


def _check_directory(infos: list[zipfile.ZipInfo], label: str) -> None:
    """Refuse unsafe names, duplicates and absurd sizes, from the zip directory alone (nothing decompressed)."""
    counts = Counter(info.filename for info in infos)
    duplicates = sorted(name for name, n in counts.items() if n > 1)
    if duplicates:
        raise ProjectFileError(f"{label}: duplicate member name(s) {', '.join(map(repr, duplicates))}")
    total = 0
    for info in infos:
        name = info.filename
        if _unsafe_name(name):
            raise ProjectFileError(f"{label}: member name {name!r} is not allowed (absolute path or '..')")
        if info.file_size > MAX_MEMBER_BYTES:
            raise ProjectFileError(f"{label}: member {name!r} is too large ({info.file_size} bytes)")
        if info.file_size > BOMB_MIN_BYTES and info.file_size > BOMB_MAX_RATIO * max(info.compress_size, 1):
            raise ProjectFileError(f"{label}: member {name!r} expands {info.file_size // max(info.compress_size, 1)}"
                                   f"-fold (a zip bomb?)")
        total += info.file_size
    if total > MAX_TOTAL_BYTES:
        raise ProjectFileError(f"{label}: the members add up to {total} bytes, more than a project can hold")


_DRIVE = re.compile(r"^[A-Za-z]:")


def _unsafe_name(name: str) -> bool:
    # Nothing is ever extracted to disk, but a file with such names was not written by us.
    if not name or name.startswith(("/", "\\")) or _DRIVE.match(name):
        return True
    return any(part == ".." for part in re.split(r"[/\\]", name))


def _parse_json(data: bytes, label: str, name: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProjectFileError(f"{label}: member {name} is not valid JSON ({exc})") from exc


def _parse_manifest(archive: _Archive, label: str) -> dict[str, Any]:
    if not archive.has(MANIFEST):
        raise ProjectFileError(f"{label} is not a Sequence Workbench project (it has no {MANIFEST})")
    manifest = _parse_json(archive.raw(MANIFEST), label, MANIFEST)
    if not isinstance(manifest, dict):
        raise ProjectFileError(f"{label}: {MANIFEST} is malformed (expected a JSON object)")
    if manifest.get("format") != MAGIC_FORMAT:
        raise ProjectFileError(f"{label} is not a Sequence Workbench project (its manifest says format "
                               f"{manifest.get('format')!r}, expected {MAGIC_FORMAT!r})")
    version = manifest.get("format_version")
    if not _is_int(version) or version < 0:
        raise ProjectFileError(f"{label}: {MANIFEST} is malformed (format_version {version!r})")
    return manifest


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_version(manifest: dict[str, Any], label: str) -> None:
    version = manifest["format_version"]
    if version > FORMAT_VERSION:
        app = manifest.get("app_version")
        app = app if isinstance(app, str) and app else "unknown"
        raise ProjectFileError(f"{label} was made by a newer version: Sequence Workbench {app} (file format "
                               f"{version}; this version, {__version__}, reads formats up to {FORMAT_VERSION})")


def _migrate(doc: dict[str, Any], version: int, label: str) -> dict[str, Any]:
    for step in range(version, FORMAT_VERSION):
        migration = MIGRATIONS.get(step)
        if migration is None:
            raise ProjectFileError(f"{label}: no migration from format {step} to {step + 1}; this version of "
                                   f"Sequence Workbench cannot read the file")
        try:
            doc = migration(doc)
        except ProjectFileError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failing migration is a file that cannot be read
            raise ProjectFileError(f"{label}: migrating from format {step} to {step + 1} failed ({exc})") from exc
        if not isinstance(doc, dict):
            raise ProjectFileError(f"{label}: the migration from format {step} returned {type(doc).__name__}")
    return doc


# ---- building the Project --------------------------------------------------------------------------------------

def _malformed(label: str, member: str, what: str) -> ProjectFileError:
    return ProjectFileError(f"{label}: member {member} is malformed ({what})")


def _project_from(doc: dict[str, Any], label: str) -> Project:
    data = doc.get("project")
    if not isinstance(data, dict):
        raise _malformed(label, PROJECT, f"expected a JSON object, got {type(data).__name__}")
    try:
        project = Project.from_json(data)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise _malformed(label, PROJECT, str(exc)) from exc
    vocab = doc.get("vocab")
    if vocab is not None and not (isinstance(vocab, list) and all(isinstance(tok, str) for tok in vocab)):
        raise _malformed(label, VOCAB, "expected a list of strings")
    project.vocab = vocab
    return project


def _get(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any, label: str, member: str,
         where: str) -> Any:
    """``obj[key]`` if it has the expected JSON type, ``default`` if absent; a clear error otherwise."""
    value = obj.get(key, default)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _malformed(label, member, f"{where}: {key!r} should be {getattr(kind, '__name__', kind)}, "
                                        f"got {type(value).__name__}")
    return value


def _history_from(doc: Any, archive: _Archive) -> History:
    label = archive.label
    if doc is None:
        return History()
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list):
        raise _malformed(label, HISTORY, "expected an object with a list of runs")
    arrays = archive.arrays(HISTORY_ARRAYS) if archive.has(HISTORY_ARRAYS) else {}
    return History(runs=[_run_from(item, arrays, label) for item in doc["runs"]])


def _run_from(item: Any, arrays: dict[str, np.ndarray], label: str) -> Run:
    if not isinstance(item, dict):
        raise _malformed(label, HISTORY, f"a run is {type(item).__name__}, not an object")
    run_id = _get(item, "id", str, None, label, HISTORY, "run")
    where = f"run {run_id}"
    run = Run(
        id=run_id,
        started=_get(item, "started", str, "", label, HISTORY, where),
        settings=_get(item, "settings", dict, {}, label, HISTORY, where),
        status=_get(item, "status", str, "new", label, HISTORY, where),
        message=_get(item, "message", str, "", label, HISTORY, where),
        gtt=_get(item, "gtt", list, [], label, HISTORY, where),
        samples=_get(item, "samples", list, [], label, HISTORY, where),
    )
    for entry in _get(item, "series", list, [], label, HISTORY, where):
        if not isinstance(entry, dict):
            raise _malformed(label, HISTORY, f"{where}: a series entry is not an object")
        name = _get(entry, "name", str, None, label, HISTORY, where)
        key = _get(entry, "key", str, None, label, HISTORY, where)
        if name in run.series:
            raise _malformed(label, HISTORY, f"{where}: series {name!r} appears twice")
        run.series[name] = _series_from(arrays, key, f"{where}, series {name!r}", label)
    return run


def _series_from(arrays: dict[str, np.ndarray], key: str, where: str, label: str) -> Series:
    step, value = arrays.get(f"{key}/step"), arrays.get(f"{key}/value")
    if step is None or value is None:
        raise _malformed(label, HISTORY_ARRAYS, f"{where} has no numbers")
    if step.ndim != 1 or value.ndim != 1 or len(step) != len(value):
        raise _malformed(label, HISTORY_ARRAYS, f"{where}: step and value must be 1-D arrays of equal length")
    if step.dtype.kind not in "iu" or value.dtype.kind not in "fiu":
        raise _malformed(label, HISTORY_ARRAYS, f"{where}: unexpected dtypes {step.dtype}, {value.dtype}")
    # tolist() already gives Python ints (any integer dtype) and floats (float dtypes); integer values need float()
    values = value.tolist() if value.dtype.kind == "f" else [float(v) for v in value.tolist()]
    return Series(step=step.tolist(), value=values)


def _checkpoint_from(state: Any, archive: _Archive, *, weights: bool) -> Checkpoint | None:
    label = archive.label
    if state is None:
        if archive.has(WEIGHTS):
            raise ProjectFileError(f"{label}: member {WEIGHTS} is present but {TRAINER_STATE} is missing")
        return None
    if not isinstance(state, dict):
        raise _malformed(label, TRAINER_STATE, f"expected a JSON object, got {type(state).__name__}")
    where = "trainer state"
    checkpoint = Checkpoint(
        weights={},
        graph_hash=_get(state, "graph_hash", str, None, label, TRAINER_STATE, where),
        step=_get(state, "step", int, 0, label, TRAINER_STATE, where),
        epoch=_get(state, "epoch", int, 0, label, TRAINER_STATE, where),
        optimizer_meta=_get(state, "optimizer_meta", dict, {}, label, TRAINER_STATE, where),
        trainer_state=_get(state, "trainer_state", dict, {}, label, TRAINER_STATE, where),
    )
    if weights:
        if not archive.has(WEIGHTS):
            raise ProjectFileError(f"{label}: member {WEIGHTS} is missing")
        members = archive.tensor_members([WEIGHTS, OPTIMIZER, STATE])
        checkpoint.weights = members[WEIGHTS]
        # Optional members: a checkpoint without optimizer state still loads (training restarts the optimizer).
        checkpoint.optimizer = members.get(OPTIMIZER, {})
        checkpoint.tensors = members.get(STATE, {})
    return checkpoint


# safetensors dtype name -> torch dtype name
_SAFETENSORS_DTYPE_NAMES = {st: name for name, st in _SAFETENSORS_DTYPES.items()}


def _read_tensors(stream: IO[bytes], size: int, label: str, name: str,
                  update: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """The tensors of the ``size``-byte safetensors member at ``stream``'s position, each read straight into its
    own newly allocated tensor; ``update`` (if given) receives every piece read, in order (to hash the member).

    The header is checked as strictly as the safetensors library checks it (known dtypes, shapes, offsets that
    tile the data exactly with no gaps or overlaps) before any tensor is allocated."""
    import torch

    def bad(why: str) -> ProjectFileError:
        return ProjectFileError(f"{label}: member {name} is not a valid safetensors file ({why})")

    def read_into(view: memoryview) -> None:
        done = 0
        while done < len(view):
            n = stream.readinto(view[done:])
            if not n:
                raise ProjectFileError(f"{label}: member {name} is truncated")
            done += n
        if update is not None:
            update(view)

    if size < 8:
        raise bad("shorter than the 8-byte header length")
    prefix = memoryview(bytearray(8))
    read_into(prefix)
    header_len = int.from_bytes(prefix, "little")
    if header_len > size - 8:
        raise bad(f"the header length {header_len} runs past the end of the member")
    text = memoryview(bytearray(header_len))
    read_into(text)
    try:
        header = json.loads(bytes(text).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad(f"its header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (isinstance(metadata, dict)
                                     and all(isinstance(v, str) for v in metadata.values())):
        raise bad("its __metadata__ is not a table of strings")
    spans = []
    for key, spec in header.items():
        if not isinstance(spec, dict):
            raise bad(f"the entry of {key!r} is not an object")
        dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
        if dtype not in _SAFETENSORS_DTYPE_NAMES:
            raise bad(f"{key!r} has the unknown dtype {dtype!r}")
        torch_dtype = getattr(torch, _SAFETENSORS_DTYPE_NAMES[dtype], None)
        if torch_dtype is None:
            raise bad(f"{key!r} has the dtype {dtype}, which this torch does not have")
        if not (isinstance(shape, list) and all(_is_int(d) and d >= 0 for d in shape)):
            raise bad(f"{key!r} has the malformed shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            raise bad(f"{key!r} has malformed data_offsets {offsets!r}")
        itemsize = torch.empty((), dtype=torch_dtype).element_size()
        if offsets[1] - offsets[0] != math.prod(shape) * itemsize:
            raise bad(f"{key!r}: data_offsets {offsets} do not fit shape {shape} of {dtype}")
        spans.append((offsets[0], offsets[1], key, torch_dtype, shape))
    spans.sort(key=lambda span: span[:2])
    end = 0
    for begin, stop, key, _, _ in spans:
        if begin != end:
            raise bad(f"the data of {key!r} does not start where the previous tensor ends")
        end = stop
    if end != size - 8 - header_len:
        raise bad(f"the tensors cover {end} bytes of data, the member holds {size - 8 - header_len}")
    tensors = {}
    for _, _, key, torch_dtype, shape in spans:
        boolean = torch_dtype == torch.bool
        tensor = torch.empty(shape, dtype=torch.uint8 if boolean else torch_dtype)
        if tensor.numel():
            read_into(memoryview(tensor.reshape(-1).view(torch.uint8).numpy()))
        tensors[key] = tensor != 0 if boolean else tensor   # bytes other than 0 and 1 are no valid bools
    order = _ordered_names(metadata)
    ordered = {key: tensors[key] for key in order if key in tensors}
    ordered.update((key, t) for key, t in tensors.items() if key not in ordered)
    return ordered


def _ordered_names(metadata: Any) -> list[str]:
    try:
        order = json.loads((metadata or {}).get(_ORDER_KEY, "[]"))
    except (ValueError, TypeError, AttributeError, RecursionError):
        return []
    return [key for key in order if isinstance(key, str)] if isinstance(order, list) else []


# ---- plugins ---------------------------------------------------------------------------------------------------

def project_plugins_used(project: Project, registry: Any) -> list[dict[str, Any]]:
    """``{"kind", "id", "distribution", "version"}`` of every installed contribution the project uses.

    That is the task, every block type in the graph and every cell chosen in a block's parameters (a field with
    ``ui="cell"``).  ``version`` is the providing distribution's version when the registry knows it, else the
    contribution's own version.  Contributions the registry does not know are skipped.
    """
    used: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for kind, spec_id in _contributions_of(project, registry):
        if (kind, spec_id) in seen or not _registry_has(registry, kind, spec_id):
            continue
        seen.add((kind, spec_id))
        spec = registry.get(kind, spec_id)
        used.append({"kind": kind, "id": spec_id, "distribution": getattr(spec, "distribution", "") or "",
                     "version": _provider_version(registry, spec)})
    return used


def _contributions_of(project: Project, registry: Any) -> Iterator[tuple[str, str]]:
    """(kind, id) of the task, the graph's block types and the cells named in block parameters."""
    yield "task", project.task.id
    for node in project.graph.nodes.values():
        if node.type in (TASK_INPUT, TASK_OUTPUT):
            continue
        yield "architecture", node.type
        if not _registry_has(registry, "architecture", node.type):
            continue  # without the block's spec we cannot tell which params name cells
        try:
            infos = field_info(registry.get("architecture", node.type).params)
        except TypeError:
            continue
        for info in infos:
            cell = node.params.get(info.name, info.default)
            if info.ui == "cell" and isinstance(cell, str):
                yield "cell", cell


def _registry_has(registry: Any, kind: str, spec_id: str) -> bool:
    try:
        return bool(registry.has(kind, spec_id))
    except LookupError:  # a kind this registry has no table for (e.g. from a newer version's manifest)
        return False


def _provider_version(registry: Any, spec: Any) -> str:
    distribution, plugin = getattr(spec, "distribution", ""), getattr(spec, "plugin", "")
    for dist, entry_point, version in getattr(registry, "plugins", []):
        if dist == distribution and entry_point == plugin and version:
            return str(version)
    return str(getattr(spec, "version", "") or "")


def _check_plugins(manifest: Any, project: Project, registry: Any, label: str) -> None:
    """Raise MissingPluginError naming every needed contribution the registry lacks (and who provides it)."""
    needed: dict[tuple[str, str], dict[str, Any]] = {}
    plugins = manifest.get("plugins", []) if isinstance(manifest, dict) else []
    if not isinstance(plugins, list):
        raise ProjectFileError(f"{label}: {MANIFEST} is malformed (plugins is not a list)")
    for entry in plugins:
        if not (isinstance(entry, dict) and isinstance(entry.get("kind"), str) and isinstance(entry.get("id"), str)):
            raise ProjectFileError(f"{label}: {MANIFEST} is malformed (bad plugin entry {entry!r})")
        needed.setdefault((entry["kind"], entry["id"]), entry)
    # The graph and task count even when the manifest does not list them (hand-edited or older files).
    for kind, spec_id in _contributions_of(project, registry):
        needed.setdefault((kind, spec_id), {"kind": kind, "id": spec_id})
    missing = [entry for (kind, spec_id), entry in needed.items() if not _registry_has(registry, kind, spec_id)]
    if missing:
        error = MissingPluginError(f"{label}: this project needs "
                                   f"{'; '.join(_describe_missing(e, registry) for e in missing)}")
        error.missing = missing  # type: ignore[attr-defined]  # for the GUI's plugin dialog
        raise error


def _describe_missing(entry: dict[str, Any], registry: Any = None) -> str:
    text = f"{entry['kind']} {entry['id']!r}"
    dist = entry.get("distribution")
    installable = isinstance(dist, str) and bool(dist) and not dist.startswith("(")
    if installable:
        version = entry.get("version")
        text += f" from the plugin distribution {dist!r}" + (f" {version}" if version else "")
        # installed but turned off or broken: say that rather than "install it"
        for off in getattr(registry, "disabled", ()):
            if off.distribution == dist:
                return text + f", which is installed but {off.reason}"
        for failure in getattr(registry, "failures", ()):
            if failure.distribution == dist:
                return text + f", which is installed but failed: {failure.error}"
    text += ", which is not installed"
    return text + (f" (pip install {dist})" if installable else "")
