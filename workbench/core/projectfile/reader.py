"""Reading a project file: its manifest alone, or the whole :class:`Project` built from its members' JSON (after
any migration) and its tensor members.  Reading never writes anything."""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from workbench.core.project import Checkpoint, History, Project, Run, Series
from workbench.core.projectfile.archive import Archive, reading, symlink_members
from workbench.core.projectfile.format import (HISTORY, HISTORY_ARRAYS, MAX_POSITION, OPTIMIZER, PROJECT, STATE,
                                               TRAINER_STATE, VOCAB, WEIGHTS, check_version, migrate)
from workbench.core.projectfile.plugins import check_plugins
from workbench.schema.errors import ProjectFileError


class ProjectFileWarning(UserWarning):
    """A project file was read, but something in it was skipped (e.g. members this version does not know)."""


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a project file, after checking that it is one (format magic, sane zip).

    The format version is not checked, so that callers can report what made a newer file; compare
    ``manifest["format_version"]`` with :data:`FORMAT_VERSION` yourself.
    """
    label = _label(path)
    with reading(label), Archive.open(path, label) as archive:
        return archive.manifest


def load_project(path: str | os.PathLike[str], *, registry: Any = None, weights: bool = True) -> Project:
    """Read a project file; raises :class:`ProjectFileError` (one clear line) for anything wrong with it.

    ``registry`` (a :class:`~workbench.plugin_system.loader.Registry`): when given, every plugin contribution the
    project needs must be installed, otherwise :class:`MissingPluginError` names each one and what provides it;
    and each must come from the distribution the file records for it, otherwise :class:`PluginProviderError`
    names both (an id a distribution has renamed since is read as its new id; the file is not changed).

    ``weights=False`` is the quick read (``seqwb info``, file lists): the tensor members are neither read nor
    verified, and a project with a checkpoint gets a :class:`Checkpoint` with the right ``graph_hash``, ``step``,
    ``epoch`` and JSON state but empty ``weights``, ``optimizer`` and ``tensors``.
    """
    label = _label(path)
    with reading(label), Archive.open(path, label) as archive:
        project = _load(archive, registry=registry, weights=weights)
        ignored = archive.unknown_members()
        links = symlink_members(archive.zf.infolist())
    # Warned outside reading(): with warnings turned into errors, the warning must not become a ProjectFileError.
    if ignored:
        warnings.warn(ignored_members_text(label, ignored, links), ProjectFileWarning, stacklevel=2)
    return project


def ignored_members_text(label: str, ignored: list[str], links: frozenset[str] | set[str] = frozenset(),
                         shown: int = 5) -> str:
    """One sentence for the members a file has that this version does not read (none of them was opened)."""
    names = [f"{name!r} (a symbolic link)" if name in links else repr(name) for name in ignored[:shown]]
    more = f" and {len(ignored) - shown} more" if len(ignored) > shown else ""
    return (f"{label}: {len(ignored)} member{'s' if len(ignored) != 1 else ''} this version does not know "
            f"{'were' if len(ignored) != 1 else 'was'} left unread: {', '.join(names)}{more}")


def _load(archive: Archive, *, registry: Any, weights: bool) -> Project:
    label = archive.label
    check_version(archive.manifest, label)
    archive.check_listing()
    doc = {
        "manifest": archive.manifest,
        "project": archive.json(PROJECT, required=True),
        "vocab": archive.json(VOCAB),
        "history": archive.json(HISTORY),
        "trainer_state": archive.json(TRAINER_STATE),
    }
    doc = migrate(doc, archive.manifest["format_version"], label)
    project = _project_from(doc, label)
    if registry is not None:
        # Before the big members are read: a missing plugin, or one from another distribution, is the quickest
        # answer to give.
        check_plugins(doc.get("manifest"), project, registry, label)
    project.history = _history_from(doc.get("history"), archive)
    project.checkpoint = _checkpoint_from(doc.get("trainer_state"), archive, weights=weights)
    return project


def _label(path: str | os.PathLike[str]) -> str:
    return os.fsdecode(os.fspath(path))


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


def _position(state: dict[str, Any], key: str, label: str) -> int:
    """The checkpoint's step or epoch: an int from 0 to :data:`MAX_POSITION` (a step near 2**63 would overflow
    every seed computed from it, far into training)."""
    value = _get(state, key, int, 0, label, TRAINER_STATE, "trainer state")
    if not 0 <= value <= MAX_POSITION:
        raise _malformed(label, TRAINER_STATE, f"trainer state: {key} {value} is out of range (0 to {MAX_POSITION:,})")
    return value


def _history_from(doc: Any, archive: Archive) -> History:
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
        gtt=_records(item, "gtt", label, where),
        samples=_records(item, "samples", label, where),
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


def _records(item: dict[str, Any], key: str, label: str, where: str) -> list[dict[str, Any]]:
    """A run's probe or sample records: objects whose ``step`` (when they have one) is an int, as everything that
    reads them (resuming truncates them by step) takes them to be."""
    records = _get(item, key, list, [], label, HISTORY, where)
    for record in records:
        if not isinstance(record, dict):
            raise _malformed(label, HISTORY, f"{where}: a {key} record is {type(record).__name__}, not an object")
        step = record.get("step", 0)
        if not isinstance(step, int) or isinstance(step, bool):
            raise _malformed(label, HISTORY, f"{where}: a {key} record has the step {step!r}")
    return records


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


def _checkpoint_from(state: Any, archive: Archive, *, weights: bool) -> Checkpoint | None:
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
        step=_position(state, "step", label),
        epoch=_position(state, "epoch", label),
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
