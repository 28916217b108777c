"""Checks at build time that a plugin's code does what its spec promises, with the plugin named when it does not.

A cell whose ``step`` returns the wrong shape would otherwise fail deep inside a matrix product during training
("mat1 and mat2 shapes cannot be multiplied"), with nothing pointing at the plugin.  :func:`build_cell` builds the
cell and, before the model uses it, runs it on a batch of two: one step (shapes), then three steps of a seeded
random input through each path the cell declares (:class:`~workbench.core.cells.Cell`), compared with stepping.
A ``sequence`` or ``sequence_traced`` that computes something else than the step (typically a subclass that
changed the step but inherited its parent's kernel and declarations) would otherwise train or record the wrong
function without any error.  torch is imported by the functions, not by this module.
"""

from __future__ import annotations

from typing import Any

from workbench.schema.errors import WorkbenchError
from workbench.schema.registry import PluginFailure, Registry

__all__ = ["PluginCodeError", "TEMPLATE_KEYS", "UI_HINTS", "build_cell", "call_factory", "plugin_label",
           "template_problems"]


class PluginCodeError(WorkbenchError):
    """A plugin's factory raised, or built something that breaks the contract (types, shapes)."""


def plugin_label(spec: Any) -> str:
    """``"plugin NAME (distribution DIST)"`` for messages; built-ins say so too."""
    dist = getattr(spec, "distribution", "") or "?"
    name = getattr(spec, "plugin", "") or "?"
    return f"plugin {name} (distribution {dist})"


def call_factory(kind: str, spec: Any, *args: Any, **kwargs: Any) -> Any:
    """``spec.load()(*args, **kwargs)``; any failure becomes one PluginCodeError naming the contribution and plugin."""
    try:
        factory = spec.load()
    except Exception as exc:  # noqa: BLE001 - FactoryError and anything the plugin's import raises
        raise PluginCodeError(f"{kind} {spec.id!r} from {plugin_label(spec)} cannot be loaded: {exc}") from exc
    if _builtin(spec):
        return factory(*args, **kwargs)   # our own messages already say what is wrong (and tests match them)
    try:
        return factory(*args, **kwargs)
    except WorkbenchError:
        raise   # already one clear line (e.g. a task's DataError naming the file)
    except Exception as exc:  # noqa: BLE001
        raise PluginCodeError(f"{kind} {spec.id!r} from {plugin_label(spec)} failed to build: "
                              f"{type(exc).__name__}: {exc}") from exc


def _builtin(spec: Any) -> bool:
    return getattr(spec, "distribution", "") == "sequence-workbench" or \
        str(getattr(spec, "factory", "")).startswith("workbench_plugins.")


def _shape(t: Any) -> Any:
    return tuple(t.shape) if hasattr(t, "shape") else type(t).__name__


def build_cell(spec: Any, input_size: int, hidden_size: int, params: Any) -> Any:
    """Build a cell from its spec and check its contract on a tiny batch; PluginCodeError says what is wrong."""
    import torch

    from workbench.core.cells import Cell

    cell = call_factory("cell", spec, input_size, hidden_size, params)
    who = f"cell {spec.id!r} from {plugin_label(spec)}"
    if not isinstance(cell, Cell):
        raise PluginCodeError(f"{who}: the factory returned {type(cell).__name__}, not a workbench.core.cells.Cell")
    if (cell.input_size, cell.hidden_size) != (input_size, hidden_size):
        raise PluginCodeError(f"{who}: built with input_size={cell.input_size}, hidden_size={cell.hidden_size}; "
                              f"asked for {input_size} and {hidden_size}")
    B, T, H = 2, 3, hidden_size
    names = tuple(cell.state_names)
    modes = [(m, m.training) for m in cell.modules()]
    try:
        # fork_rng: a cell that samples (dropout masks, noise) in its trial steps must not shift the random stream
        # that seeded training uses next (the input has its own generator).  Eval mode: the paths are compared as
        # the recorder and decoders run them, without dropout inside the cell.
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            cell.eval()
            state = cell.init_state(B)
            if not isinstance(state, tuple) or len(state) != len(names):
                raise PluginCodeError(f"{who}: init_state returned {type(state).__name__} of "
                                      f"{len(state) if isinstance(state, tuple) else '?'} tensors; state_names "
                                      f"says {len(names)} {names}")
            for name, s in zip(names, state):
                if _shape(s) != (B, H):
                    raise PluginCodeError(f"{who}: init_state gives {name!r} of shape {_shape(s)}, expected "
                                          f"[batch, hidden] = {(B, H)}")
            dtype = state[0].dtype if state else torch.float32
            x = torch.randn(T, B, input_size, generator=torch.Generator().manual_seed(0)).to(dtype)
            rng = torch.get_rng_state()
            h, new_state = cell.step(x[0], state)
            if _shape(h) != (B, H):
                raise PluginCodeError(f"{who}: step returned an output of shape {_shape(h)}, expected "
                                      f"[batch, hidden] = {(B, H)}")
            if not isinstance(new_state, tuple) or len(new_state) != len(names) or \
                    any(_shape(s) != (B, H) for s in new_state):
                got = [_shape(s) for s in new_state] if isinstance(new_state, tuple) else type(new_state).__name__
                raise PluginCodeError(f"{who}: step returned a state of shapes {got}, expected {len(names)} "
                                      f"tensor(s) {names} of shape {(B, H)}")
            torch.set_rng_state(rng)
            seq = cell.sequence(x, cell.init_state(B))
            if _shape(seq[0]) != (T, B, H):
                raise PluginCodeError(f"{who}: sequence returned outputs of shape {_shape(seq[0])}, expected "
                                      f"[time, batch, hidden] = {(T, B, H)}")
            problems = _capability_problems(cell, x, rng, seq)
    except PluginCodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. a matrix product with the wrong sizes inside the cell
        raise PluginCodeError(f"{who}: a trial step on a batch of {B} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        for m, training in modes:
            m.training = training
    if problems:
        raise PluginCodeError(f"{who}: " + "; ".join(problems))
    # which contribution this module is, for messages about it later (a NaN it produces, an export it fails)
    cell.seqwb_spec = spec
    return cell


#: how far a path may be from stepping, relative to the size of the values (at least 1): kernels and the step sum
#: in other orders, a few float32 roundings (~1e-7) over three steps; a path with another function is off by
#: orders of magnitude more
CAPABILITY_TOL = 1e-4


def _capability_problems(cell: Any, x: Any, rng: Any, seq: tuple[Any, Any]) -> list[str]:
    """Run ``cell`` over ``x [T, B, I]`` by stepping and through each path it declares; one line per disagreement.

    ``seq`` is what ``cell.sequence(x, init_state)`` returned (run by the caller from the random state ``rng``).
    The reference is the per-step loop of the base class (``step_projected`` on the projected inputs for a
    ``split_step`` cell, ``step`` otherwise).  Every run starts from a fresh ``init_state`` and the random state
    ``rng``, so a cell that samples draws the same numbers on every path that takes its steps in the same order."""
    import torch

    def fresh() -> Any:
        torch.set_rng_state(rng)
        return cell.init_state(x.shape[1])

    def stepped(one_step: Any, xs: Any) -> tuple[Any, tuple, list[dict]]:
        state, outs, steps = fresh(), [], []
        for x_t in xs.unbind(0):
            gates: dict = {}
            h, state = one_step(x_t, state, gates)
            outs.append(h.clone())   # (clones: a step may reuse its buffers)
            # what a recurrent block's per-step trace holds: the states by name, then the gates as reported
            steps.append({**{n: s.clone() for n, s in zip(cell.state_names, state)},
                          **{n: g.clone() for n, g in gates.items()}})
        return torch.stack(outs), tuple(state), steps

    if cell.split_step:
        ref_out, ref_state, ref_steps = stepped(cell.step_projected, cell.input_projection(x))
    else:
        ref_out, ref_state, ref_steps = stepped(cell.step, x)
    if not all(bool(torch.isfinite(t).all()) for t in (ref_out, *ref_state)):
        return []   # a step that overflows on this input says nothing about the other paths

    def off(a: Any, b: Any) -> float:
        """How far ``a`` is from ``b``, relative to the size of ``b`` (at least 1); inf for another shape or a NaN
        (which would otherwise get lost in ``max``)."""
        if tuple(a.shape) != tuple(b.shape):
            return float("inf")
        d = float((a.double() - b.double()).abs().max()) / max(1.0, float(b.double().abs().max()))
        return d if d == d else float("inf")

    def worst_of(out: Any, final: Any) -> tuple[float, str]:
        if len(final) != len(ref_state):
            return float("inf"), f"the final state has {len(final)} tensors, not {len(ref_state)}"
        return max([(off(out, ref_out), "the outputs differ")] +
                   [(off(a, b), f"the final {n!r} differs") for n, a, b in zip(cell.state_names, final, ref_state)])

    problems = []

    def compare(what: str, worst: tuple[float, str], fix: str) -> None:
        if worst[0] > CAPABILITY_TOL:
            problems.append(f"{what}: {worst[1]} by {worst[0]:.3g}; {fix}")

    if cell.split_step:
        # decoders and probes call step: derived from the two parts, unless the cell overrides it (a decode path)
        out, final, _ = stepped(cell.step, x)
        compare("step disagrees with step_projected(input_projection(x)) (split_step = True)", worst_of(out, final),
                "an override of step must compute the same")
    out, final = seq
    if cell.has_fused:
        compare("sequence (has_fused = True) disagrees with stepping the cell", worst_of(out, final),
                "declare has_fused = False or override sequence")
    else:
        compare("sequence disagrees with stepping the cell", worst_of(out, final),
                "an override of sequence must compute the step's function over time")
    if cell.traced_sequence:
        what = "sequence_traced (traced_sequence = True)"
        fix = "declare traced_sequence = False or override sequence_traced"
        out, final, traced = cell.sequence_traced(x, fresh())
        want = list(ref_steps[0])
        if list(traced) != want:
            problems.append(f"{what} reports {list(traced)}, stepping the cell reports {want} (names and order must "
                            f"match); {fix}")
        else:
            worst = max([worst_of(out, final)] +
                        [(off(traced[n], torch.stack([s[n] for s in ref_steps])), f"{n!r} differs") for n in want])
            compare(f"{what} disagrees with stepping the cell", worst, fix)
    return problems


def check_cells(registry: Registry, input_size: int = 4, hidden_size: int = 6) -> tuple[int, list[Any]]:
    """Build every registered cell with its default parameters and run the trial step of :func:`build_cell`.

    Returns ``(cells checked, failures)``, each failure a :class:`~workbench.schema.registry.PluginFailure`
    with ``hook="cell check"`` naming the plugin and what is wrong.  Used by ``seqwb plugins --check`` and the
    plugin manager's "Check cells" button: a cell with the wrong shapes is named before any project uses it.
    """
    import traceback

    failures = []
    specs = list(registry.items.get("cell", {}).values())
    for spec in specs:
        try:
            build_cell(spec, input_size, hidden_size, spec.params())
        except Exception as exc:  # noqa: BLE001 - PluginCodeError, or anything else the plugin raised
            text = str(exc) if isinstance(exc, PluginCodeError) else \
                f"cell {spec.id!r} from {plugin_label(spec)}: {type(exc).__name__}: {exc}"
            failures.append(PluginFailure(spec.distribution, spec.plugin, text, traceback.format_exc(),
                                          hook="cell check"))
    return len(specs), failures


# ---- the template format ----------------------------------------------------------------------------------------

#: the ``ui=`` hints of a parameter (:func:`workbench.schema.params.param`) that the window acts on
UI_HINTS: dict[str, str] = {
    "cell": "a cell chooser; the value is a cell id (a template's cell parameter, a recurrent block's cell)",
    "path": "a file chooser; the value is a path, relative to the project file",
}

#: the keys of a project document, which a template's factory returns (``workbench.core.project``)
TEMPLATE_KEYS: dict[str, str] = {
    "name": "the project's name (a string)",
    "graph": "{'nodes': [...], 'links': [...]}: Graph.to_json() without its 'ui'",
    "ui": "node positions: Graph.to_json()['ui']",
    "task": "{'id': task id, 'params': {name: value}}: the task and its parameters",
    "train": "{name: value}: training settings, each a field of TrainConfig (the --set names: steps, lr, ...)",
    "decode": "{'decoder': decoder id, 'params': {name: value}, 'prompt': text}: the default decoding",
    "data": "{...}: what the data files were (filled in by training; a template leaves it out)",
    "notes": "a text shown with the project",
}

DECODE_KEYS = ("decoder", "params", "prompt")


def template_problems(doc: Any, registry: Registry, spec: Any = None) -> list[str]:
    """Everything wrong with a template's project document, one line each (``[]`` when it is valid).

    The document's keys are :data:`TEMPLATE_KEYS`; ``train`` and the task's and decoder's ``params`` are checked
    against their parameter dataclasses (unknown names with suggestions, types, ranges), the task, the block
    types and the cells must be installed, and the graph must be valid for the task.  Reading a project ignores
    unknown training settings, so a misspelt one in a template would otherwise be dropped without a word."""
    import json

    from workbench.core.graph import analyze
    from workbench.core.project import Project, TrainConfig
    from workbench.schema.params import ParamError, params_from_dict, suggest

    if not isinstance(doc, dict):
        return [f"the factory returned {type(doc).__name__}, not a project document (a dict)"]
    problems = [f"unknown key {key!r}{suggest(key, TEMPLATE_KEYS)}; a template's document has: "
                f"{', '.join(TEMPLATE_KEYS)}" for key in doc if key not in TEMPLATE_KEYS]
    try:
        json.dumps(doc)
    except (TypeError, ValueError) as exc:
        problems.append(f"the document is not plain JSON data ({exc})")
    train = doc.get("train", {})
    if not isinstance(train, dict):
        problems.append(f"'train' is {type(train).__name__}, not an object of training settings")
    else:
        try:
            params_from_dict(TrainConfig, train, "train")
        except ParamError as exc:
            problems.append(str(exc))
    task = doc.get("task")
    task_spec = None
    if not (isinstance(task, dict) and isinstance(task.get("id"), str)):
        problems.append("'task' must be {'id': TASK_ID, 'params': {...}}")
    else:
        promised = str(getattr(spec, "task", "") or "")
        if promised and task["id"] != promised:
            problems.append(f"the document's task is {task['id']!r}, the spec says {promised!r}")
        try:
            task_spec = registry.task(task["id"])
            params_from_dict(task_spec.params, task.get("params") or {}, "task")
        except (LookupError, ParamError) as exc:
            problems.append(str(exc))
    decode = doc.get("decode", {})
    if not isinstance(decode, dict):
        problems.append(f"'decode' is {type(decode).__name__}, not an object")
    else:
        problems += [f"unknown decode key {key!r}{suggest(key, DECODE_KEYS)}; decode has: {', '.join(DECODE_KEYS)}"
                     for key in decode if key not in DECODE_KEYS]
        if "decoder" in decode:
            try:
                decoder = registry.decoder(decode["decoder"])
                params_from_dict(decoder.params, decode.get("params") or {}, "decode")
            except (LookupError, ParamError) as exc:
                problems.append(str(exc))
    graph = doc.get("graph")
    if not (isinstance(graph, dict) and isinstance(graph.get("nodes"), list) and isinstance(graph.get("links"),
                                                                                           list)):
        problems.append("'graph' must be {'nodes': [...], 'links': [...]} (Graph.to_json())")
    elif task_spec is not None:
        try:
            project = Project.from_json(doc)
        except (ValueError, TypeError, KeyError) as exc:
            problems.append(f"not a project: {exc}")
        else:
            problems += analyze(project.graph, registry, task_spec).problems
    return problems
