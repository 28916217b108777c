"""What the engine needs of a plugin registry, as a Protocol, and the records of what discovery found.

The concrete registry is :class:`workbench.plugin_system.loader.Registry`; the engine (``workbench.core``) types
against :class:`Registry` here, so it never imports the plugin system, and a test can hand it any object with
these methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Protocol

from workbench.schema.specs import BlockSpec, CellSpec, DecoderSpec, TaskSpec, TemplateSpec


class Registry(Protocol):
    """Every contribution that loaded, by kind (``"cell"``, ``"architecture"``, ...) and id."""

    items: dict[str, dict[str, Any]]

    def get(self, kind: str, spec_id: str) -> Any: ...
    def has(self, kind: str, spec_id: str) -> bool: ...
    def cell(self, spec_id: str) -> CellSpec: ...
    def block(self, spec_id: str) -> BlockSpec: ...
    def task(self, spec_id: str) -> TaskSpec: ...
    def decoder(self, spec_id: str) -> DecoderSpec: ...
    def template(self, spec_id: str) -> TemplateSpec: ...
    def all(self) -> Iterable[tuple[str, Any]]: ...


@dataclass(frozen=True)
class Provider:
    """Who provides a contribution: the distribution (what pip installs), its version and the entry point."""

    distribution: str
    version: str = ""
    entry_point: str = ""

    def describe(self) -> str:
        """``"seqwb-indrnn 0.2.0 (entry point indrnn)"``, for messages and the inspector."""
        text = f"{self.distribution or '?'} {self.version}".rstrip()
        return text + (f" (entry point {self.entry_point})" if self.entry_point else "")


@dataclass(frozen=True)
class PluginFailure:
    """A plugin, or one of its contributions, that could not be used, with the reason."""

    distribution: str
    entry_point: str
    error: str
    detail: str = ""  # the traceback, for --debug and the plugins dialog
    hook: str = ""
    #: "error" (it raised or returned something wrong), "incompatible" (its SEQWB_API range excludes ours) or
    #: "conflict" (it registers an id that another distribution registers too, or one that is not its own)
    category: str = "error"

    def message(self) -> str:
        where = f"{self.distribution or '?'} ({self.entry_point}{', ' + self.hook if self.hook else ''})"
        if self.category == "incompatible":
            return f"plugin {where} not loaded: {self.error}"
        if self.category == "conflict":
            return f"plugin {where}: {self.error}"
        return f"plugin {where} failed: {self.error}"


@dataclass(frozen=True)
class PluginNote:
    """Something worth saying about a plugin that is not a failure (e.g. it declares no API range)."""

    distribution: str
    entry_point: str
    note: str


@dataclass(frozen=True)
class DisabledPlugin:
    """A plugin that was not loaded because the user turned it off (environment or plugin settings)."""

    distribution: str
    entry_point: str
    version: str
    reason: str
