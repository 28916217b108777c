"""Plugin discovery: our own loader over the ``seqwb.plugins`` entry points.

Unlike ``PluginManager.load_setuptools_entrypoints`` (which stops at the first broken plugin), every entry point
is loaded, and every hook implementation called, inside its own ``try``; a failure is recorded with the
distribution, entry point and error, and the rest loads.  The manager is built by a function, never a module
global, so each caller (and each test) gets a fresh one.
"""

from __future__ import annotations

import importlib.metadata as md
import traceback
from dataclasses import dataclass, field
from typing import Any, Iterable

import pluggy

from workbench import hookspecs
from workbench.plugin_system import user_settings
from workbench.plugin_system.versions import ApiRangeError, range_allows
from workbench.schema.errors import UnknownContributionError
from workbench.schema.params import suggest
from workbench.schema.registry import DisabledPlugin, PluginFailure, PluginNote
from workbench.schema.specs import SPEC_KINDS, with_source

__all__ = ["DisabledPlugin", "PluginFailure", "PluginNote", "Registry", "UnknownContributionError", "discover",
           "make_plugin_manager"]


@dataclass
class Registry:
    """Every contribution that loaded, by kind and id, plus the failures (implements
    :class:`workbench.schema.registry.Registry`)."""

    items: dict[str, dict[str, Any]] = field(default_factory=lambda: {k: {} for k in SPEC_KINDS})
    failures: list[PluginFailure] = field(default_factory=list)
    plugins: list[tuple[str, str, str]] = field(default_factory=list)  # (distribution, entry point, version)
    notes: list[PluginNote] = field(default_factory=list)
    disabled: list[DisabledPlugin] = field(default_factory=list)

    def add(self, kind: str, spec: Any) -> None:
        self.items[kind][spec.id] = spec

    def get(self, kind: str, spec_id: str) -> Any:
        table = self.items[kind]
        if spec_id not in table:
            known = ", ".join(sorted(table)) or "(none)"
            raise UnknownContributionError(
                f"unknown {kind} {spec_id!r}{suggest(spec_id, table)}; installed {kind}s: {known}")
        return table[spec_id]

    def has(self, kind: str, spec_id: str) -> bool:
        return spec_id in self.items[kind]

    def cell(self, spec_id: str) -> Any:
        return self.get("cell", spec_id)

    def block(self, spec_id: str) -> Any:
        return self.get("architecture", spec_id)

    def task(self, spec_id: str) -> Any:
        return self.get("task", spec_id)

    def decoder(self, spec_id: str) -> Any:
        return self.get("decoder", spec_id)

    def template(self, spec_id: str) -> Any:
        return self.get("template", spec_id)

    def all(self) -> Iterable[tuple[str, Any]]:
        for kind, table in self.items.items():
            for spec in table.values():
                yield kind, spec


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs.SeqwbHookSpecs)
    return pm


def _dist_of(ep: md.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "", ""
    try:
        return dist.metadata["Name"] or "", dist.version or ""
    except Exception:  # noqa: BLE001 - broken metadata must not stop discovery
        return "", ""


def _entry_points(group: str) -> list[md.EntryPoint]:
    eps = md.entry_points(group=group)
    # De-duplicate (the same distribution can be visible twice on sys.path) and keep a stable order.
    seen: dict[tuple[str, str], md.EntryPoint] = {}
    for ep in eps:
        seen.setdefault((ep.name, ep.value), ep)
    return sorted(seen.values(), key=lambda e: (not e.value.startswith("workbench_plugins"), e.name))


def _api_check(obj: Any) -> tuple[str, str]:
    """``(problem, note)`` for a loaded plugin's declared API range; both empty when all is well."""
    declared = getattr(obj, hookspecs.API_ATTRIBUTE, None)
    if declared is None:
        if getattr(obj, "__name__", "").startswith("workbench_plugins"):
            return "", ""   # the built-ins ship with this very contract
        return "", (f"declares no {hookspecs.API_ATTRIBUTE}; loaded on trust (plugin API here: "
                    f"{hookspecs.API_VERSION})")
    try:
        ok = range_allows(declared, hookspecs.API_VERSION)
    except ApiRangeError as exc:
        return f"invalid {hookspecs.API_ATTRIBUTE}: {exc}", ""
    if not ok:
        return (f"incompatible: it supports plugin API {declared}, this Sequence Workbench provides "
                f"{hookspecs.API_VERSION}; install a version of the plugin made for it"), ""
    return "", ""


def discover(*, group: str | None = None, extra: Iterable[tuple[str, Any]] = (),
             entry_points: bool = True, honour_settings: bool = True) -> Registry:
    """Load every plugin of ``group`` (plus ``extra`` ``(name, module_or_object)`` pairs) into a new Registry.

    Plugins the user disabled (:mod:`workbench.plugin_system.user_settings`) are listed in
    ``registry.disabled`` and never imported; ``honour_settings=False`` ignores the settings file (not the
    environment).
    """
    # Resolved here, not as a default argument: ``import workbench.hookspecs`` imports this module while
    # hookspecs is still half-initialised, so nothing of it may be read at import time.
    group = group or hookspecs.ENTRY_POINT_GROUP
    pm = make_plugin_manager()
    registry = Registry()
    sources: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, entry point)

    candidates: list[tuple[str, str, str, Any]] = []  # (name, distribution, version, loader)
    if entry_points:
        for ep in _entry_points(group):
            dist, version = _dist_of(ep)
            candidates.append((ep.name, dist, version, ep))
    for name, obj in extra:
        candidates.append((name, "(registered in code)", "", obj))

    settings_names, settings_problem = user_settings.read_disabled() if honour_settings else ([], "")
    if settings_problem:
        registry.notes.append(PluginNote("", "(plugin settings)", settings_problem))

    for name, dist, version, target in candidates:
        reason = user_settings.disabled_reason(dist, name, settings_names)
        if reason:
            registry.disabled.append(DisabledPlugin(dist, name, version, reason))
            continue
        try:
            obj = target.load() if isinstance(target, md.EntryPoint) else target
        except Exception as exc:  # noqa: BLE001 - report and continue with the rest
            registry.failures.append(PluginFailure(dist, name, f"{type(exc).__name__}: {exc}",
                                                   traceback.format_exc()))
            continue
        problem, note = _api_check(obj)
        if problem:
            category = "error" if problem.startswith("invalid ") else "incompatible"
            registry.failures.append(PluginFailure(dist, name, problem, category=category))
            continue
        if note:
            registry.notes.append(PluginNote(dist, name, note))
        try:
            pm.register(obj, name=name)
        except Exception as exc:  # noqa: BLE001 - report and continue with the rest
            registry.failures.append(PluginFailure(dist, name, f"{type(exc).__name__}: {exc}",
                                                   traceback.format_exc()))
            continue
        sources[name] = (dist, name)
        registry.plugins.append((dist, name, version))
        unknown = [attr for attr in dir(obj) if attr.startswith("seqwb_") and attr not in hookspecs.HOOKS
                   and callable(getattr(obj, attr, None))]
        if unknown:
            # pluggy would ignore a misspelled hook silently; say so instead
            registry.failures.append(PluginFailure(
                dist, name, f"unknown hook(s) {', '.join(unknown)}; known hooks: {', '.join(hookspecs.HOOKS)}"))

    for hook_name, kind in hookspecs.HOOKS.items():
        spec_type: Any = SPEC_KINDS[kind]
        caller = getattr(pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            dist, ep_name = sources.get(impl.plugin_name, ("", impl.plugin_name))
            try:
                result = impl.function()
                if result is None:
                    continue
                if isinstance(result, (str, bytes, dict)) or not hasattr(result, "__iter__"):
                    raise TypeError(f"{hook_name} must return a list of specs, got {type(result).__name__}")
                result = list(result)
            except Exception as exc:  # noqa: BLE001
                registry.failures.append(PluginFailure(dist, ep_name, f"{type(exc).__name__}: {exc}",
                                                       traceback.format_exc(), hook=hook_name))
                continue
            for spec in result:
                try:
                    if not isinstance(spec, spec_type):
                        raise TypeError(f"{hook_name} returned {type(spec).__name__}, expected {spec_type.__name__}")
                    spec.check()
                    if registry.has(kind, spec.id):
                        other = registry.get(kind, spec.id)
                        raise ValueError(f"{kind} id {spec.id!r} is already provided by "
                                         f"{other.distribution or other.plugin}")
                    registry.add(kind, with_source(spec, dist, ep_name))
                except Exception as exc:  # noqa: BLE001
                    registry.failures.append(PluginFailure(dist, ep_name, f"{type(exc).__name__}: {exc}",
                                                           traceback.format_exc(), hook=hook_name))
    return registry


_DEFAULT: Registry | None = None


def default_registry(refresh: bool = False) -> Registry:
    """A process-wide registry for the CLI and the GUI (tests call :func:`discover` for a fresh one)."""
    global _DEFAULT
    if _DEFAULT is None or refresh:
        _DEFAULT = discover()
    return _DEFAULT
