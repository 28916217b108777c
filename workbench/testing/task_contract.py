"""The task contract: data and sizes, batches (layout, lengths, a pure function of their arguments), the loss
and its gradient, ``count``, ``loss_last_step`` as the gradient-through-time probe calls it, and the metrics
(:func:`check_task_spec`)."""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from workbench.schema.errors import DataError
from workbench.testing.contract_base import fail as _fail
from workbench.testing.contract_base import finite as _finite
from workbench.testing.contract_base import shape_of as _shape
from workbench.testing.contract_base import who_is as _who


def _step_port(spec: Any) -> str:
    return spec.step_input or next((p.name for p in spec.inputs if p.type == "tokens[T]"),
                                   spec.inputs[0].name if spec.inputs else "")


def _fake_outputs(spec: Any, task: Any, T: int, B: int, *, per_step: bool, g: torch.Generator) -> dict[str, Any]:
    """Random outputs for each of the task's output ports: training shapes, or the probe's ([T, B, ...] all)."""
    out = {}
    for p in spec.outputs:
        size = task.sizes.get(p.size, 1) if p.size else 1
        if p.type.endswith("[T]") or per_step:
            out[p.name] = torch.randn(T, B, size, generator=g, dtype=torch.float64)
        else:
            out[p.name] = torch.randn(B, size, generator=g, dtype=torch.float64)
    return out


def _batch_T_B(spec: Any, batch: dict[str, Any]) -> tuple[int, int]:
    stepped = batch[_step_port(spec)]
    return int(stepped.shape[0]), int(stepped.shape[1])


def _equal_batches(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if set(a) != set(b):
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, torch.Tensor):
            if not (isinstance(y, torch.Tensor) and x.shape == y.shape and torch.equal(x, y)):
                return False
        elif x != y:
            return False
    return True


def check_task_spec(spec, params: Any = None, base_dir: Any = None, batch_size: int = 4,
                    chunk_len: int = 12) -> Any:
    """The task contract on the task built from ``params`` (the defaults unless given) in ``base_dir``; returns
    the prepared task."""
    from workbench.core.plugin_checks import call_factory
    from workbench.core.tasks import Task
    who = _who("task", spec)
    params = spec.params() if params is None else params
    try:
        task = call_factory("task", spec, params, base_dir)
        task.prepare()
    except DataError as exc:
        error = _fail(who, "task.prepare", f"the data could not be read: {exc}",
                      "give the check parameters (and base_dir) with data, or default to generated data")
        error.needs_setup = True
        raise error from exc
    except Exception as exc:  # noqa: BLE001
        raise _fail(who, "task.prepare", f"{type(exc).__name__}: {exc}",
                    "prepare() reads or generates the data; raise DataError with a clear line for bad data") from exc
    if not isinstance(task, Task):
        raise _fail(who, "task.prepare", f"the factory returned {type(task).__name__}, not a workbench.api.Task",
                    "subclass workbench.api.Task")
    named = sorted({p.size for p in (*spec.inputs, *spec.outputs) if p.size})
    bad = [n for n in named if not (isinstance(task.sizes.get(n), int) and task.sizes[n] > 0)]
    if bad:
        raise _fail(who, "task.sizes", f"task.sizes {task.sizes} lacks a positive int for {bad} (named by the "
                                       f"spec's ports)", "set self.sizes in prepare() for every size a port names")

    fix_batch = "yield dicts with every input port, time-major sequences ([T, B]), 'lengths' [B] in [1, T]"
    first = None
    for split in ("train", "valid"):
        try:
            n = task.num_batches(split, batch_size, chunk_len)
            batch = next(iter(task.batches(split, batch_size, chunk_len, epoch=1, start=0, seed=3)))
            again = next(iter(task.batches(split, batch_size, chunk_len, epoch=1, start=0, seed=3)))
        except StopIteration:
            raise _fail(who, "task.batches", f"the {split} split gives no batch", fix_batch) from None
        except Exception as exc:  # noqa: BLE001
            raise _fail(who, "task.batches", f"{split}: {type(exc).__name__}: {exc}", fix_batch) from exc
        if not (isinstance(n, int) and n >= 1):
            raise _fail(who, "task.batches", f"num_batches({split!r}) is {n!r}", "return how many batches "
                                                                                 "batches() yields, at least 1")
        _check_batch(spec, batch, who, split)
        if not _equal_batches(batch, again):
            raise _fail(who, "task.batches", f"two calls of batches({split!r}, ...) with the same arguments gave "
                                             f"different batches", "draw from a generator seeded by (seed, epoch, "
                                                                   "batch index), never from global state")
        first = first or batch
    assert first is not None
    T, B = _batch_T_B(spec, first)
    g = torch.Generator().manual_seed(0)

    outputs = {k: v.requires_grad_() for k, v in _fake_outputs(spec, task, T, B, per_step=False, g=g).items()}
    fix_loss = "return the mean loss over the batch as a 0-dim tensor computed from the outputs"
    try:
        loss = task.loss(outputs, first)
    except Exception as exc:  # noqa: BLE001
        raise _fail(who, "task.loss", f"{type(exc).__name__}: {exc}", fix_loss) from exc
    if not (isinstance(loss, torch.Tensor) and loss.dim() == 0 and _finite(loss)):
        got = f"a tensor of shape {_shape(loss)}" if isinstance(loss, torch.Tensor) else repr(loss)
        raise _fail(who, "task.loss", f"loss() returned {got}{'' if _finite(loss) else ' (not finite)'}, not a "
                                      f"finite scalar", fix_loss)
    try:
        grads = torch.autograd.grad(loss, list(outputs.values()), allow_unused=True)
    except RuntimeError as exc:
        raise _fail(who, "task.loss", f"the loss cannot be differentiated: {exc}", fix_loss) from exc
    if not all(gr is None or _finite(gr) for gr in grads) or all(gr is None for gr in grads):
        raise _fail(who, "task.loss", "the loss has no finite gradient with respect to the outputs", fix_loss)
    count = task.count(first)
    if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
        raise _fail(who, "task.count", f"count() returned {count!r}", "return the number of items the loss is a "
                                                                      "mean over (tokens, sequences), an int > 0")
    _check_loss_last_step(spec, task, who, batch_size, chunk_len, g)
    _check_metrics(spec, task, who, batch_size, chunk_len, g)
    return task


def _check_batch(spec: Any, batch: Any, who: str, split: str) -> None:
    fix = "yield dicts with every input port, time-major sequences ([T, B]), 'lengths' [B] in [1, T]"
    if not isinstance(batch, dict):
        raise _fail(who, "task.batches", f"a {split} batch is {type(batch).__name__}, not a dict", fix)
    missing = [p.name for p in spec.inputs if p.name not in batch]
    if missing:
        raise _fail(who, "task.batches", f"a {split} batch lacks the input port(s) {missing}", fix)
    T, B = _batch_T_B(spec, batch)
    lengths = batch.get("lengths")
    if isinstance(lengths, torch.Tensor) and lengths.dim() == 1:
        B = int(lengths.shape[0])   # the batch size that lengths states: a batch-first input shows against it
    for p in spec.inputs:
        value = batch[p.name]
        ok = isinstance(value, torch.Tensor)
        if ok and p.type == "tokens[T]":
            ok = value.dim() == 2 and not value.is_floating_point() and value.shape[1] == B
        elif ok and p.type.endswith("[T]"):
            ok = value.dim() == 3 and value.shape[1] == B
        elif ok:
            ok = value.dim() >= 1 and value.shape[0] == B
        if not ok:
            raise _fail(who, "task.batches", f"{split} input {p.name!r} ({p.type}) has shape {_shape(value)} in a "
                                             f"batch of {B} (sequences are time-major, [T, B, ...]; other inputs "
                                             f"batch-first)", fix)
    longest = max((int(batch[p.name].shape[0]) for p in spec.inputs if p.type.endswith("[T]")), default=T)
    if lengths is not None and not (isinstance(lengths, torch.Tensor) and tuple(lengths.shape) == (B,) and
                                    int(lengths.min()) >= 1 and int(lengths.max()) <= longest):
        raise _fail(who, "task.batches", f"{split} 'lengths' is {lengths!r}, expected [B] = ({B},) ints in [1, T]",
                    fix)


def _check_loss_last_step(spec: Any, task: Any, who: str, batch_size: int, chunk_len: int,
                          g: torch.Generator) -> None:
    """What the gradient-through-time probe does: both losses of the per-step outputs, and where L_T looks."""
    fix = ("L_T is the loss at each sequence's last real step: cut every time-major tensor there (lengths - 1); "
           "the probe passes every output stacked over time, [T, B, ...]")
    try:
        batch = task.probe_batch(batch_size, chunk_len)
    except Exception as exc:  # noqa: BLE001
        raise _fail(who, "task.loss-last-step", f"probe_batch() raised {type(exc).__name__}: {exc}",
                    "probe_batch(batch_size, length) returns one batch (default: the first valid batch)") from exc
    T, B = _batch_T_B(spec, batch)
    outputs = {k: v.requires_grad_() for k, v in _fake_outputs(spec, task, T, B, per_step=True, g=g).items()}

    def where(loss_fn: Callable, name: str) -> set[tuple[int, int]]:
        try:
            value = loss_fn(outputs, batch)
            grads = torch.autograd.grad(value, list(outputs.values()), allow_unused=True)
        except Exception as exc:  # noqa: BLE001
            raise _fail(who, "task.loss-last-step", f"{name}() of the probe's per-step outputs raised "
                                                    f"{type(exc).__name__}: {exc}", fix) from exc
        if not (isinstance(value, torch.Tensor) and value.dim() == 0 and _finite(value)):
            raise _fail(who, "task.loss-last-step", f"{name}() of the probe's outputs is not a finite scalar", fix)
        places: set[tuple[int, int]] = set()
        for gr in grads:
            if gr is not None:
                hit = gr.reshape(T, B, -1).abs().sum(-1) > 0
                places |= {(int(t), int(b)) for t, b in hit.nonzero().tolist()}
        return places

    last = where(task.loss_last_step, "loss_last_step")
    whole = where(task.loss, "loss")
    if not last:
        raise _fail(who, "task.loss-last-step", "loss_last_step() depends on no output", fix)
    outside = sorted(last - whole)
    if outside:
        raise _fail(who, "task.loss-last-step", f"loss_last_step() looks at (step, sequence) {outside[:3]}, where "
                                                f"loss() has no gradient (a padded step?)", fix)
    for b in range(B):
        mine = sorted(t for t, b2 in last if b2 == b)
        ends = max((t for t, b2 in whole if b2 == b), default=None)
        if len(mine) > 1:
            raise _fail(who, "task.loss-last-step", f"loss_last_step() depends on steps {mine} of sequence {b}, not "
                                                    f"on one step (loss() depends on steps up to {ends})", fix)
        if mine and mine[0] != ends:
            raise _fail(who, "task.loss-last-step", f"loss_last_step() takes step {mine[0]} of sequence {b}; its "
                                                    f"loss ends at step {ends}", fix)


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool):
        return [float(value)]
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _numbers(v)]
    raise TypeError(type(value).__name__)


def _check_metrics(spec: Any, task: Any, who: str, batch_size: int, chunk_len: int, g: torch.Generator) -> None:
    from workbench.core.tasks import Task
    fix = "eval_finish returns {'loss': mean loss, metric: number, ...} from what eval_update accumulated"
    acc: dict = {}
    try:
        for i, batch in enumerate(task.batches("valid", batch_size, chunk_len, epoch=0, start=0)):
            if i == 2:
                break
            T, B = _batch_T_B(spec, batch)
            with torch.no_grad():
                task.eval_update(acc, _fake_outputs(spec, task, T, B, per_step=False, g=g), batch)
        result = task.eval_finish(acc)
    except Exception as exc:  # noqa: BLE001
        raise _fail(who, "task.metrics", f"{type(exc).__name__}: {exc}", fix) from exc
    if not isinstance(result, dict) or "loss" not in result:
        raise _fail(who, "task.metrics", f"eval_finish returned {result!r:.200}, without 'loss'", fix)
    for name, value in result.items():
        try:
            numbers = _numbers(value)
        except TypeError as exc:
            raise _fail(who, "task.metrics", f"metric {name!r} is a {exc}, not a number", fix) from None
        if not all(math.isfinite(x) for x in numbers):
            raise _fail(who, "task.metrics", f"metric {name!r} is not finite ({value!r:.80})", fix)
        rate = any(word in name for word in ("accuracy", "exact", "f1"))
        if rate and not all(0.0 <= x <= 1.0 for x in numbers):
            raise _fail(who, "task.metrics", f"metric {name!r} = {value!r} is a rate outside [0, 1]",
                        "report rates as fractions")
        if name.startswith("baseline_") and name[len("baseline_"):] not in result:
            raise _fail(who, "task.metrics", f"{name!r} has no metric {name[len('baseline_'):]!r} to be the "
                                             f"baseline of", "baseline_<metric> is drawn next to <metric>: return "
                                                             "both, or rename it")
    generates = type(task).eval_generate is not Task.eval_generate
    absent = [m for m in spec.metrics if m not in result]
    if absent and not generates:
        raise _fail(who, "task.metrics", f"the spec declares metrics {absent} that eval_finish does not return",
                    "return every declared metric, or drop it from TaskSpec.metrics")

