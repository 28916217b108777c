"""Which plugin contributions a project uses, and who provides them.

A project's manifest records, for every contribution it uses, the distribution that provided it (and its
version).  When the project is read with a registry:

- an id that now comes from *another* distribution is refused, naming both (a second distribution registering
  the same id must not take over a saved project, silently changing what it computes), and so is an id that two
  distributions register at once;
- an id that the recorded distribution has since renamed (it lists the old id in a spec's ``former_ids``, as
  when a plugin namespaces its ids) is read as the new id — in memory: the file is not touched;
- a contribution the machine lacks is named with the distribution to install (:class:`MissingPluginError`).

Nothing here writes the file, and a save never names another provider than the one the project was read with
(:func:`project_plugins_used` refuses).
"""

from __future__ import annotations

import re
import weakref
from typing import Any, Iterator

from workbench.core.graph import TASK_INPUT, TASK_OUTPUT
from workbench.core.project import Project
from workbench.core.projectfile.format import MANIFEST
from workbench.schema.errors import MissingPluginError, PluginProviderError, ProjectFileError
from workbench.schema.params import field_info

#: kinds a project can open without: the decoder is only its default for decoding (checked when decoding)
OPTIONAL_KINDS = frozenset({"decoder"})

# The providers each project object was read with, by id(project): {(kind, id): distribution}.  A save compares
# against them (see project_plugins_used); the entry goes when the project object does.
_READ_WITH: dict[int, dict[tuple[str, str], str]] = {}


def project_plugins_used(project: Project, registry: Any) -> list[dict[str, Any]]:
    """``{"kind", "id", "distribution", "version"}`` of every installed contribution the project uses.

    That is the task, every block type in the graph, every cell chosen in a block's parameters (a field with
    ``ui="cell"``) and the decoder.  ``version`` is the providing distribution's version when the registry knows
    it, else the contribution's own version.  Contributions the registry does not know are skipped.

    Raises :class:`PluginProviderError` when a contribution now comes from another distribution than the one
    the project was read with (the registry changed while it was open): saving would rewrite the file to name
    the other provider.
    """
    used: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    read_with = _READ_WITH.get(id(project), {})
    changed = []
    for kind, spec_id in (*_contributions_of(project, registry), ("decoder", project.decode.decoder)):
        if (kind, spec_id) in seen or not _registry_has(registry, kind, spec_id):
            continue
        seen.add((kind, spec_id))
        spec = registry.get(kind, spec_id)
        dist = getattr(spec, "distribution", "") or ""
        before = read_with.get((kind, spec_id))
        if before is not None and _norm(before) != _norm(dist):
            changed.append(f"{kind} {spec_id!r} came from {before} when the project was opened and comes from "
                           f"{dist or 'an unknown distribution'} now")
        used.append({"kind": kind, "id": spec_id, "distribution": dist, "version": _provider_version(registry, spec)})
    if changed:
        raise PluginProviderError(f"not saved: {'; '.join(changed)}; the file would name another provider than "
                                  f"the one that made it (reopen the project to check it against the plugins "
                                  f"installed now)")
    return used


def _contributions_of(project: Project, registry: Any) -> Iterator[tuple[str, str]]:
    """(kind, id) of the task, the graph's block types and the cells named in block parameters."""
    if project.task.id:         # an empty project has no task yet
        yield "task", project.task.id
    for node in project.graph.nodes.values():
        if node.type in (TASK_INPUT, TASK_OUTPUT):
            continue
        yield "architecture", node.type
        for name, default in _cell_fields(registry, node.type):
            cell = node.params.get(name, default)
            if isinstance(cell, str):
                yield "cell", cell


def _cell_fields(registry: Any, block_type: str) -> list[tuple[str, Any]]:
    """``(name, default)`` of the block's parameters that choose a cell (``ui="cell"``); [] when unknown."""
    if not _registry_has(registry, "architecture", block_type):
        return []  # without the block's spec we cannot tell which params name cells
    try:
        infos = field_info(registry.get("architecture", block_type).params)
    except TypeError:
        return []
    return [(info.name, info.default) for info in infos if info.ui == "cell"]


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


def _norm(name: str) -> str:
    """Distribution names compare as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


#: a distribution name as PEP 508 allows it (letters and digits, with ``.``, ``_`` and ``-`` inside), of a length a
#: real one has: nothing that pip would read as an option, a URL, a path or a second argument
_DISTRIBUTION_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?")
#: what a kind looks like (``cell``, ``feature_track``, or a kind of a newer version such as ``visualiser``); a
#: kind that is anything else is shown quoted, never as words of the message
_KIND = re.compile(r"[a-z][a-z_]{0,39}")


def _installable(dist: Any) -> bool:
    """Whether ``dist`` (read from a project file) is a distribution name the app may name as what to install.

    The install hint is built here, from this name alone: a file that records ``--index-url https://… name`` as
    its provider must not have that command shown as advice, so a recorded provider that is not a plain
    distribution name counts as no provider at all.  A placeholder such as "(registered in code)" is not one
    either."""
    return isinstance(dist, str) and _DISTRIBUTION_NAME.fullmatch(dist) is not None


def _shown_version(version: Any) -> str:
    """A recorded version as the message may show it: a PEP 440 version, normalised, else nothing."""
    from packaging.version import InvalidVersion, Version
    if not isinstance(version, str) or len(version) > 64:
        return ""
    try:
        return str(Version(version))
    except InvalidVersion:
        return ""


def _shown(value: Any, limit: int = 80) -> str:
    """A value from the file, quoted and cut short: control characters escaped by repr, nothing taken as words."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _shown_kind(kind: Any) -> str:
    return kind if isinstance(kind, str) and _KIND.fullmatch(kind) else f"contribution of kind {_shown(kind, 40)}"


def _manifest_entries(manifest: Any, label: str) -> list[dict[str, Any]]:
    plugins = manifest.get("plugins", []) if isinstance(manifest, dict) else []
    if not isinstance(plugins, list):
        raise ProjectFileError(f"{label}: {MANIFEST} is malformed (plugins is not a list)")
    for entry in plugins:
        if not (isinstance(entry, dict) and isinstance(entry.get("kind"), str) and isinstance(entry.get("id"), str)):
            raise ProjectFileError(f"{label}: {MANIFEST} is malformed (bad plugin entry {entry!r})")
    return [dict(entry) for entry in plugins]


def check_plugins(manifest: Any, project: Project, registry: Any, label: str) -> None:
    """Check the project's contributions against ``registry``: the same providers, and nothing missing.

    Renames ids that their recorded distribution has renamed (``former_ids``) in ``project``; raises
    :class:`PluginProviderError` for a contribution that another distribution provides now, or two at once, and
    :class:`MissingPluginError` naming every needed contribution the registry lacks (and who provides it).
    Writes nothing.
    """
    entries = _manifest_entries(manifest, label)
    _adopt_renamed_ids(entries, project, registry)
    needed: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in entries:
        needed.setdefault((entry["kind"], entry["id"]), entry)
    # The graph and task count even when the manifest does not list them (hand-edited or older files).
    for kind, spec_id in _contributions_of(project, registry):
        needed.setdefault((kind, spec_id), {"kind": kind, "id": spec_id})

    wrong = [problem for entry in needed.values() for problem in [_provider_problem(entry, registry)] if problem]
    if wrong:
        raise PluginProviderError(f"{label}: refused, so that the project computes what it was saved with: "
                                  f"{'; '.join(wrong)}; the file was not changed")
    missing = [entry for (kind, spec_id), entry in needed.items()
               if kind not in OPTIONAL_KINDS and not _registry_has(registry, kind, spec_id)]
    if missing:
        error = MissingPluginError(f"{label}: this project needs "
                                   f"{'; '.join(_describe_missing(e, registry) for e in missing)}")
        error.missing = missing  # type: ignore[attr-defined]  # for the GUI's plugin dialog
        raise error
    _remember(project, needed, registry)


def _provider_problem(entry: dict[str, Any], registry: Any) -> str:
    """What is wrong with who provides ``entry`` here ("" if nothing): two providers, or another one."""
    kind, spec_id, recorded = entry["kind"], entry["id"], entry.get("distribution")
    rivals = getattr(registry, "conflicts", {}).get(kind, {}).get(spec_id)
    if rivals:
        names = " and ".join(sorted({s.distribution or s.plugin or "?" for s in rivals}))
        saved = f" (it was saved with {recorded})" if _installable(recorded) else ""
        return (f"{kind} {_shown(spec_id)} is registered by {names}{saved}, so neither can be used: uninstall or "
                f"disable the one that is not meant")
    if not _installable(recorded) or not _registry_has(registry, kind, spec_id):
        return ""   # no provenance to compare (hand-made or in-code); missing ones are reported separately
    spec = registry.get(kind, spec_id)
    now = getattr(spec, "distribution", "") or ""
    if _norm(now) == _norm(str(recorded)):
        return ""
    version = _shown_version(entry.get("version"))
    return (f"{kind} {_shown(spec_id)} was provided by {recorded}{' ' + version if version else ''} when the "
            f"project was saved, but here it comes from {now or 'an unknown distribution'}; install {recorded} "
            f"(pip install {recorded}) and uninstall or disable {now}")


def _adopt_renamed_ids(entries: list[dict[str, Any]], project: Project, registry: Any) -> None:
    """Read an id the recorded distribution has renamed as its new id, in ``project`` and ``entries``.

    Only the recorded distribution's own renames count: another distribution listing the same former id cannot
    take the project over.  A file without a record of the provider (hand-made) takes a rename when exactly one
    installed distribution declares it."""
    renames: dict[tuple[str, str], str] = {}
    recorded = {(e["kind"], e["id"]): e.get("distribution") for e in entries}
    ids = list(recorded) + [key for key in _contributions_of(project, registry) if key not in recorded]
    for kind, old in ids:
        dist = recorded.get((kind, old))
        if _installable(dist):
            if _registry_has(registry, kind, old) and \
                    _norm(getattr(registry.get(kind, old), "distribution", "") or "") == _norm(str(dist)):
                continue   # still provided under this id by the same distribution
            successor = registry.successor(kind, old, str(dist)) if hasattr(registry, "successor") else None
        else:
            if _registry_has(registry, kind, old):
                continue
            candidates = getattr(registry, "former", {}).get(kind, {}).get(old, [])
            successor = candidates[0] if len(candidates) == 1 else None
        if successor is not None:
            renames[(kind, old)] = successor.id
    if not renames:
        return
    for entry in entries:
        entry["id"] = renames.get((entry["kind"], entry["id"]), entry["id"])
    _rename_in_project(project, registry, renames)


def _rename_in_project(project: Project, registry: Any, renames: dict[tuple[str, str], str]) -> None:
    """Apply ``{(kind, old id): new id}`` to the task, the block types, the cells chosen in nodes and the
    decoder of ``project``."""
    project.task.id = renames.get(("task", project.task.id), project.task.id)
    project.decode.decoder = renames.get(("decoder", project.decode.decoder), project.decode.decoder)
    for node in project.graph.nodes.values():
        node.type = renames.get(("architecture", node.type), node.type)
        for name, default in _cell_fields(registry, node.type):
            cell = node.params.get(name, default)
            if isinstance(cell, str) and ("cell", cell) in renames:
                node.params[name] = renames[("cell", cell)]


def _remember(project: Project, needed: dict[tuple[str, str], dict[str, Any]], registry: Any) -> None:
    """Keep who provided each contribution when ``project`` was read, for the check on saving."""
    providers = {}
    for kind, spec_id in needed:
        if _registry_has(registry, kind, spec_id):
            providers[(kind, spec_id)] = getattr(registry.get(kind, spec_id), "distribution", "") or ""
    key = id(project)
    _READ_WITH[key] = providers
    weakref.finalize(project, _READ_WITH.pop, key, None)


def _describe_missing(entry: dict[str, Any], registry: Any = None) -> str:
    """One missing contribution, and what to do about it.  Everything that comes from the file is shown quoted
    (the id, an unknown kind), and the install command is made here from a validated name (see _installable)."""
    text = f"{_shown_kind(entry['kind'])} {_shown(entry['id'])}"
    dist = entry.get("distribution")
    installable = _installable(dist)
    if installable:
        version = _shown_version(entry.get("version"))
        text += f" from the plugin distribution {dist!r}" + (f" {version}" if version else "")
        # installed but turned off or broken: say that rather than "install it"
        for off in getattr(registry, "disabled", ()):
            if _norm(off.distribution or "") == _norm(str(dist)):
                return text + f", which is installed but {off.reason}"
        for failure in getattr(registry, "failures", ()):
            if _norm(failure.distribution or "") == _norm(str(dist)) and failure.category != "conflict":
                return text + f", which is installed but failed: {failure.error}"
        return text + f", which is not installed (pip install {dist})"
    if isinstance(dist, str) and dist and not dist.startswith("("):
        # not a distribution name: an option, a URL or a command hidden in the file; none of it is repeated
        return text + (", which is not installed (the file names its provider in a form that is not a "
                       "distribution name, so no install command is suggested: find the plugin that provides "
                       "it yourself)")
    return text + ", which is not installed"
