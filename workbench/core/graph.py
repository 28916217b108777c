"""The model graph: nodes, typed ports, links, validation and size inference.  No torch, no Qt.

Two node types are built in: ``task-input`` (its outputs are the ports the task feeds the model) and
``task-output`` (its inputs are the ports the task reads back).  Every other node type is a block contributed by
a plugin (:class:`~workbench.schema.specs.BlockSpec`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from workbench.schema.errors import GraphError
from workbench.schema.params import ParamError, field_info, params_from_dict
from workbench.schema.registry import Registry
from workbench.schema.specs import PortSpec, resolve

TASK_INPUT = "task-input"
TASK_OUTPUT = "task-output"
_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@dataclass
class Node:
    id: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Link:
    src: str
    src_port: str
    dst: str
    dst_port: str

    def __str__(self) -> str:
        return f"{self.src}.{self.src_port} -> {self.dst}.{self.dst_port}"


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    ui: dict[str, Any] = field(default_factory=dict)  # node id -> {"x": .., "y": ..}; never affects the model

    # ---- editing ---------------------------------------------------------------------------------------
    def new_id(self, type_id: str) -> str:
        stem = re.sub(r"[^A-Za-z0-9_]", "_", type_id.split(".")[-1]) or "node"
        n = 1
        while f"{stem}{n}" in self.nodes:
            n += 1
        return f"{stem}{n}"

    def add_node(self, type_id: str, params: dict[str, Any] | None = None, id: str | None = None,
                 pos: tuple[float, float] | None = None) -> Node:
        node_id = id or self.new_id(type_id)
        if node_id in self.nodes:
            raise ValueError(f"a node with id {node_id!r} exists already")
        if not _ID_RE.match(node_id):
            raise ValueError(f"invalid node id {node_id!r}: use letters, digits, _ and -")
        node = Node(node_id, type_id, dict(params or {}))
        self.nodes[node_id] = node
        if pos is not None:
            self.ui[node_id] = {"x": float(pos[0]), "y": float(pos[1])}
        return node

    def remove_node(self, node_id: str) -> None:
        self.nodes.pop(node_id)
        self.links = [ln for ln in self.links if ln.src != node_id and ln.dst != node_id]
        self.ui.pop(node_id, None)

    def connect(self, src: str, src_port: str, dst: str, dst_port: str) -> Link:
        link = Link(src, src_port, dst, dst_port)
        # An input port takes one link: a new link replaces the old one (as node editors do).
        self.links = [ln for ln in self.links if not (ln.dst == dst and ln.dst_port == dst_port)]
        self.links.append(link)
        return link

    def disconnect(self, link: Link) -> None:
        self.links.remove(link)

    def incoming(self, node_id: str) -> dict[str, Link]:
        return {ln.dst_port: ln for ln in self.links if ln.dst == node_id}

    def outgoing(self, node_id: str) -> list[Link]:
        return [ln for ln in self.links if ln.src == node_id]

    # ---- ordering ----------------------------------------------------------------------------------------
    def topo_order(self) -> list[str]:
        """Nodes in dependency order; raises :class:`GraphError` naming the nodes of a cycle."""
        indeg = {nid: 0 for nid in self.nodes}
        succ: dict[str, list[str]] = {nid: [] for nid in self.nodes}
        for ln in self.links:
            if ln.src in self.nodes and ln.dst in self.nodes:
                indeg[ln.dst] += 1
                succ[ln.src].append(ln.dst)
        ready = [nid for nid in self.nodes if indeg[nid] == 0]
        order: list[str] = []
        while ready:
            nid = ready.pop(0)
            order.append(nid)
            for nxt in succ[nid]:
                indeg[nxt] -= 1
                if indeg[nxt] == 0:
                    ready.append(nxt)
        if len(order) != len(self.nodes):
            cyc = [nid for nid in self.nodes if nid not in order]
            raise GraphError([f"the graph has a cycle through {', '.join(cyc)}; recurrence belongs inside "
                              f"recurrent blocks, not in links"])
        return order

    # ---- serialisation ----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "nodes": [{"id": n.id, "type": n.type, "params": dict(n.params)} for n in self.nodes.values()],
            "links": [[ln.src, ln.src_port, ln.dst, ln.dst_port] for ln in self.links],
            "ui": {k: dict(v) for k, v in self.ui.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Graph":
        if not isinstance(data, dict):
            raise ValueError("graph: expected an object")
        g = cls()
        for item in data.get("nodes") or []:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str) or \
                    not isinstance(item.get("type"), str):
                raise ValueError(f"graph: malformed node {item!r}")
            params = item.get("params") or {}
            if not isinstance(params, dict):
                raise ValueError(f"graph: node {item['id']!r} has malformed params")
            g.add_node(item["type"], params, id=item["id"])
        for item in data.get("links") or []:
            if not (isinstance(item, (list, tuple)) and len(item) == 4 and all(isinstance(x, str) for x in item)):
                raise ValueError(f"graph: malformed link {item!r}")
            g.links.append(Link(*item))
        ui = data.get("ui") or {}
        if isinstance(ui, dict):
            g.ui = {k: dict(v) for k, v in ui.items() if isinstance(v, dict)}
        return g

    def content_hash(self) -> str:
        """Hash of what defines the model (nodes, params, links), not of the layout."""
        doc = self.to_json()
        doc.pop("ui")
        doc["links"] = sorted(doc["links"])
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


# ---- validation --------------------------------------------------------------------------------------------

@dataclass
class GraphReport:
    """The result of :func:`analyze`: problems (empty when valid), sizes per output port, order, params."""

    problems: list[str]
    order: list[str]
    sizes: dict[tuple[str, str], int | None]
    params: dict[str, Any]                    # node id -> validated params dataclass instance
    ports: dict[str, tuple[tuple[PortSpec, ...], tuple[PortSpec, ...]]]

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_if_invalid(self) -> None:
        if self.problems:
            raise GraphError(self.problems)

    def in_sizes(self, graph: Graph, node_id: str) -> dict[str, int | None]:
        return {port: self.sizes.get((ln.src, ln.src_port)) for port, ln in graph.incoming(node_id).items()}


def split_nested_params(params_cls: type, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Split a node's params into its block's own and those of the cell(s) it uses.

    A block field marked ``ui="cell"`` (the ``rnn`` block's ``cell``) chooses a cell; that cell's parameters are
    kept in the same node as ``"cell.forget_bias": 2.0`` so one node holds the whole layer's settings.
    """
    cell_fields = {i.name for i in field_info(params_cls) if i.ui == "cell"}
    own: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        head, dot, rest = key.partition(".")
        if dot and head in cell_fields:
            nested.setdefault(head, {})[rest] = value
        else:
            own[key] = value
    return own, nested


def node_ports(node: Node, registry: Registry, task_spec: Any) -> tuple[tuple[PortSpec, ...], tuple[PortSpec, ...]]:
    """(inputs, outputs) of a node; raises LookupError for an unknown block type."""
    if node.type == TASK_INPUT:
        return (), tuple(task_spec.inputs) if task_spec else ()
    if node.type == TASK_OUTPUT:
        return tuple(task_spec.outputs) if task_spec else (), ()
    spec = registry.block(node.type)
    return tuple(spec.inputs), tuple(spec.outputs)


def check_link(graph: Graph, src: str, src_port: str, dst: str, dst_port: str, registry: Registry,
               task_spec: Any) -> str | None:
    """Why a link may not be made, or ``None`` if it fits.  Used by the editor before it adds a link."""
    if src not in graph.nodes or dst not in graph.nodes:
        return "both ends must be nodes of the graph"
    if src == dst:
        return "a node cannot feed itself; recurrence lives inside recurrent blocks"
    try:
        _, outs = node_ports(graph.nodes[src], registry, task_spec)
        ins, _ = node_ports(graph.nodes[dst], registry, task_spec)
    except LookupError as exc:
        return str(exc)
    out = {p.name: p for p in outs}.get(src_port)
    inp = {p.name: p for p in ins}.get(dst_port)
    if out is None:
        return f"{src} has no output port {src_port!r}"
    if inp is None:
        return f"{dst} has no input port {dst_port!r}"
    if out.type != inp.type:
        return (f"type mismatch: {src}.{src_port} gives {out.type} ({_port_doc(out.type)}) but "
                f"{dst}.{dst_port} takes {inp.type} ({_port_doc(inp.type)})")
    # would it close a cycle?
    trial = Graph(dict(graph.nodes), list(graph.links))
    trial.links = [ln for ln in trial.links if not (ln.dst == dst and ln.dst_port == dst_port)]
    trial.links.append(Link(src, src_port, dst, dst_port))
    try:
        trial.topo_order()
    except GraphError:
        return f"linking {src} to {dst} would make a cycle"
    return None


def _port_doc(t: str) -> str:
    from workbench.schema.specs import PORT_TYPES
    return PORT_TYPES.get(t, t)


def default_infer(params: Any, in_sizes: dict[str, int | None], wanted: dict[str, int | None],
                  outputs: tuple[PortSpec, ...]) -> dict[str, int | None]:
    first = next((s for s in in_sizes.values() if s is not None), None)
    return {p.name: first for p in outputs}


def analyze(graph: Graph, registry: Registry, task_spec: Any, task_sizes: dict[str, int] | None = None) -> GraphReport:
    """Validate ``graph`` and infer port sizes.  Never raises for a problem in the graph: it lists them."""
    problems: list[str] = []
    task_sizes = dict(task_sizes or {})
    ports: dict[str, tuple[tuple[PortSpec, ...], tuple[PortSpec, ...]]] = {}
    params: dict[str, Any] = {}
    specs: dict[str, Any] = {}

    n_in = [n for n in graph.nodes.values() if n.type == TASK_INPUT]
    n_out = [n for n in graph.nodes.values() if n.type == TASK_OUTPUT]
    if len(n_in) != 1:
        problems.append(f"the graph needs exactly one task-input node (has {len(n_in)})")
    if len(n_out) != 1:
        problems.append(f"the graph needs exactly one task-output node (has {len(n_out)})")

    for node in graph.nodes.values():
        try:
            ports[node.id] = node_ports(node, registry, task_spec)
        except LookupError as exc:
            problems.append(f"node {node.id}: {exc}")
            continue
        if node.type in (TASK_INPUT, TASK_OUTPUT):
            params[node.id] = None
            continue
        spec = registry.block(node.type)
        specs[node.id] = spec
        own, nested = split_nested_params(spec.params, node.params)
        try:
            p = params_from_dict(spec.params, own, node.id)
        except ParamError as exc:
            problems.append(str(exc))
            continue
        for info in field_info(spec.params):
            if info.ui != "cell":
                continue
            try:
                cell_spec = registry.cell(getattr(p, info.name))
            except LookupError as exc:
                problems.append(f"node {node.id}: {exc}")
                continue
            try:  # the chosen cell's own parameters, stored as "cell.NAME" in the node
                params_from_dict(cell_spec.params, nested.get(info.name, {}), f"{node.id}.{info.name}")
            except ParamError as exc:
                problems.append(str(exc))
        params[node.id] = p

    # links: ends exist, ports exist, types fit, one link per input
    seen_inputs: dict[tuple[str, str], Link] = {}
    for ln in graph.links:
        if ln.src not in graph.nodes or ln.dst not in graph.nodes:
            problems.append(f"link {ln} refers to a missing node")
            continue
        if ln.src not in ports or ln.dst not in ports:
            continue
        out = {p.name: p for p in ports[ln.src][1]}.get(ln.src_port)
        inp = {p.name: p for p in ports[ln.dst][0]}.get(ln.dst_port)
        if out is None:
            problems.append(f"link {ln}: {ln.src} has no output port {ln.src_port!r}")
            continue
        if inp is None:
            problems.append(f"link {ln}: {ln.dst} has no input port {ln.dst_port!r}")
            continue
        if out.type != inp.type:
            problems.append(f"link {ln}: type mismatch, {out.type} into {inp.type}")
        if (ln.dst, ln.dst_port) in seen_inputs:
            problems.append(f"input {ln.dst}.{ln.dst_port} has more than one link")
        seen_inputs[(ln.dst, ln.dst_port)] = ln

    for node_id, (ins, _) in ports.items():
        for p in ins:
            if p.required and (node_id, p.name) not in seen_inputs:
                problems.append(f"node {node_id}: required input {p.name!r} ({p.type}) is not connected")

    try:
        order = graph.topo_order()
    except GraphError as exc:
        problems.extend(exc.problems)
        order = list(graph.nodes)

    # size inference: forward in topological order; sinks with a fixed size say what they want
    sizes: dict[tuple[str, str], int | None] = {}
    wanted: dict[tuple[str, str], int | None] = {}
    for node in n_out:
        for p in ports.get(node.id, ((), ()))[0]:
            found = seen_inputs.get((node.id, p.name))
            if found is not None and p.size:
                wanted[(found.src, found.src_port)] = task_sizes.get(p.size)
    for node_id in order:
        if node_id not in ports or node_id not in params:
            continue
        node = graph.nodes[node_id]
        ins, outs = ports[node_id]
        if node.type == TASK_INPUT:
            for p in outs:
                sizes[(node_id, p.name)] = task_sizes.get(p.size) if p.size else None
            continue
        if node.type == TASK_OUTPUT:
            for p in ins:
                link = seen_inputs.get((node_id, p.name))
                need = task_sizes.get(p.size) if p.size else None
                got = sizes.get((link.src, link.src_port)) if link else None
                if link is not None and need is not None and got is not None and need != got:
                    problems.append(f"{link.src}.{link.src_port} gives size {got} but the task's {p.name!r} "
                                    f"needs {need}")
            continue
        in_sizes = {p.name: (sizes.get((seen_inputs[(node_id, p.name)].src, seen_inputs[(node_id, p.name)].src_port))
                             if (node_id, p.name) in seen_inputs else None) for p in ins}
        want = {p.name: wanted.get((node_id, p.name)) for p in outs}
        spec = specs[node_id]
        try:
            if spec.infer:
                out_sizes = resolve(spec.infer)(params[node_id], in_sizes, want)
            else:
                out_sizes = default_infer(params[node_id], in_sizes, want, outs)
        except Exception as exc:  # noqa: BLE001 - a plugin's inference failing is a graph problem
            problems.append(f"node {node_id}: {exc}")
            out_sizes = {}
        for p in outs:
            sizes[(node_id, p.name)] = out_sizes.get(p.name)
    return GraphReport(problems=problems, order=order, sizes=sizes, params=params, ports=ports)


# ---- one-line node summaries (the canvas's node cards and `seqwb info`) ---------------------------------------

@functools.lru_cache(maxsize=256)
def _fields(params_cls: type) -> tuple:
    """``field_info`` resolves type hints, which is slow; a block type's fields never change while we run."""
    try:
        return tuple(field_info(params_cls))
    except TypeError:
        return ()


class _Missing(dict):
    """``str.format_map`` helper: an unknown field shows as ``?`` instead of raising."""

    def __missing__(self, key: str) -> str:
        return "?"


_PLURAL_AFTER_ONE = re.compile(r"(?<![\d.])1 (layer|stage|step|unit|head|block|direction)s\b")


def node_summary(node: "Node", spec: Any, registry: Registry,
                 inferred_size: Optional[Callable[[], Optional[int]]] = None) -> str:
    """The block spec's ``summary`` format string filled with the node's parameters (defaults where unset).

    A cell shows as its title ("LSTM"), as people write it, not its id; a size whose 0 means "inferred" shows
    ``inferred_size()`` (what graph analysis found) or "auto" until the data is known; "1 layers" reads "1 layer"."""
    if not spec.summary:
        return ""
    infos = _fields(spec.params)
    values: dict[str, Any] = {i.name: i.default for i in infos}
    values.update(node.params)
    for info in infos:
        value = values.get(info.name)
        if info.ui == "cell" and isinstance(value, str) and registry.has("cell", value):
            values[info.name] = registry.cell(value).title
        elif info.base is int and value == 0 and "infer" in (info.help or "").lower():
            values[info.name] = (inferred_size() if inferred_size else None) or "auto"
    try:
        text = spec.summary.format_map(_Missing(values))
    except (ValueError, IndexError, AttributeError, TypeError):
        return spec.summary
    return _PLURAL_AFTER_ONE.sub(r"1 \1", text)
