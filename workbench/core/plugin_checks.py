"""Checks at build time that a plugin's code does what its spec promises, with the plugin named when it does not.

A cell whose ``step`` returns the wrong shape would otherwise fail deep inside a matrix product during training
("mat1 and mat2 shapes cannot be multiplied"), with nothing pointing at the plugin.  :func:`build_cell` builds the
cell and runs one step and a three-step sequence on a batch of two zeros (microseconds) before the model uses it.
torch is imported by the functions, not by this module.
"""

from __future__ import annotations

from typing import Any

from workbench.schema.errors import WorkbenchError

__all__ = ["PluginCodeError", "build_cell", "call_factory", "plugin_label"]


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
    try:
        # fork_rng: a cell that samples (dropout masks, noise) in its trial step must not shift the random stream
        # that seeded training uses next
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            state = cell.init_state(B)
            if not isinstance(state, tuple) or len(state) != len(names):
                raise PluginCodeError(f"{who}: init_state returned {type(state).__name__} of "
                                      f"{len(state) if isinstance(state, tuple) else '?'} tensors; state_names "
                                      f"says {len(names)} {names}")
            for name, s in zip(names, state):
                if _shape(s) != (B, H):
                    raise PluginCodeError(f"{who}: init_state gives {name!r} of shape {_shape(s)}, expected "
                                          f"[batch, hidden] = {(B, H)}")
            x = torch.zeros(B, input_size, dtype=state[0].dtype if state else torch.float32)
            h, new_state = cell.step(x, state)
            if _shape(h) != (B, H):
                raise PluginCodeError(f"{who}: step returned an output of shape {_shape(h)}, expected "
                                      f"[batch, hidden] = {(B, H)}")
            if not isinstance(new_state, tuple) or len(new_state) != len(names) or \
                    any(_shape(s) != (B, H) for s in new_state):
                got = [_shape(s) for s in new_state] if isinstance(new_state, tuple) else type(new_state).__name__
                raise PluginCodeError(f"{who}: step returned a state of shapes {got}, expected {len(names)} "
                                      f"tensor(s) {names} of shape {(B, H)}")
            out, _ = cell.sequence(x.unsqueeze(0).expand(T, B, input_size).contiguous(), state)
            if _shape(out) != (T, B, H):
                raise PluginCodeError(f"{who}: sequence returned outputs of shape {_shape(out)}, expected "
                                      f"[time, batch, hidden] = {(T, B, H)}")
    except PluginCodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. a matrix product with the wrong sizes inside the cell
        raise PluginCodeError(f"{who}: a trial step on a batch of {B} failed: {type(exc).__name__}: {exc}") from exc
    return cell


def check_cells(registry: Any, input_size: int = 4, hidden_size: int = 6) -> tuple[int, list[Any]]:
    """Build every registered cell with its default parameters and run the trial step of :func:`build_cell`.

    Returns ``(cells checked, failures)``, each failure a :class:`~workbench.schema.registry.PluginFailure`
    with ``hook="cell check"`` naming the plugin and what is wrong.  Used by ``seqwb plugins --check`` and the
    plugin manager's "Check cells" button: a cell with the wrong shapes is named before any project uses it.
    """
    import traceback

    from workbench.schema.registry import PluginFailure
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
