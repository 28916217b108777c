"""What a project's task reads from its data, before anything trains: the inspector's data preview and
``seqwb data FILE``, from one function (:func:`preview_data`).

It reads the data exactly as training will (the task's own ``prepare``, with the project's vocabulary when it has
one) and answers with plain data: the size of each split, the vocabulary and the other sizes the model is built
with, the first examples as text, and what one training batch looks like (each tensor's shape, type and layout).
Nothing in the project changes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional

from workbench.core.project import Project
from workbench.schema.errors import DataError
from workbench.schema.params import params_from_dict

#: how many examples the preview shows unless asked for another number
EXAMPLES = 5
#: an example's text is cut to this many characters (a char-LM chunk is 100 characters; a review may be pages)
EXAMPLE_CHARS = 300

Progress = Optional[Callable[[str, int, int], None]]


def preview_data(project: Project, registry: Any, base_dir: str | Path | None = None, *, examples: int = EXAMPLES,
                 split: str = "train", progress: Progress = None) -> dict[str, Any]:
    """Read the project's data as training would and describe it (see the module docstring).

    Raises :class:`~workbench.schema.errors.DataError` for data that cannot be read (with the task's message),
    ``ParamError`` for task settings that are not valid, ``LookupError`` for a task that is not installed, and
    ``ValueError`` when the project has no task.
    """
    from workbench.core.training.faults import progress_argument
    if not project.task.id:
        raise ValueError("the project has no task: choose one first (drag it from the palette's Tasks, or "
                         "seqwb new --task ID)")
    if split not in ("train", "valid", "test"):
        raise ValueError(f"split must be train, valid or test, not {split!r}")
    started = time.perf_counter()
    spec = registry.task(project.task.id)
    params = params_from_dict(spec.params, project.task.params, "task")
    base = Path(base_dir) if base_dir else Path.cwd()
    from workbench.core.data_access import check_task_paths
    check_task_paths(spec, project.task.params, base)     # outside data named by a file: only once confirmed
    task = spec.load()(params, base)
    task.prepare(vocab=project.vocab, **progress_argument(task, progress))
    cfg = project.train
    sizes = {k: int(v) for k, v in (task.sizes or {}).items()}
    splits = {name: {"count": count, "unit": unit} for name, (count, unit) in task.split_sizes().items()}
    try:
        rows = task.examples(split, max(0, examples), cfg.chunk_len) if examples else []
    except DataError as exc:
        rows, example_error = [], str(exc)
    else:
        example_error = ""
    batch, batch_error = _describe_batch(task, cfg.batch_size, cfg.chunk_len)
    return {
        "task": spec.id,
        "title": spec.title,
        "files": _files(task.data_files),
        "splits": splits,
        "sizes": sizes,
        "vocab_size": sizes.get("vocab"),
        "split": split,
        "examples": [{k: _cut(v) for k, v in row.items()} for row in rows],
        "examples_error": example_error,
        "batch": batch,
        "batch_error": batch_error,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _describe_batch(task: Any, batch_size: int, chunk_len: int) -> tuple[dict[str, Any], str]:
    """One training batch at the project's batch size and chunk length: ``({"tensors": [...], ...}, "")``, or
    ``({}, why not)`` when the training split cannot make one."""
    try:
        batch = next(iter(task.batches("train", batch_size, chunk_len, epoch=0, start=0)), None)
        count = int(task.num_batches("train", batch_size, chunk_len))
    except DataError as exc:
        return {}, str(exc)
    if batch is None:
        return {}, "the training split gives no batch"
    tensors, flags = [], {}
    time_major = tuple(task.time_major or ())
    for key, value in batch.items():
        shape = getattr(value, "shape", None)
        if shape is None:
            flags[key] = value if isinstance(value, (bool, int, float, str)) else repr(value)
            continue
        dims = list(shape)
        if key in time_major and len(dims) >= 2:
            axes = ["T", "B"] + [f"d{i}" for i in range(2, len(dims))]
        elif len(dims) >= 1:
            axes = ["B"] + [f"d{i}" for i in range(1, len(dims))]
        else:
            axes = []
        tensors.append({"key": key, "shape": dims, "axes": axes, "dtype": str(getattr(value, "dtype", "")).replace(
            "torch.", "")})
    return {"batch_size": batch_size, "chunk_len": chunk_len, "batches_per_epoch": count, "tensors": tensors,
            "flags": flags, "count": int(task.count(batch)), "count_unit": task.count_unit}, ""


def _files(files: Any) -> dict[str, Any]:
    """The task's file records, JSON-ready (paths as text)."""
    out: dict[str, Any] = {}
    for key, record in (files or {}).items():
        out[str(key)] = {k: (str(v) if isinstance(v, Path) else v) for k, v in dict(record).items()} \
            if isinstance(record, dict) else str(record)
    return out


def count_text(count: int, unit: str) -> str:
    """``1 example``, ``2,700,000 characters``: the unit's plural drops its s for one."""
    return f"{count:,} {unit[:-1] if count == 1 and unit.endswith('s') else unit}"


def _cut(text: str) -> str:
    return text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS - 1] + "…"


def describe_preview(preview: dict[str, Any]) -> list[str]:
    """The preview as lines of text (``seqwb data`` prints them; the inspector shows the same words)."""
    lines = [f"{preview['title']} ({preview['task']}), read in {preview['seconds']:.2f} s"]
    splits = preview["splits"]
    lines.append("splits: " + ", ".join(f"{name} {count_text(s['count'], s['unit'])}" for name, s in splits.items()))
    sizes = preview["sizes"]
    if sizes:
        lines.append("sizes: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))
    batch = preview["batch"]
    if batch:
        lines.append(f"one batch (batch_size {batch['batch_size']}, chunk_len {batch['chunk_len']}; "
                     f"{batch['batches_per_epoch']:,} per epoch, {batch['count']:,} {batch['count_unit']}):")
        for t in batch["tensors"]:
            shape = " × ".join(f"{a}={n}" for a, n in zip(t["axes"], t["shape"])) or "scalar"
            lines.append(f"  {t['key']}: [{shape}] {t['dtype']}")
        for key, value in batch["flags"].items():
            lines.append(f"  {key}: {value!r}")
    elif preview["batch_error"]:
        lines.append(f"no batch: {preview['batch_error']}")
    if preview["examples"]:
        lines.append(f"first examples ({preview['split']}):")
        for i, row in enumerate(preview["examples"], 1):
            for j, (key, text) in enumerate(row.items()):
                lines.append(f"  {str(i) + '.' if j == 0 else '':<4}{key}: {text!r}")
    elif preview["examples_error"]:
        lines.append(f"no examples: {preview['examples_error']}")
    return lines
