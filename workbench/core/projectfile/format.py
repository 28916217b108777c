"""What a project file is made of: member names, the format's magic and version, the limits a reader enforces and
the migrations that bring an older file up to the current version.

Writer and reader look :data:`FORMAT_VERSION`, :data:`MIGRATIONS` and the size limits up here at call time
(``format.FORMAT_VERSION``, not a copy bound at import), so that changing one of them here changes both sides.
"""

from __future__ import annotations

import stat
from typing import Any, Callable, TypeGuard

from workbench import __version__
from workbench.schema.errors import ProjectFileError, WorkbenchError

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

# Refuse absurd archives before decompressing anything (sizes come from the zip directory), and again while reading:
# a member is never inflated past the limit of its kind, whatever its header says.
_GIB = 1 << 30
_MIB = 1 << 20
MAX_MEMBER_BYTES = 4 * _GIB
MAX_TOTAL_BYTES = 8 * _GIB
BOMB_MIN_BYTES = 10 * _MIB
BOMB_MAX_RATIO = 1000
#: What each member may hold once inflated.  The JSON members are read whole into memory and parsed (a parsed JSON
#: document takes several times its text), so they get limits that fit what they hold: the manifest is a table of
#: nine entries and a plugin list; project.json a graph and its settings; trainer_state.json a position and RNG
#: states (~30 kB); vocab.json a few MB even for a large word vocabulary; history.json the names of the series and
#: the probes' and samples' records of long runs.  The tensor members are streamed into tensors.
MEMBER_LIMITS: dict[str, int] = {
    MANIFEST: 1 * _MIB,
    PROJECT: 32 * _MIB,
    TRAINER_STATE: 16 * _MIB,
    VOCAB: 256 * _MIB,
    HISTORY: 512 * _MIB,
    HISTORY_ARRAYS: 2 * _GIB,
    WEIGHTS: MAX_MEMBER_BYTES,
    OPTIMIZER: MAX_MEMBER_BYTES,
    STATE: MAX_MEMBER_BYTES,
}
#: A project has nine members; a later version may add a few.  Far more is not a project (each one is listed,
#: and each would have been warned about).
MAX_MEMBERS = 256
#: The compressions a project file uses: stored (the tensors) and deflate (the JSON).  bzip2 and LZMA inflate a
#: whole compressed block at once (zipfile cannot bound their output), and nothing of ours writes them.
COMPRESSIONS = {0: "stored", 8: "deflate"}
#: Largest step, epoch or batch index a file may give: a trillion steps is beyond any run, and keeps every seed
#: computed from a position (seed + step) inside 64 bits.
MAX_POSITION = 10 ** 12


def human_bytes(n: int) -> str:
    """``1.5 GiB``, ``320 KiB``: sizes in messages (binary units, as the limits are set)."""
    for unit, size in (("GiB", _GIB), ("MiB", _MIB), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}".replace(".0 ", " ")
    return f"{n} bytes"


def describe_kind(mode: int) -> str:
    """What a path that is not a regular file is, in words (``os.stat().st_mode``)."""
    for test, words in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                        (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return words
    return "not a regular file"


class ProjectSaveError(WorkbenchError, OSError):
    """A project could not be saved; the message names the file and says what is on disk now (the previous
    version, intact).  An OSError too, so that callers catching the operating system's errors still do."""

    def __init__(self, message: str, errno_: int | None = None):
        super().__init__(message)
        self.errno = errno_


class ReadOnlyProjectError(ProjectSaveError):
    """The project file is read-only; saving would replace it.  Ask, then save with ``overwrite_read_only``."""


def register_migration(from_version: int, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Register ``fn`` as the step from format ``from_version`` to ``from_version + 1`` (see :data:`MIGRATIONS`)."""
    if isinstance(from_version, bool) or not isinstance(from_version, int) or from_version < 0:
        raise ValueError(f"from_version must be a non-negative int, got {from_version!r}")
    if from_version in MIGRATIONS:
        raise ValueError(f"a migration from format {from_version} is registered already")
    MIGRATIONS[from_version] = fn


def is_int(value: Any) -> TypeGuard[int]:
    """A JSON integer (json gives bools for true/false, which Python counts as ints)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_version(manifest: dict[str, Any], label: str) -> None:
    """Refuse a file of a format newer than this version reads, naming the version that wrote it."""
    version = manifest["format_version"]
    if version > FORMAT_VERSION:
        app = manifest.get("app_version")
        app = app if isinstance(app, str) and app else "unknown"
        raise ProjectFileError(f"{label} was made by a newer version: Sequence Workbench {app} (file format "
                               f"{version}; this version, {__version__}, reads formats up to {FORMAT_VERSION})")


def migrate(doc: dict[str, Any], version: int, label: str) -> dict[str, Any]:
    """The JSON members ``doc`` of a format-``version`` file, brought up to :data:`FORMAT_VERSION` step by step."""
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
