"""The template contract: the parameters' ``ui=`` hints and the project document the template makes
(:func:`check_template_spec`)."""

from __future__ import annotations

from typing import Any

from workbench.testing.contract_base import fail as _fail
from workbench.testing.contract_base import who_is as _who


def check_template_spec(spec, registry: Any, params: Any = None) -> dict[str, Any]:
    """The template contract: its parameters' ``ui=`` hints and the project document it makes (see
    :func:`workbench.core.plugin_checks.template_problems`); returns the document."""
    from workbench.core.plugin_checks import UI_HINTS, template_problems
    from workbench.schema.params import field_info
    who = _who("template", spec)
    for info in field_info(spec.params):
        if info.ui is not None and info.ui not in UI_HINTS:
            raise _fail(who, "template.params", f"parameter {info.name!r} has ui={info.ui!r}, which the window does "
                                                f"not know", f"use one of {', '.join(map(repr, UI_HINTS))} or none")
        if info.ui == "cell" and not (info.base is str and registry.has("cell", info.default)):
            raise _fail(who, "template.params", f"parameter {info.name!r} (ui='cell') defaults to {info.default!r}, "
                                                f"which is not an installed cell", "default to a cell id such as "
                                                                                   "'lstm'")
    params = spec.params() if params is None else params
    try:
        doc = spec.load()(params)
    except Exception as exc:  # noqa: BLE001
        raise _fail(who, "template.document", f"the factory raised {type(exc).__name__}: {exc}",
                    "factory(params) returns the project document (no torch)") from exc
    problems = template_problems(doc, registry, spec)
    if problems:
        raise _fail(who, "template.document", "; ".join(problems), "follow the template format (docs/plugins.md)")
    return doc

