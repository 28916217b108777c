"""Reference documentation generated from the plugin specs (so it cannot drift from the code).

``seqwb plugins --markdown`` prints it; ``docs/catalog.md`` is its output for the built-in plugins, and a test
checks that the file is current.
"""

from __future__ import annotations

from typing import Any

from workbench.schema.params import field_info
from workbench.schema.registry import Registry

KIND_TITLES = {
    "cell": "Cells",
    "architecture": "Blocks (architectures)",
    "task": "Tasks",
    "decoder": "Decoders",
    "template": "Templates",
    "feature_track": "Feature tracks (unit search)",
}


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _params_table(params_cls: type) -> list[str]:
    infos = field_info(params_cls)
    if not infos:
        return ["No parameters.", ""]
    rows = ["| parameter | type | default | allowed | meaning |", "|---|---|---|---|---|"]
    for i in infos:
        allowed = ""
        if i.choices:
            allowed = ", ".join(map(str, i.choices))
        elif i.min is not None or i.max is not None:
            lo = "" if i.min is None else f"{i.min:g}"
            hi = "" if i.max is None else f"{i.max:g}"
            allowed = f"{lo} … {hi}"
        rows.append(f"| `{i.name}` | {i.type_name()} | `{i.default!r}` | {_cell(allowed)} | {_cell(i.help)} |")
    return rows + [""]


def _ports(label: str, ports) -> str:
    if not ports:
        return ""
    return f"{label}: " + ", ".join(f"`{p.name}` ({p.type}{', size ' + p.size if p.size else ''})" for p in ports)


def catalog_markdown(registry: Registry, distribution: str | None = "sequence-workbench") -> str:
    """Markdown for every contribution (of ``distribution`` only, unless None)."""
    out = ["# Plugin catalog", "",
           "Generated from the plugin specs by `seqwb plugins --markdown`; do not edit by hand.", ""]
    for kind, title in KIND_TITLES.items():
        specs = [s for s in registry.items[kind].values() if distribution is None or s.distribution == distribution]
        if not specs:
            continue
        out += [f"## {title}", ""]
        for s in sorted(specs, key=lambda s: s.id):
            out += [f"### `{s.id}` — {s.title}", ""]
            if s.description:
                out += [s.description, ""]
            facts = [f"version {s.version}"]
            if getattr(s, "paper", ""):
                facts.append(f"paper: {s.paper}")
            if getattr(s, "gates", ()):
                facts.append("gates: " + ", ".join(s.gates))
            if kind == "cell":
                facts.append("state: " + ", ".join(s.state_names))
                facts.append("fused kernel" if s.has_fused else "per-step path only")
            if kind == "architecture":
                facts.append(f"category: {s.category}")
            if kind == "template" and s.task:
                facts.append(f"task: `{s.task}`")
            if kind == "task" and s.metrics:
                facts.append("metrics: " + ", ".join(s.metrics))
            out += ["; ".join(facts), ""]
            for line in (_ports("inputs", getattr(s, "inputs", ())), _ports("outputs", getattr(s, "outputs", ()))):
                if line:
                    out += [line, ""]
            out += _params_table(s.params)
    return "\n".join(out).rstrip() + "\n"
