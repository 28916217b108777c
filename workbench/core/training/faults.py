"""Faults: data and weights that do not fit the model, and which plugin raised an exception."""

from __future__ import annotations

from typing import Any

import torch

from workbench.core.project import Project
from workbench.schema.errors import TrainingError
from workbench.schema.registry import Registry

# ---- faults: weights that do not fit, exceptions raised by plugin code ----------------------------------------

def progress_argument(task: Any, callback: Any) -> dict[str, Any]:
    """``{"progress": callback}`` when the task's ``prepare`` takes it (the Task contract does; an older
    third-party task may not)."""
    import inspect
    try:
        parameters = inspect.signature(task.prepare).parameters
    except (TypeError, ValueError):
        return {}
    accepts = "progress" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    return {"progress": callback} if accepts else {}


def check_data_fits(project: Project, sizes: dict[str, int]) -> None:
    """Raise :class:`DataError` when the data now read has another shape than the data the checkpoint was trained
    on (say, images of another size for a captioning model, or features of another width)."""
    from workbench.schema.errors import DataError
    before = (project.data or {}).get("sizes") if isinstance(project.data, dict) else None
    if not isinstance(before, dict):
        return
    changed = [f"{name} is {new} (the model was trained with {before[name]})" for name, new in sizes.items()
               if name in before and before[name] != new]
    if changed:
        raise DataError(f"the data do not fit the trained model: {'; '.join(changed)}; use data of the same shape, "
                        f"or train a new run (--new-run)")


def check_weights_fit(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Raise :class:`TrainingError` naming the first tensor whose name, shape or kind does not fit ``model``.

    ``load_state_dict`` would say only "Error(s) in loading state_dict" on its first line, and it silently casts
    an integer tensor into a float parameter; a hand-made or damaged file gets a precise message instead.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in weights]
    extra = [k for k in weights if k not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''}")
        raise TrainingError(f"the saved weights do not fit this model: {'; '.join(parts)} (the file's weights "
                            f"were made for a different graph)")
    for name, want in expected.items():
        got = weights[name]
        if tuple(got.shape) != tuple(want.shape):
            raise TrainingError(f"the saved weights do not fit this model: {name} has shape {list(got.shape)} "
                                f"in the file, the model needs {list(want.shape)}")
        if got.dtype.is_floating_point != want.dtype.is_floating_point or got.dtype.is_complex != want.dtype.is_complex:
            raise TrainingError(f"the saved weights do not fit this model: {name} is {got.dtype} in the file, "
                                f"the model needs {want.dtype}")


def _used_specs(project: Project, registry: Registry) -> list[tuple[str, Any]]:
    """(kind, spec) of the task, the blocks, the cells and the decoder this project uses."""
    wanted: list[tuple[str, str]] = [("task", project.task.id), ("decoder", project.decode.decoder)]
    for node in project.graph.nodes.values():
        wanted.append(("architecture", node.type))
        for value in node.params.values():
            if isinstance(value, str):
                wanted.append(("cell", value))
    out = []
    for kind, spec_id in wanted:
        try:
            if registry.has(kind, spec_id):
                out.append((kind, registry.get(kind, spec_id)))
        except (LookupError, AttributeError):
            continue
    return out


def plugin_at_fault(exc: BaseException, project: Project, registry: Registry) -> str:
    """Which plugin contribution raised ``exc``: "cell 'x' (plugin distribution 'd', entry point 'e')", or "".

    The traceback is walked from the innermost frame outwards; the first frame whose module is the factory module
    of a contribution this project uses (or a module of the same package, for a third-party plugin) decides.
    Built-ins are plugins too, so a bug in one is reported the same way.
    """
    specs = _used_specs(project, registry)
    by_module: dict[str, tuple[str, Any]] = {}
    by_package: dict[str, tuple[str, Any]] = {}
    for kind, spec in specs:
        module = str(getattr(spec, "factory", "")).partition(":")[0]
        if module:
            by_module.setdefault(module, (kind, spec))
            package = module.split(".")[0]
            if package not in ("workbench", "workbench_plugins", "torch"):
                by_package.setdefault(package, (kind, spec))
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_globals.get("__name__", ""))
        tb = tb.tb_next
    for name in reversed(frames):
        hit = by_module.get(name) or by_package.get(name.split(".")[0])
        if hit:
            kind, spec = hit
            dist = getattr(spec, "distribution", "") or "unknown distribution"
            plugin = getattr(spec, "plugin", "")
            return (f"{kind} {spec.id!r} (plugin distribution {dist!r}"
                    + (f", entry point {plugin!r}" if plugin else "") + ")")
    return ""


# ---- where a non-finite loss comes from -----------------------------------------------------------------------

def nonfinite_origin(model: torch.nn.Module, batch: dict[str, Any], state: Any, task: Any, project: Project,
                     registry: Registry) -> str:
    """Where the first non-finite value behind a non-finite loss appears, as text to append to the message
    (" in cell 'x' (plugin p (distribution d)) of layer rnn.0: ..."), or "" when it cannot be told.

    Checked in this order: the parameters (a cell's or a block's already hold NaN or inf); then the batch is run
    again, without gradients, with every cell's ``step`` / ``sequence`` and every block watched, and the first
    one that turns finite inputs into non-finite outputs is named; when every output is finite, the task's loss
    is.  Costs one forward pass, so it is called only when a run stops for a non-finite loss.
    """
    from workbench.core.plugin_checks import plugin_label
    layer_of = {id(cell): name for name, cell in _recurrent_layers(model)}

    def cell_name(cell: Any) -> str:
        spec = getattr(cell, "seqwb_spec", None)
        what = f"cell {spec.id!r} ({plugin_label(spec)})" if spec is not None else f"cell {type(cell).__name__}"
        layer = layer_of.get(id(cell))
        return what + (f" of layer {layer}" if layer else "")

    def block_name(node_id: str) -> str:
        node = project.graph.nodes.get(node_id)
        try:
            spec = registry.block(node.type) if node is not None else None
        except LookupError:
            spec = None
        return f"block {node_id!r}" + (f" ({spec.id!r}, {plugin_label(spec)})" if spec is not None else "")

    for _, cell in _recurrent_layers(model):
        bad = [n for n, p in cell.named_parameters() if not bool(torch.isfinite(p).all())]
        if bad:
            return f" in {cell_name(cell)}: its parameters {', '.join(bad)} are not finite (after an earlier update)"
    blocks = getattr(model, "blocks", {})
    for node_id, block in blocks.items():
        bad = [n for n, p in block.named_parameters() if not bool(torch.isfinite(p).all())]
        if bad:
            return f" in {block_name(node_id)}: its parameters {', '.join(bad[:3])} are not finite"

    first: list[str] = []

    def note(who: str, inputs: Any, outputs: Any) -> None:
        if not first and _all_finite(inputs) and not _all_finite(outputs):
            first.append(who)

    def watch(cell: Any, method: str) -> Any:
        original = getattr(cell, method)

        def watched(*args: Any, **kwargs: Any) -> Any:
            out = original(*args, **kwargs)
            note(f"{cell_name(cell)}, whose {method}() turned finite inputs into non-finite outputs", args, out)
            return out
        return watched

    cells = [cell for _, cell in _recurrent_layers(model)]
    hooks = []
    for node_id, block in blocks.items():
        def hook(module: Any, args: Any, out: Any, node_id: str = node_id) -> None:
            note(f"{block_name(node_id)}, which turned finite inputs into non-finite outputs", args, out)
        hooks.append(block.register_forward_hook(hook))
    for cell in cells:
        for method in ("step", "step_projected", "sequence"):
            cell.__dict__[method] = watch(cell, method)   # an instance attribute shadows the class's method
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            outputs, _ = model(batch, state)
            loss = task.loss(outputs, batch)
    except Exception:  # noqa: BLE001 - a second look must not hide the first fault
        return ""
    finally:
        for h in hooks:
            h.remove()
        for cell in cells:
            for method in ("step", "step_projected", "sequence"):
                cell.__dict__.pop(method, None)
    if first:
        return f" in {first[0]}"
    if _all_finite(outputs) and not _all_finite(loss):
        spec = next((s for k, s in _used_specs(project, registry) if k == "task"), None)
        who = f"task {spec.id!r} ({plugin_label(spec)})" if spec is not None else "the task"
        return f" in the loss of {who}: the model's outputs are finite"
    return ""


def _recurrent_layers(model: Any) -> list[tuple[str, Any]]:
    layers = getattr(model, "recurrent_layers", None)
    return list(layers()) if callable(layers) else []


def _all_finite(value: Any) -> bool:
    """Every floating-point tensor in a nested value (tuples, lists, dicts) is finite."""
    if isinstance(value, torch.Tensor):
        return not value.is_floating_point() or bool(torch.isfinite(value).all())
    if isinstance(value, (tuple, list)):
        return all(_all_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    return True
