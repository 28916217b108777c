"""Who owns an id: the rules that keep one distribution from taking over another's contributions.

A project file stores ids (``"lstm"``, ``"seqwb-indrnn.indrnn"``); whatever registers an id gets used by every
project that names it.  So, as napari's npe2 does with its ``plugin-name.command`` ids:

- the built-in plugins (distribution ``sequence-workbench``) own the bare ids they register;
- a third-party distribution owns the ids in its namespace, ``NAMESPACE.NAME`` with NAMESPACE its name as pip
  normalises it (``seqwb-indrnn.indrnn``); an id in another distribution's namespace is refused, loudly;
- a bare third-party id (written before ids were namespaced) still loads, with a note, as long as nobody else
  registers it; when two distributions register one id, both are reported and *neither* is used, since which
  one a project meant cannot be known (the project file's record of its providers decides, see
  :mod:`workbench.core.projectfile.plugins`).

Plain data: no torch, no numpy.
"""

from __future__ import annotations

from typing import Any

from workbench.plugin_system.user_settings import BUILTIN_DISTRIBUTION, normalize
from workbench.schema.specs import split_id

__all__ = ["is_builtin", "namespace", "namespace_problem", "owns_namespaces", "bare_ids_note"]


def namespace(distribution: str) -> str:
    """The namespace a distribution owns: its name as pip compares names (``Seqwb_IndRNN`` -> ``seqwb-indrnn``)."""
    return normalize(distribution)


def is_builtin(distribution: str) -> bool:
    return normalize(distribution or "") == BUILTIN_DISTRIBUTION


def owns_namespaces(distribution: str) -> bool:
    """Whether ids from this source are held to a namespace: every installed third-party distribution.

    Built-ins keep bare ids; a plugin registered in code (``discover(extra=...)``, the tests, an application
    embedding the workbench) has no distribution whose name could be its namespace, and neither has one whose
    metadata could not be read."""
    return bool(distribution) and not distribution.startswith("(") and not is_builtin(distribution)


def namespace_problem(kind: str, spec: Any, distribution: str) -> str:
    """Why ``distribution`` may not register ``spec`` ("" if it may): an id, or a former id, that lies in the
    namespace of another distribution."""
    if not owns_namespaces(distribution):
        return ""
    own = namespace(distribution)
    for what, spec_id in (("id", spec.id), *(("former id", f) for f in spec.former_ids)):
        ns, name = split_id(spec_id)
        if ns and ns != own:
            return (f"{kind} {what} {spec_id!r} is in the namespace of the distribution {ns!r}: {distribution} may "
                    f"register ids '{own}.NAME' only (e.g. '{own}.{name}'), so that no plugin can take over "
                    f"another's")
    return ""


def bare_ids_note(distribution: str, bare: list[tuple[str, str]]) -> str:
    """The note for a third-party plugin that registers ids without its namespace (``bare``: (kind, id))."""
    own = namespace(distribution)
    listed = ", ".join(f"{kind} {spec_id!r}" for kind, spec_id in bare)
    return (f"ids without a namespace: {listed}; another distribution could register the same id, and then "
            f"neither would be used. Name them '{own}.NAME' and list the old ids in former_ids, so that "
            f"projects saved with them still open")
