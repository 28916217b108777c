"""Which plugin contributions a project uses (recorded in the manifest when it is saved), and the message naming
every one a machine lacks when it is loaded (with the distribution to install)."""

from __future__ import annotations

from typing import Any, Iterator

from workbench.core.graph import TASK_INPUT, TASK_OUTPUT
from workbench.core.project import Project
from workbench.core.projectfile.format import MANIFEST
from workbench.schema.errors import MissingPluginError, ProjectFileError
from workbench.schema.params import field_info

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


def check_plugins(manifest: Any, project: Project, registry: Any, label: str) -> None:
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
