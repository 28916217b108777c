"""Plugin discovery: our own loader over the ``seqwb.plugins`` entry points.

Unlike ``PluginManager.load_setuptools_entrypoints`` (which stops at the first broken plugin), every entry point
is loaded, and every hook implementation called, on its own; a failure is recorded with the distribution, entry
point and error, and the rest loads.  "Its own" is more than a ``try``: a third-party plugin's import and each of
its hooks run in a thread with a time limit, and nothing it raises, ``SystemExit`` and ``KeyboardInterrupt``
included, leaves that thread (:mod:`workbench.plugin_system.isolation`); a hook's result must be a finished list
of at most :data:`MAX_SPECS_PER_HOOK` specs.  Each plugin gets a plugin manager of its own, built by a function,
never a module global, so each caller (and each test) gets a fresh one.

Ids are owned (:mod:`workbench.plugin_system.ownership`): every spec is collected first and the ids decided
afterwards, so the outcome never depends on the order in which entry points happen to be found.  An id that two
distributions register is used by neither (both are reported); an id in another distribution's namespace is
refused.
"""

from __future__ import annotations

import importlib.metadata as md
import types
from dataclasses import dataclass, field, fields
from typing import Any, Iterable

import pluggy

from workbench import hookspecs
from workbench.plugin_system import user_settings
from workbench.plugin_system.isolation import (Outcome, call_isolated, call_trusted, clean_line, describe_exception,
                                               format_traceback, time_limit, type_name)
from workbench.plugin_system.ownership import (bare_ids_note, is_builtin, namespace, namespace_problem,
                                               owns_namespaces)
from workbench.plugin_system.versions import ApiRangeError, range_allows
from workbench.schema.errors import ContributionConflictError, UnknownContributionError
from workbench.schema.params import suggest
from workbench.schema.registry import DisabledPlugin, PluginFailure, PluginNote, Provider
from workbench.schema.specs import SPEC_KINDS, split_id, with_source

__all__ = ["DisabledPlugin", "PluginFailure", "PluginNote", "Provider", "Registry", "UnknownContributionError",
           "discover", "make_plugin_manager"]


def _kinds_table() -> dict[str, dict[str, Any]]:
    return {k: {} for k in SPEC_KINDS}


@dataclass
class Registry:
    """Every contribution that loaded, by kind and id, plus the failures (implements
    :class:`workbench.schema.registry.Registry`)."""

    items: dict[str, dict[str, Any]] = field(default_factory=_kinds_table)
    failures: list[PluginFailure] = field(default_factory=list)
    plugins: list[tuple[str, str, str]] = field(default_factory=list)  # (distribution, entry point, version)
    notes: list[PluginNote] = field(default_factory=list)
    disabled: list[DisabledPlugin] = field(default_factory=list)
    #: kind -> id -> the specs of every distribution that registers it; none of them is in ``items``
    conflicts: dict[str, dict[str, list[Any]]] = field(default_factory=_kinds_table)
    #: kind -> former id -> the registered specs that list it in ``former_ids``
    former: dict[str, dict[str, list[Any]]] = field(default_factory=_kinds_table)

    def add(self, kind: str, spec: Any) -> None:
        self.items[kind][spec.id] = spec
        for old in getattr(spec, "former_ids", ()):
            self.former.setdefault(kind, {}).setdefault(old, []).append(spec)

    def get(self, kind: str, spec_id: str) -> Any:
        table = self.items[kind]
        if spec_id not in table:
            rivals = self.conflicts.get(kind, {}).get(spec_id)
            if rivals:
                raise ContributionConflictError(conflict_message(kind, spec_id, rivals))
            renamed = self.former.get(kind, {}).get(spec_id)
            if renamed:
                now = " or ".join(f"{s.id!r} (from {s.distribution or s.plugin})" for s in renamed)
                raise UnknownContributionError(f"unknown {kind} {spec_id!r}: it is now {now}")
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

    def provider(self, kind: str, spec_id: str) -> Provider | None:
        """Who provides ``spec_id`` here (distribution, its version, entry point), or None if nobody does.

        This is what the inspector shows for a cell ("from seqwb-indrnn 0.2.0") and what a project records."""
        spec = self.items.get(kind, {}).get(spec_id)
        if spec is None:
            return None
        return provider_of(spec, self.plugins)

    def update_from(self, other: "Registry") -> None:
        """Take every table of ``other`` (a fresh discovery), in place: whatever holds this registry (a window's
        document, palette and forms) sees the plugins installed or removed since.  Each table is replaced whole,
        so a reader in another thread sees either the old table or the new one."""
        for f in fields(self):
            setattr(self, f.name, getattr(other, f.name))

    def successor(self, kind: str, old_id: str, distribution: str) -> Any:
        """The spec of ``distribution`` that lists ``old_id`` among its former ids, or None."""
        for spec in self.former.get(kind, {}).get(old_id, ()):
            if user_settings.normalize(spec.distribution) == user_settings.normalize(distribution):
                return spec
        return None


def provider_of(spec: Any, plugins: Iterable[tuple[str, str, str]]) -> Provider:
    """The :class:`Provider` of a loaded spec; the version is its distribution's (as the loader found it)."""
    dist, entry_point = getattr(spec, "distribution", "") or "", getattr(spec, "plugin", "") or ""
    version = next((v for d, e, v in plugins if d == dist and e == entry_point and v), "")
    return Provider(dist, version, entry_point)


def conflict_message(kind: str, spec_id: str, rivals: list[Any]) -> str:
    dists = [s.distribution or "?" for s in rivals]
    # the distributions, or, when one distribution registers it from two entry points, the entry points too
    names = sorted({d if dists.count(d) == 1 else f"{d} ({s.plugin})" for d, s in zip(dists, rivals)})
    return (f"{kind} {spec_id!r} is registered by {' and '.join(names)}, so neither is used (which one was meant "
            f"cannot be known): uninstall or disable one of them (pip uninstall NAME, or SEQWB_DISABLE_PLUGINS)")


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
    try:
        declared = getattr(obj, hookspecs.API_ATTRIBUTE, None)
    except Exception as exc:  # noqa: BLE001 - e.g. a module-level __getattr__ that raises on every name
        return f"reading its {hookspecs.API_ATTRIBUTE} raised {describe_exception(exc)}", ""
    if declared is None:
        if getattr(obj, "__name__", "").startswith("workbench_plugins"):
            return "", ""   # the built-ins ship with this very contract
        return "", (f"declares no {hookspecs.API_ATTRIBUTE}; loaded on trust (plugin API here: "
                    f"{hookspecs.API_VERSION})")
    try:
        ok = range_allows(declared, hookspecs.API_VERSION)
    except ApiRangeError as exc:
        return f"invalid {hookspecs.API_ATTRIBUTE}: {clean_line(str(exc))}", ""
    if not ok:
        return (f"incompatible: it supports plugin API {clean_line(str(declared))}, this Sequence Workbench "
                f"provides {hookspecs.API_VERSION}; install a version of the plugin made for it"), ""
    return "", ""


#: the most specs one hook may return (the built-ins' longest list has a few dozen): a hook that returns more is
#: that plugin's failure, not the window's memory and time
MAX_SPECS_PER_HOOK = 1000


@dataclass(frozen=True)
class _Registration:
    """What loading one plugin gave, as plain data (built in the plugin's thread, see :func:`_register`)."""

    problem: str = ""                 # the plugin is not used, with this reason
    category: str = "error"
    note: str = ""
    hooks: dict[str, Any] = field(default_factory=dict)    # hook name -> the function to call
    unknown: tuple[str, ...] = ()     # names that look like hooks but are none


def _register(target: Any, name: str) -> _Registration:
    """Import the plugin, check its API range and find its hooks.  Runs in the plugin's thread (third-party
    plugins) and raises whatever the plugin raises."""
    obj = target.load() if isinstance(target, md.EntryPoint) else target
    problem, note = _api_check(obj)
    if problem:
        category = "incompatible" if problem.startswith("incompatible") else "error"
        return _Registration(problem=problem, category=category)
    # A manager of its own per plugin: pluggy checks each hook's signature on register and raises for a bad one,
    # and a plugin that hangs half-way through registering leaves nothing half-done in a shared manager.
    pm = make_plugin_manager()
    pm.register(obj, name=name)
    hooks = {hook: impl.function for hook in hookspecs.HOOKS for impl in getattr(pm.hook, hook).get_hookimpls()}
    # pluggy would ignore a misspelled hook silently; it is reported instead
    unknown = tuple(attr for attr in dir(obj) if attr.startswith("seqwb_") and attr not in hookspecs.HOOKS
                    and callable(getattr(obj, attr, None)))
    return _Registration(note=note, hooks=hooks, unknown=unknown)


def _call_hook(function: Any, hook_name: str, spec_type: type) -> list[tuple[Any, str, str]]:
    """Call one hook and check what it returned: ``(spec, "", "")`` for each valid spec, ``(None, error, detail)``
    for each bad one.  Runs in the plugin's thread; raises when the result as a whole is unusable."""
    result = function()
    if result is None:
        return []
    # Only a list (or a tuple) is taken: it is finished and its length is known.  A generator or any other lazy
    # iterable could run for ever, or yield without end, in the middle of the application's start.
    if type(result) not in (list, tuple):
        raise TypeError(f"{hook_name} must return a list of {spec_type.__name__}, got {_kind_of(result)}"
                        + (" (a generator is not taken: it could run for ever)" if _is_lazy(result) else ""))
    if len(result) > MAX_SPECS_PER_HOOK:
        raise ValueError(f"{hook_name} returned {len(result):,} items; at most {MAX_SPECS_PER_HOOK:,} are taken "
                         f"from one hook")
    checked: list[tuple[Any, str, str]] = []
    for spec in result:
        try:
            if not issubclass(type(spec), spec_type):   # the real type: __class__ can be faked
                raise TypeError(f"{hook_name} returned {_kind_of(spec)}, expected {spec_type.__name__}")
            spec.check()
            checked.append((spec, "", ""))
        except Exception as exc:  # noqa: BLE001 - one bad spec; its siblings still count
            checked.append((None, describe_exception(exc), format_traceback(exc)))
    return checked


def _kind_of(value: Any) -> str:
    return type_name(value)


def _is_lazy(value: Any) -> bool:
    return isinstance(value, (types.GeneratorType, types.AsyncGeneratorType)) or hasattr(type(value), "__next__")


@dataclass
class _Loaded:
    """A plugin that registered: where it comes from, its hooks, and whether its code may still be running."""

    name: str
    distribution: str
    hooks: dict[str, Any]
    trusted: bool
    stuck: bool = False    # a call timed out: its other hooks are not called


def discover(*, group: str | None = None, extra: Iterable[tuple[str, Any]] = (),
             entry_points: bool = True, honour_settings: bool = True,
             time_limit_s: float | None = None) -> Registry:
    """Load every plugin of ``group`` (plus ``extra`` ``(name, module_or_object)`` pairs) into a new Registry.

    Plugins the user disabled (:mod:`workbench.plugin_system.user_settings`) are listed in
    ``registry.disabled`` and never imported; ``honour_settings=False`` ignores the settings file (not the
    environment).  Every plugin but the built-ins is imported, and each of its hooks called, in a thread of its
    own that may take ``time_limit_s`` seconds (default: :func:`~workbench.plugin_system.isolation.time_limit`);
    whatever such code does — raise anything, exit, block, return something endless — is recorded as that
    plugin's failure (:mod:`workbench.plugin_system.isolation`) and the rest loads.
    """
    # Resolved here, not as a default argument: ``import workbench.hookspecs`` imports this module while
    # hookspecs is still half-initialised, so nothing of it may be read at import time.
    group = group or hookspecs.ENTRY_POINT_GROUP
    limit = time_limit_s if time_limit_s is not None else time_limit()
    registry = Registry()

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

    def run(plugin_trusted: bool, fn: Any, what: str) -> Outcome:
        return call_trusted(fn) if plugin_trusted else call_isolated(fn, limit=limit, what=what)

    loaded: list[_Loaded] = []
    names: set[str] = set()
    for name, dist, version, target in candidates:
        reason = user_settings.disabled_reason(dist, name, settings_names)
        if reason:
            registry.disabled.append(DisabledPlugin(dist, name, version, reason))
            continue
        if name in names:
            registry.failures.append(PluginFailure(
                dist, name, f"ValueError: another plugin is registered under the name {name!r} already"))
            continue
        trusted = is_builtin(dist)
        outcome = run(trusted, lambda target=target, name=name: _register(target, name), "importing the plugin")
        if not outcome.ok:
            registry.failures.append(PluginFailure(dist, name, outcome.error, outcome.detail))
            continue
        registration: _Registration = outcome.value
        if registration.problem:
            registry.failures.append(PluginFailure(dist, name, registration.problem,
                                                   category=registration.category))
            continue
        if registration.note:
            registry.notes.append(PluginNote(dist, name, registration.note))
        names.add(name)
        registry.plugins.append((dist, name, version))
        loaded.append(_Loaded(name, dist, registration.hooks, trusted))
        if registration.unknown:
            registry.failures.append(PluginFailure(
                dist, name, f"unknown hook(s) {', '.join(registration.unknown)}; known hooks: "
                            f"{', '.join(hookspecs.HOOKS)}"))

    # Every spec first; which ids are used is decided once all are known (see _settle).
    claims: list[_Claim] = []
    mine: set[tuple[str, str, str, str]] = set()   # (distribution, entry point, kind, id): a plugin's own repeats
    for hook_name, kind in hookspecs.HOOKS.items():
        spec_type: Any = SPEC_KINDS[kind]
        for plugin in loaded:
            function = plugin.hooks.get(hook_name)
            if function is None or plugin.stuck:
                continue
            dist, ep_name = plugin.distribution, plugin.name
            outcome = run(plugin.trusted, lambda f=function, h=hook_name: _call_hook(f, h, spec_type),
                          f"the hook {hook_name}")
            if not outcome.ok:
                plugin.stuck = outcome.timed_out
                registry.failures.append(PluginFailure(dist, ep_name, outcome.error, outcome.detail, hook=hook_name))
                continue
            for spec, error, detail in outcome.value:
                if error:
                    registry.failures.append(PluginFailure(dist, ep_name, error, detail, hook=hook_name))
                    continue
                problem = namespace_problem(kind, spec, dist)
                if problem:
                    registry.failures.append(PluginFailure(dist, ep_name, problem, hook=hook_name,
                                                           category="conflict"))
                    continue
                key = (dist, ep_name, kind, spec.id)
                if key in mine:
                    registry.failures.append(PluginFailure(
                        dist, ep_name, f"ValueError: {kind} id {spec.id!r} is returned twice by this plugin",
                        hook=hook_name))
                    continue
                mine.add(key)
                claims.append(_Claim(kind, with_source(spec, dist, ep_name), hook_name))
    _settle(registry, claims)
    return registry


@dataclass(frozen=True)
class _Claim:
    kind: str
    spec: Any           # with distribution and plugin filled in
    hook: str


def _settle(registry: Registry, claims: list[_Claim]) -> None:
    """Register every claimed id that exactly one plugin claims; report the rest, and the bare third-party ids."""
    by_id: dict[tuple[str, str], list[_Claim]] = {}
    for claim in claims:
        by_id.setdefault((claim.kind, claim.spec.id), []).append(claim)
    bare: dict[tuple[str, str], list[tuple[str, str]]] = {}   # (distribution, entry point) -> [(kind, id)]
    for (kind, spec_id), group in by_id.items():
        builtin = [c for c in group if is_builtin(c.spec.distribution)]
        if len(group) == 1 or (len(builtin) == 1 and not split_id(spec_id)[0]):
            # one claim; or a bare id the built-ins own, which a third-party plugin can never take over
            winner = builtin[0] if builtin else group[0]
            registry.add(kind, winner.spec)
            for c in group:
                if c is not winner:
                    registry.failures.append(PluginFailure(
                        c.spec.distribution, c.spec.plugin,
                        f"{kind} id {spec_id!r} belongs to the built-in plugins of Sequence Workbench; a plugin "
                        f"cannot replace it (register it as '{_own_example(c.spec.distribution, spec_id)}')",
                        hook=c.hook, category="conflict"))
            if owns_namespaces(winner.spec.distribution) and not split_id(spec_id)[0]:
                bare.setdefault((winner.spec.distribution, winner.spec.plugin), []).append((kind, spec_id))
            continue
        registry.conflicts.setdefault(kind, {})[spec_id] = [c.spec for c in group]
        message = conflict_message(kind, spec_id, [c.spec for c in group])
        for c in group:
            registry.failures.append(PluginFailure(c.spec.distribution, c.spec.plugin, message, hook=c.hook,
                                                   category="conflict"))
    for (dist, entry_point), ids in bare.items():
        registry.notes.append(PluginNote(dist, entry_point, bare_ids_note(dist, ids)))


def _own_example(distribution: str, spec_id: str) -> str:
    return f"{namespace(distribution)}.{spec_id}" if distribution and not distribution.startswith("(") \
        else f"NAMESPACE.{spec_id}"


_DEFAULT: Registry | None = None


def default_registry(refresh: bool = False) -> Registry:
    """A process-wide registry for the CLI and the GUI (tests call :func:`discover` for a fresh one).

    ``refresh=True`` discovers the plugins again (after an install) into the same object
    (:meth:`Registry.update_from`), so that everything that holds it sees the change."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = discover()
    elif refresh:
        _DEFAULT.update_from(discover())
    return _DEFAULT
