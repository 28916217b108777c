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
then renames over the target, so a crash leaves either the old or the new file, never half of one.

Format changes: bump :data:`FORMAT_VERSION`, register a migration from the previous version with
:func:`register_migration`, and add a fixture file of the old version to ``tests/fixtures/projects``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import secrets
import shutil
import time
import warnings
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import numpy as np
import safetensors.numpy

from workbench import __version__
from workbench.core.atomic import fsync_dir
from workbench.core.errors import MissingPluginError, ProjectFileError
from workbench.core.graph import TASK_INPUT, TASK_OUTPUT
from workbench.core.project import Checkpoint, History, Project, Run, Series
from workbench.plugin_system.params import field_info

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


def save_project(project: Project, path: str | os.PathLike[str], *, plugins_used: list[dict[str, Any]] | None = None,
                 backup: bool = True) -> None:
    """Write ``project`` to ``path`` atomically; with ``backup`` the previous file is kept as ``<name>.bak``.

    ``plugins_used`` (usually :func:`project_plugins_used`) goes into the manifest, so that a machine without
    one of those plugins can say which distribution to install.  On any error the target is left untouched.
    """
    members = _project_members(project)
    manifest = _manifest_for(members, plugins_used or [])
    members.insert(0, _json_member(MANIFEST, manifest, pretty=True))  # first, so that zip listings show it first
    _write_atomically(_save_target(path), members, backup=backup)


def _project_members(project: Project) -> list[_Member]:
    members = [_json_member(PROJECT, project.to_json(), pretty=True)]
    if project.vocab is not None:
        members.append(_json_member(VOCAB, list(project.vocab)))
    history_doc, history_arrays = _encode_history(project.history)
    members.append(_json_member(HISTORY, history_doc))
    members.append(_Member(HISTORY_ARRAYS, history_arrays, zipfile.ZIP_STORED))
    checkpoint = project.checkpoint
    if checkpoint is not None:
        members += [
            _Member(WEIGHTS, _tensor_bytes(checkpoint.weights, "weights"), zipfile.ZIP_STORED),
            _Member(OPTIMIZER, _tensor_bytes(checkpoint.optimizer, "optimizer"), zipfile.ZIP_STORED),
            _Member(STATE, _tensor_bytes(checkpoint.tensors, "tensors"), zipfile.ZIP_STORED),
            _json_member(TRAINER_STATE, {
                "graph_hash": checkpoint.graph_hash,
                "step": int(checkpoint.step),
                "epoch": int(checkpoint.epoch),
                "optimizer_meta": checkpoint.optimizer_meta,
                "trainer_state": checkpoint.trainer_state,
            }),
        ]
    return members


def _manifest_for(members: list[_Member], plugins_used: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "format": MAGIC_FORMAT,
        "format_version": FORMAT_VERSION,
        "app_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "plugins": [dict(entry) for entry in plugins_used],
        "members": {m.name: {"size": len(m.data), "sha256": hashlib.sha256(m.data).hexdigest()} for m in members},
    }


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


def _tensor_bytes(tensors: dict[str, Any], what: str) -> bytes:
    """safetensors bytes of ``tensors``, copying only what has to be copied (GPU, non-contiguous, shared)."""
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


def _write_atomically(target: Path, members: list[_Member], *, backup: bool) -> None:
    directory = target.parent
    tmp, fd = _create_temp(directory, target.name, ".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            _write_zip(fh, members)
            fh.flush()
            os.fsync(fh.fileno())
        _copy_mode(target, tmp)
        if backup and target.exists():
            _keep_backup(target)
        os.replace(tmp, target)
    except BaseException:
        _remove_quietly(tmp)
        raise
    _fsync_directory(directory)


def _temp_name(directory: Path, stem: str, suffix: str) -> Path:
    # Hidden (".") so file browsers do not show it; random so that two saves never share a temp file.
    return directory / f".{stem}.{secrets.token_hex(6)}{suffix}"


def _create_temp(directory: Path, stem: str, suffix: str) -> tuple[Path, int]:
    while True:
        tmp = _temp_name(directory, stem, suffix)
        try:
            # 0o666 & ~umask, like a normally created file (mkstemp would give 0o600).
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        return tmp, fd


def _write_zip(fh: IO[bytes], members: list[_Member]) -> None:
    stamp = time.localtime()[:6]
    with zipfile.ZipFile(fh, "w", allowZip64=True) as zf:
        for member in members:
            info = zipfile.ZipInfo(member.name, date_time=stamp)
            info.compress_type = member.compress
            info.external_attr = 0o644 << 16  # rw-r--r-- for unzip tools
            # writestr with the bytes we already hold: no extra copy of the (large) tensor data.
            zf.writestr(info, member.data)


def _copy_mode(target: Path, tmp: Path) -> None:
    # Keep the permissions the user gave the project file.
    if target.exists():
        with contextlib.suppress(OSError):
            shutil.copymode(target, tmp)


def _keep_backup(target: Path) -> None:
    """Make ``<name>.bak`` a copy of ``target`` without ever moving ``target`` away."""
    backup = target.with_name(target.name + ".bak")
    tmp = _temp_name(target.parent, target.name, ".bak.tmp")
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
        entry = self.manifest["members"].get(name)
        if entry is None:
            raise ProjectFileError(f"{self.label}: member {name} is not listed in the manifest")
        data = self.raw(name)
        if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"].lower():
            raise ProjectFileError(f"{self.label}: member {name} is corrupt (checksum mismatch)")
        return data

    def json(self, name: str, *, required: bool = False) -> Any:
        if not self.has(name):
            if required:
                raise ProjectFileError(f"{self.label}: member {name} is missing")
            return None
        return _parse_json(self.read(name), self.label, name)

    def tensors(self, name: str) -> dict[str, Any]:
        return _decode_tensors(self.read(name), self.label, name)

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
        app = manifest.get("app_version", "unknown")
        raise ProjectFileError(f"{label} was made by a newer version of Sequence Workbench (file format {version}, "
                               f"this version reads up to {FORMAT_VERSION}; app version {app})")


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
    return Series(step=[int(s) for s in step.tolist()], value=[float(v) for v in value.tolist()])


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
        checkpoint.weights = archive.tensors(WEIGHTS)
        # Optional members: a checkpoint without optimizer state still loads (training restarts the optimizer).
        checkpoint.optimizer = archive.tensors(OPTIMIZER) if archive.has(OPTIMIZER) else {}
        checkpoint.tensors = archive.tensors(STATE) if archive.has(STATE) else {}
    return checkpoint


def _decode_tensors(data: bytes, label: str, name: str) -> dict[str, Any]:
    import safetensors.torch

    try:
        loaded = safetensors.torch.load(data)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise ProjectFileError(f"{label}: member {name} is not a valid safetensors file ({exc})") from exc
    ordered = {key: loaded[key] for key in _stored_order(data) if key in loaded}
    ordered.update((key, tensor) for key, tensor in loaded.items() if key not in ordered)
    return ordered


def _stored_order(data: bytes) -> list[str]:
    """The tensor names in the order they were saved (from our header metadata); [] if not recorded."""
    try:
        size = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + size])
        order = json.loads(header.get("__metadata__", {}).get(_ORDER_KEY, "[]"))
    except (ValueError, TypeError, AttributeError, RecursionError):
        return []  # the order is cosmetic; safetensors itself has validated the tensors
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
        error = MissingPluginError(f"{label}: this project needs {'; '.join(map(_describe_missing, missing))}")
        error.missing = missing  # type: ignore[attr-defined]  # for the GUI's plugin dialog
        raise error


def _describe_missing(entry: dict[str, Any]) -> str:
    text = f"{entry['kind']} {entry['id']!r}"
    dist = entry.get("distribution")
    installable = isinstance(dist, str) and bool(dist) and not dist.startswith("(")
    if installable:
        version = entry.get("version")
        text += f" from the plugin distribution {dist!r}" + (f" {version}" if version else "")
    text += ", which is not installed"
    return text + (f" (pip install {dist})" if installable else "")
