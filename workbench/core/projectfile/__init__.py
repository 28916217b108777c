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
then renames over the target, so a crash leaves either the old or the new file, never half of one.  The hidden
temporary file a killed save leaves behind (``.NAME.<pid>.<host tag>-<random>.tmp``) is removed by a later save
or open once its writer is gone (:func:`workbench.atomic.remove_stale_temps`).  A read-only file is not replaced
unless the caller says so (ask first); a failed save is one :class:`ProjectSaveError` that names the file and says
that the old file is intact.  Reading is bounded: each member kind has a size limit enforced while it is inflated,
only deflate and stored members are read, and only regular files are opened.  The lock writers hold beside a
project is :mod:`.lock`; opening and saving among several writers is :mod:`workbench.core.project_store`.

Format changes: bump :data:`FORMAT_VERSION` (in :mod:`.format`), register a migration from the previous version
with :func:`register_migration`, and add a fixture file of the old version to ``tests/fixtures/projects``.

The modules, lowest first (each imports only those above it):

    format    member names, format magic and version, size limits, migrations
    tensors   the tensor members: safetensors header + the tensors' memory, written and read piece by piece
    writer    save_project: members, manifest, streamed writes, atomic replace with a .bak
    archive   an open zip: directory checks, manifest parsing, members read against their checksums
    plugins   which plugins a project uses; the message naming the missing ones
    reader    read_manifest, load_project: migrating and building the Project
    lock      the advisory lock beside a project that names its writer

The names below are re-exported from there.  :data:`FORMAT_VERSION` and the size limits are read from
:mod:`.format` when a file is written or read: change them there, not here.
"""

from workbench.core.projectfile.format import (FORMAT_VERSION, HISTORY, HISTORY_ARRAYS, KNOWN_MEMBERS, MAGIC_FORMAT,
                                               MANIFEST, MIGRATIONS, OPTIMIZER, PROJECT, STATE, TRAINER_STATE, VOCAB,
                                               WEIGHTS, ProjectSaveError, ReadOnlyProjectError, register_migration)
from workbench.core.projectfile.plugins import project_plugins_used
from workbench.core.projectfile.reader import ProjectFileWarning, load_project, read_manifest
from workbench.core.projectfile.writer import check_writable, save_project

__all__ = [
    "FORMAT_VERSION",
    "MAGIC_FORMAT",
    "MIGRATIONS",
    "ProjectFileWarning",
    "ProjectSaveError",
    "ReadOnlyProjectError",
    "check_writable",
    "load_project",
    "project_plugins_used",
    "read_manifest",
    "register_migration",
    "save_project",
    # the member names: the format's vocabulary, for tests and tools that take a file apart
    "HISTORY", "HISTORY_ARRAYS", "KNOWN_MEMBERS", "MANIFEST", "OPTIMIZER", "PROJECT", "STATE", "TRAINER_STATE",
    "VOCAB", "WEIGHTS",
]
