"""Choosing a project's task: the empty project, a project with only a task, and replacing the task of a project
while keeping the links that still fit.  Qt-free and torch-free.

A project has one task.  Its graph shows the task as two nodes, ``task-input`` (the ports the task feeds the
model) and ``task-output`` (the ports it reads back).  Changing the task changes those ports, so every link that
touches a task node is checked again: it stays when the new task has a port of the type the link carries (the
port of the same name first, then the first of that type), and goes otherwise.  :func:`plan_task_change` works
that out as plain data; the window applies it as one undo command and ``seqwb new --task`` applies it with
:func:`apply_task_change`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from workbench.core.graph import TASK_INPUT, TASK_OUTPUT, Graph, GraphReport, Link, Node, analyze, node_ports
from workbench.core.project import Project, TaskConfig

#: what the problems list says while a project has no task
NO_TASK = "the project has no task: drag one from the palette's Tasks onto the canvas"
#: the name of a project nobody has named
UNTITLED = "untitled"
#: canvas units between the task's input node and its output node when both are new (room for two blocks)
TASK_SPAN = 660.0
#: canvas units from the right-most node to a new task-output node
COLUMN = 220.0


def empty_project(name: str = UNTITLED) -> Project:
    """A project with no task and no nodes: File ▸ New ▸ Empty project and ``seqwb new --empty``."""
    return Project(name=name, graph=Graph(), task=TaskConfig(id=""))


def has_task(project: Project) -> bool:
    return bool(project.task.id)


def task_project(task_spec: Any, registry: Any, name: str | None = None) -> Project:
    """A project with ``task_spec`` as its task (default settings) and its two task nodes, nothing between them:
    ``seqwb new --task ID``."""
    project = empty_project(name or task_spec.title)
    apply_task_change(project, plan_task_change(project, task_spec, registry))
    return project


def analyze_project(project: Project, registry: Any) -> GraphReport:
    """:func:`~workbench.core.graph.analyze` for a whole project: its task's ports and data sizes, and a first
    problem that says what to do when the project has no task yet (instead of "needs exactly one task-input
    node")."""
    task_spec = registry.task(project.task.id) if project.task.id and registry.has("task", project.task.id) \
        else None
    sizes = dict((project.data or {}).get("sizes") or {})
    report = analyze(project.graph, registry, task_spec, sizes)
    if not project.task.id:
        report.problems[:] = [NO_TASK] + [p for p in report.problems if "task-input node" not in p
                                          and "task-output node" not in p]
    elif task_spec is None:
        report.problems.insert(0, f"the task {project.task.id!r} is not installed")
    return report


@dataclass
class TaskChange:
    """What setting a project's task changes, as plain data (see :func:`plan_task_change`)."""

    task: TaskConfig                                    # the project's task afterwards
    add_nodes: list[tuple[Node, tuple[float, float]]] = field(default_factory=list)   # task nodes it lacked
    remove_links: list[Link] = field(default_factory=list)
    add_links: list[Link] = field(default_factory=list)  # links moved to another port of the new task
    dropped: list[str] = field(default_factory=list)    # one line per link that goes, saying why

    @property
    def same_task(self) -> bool:
        return not self.remove_links and not self.add_links and not self.add_nodes


def plan_task_change(project: Project, task_spec: Any, registry: Any,
                     pos: tuple[float, float] | None = None) -> TaskChange:
    """What making ``task_spec`` the project's task changes.

    The task keeps its settings when it is the project's task already, and starts from its defaults otherwise.  A
    task node the graph lacks is added: the input at ``pos`` (default: left of the graph), the output to the right
    of every node.  Each link touching a task node is kept, moved to the port of its type that the new task has
    (the same name first), or dropped with the reason in ``dropped``."""
    graph = project.graph
    same = project.task.id == task_spec.id
    task = TaskConfig(id=task_spec.id, params=dict(project.task.params) if same else {})
    change = TaskChange(task=task)

    kinds = {kind: [n for n in graph.nodes.values() if n.type == kind] for kind in (TASK_INPUT, TASK_OUTPUT)}
    taken = set(graph.nodes)
    xs = [float((graph.ui.get(n) or {}).get("x", 0.0)) for n in graph.nodes]
    ys = [float((graph.ui.get(n) or {}).get("y", 0.0)) for n in graph.nodes]
    if pos is None:
        pos = ((min(xs) - COLUMN) if xs else 0.0, (sum(ys) / len(ys)) if ys else 0.0)
    x0, y0 = float(pos[0]), float(pos[1])
    if not kinds[TASK_INPUT]:
        change.add_nodes.append((Node(_free_id("input", taken), TASK_INPUT), (x0, y0)))
    if not kinds[TASK_OUTPUT]:
        right = max([x0 + TASK_SPAN] + [x + COLUMN for x in xs])
        change.add_nodes.append((Node(_free_id("output", taken), TASK_OUTPUT), (right, y0)))

    new_in = {p.name: p.type for p in task_spec.inputs}      # the task-input node's outputs
    new_out = {p.name: p.type for p in task_spec.outputs}    # the task-output node's inputs
    fed: set[tuple[str, str]] = set()                        # task-output inputs that already have a link
    for link in graph.links:
        src, dst = graph.nodes.get(link.src), graph.nodes.get(link.dst)
        if src is None or dst is None or (src.type not in kinds and dst.type not in kinds):
            continue
        if src.type == TASK_OUTPUT or dst.type == TASK_INPUT:
            continue      # no such ports: analyze reports these links; changing the task does not touch them
        new_src_port, new_dst_port = link.src_port, link.dst_port
        reason = ""
        if src.type == TASK_INPUT:
            wanted = _port_type(graph, dst, link.dst_port, False, registry, new_out)
            new_src_port, reason = _fitting_port(new_in, link.src_port, wanted, set(), "gives")
        if not reason and dst.type == TASK_OUTPUT:
            wanted = new_in.get(new_src_port) if src.type == TASK_INPUT else \
                _port_type(graph, src, link.src_port, True, registry, new_in)
            used = {port for node, port in fed if node == dst.id}
            new_dst_port, reason = _fitting_port(new_out, link.dst_port, wanted, used, "takes")
            if not reason:
                fed.add((dst.id, new_dst_port))
        moved = Link(link.src, new_src_port, link.dst, new_dst_port)
        if reason:
            change.remove_links.append(link)
            change.dropped.append(f"{link}: {reason}")
        elif moved != link:
            change.remove_links.append(link)
            change.add_links.append(moved)
    return change


def _free_id(preferred: str, taken: set[str]) -> str:
    node_id, n = preferred, 1
    while node_id in taken:
        n += 1
        node_id = f"{preferred}{n}"
    taken.add(node_id)
    return node_id


def _port_type(graph: Graph, node: Node, port: str, output: bool, registry: Any,
               task_ports: dict[str, str]) -> str | None:
    """The type of ``node``'s ``port`` (an output when ``output``); None when the node's block is unknown."""
    if node.type in (TASK_INPUT, TASK_OUTPUT):
        return task_ports.get(port)
    try:
        ins, outs = node_ports(node, registry, None)
    except LookupError:
        return None
    return {p.name: p.type for p in (outs if output else ins)}.get(port)


def _fitting_port(ports: dict[str, str], name: str, wanted: str | None, used: set[str],
                  verb: str) -> tuple[str, str]:
    """``(port, "")`` for the port of type ``wanted`` a link moves to (``name`` first), or ``("", why not)``."""
    if wanted is None:
        return (name, "") if name in ports else ("", f"the new task has no port {name!r}")
    if ports.get(name) == wanted and name not in used:
        return name, ""
    for port, kind in ports.items():
        if kind == wanted and port not in used:
            return port, ""
    have = ", ".join(f"{p} ({t})" for p, t in ports.items()) or "none"
    return "", f"no port of the new task {verb} {wanted} (its ports: {have})"


def apply_task_change(project: Project, change: TaskChange) -> None:
    """Make ``change`` in ``project`` (the command line's way; the window applies the same change as an undo
    command).  The task's vocabulary, data sizes and checkpoint belong to the old task and go."""
    if change.task.id != project.task.id:
        forget_task_state(project)
    project.task = copy.deepcopy(change.task)
    for node, (x, y) in change.add_nodes:
        project.graph.add_node(node.type, dict(node.params), id=node.id, pos=(x, y))
    for link in change.remove_links:
        project.graph.links.remove(link)
    project.graph.links.extend(change.add_links)


def forget_task_state(project: Project) -> None:
    """Drop what was read from or trained on the old task's data: its vocabulary, its sizes and file records, and
    the checkpoint (weights shaped for the old data).  The history of runs stays."""
    project.vocab = None
    project.data = {}
    project.checkpoint = None
