"""``--set key=value`` on a project: which config a key belongs to, parsed and validated against its dataclass.

Keys:
- ``task.NAME`` — a parameter of the task;  ``decode.NAME`` — of the decoder (``decode.decoder``, ``decode.prompt``);
- ``NODE.NAME`` — a parameter of graph node ``NODE`` (``rnn.hidden_size=512``);
- ``NODE.FIELD.NAME`` — a parameter of the cell that the node's cell field chooses (``rnn.cell.forget_bias=1``);
- ``NAME`` — a training setting (``lr=0.1``); failing that, the parameter of the one node that has it
  (``hidden_size=512`` when one node has ``hidden_size``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from workbench.core.project import Project
from workbench.schema.params import ParamError, apply_settings, field_info, params_from_dict, params_to_dict, suggest
from workbench.schema.registry import Registry


def apply_project_settings(project: Project, settings: Mapping[str, str], registry: Registry) -> list[str]:
    """Apply ``settings`` to ``project`` in place; returns what changed, one line each.  Raises ParamError."""
    changed: list[str] = []
    train_fields = {f.name for f in field_info(type(project.train))}
    for key, value in settings.items():
        head, _, rest = key.partition(".")
        if rest and head == "task":
            if not project.task.id:
                raise ParamError(f"cannot set {key!r}: the project has no task yet (seqwb new --task ID)")
            spec = registry.task(project.task.id)
            current = params_from_dict(spec.params, project.task.params, "task", ignore_unknown=True)
            new = apply_settings(current, {rest: value}, "task")
            project.task.params[rest] = getattr(new, rest)
            changed.append(f"task.{rest} = {getattr(new, rest)!r}")
        elif rest and head == "decode":
            if rest == "decoder":
                registry.decoder(value)
                project.decode.decoder = value
            elif rest == "prompt":
                project.decode.prompt = value
            else:
                decoder = registry.decoder(project.decode.decoder)
                current = params_from_dict(decoder.params, project.decode.params, "decode", ignore_unknown=True)
                new = apply_settings(current, {rest: value}, "decode")
                project.decode.params[rest] = getattr(new, rest)
            changed.append(f"decode.{rest} = {value!r}")
        elif rest and head == "train":
            project.train = apply_settings(project.train, {rest: value}, "train")
            changed.append(f"{rest} = {getattr(project.train, rest)!r}")
        elif rest and head in project.graph.nodes:
            _set_node_param(project, head, rest, value, registry)
            changed.append(f"{head}.{rest} = {project.graph.nodes[head].params[rest]!r}")
        elif rest:
            known = ["task", "decode", "train", *project.graph.nodes]
            raise ParamError(f"unknown setting {key!r}: {head!r} is not a node{suggest(head, known)}; "
                             f"use task.X, decode.X, train.X or NODE.X with NODE one of: "
                             f"{', '.join(project.graph.nodes)}")
        elif key in train_fields:
            project.train = apply_settings(project.train, {key: value}, "train")
            changed.append(f"{key} = {getattr(project.train, key)!r}")
        else:
            owners = [nid for nid, node in project.graph.nodes.items()
                      if registry.has("architecture", node.type)
                      and key in {f.name for f in field_info(registry.block(node.type).params)}]
            if len(owners) == 1:
                _set_node_param(project, owners[0], key, value, registry)
                changed.append(f"{owners[0]}.{key} = {project.graph.nodes[owners[0]].params[key]!r}")
            elif len(owners) > 1:
                raise ParamError(f"setting {key!r} is ambiguous: nodes {', '.join(owners)} all have it; "
                                 f"write e.g. {owners[0]}.{key}={value}")
            else:
                hint = _cell_setting_hint(project, registry, key, value, project.graph.nodes)
                if hint:
                    raise ParamError(f"unknown setting {key!r}: {hint}")
                node_params = sorted({f.name for node in project.graph.nodes.values()
                                      if registry.has("architecture", node.type)
                                      for f in field_info(registry.block(node.type).params)})
                raise ParamError(f"unknown setting {key!r}{suggest(key, list(train_fields) + node_params)}; "
                                 f"training settings: {', '.join(sorted(train_fields))}; "
                                 f"node settings: {', '.join(node_params)}; a cell's own settings: "
                                 f"NODE.cell.NAME; or task.X / decode.X")
    return changed


def _cell_setting_hint(project: Project, registry: Registry, name: str, value: str, node_ids: Any) -> str:
    """When ``name`` is a parameter of a cell chosen in one of ``node_ids``: the key to write, else ""."""
    found = []
    for node_id in node_ids:
        node = project.graph.nodes[node_id]
        if not registry.has("architecture", node.type):
            continue
        for info in field_info(registry.block(node.type).params):
            cell = node.params.get(info.name, info.default)
            if info.ui == "cell" and isinstance(cell, str) and registry.has("cell", cell) and \
                    name in {f.name for f in field_info(registry.cell(cell).params)}:
                found.append(f"{node_id}.{info.name}.{name}={value}")
    if not found:
        return ""
    return f"it is a setting of the cell a node uses; write {' or '.join(found)} (NODE.cell.NAME)"


def _set_node_param(project: Project, node_id: str, name: str, value: str, registry: Registry) -> None:
    node = project.graph.nodes[node_id]
    try:
        node.params = set_node_param_value(node.type, node.params, name, value, registry, node_id)
    except ParamError:
        own = registry.has("architecture", node.type) and \
            name in {f.name for f in field_info(registry.block(node.type).params)}
        hint = "" if own or "." in name else _cell_setting_hint(project, registry, name, value, [node_id])
        if hint:
            raise ParamError(f"unknown setting {node_id + '.' + name!r}: {hint}") from None
        raise


def set_node_param_value(block_type: str, params: dict[str, Any], name: str, value: Any, registry: Registry,
                         node_id: str) -> dict[str, Any]:
    """The node's params with ``name`` parsed, validated and set; raises ParamError / LookupError.

    ``name`` is a field of the block (``hidden_size``) or of the cell it uses (``cell.forget_bias``).  Choosing
    another cell drops the settings that the new cell does not have.
    """
    from workbench.core.graph import split_nested_params
    spec = registry.block(block_type)
    own, nested = split_nested_params(spec.params, params)
    cell_fields = {f.name for f in field_info(spec.params) if f.ui == "cell"}
    head, dot, rest = name.partition(".")
    out = dict(params)
    if dot and head in cell_fields:
        current = params_from_dict(spec.params, own, node_id, ignore_unknown=True)
        cell_spec = registry.cell(getattr(current, head))
        cell_now = params_from_dict(cell_spec.params, nested.get(head, {}), f"{node_id}.{head}", ignore_unknown=True)
        new = apply_settings(cell_now, {rest: value}, f"{node_id}.{head}")
        out[name] = getattr(new, rest)
        return out
    current = params_from_dict(spec.params, own, node_id, ignore_unknown=True)
    new = apply_settings(current, {name: value}, node_id)
    out[name] = getattr(new, name)
    if name in cell_fields:
        cell_spec = registry.cell(out[name])  # unknown cell -> UnknownContributionError with suggestions
        known = {f.name for f in field_info(cell_spec.params)}
        for key in [k for k in out if k.startswith(name + ".") and k.partition(".")[2] not in known]:
            del out[key]
    return out


def template_project(spec: Any, settings: Mapping[str, str], registry: Registry) -> tuple[Project, list[str]]:
    """Instantiate a template: its own params take the bare keys they know; the rest go to the project."""
    names = {f.name for f in field_info(spec.params)}
    own = {k: v for k, v in settings.items() if k in names}
    rest = {k: v for k, v in settings.items() if k not in names}
    params = apply_settings(spec.params(), own, spec.id)
    for info in field_info(spec.params):
        if info.ui == "cell":
            registry.cell(getattr(params, info.name))
    data = spec.load()(params)
    project = Project.from_json(data)
    changed = [f"{k} = {getattr(params, k)!r}" for k in own]
    try:
        changed += apply_project_settings(project, rest, registry)
    except ParamError as exc:
        accepted = ", ".join(sorted(names))
        raise ParamError(f"{exc} (template {spec.id!r} itself accepts: {accepted})") from None
    project.notes = project.notes or spec.description
    return project, changed


def params_summary(obj: Any) -> dict[str, Any]:
    return params_to_dict(obj) if dataclasses.is_dataclass(obj) else dict(obj)
