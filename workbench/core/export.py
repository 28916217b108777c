"""Export a project's trained model to TorchScript or ONNX, and check the export against the model itself.

What is exported is the model's whole-sequence ``forward`` from a fresh (zero) state: the task's input tensors
in, the task's output tensors out, time-major like everything in the workbench (tokens ``[T, B]``, vectors
``[T, B, F]``; per-example outputs ``[B, F]``).  Padded tasks (classification, tagging, translation) also take
``lengths`` ``[B]``.  The batch and time axes are left free where the exporter allows it; every export is run
on a second example of another batch size (and another length, where the task has free lengths) and compared
with the original model before the file is written.  Decoding (sampling, beam search) is a loop in Python
around ``step`` and is not part of the export.

The file is written atomically; a description of the inputs and outputs (and the vocabulary) travels inside it:
``seqwb.json`` in the TorchScript archive's extra files, ``metadata_props["seqwb"]`` in the ONNX model.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from workbench import __version__
from workbench.core.build import LENGTHS
from workbench.core.history_export import write_bytes
from workbench.schema.errors import WorkbenchError
from workbench.schema.registry import Registry

FORMATS = ("torchscript", "onnx")
SUFFIXES = {"torchscript": ".pt", "onnx": ".onnx"}
#: the packages ONNX export needs (the ``export`` extra); onnxruntime only for the check
ONNX_INSTALL = "pip install 'sequence-workbench[export]' (or: pip install onnx onnxscript onnxruntime)"
#: absolute tolerance of the check (float32 through a different runtime: a few ulps of the largest logits)
ATOL = 1e-4


class ExportError(WorkbenchError):
    """The model cannot be exported in the chosen format; the message says why."""


@dataclass
class ExportResult:
    path: str
    format: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    #: input name -> the axes left free (e.g. ["time", "batch"])
    dynamic: dict[str, list[str]]
    #: largest absolute difference from the original model, per check example (None: not checked)
    max_abs_diff: float | None
    checked_with: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ForwardExport(nn.Module):
    """``SequenceModel.forward`` with positional tensors in and a tuple out, as exporters want it."""

    def __init__(self, model: nn.Module, input_names: list[str], output_names: list[str]):
        super().__init__()
        self.model = model
        self.input_names = list(input_names)
        self.output_names = list(output_names)

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        batch = dict(zip(self.input_names, inputs))
        outputs, _ = self.model(batch, None)
        return tuple(outputs[name] for name in self.output_names)


# ---- examples ---------------------------------------------------------------------------------------------------

def _axis_names(name: str, t: Tensor, time_major: bool) -> dict[int, str]:
    """Which axes of an input are batch and time: ``lengths`` is ``[B]``; sequence inputs ``[T, B, ...]``;
    per-example inputs (an image) ``[B, ...]``."""
    if name == LENGTHS:
        return {0: "batch"}
    if time_major and t.dim() >= 2:
        return {0: "time", 1: "batch"}
    return {0: "batch"}


def _example_batches(task: Any, model: Any, batch_size: int, length: int) -> tuple[dict, dict]:
    """Two batches of the validation data that differ in batch size and, wherever the data allows, in length.

    The first is the first validation batch at least 3 steps long (a batch of one-token sentences would test
    little); the second has one more sequence and a different length: cut shorter when the data has the same
    length everywhere (the adding problem), so that a model whose export is tied to one length is caught."""
    def first_of(size: int, min_len: int, not_len: int | None) -> dict:
        fallback = None
        try:
            for i, b in enumerate(task.batches("valid", size, length)):
                t = _time_len(model, b)
                if fallback is None:
                    fallback = b
                if t >= min_len and t != not_len:
                    return b
                if i >= 50:
                    break
        except Exception:  # noqa: BLE001 - a task without a validation split: its probe batch
            pass
        return fallback if fallback is not None else task.probe_batch(size, length)

    first = first_of(batch_size, 3, None)
    second = first_of(batch_size + 1, 2, _time_len(model, first))
    for b in (first, second):
        missing = [p for p in model.input_ports if not isinstance(b.get(p), Tensor)]
        if missing:
            raise ExportError(f"the task's example batch has no tensor for input(s) {', '.join(missing)}")
    t1, t2 = _time_len(model, first), _time_len(model, second)
    if t1 == t2 and t1 > 1:
        second = _cut_batch(model, second, t1 - 1)
    return first, second


def _time_len(model: Any, batch: dict) -> int:
    t = batch.get(model.input_ports[0])
    return int(t.shape[0]) if isinstance(t, Tensor) and t.dim() >= 2 else 0


def _cut_batch(model: Any, batch: dict, length: int) -> dict:
    """The batch with every time-major input cut to its first ``length`` steps (``lengths`` clamped)."""
    t_full = _time_len(model, batch)
    out = dict(batch)
    for name in model.input_ports:
        v = batch[name]
        if isinstance(v, Tensor) and v.dim() >= 2 and v.shape[0] == t_full:
            out[name] = v[:length]
    if isinstance(batch.get(LENGTHS), Tensor):
        out[LENGTHS] = batch[LENGTHS].clamp(max=length)
    return out


def _input_names(model: Any, batch: dict) -> list[str]:
    names = list(model.input_ports)
    if isinstance(batch.get(LENGTHS), Tensor):
        names.append(LENGTHS)
    return names


def _time_major_inputs(model: Any, task_spec: Any) -> dict[str, bool]:
    """Input port -> True for sequence ports (``tokens[T]``, ``vectors[T]``), False for per-example ones."""
    types = {p.name: str(getattr(p, "type", "")) for p in getattr(task_spec, "inputs", [])}
    return {name: types.get(name, "").endswith("[T]") for name in model.input_ports}


def _describe(names: list[str], tensors: list[Tensor], axes: dict[str, dict[int, str]]) -> list[dict[str, Any]]:
    rows = []
    for name, t in zip(names, tensors):
        named = axes.get(name, {})
        rows.append({"name": name, "dtype": str(t.dtype).replace("torch.", ""),
                     "shape": [named.get(i, int(n)) for i, n in enumerate(t.shape)]})
    return rows


def _max_diff(expected: tuple[Tensor, ...], got: list[Any]) -> float:
    worst = 0.0
    for e, g in zip(expected, got):
        g = torch.as_tensor(g)
        if tuple(g.shape) != tuple(e.shape):
            raise ValueError(f"output shape {tuple(g.shape)} differs from the model's {tuple(e.shape)}")
        if e.is_floating_point():
            worst = max(worst, float((e.float() - g.float()).abs().max()) if e.numel() else 0.0)
        elif not torch.equal(e, g.to(e.dtype)):
            worst = max(worst, float("inf"))
    return worst


# ---- the two formats ------------------------------------------------------------------------------------------

def _trace(wrapper: ForwardExport, example: tuple[Tensor, ...]) -> Any:
    with warnings.catch_warnings():
        # TracerWarnings name every Python-side branch; whether they matter is decided by the check below
        warnings.simplefilter("ignore")
        try:
            return torch.jit.trace(wrapper, example, check_trace=False, strict=False)
        except Exception as exc:  # noqa: BLE001 - the tracer raises many types; the user gets the reason
            raise ExportError(f"TorchScript cannot trace this model: {_first_line(exc)}") from None


def _torchscript_bytes(traced: Any, meta: dict[str, Any], model: Any = None) -> bytes:
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)   # torch 2.13 marks torch.jit as deprecated
            torch.jit.save(traced, buf, _extra_files={"seqwb.json": json.dumps(meta)})
    except RuntimeError as exc:
        # torch's message starts with an empty line ("\nCould not export Python function call '...'"), so the
        # one-line report would say nothing
        raise ExportError(_python_call_message(exc, model)) from None
    return buf.getvalue()


def _python_call_message(exc: BaseException, model: Any) -> str:
    """Why TorchScript cannot save a traced model that calls a custom ``torch.autograd.Function``, naming the
    Function, the code that calls it (a plugin's cell, when it is one) and what to do."""
    import inspect
    text = str(exc)
    found = re.search(r"Could not export Python function call '([^']+)'", text)
    if found is None:
        return f"TorchScript cannot save this model: {_first_line(exc)}. Nothing was written"
    # the traced call's Python stack follows in the message, innermost first: "path(line): function"
    frames = re.findall(r"^(.+?)\((\d+)\): (\w+)\s*$", text, re.M)
    where = next(((f, int(n), fn) for f, n, fn in frames if "/torch/" not in f.replace("\\", "/")), None)
    caller = ""
    if where is not None:
        caller = f"{Path(where[0]).name}, line {where[1]}, in {where[2]}"
        for layer, cell in (model.recurrent_layers() if model is not None else []):
            try:
                source = Path(inspect.getsourcefile(type(cell)) or "").resolve()
            except TypeError:
                continue
            if source == Path(where[0]).resolve():
                from workbench.core.plugin_checks import plugin_label
                spec = getattr(cell, "seqwb_spec", None)
                who = f"cell {spec.id!r} ({plugin_label(spec)})" if spec is not None else type(cell).__name__
                caller = f"{who} of layer {layer} ({caller})"
                break
    return (f"TorchScript cannot save this model: it calls the custom torch.autograd.Function {found.group(1)!r}"
            f"{' from ' + caller if caller else ''}, and a saved TorchScript model holds torch operations only. "
            f"Export with --format onnx (it records what the Function's forward computes), or have the cell take "
            f"a path of torch operations when no gradient is needed ('if not torch.is_grad_enabled(): ...', as "
            f"export and decoding run). Nothing was written")


def _onnx_modules_missing() -> list[str]:
    import importlib.util
    return [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]


def _onnx_attempts(wrapper: ForwardExport, example: tuple[Tensor, ...], names: list[str],
                   output_names: list[str], axes: dict[str, dict[int, str]], folder: Path):
    """Yield ``(label, free_axes, bytes or exception)`` for each way of exporting, best first.

    1. the TorchScript-based exporter with ``dynamic_axes`` (deprecated in torch 2.x but still shipped): it
       writes ONNX's own LSTM/GRU/RNN operators, whose sequence length is free, whereas with torch 2.13
       ``torch.export`` fixes the time axis of ``aten.lstm`` / ``aten.gru`` to the example's length;
    2. the dynamo-based exporter (``torch.export``, needs onnxscript) with free batch and time axes;
    3. the dynamo-based exporter at the example's shapes.
    Each result is checked by the caller; a later way is tried only when an earlier one fails."""
    from torch.export import Dim
    dims = {"time": Dim.DYNAMIC, "batch": Dim.DYNAMIC}
    # the wrapper takes *inputs: the shapes of its one variadic argument are one tuple
    dynamic = (tuple({i: dims[a] for i, a in axes[n].items()} for n in names),)
    legacy_axes = {n: {i: a for i, a in axes[n].items()} for n in names}
    for label, free in (("torch.onnx (TorchScript-based)", True), ("torch.onnx (dynamo)", True),
                        ("torch.onnx (dynamo, fixed shapes)", False)):
        try:
            # the exporters print progress and graph dumps; stdout must stay clean for `seqwb export --json`
            with warnings.catch_warnings(), _quiet_torch_logs(), contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()), \
                    tempfile.TemporaryDirectory(dir=folder, prefix=".seqwb-onnx-") as tmp:
                warnings.simplefilter("ignore")
                if "TorchScript" in label:
                    buf = io.BytesIO()
                    torch.onnx.export(wrapper, example, buf, dynamo=False, input_names=names,  # type: ignore[arg-type]
                                      output_names=output_names, dynamic_axes=legacy_axes)
                    data = buf.getvalue()
                else:
                    program = torch.onnx.export(wrapper, example, dynamo=True,
                                                dynamic_shapes=dynamic if free else None, input_names=names,
                                                output_names=output_names, optimize=True, verbose=False)
                    path = Path(tmp) / "model.onnx"
                    assert program is not None      # the dynamo exporter returns its program
                    program.save(str(path), external_data=False)
                    data = path.read_bytes()
            yield label, free, data
        except Exception as exc:  # noqa: BLE001 - exporter errors come in many types
            yield label, free, exc


class _quiet_torch_logs:
    """The ONNX exporter logs a warning per torchvision operator it cannot find; nobody here exports those."""

    def __enter__(self):
        import logging
        self.logger = logging.getLogger("torch.onnx")
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc):
        self.logger.setLevel(self.level)
        return False


def _with_meta(data: bytes, meta: dict[str, Any]) -> bytes:
    import onnx
    proto = onnx.load_from_string(data)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "seqwb", json.dumps(meta)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _onnx_run(data: bytes, names: list[str], inputs: tuple[Tensor, ...]) -> list[Any] | None:
    """Outputs of the ONNX model under onnxruntime, or None when onnxruntime is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 4     # failures come back as exceptions; no C++ log lines on stderr
    session = onnxruntime.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    fed = {i.name for i in session.get_inputs()}
    feeds = {n: t.cpu().numpy() for n, t in zip(names, inputs) if n in fed}
    return session.run(None, feeds)


def _first_line(exc: BaseException | None) -> str:
    """The line of an exporter's error that says what went wrong, with the plugin source line it points at.

    TorchScript's interpreter errors start with a generic sentence and a traceback of the traced code; the
    reason is the last line, and the first frame outside torch and the workbench core names the block."""
    while exc is not None and exc.__cause__ is not None and "torch.export" in str(exc):
        exc = exc.__cause__      # the dynamo exporter wraps the reason in a "step 1/3" banner
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip() if exc is not None else ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    line = lines[0] if lines else type(exc).__name__
    if line.startswith("The following operation failed") and len(lines) > 1:
        line = lines[-1]
        where = next((ln for ln in lines[1:] if ln.endswith(": forward") and "/torch/" not in ln
                      and "workbench/core/" not in ln), "")
        if where:
            src = where.rsplit(": ", 1)[0]       # /path/to/plugins/seq2seq_blocks.py(165)
            name, _, num = Path(src).name.partition("(")
            line += f" (in {name}, line {num.rstrip(')')})"
    return line if len(line) <= 300 else line[:297] + "..."


# ---- the entry point ------------------------------------------------------------------------------------------

def export_model(project: Any, registry: Registry, out: str | Path, fmt: str, *, base_dir: str | Path | None = None,
                 best: bool = False, batch_size: int = 2, length: int = 0,
                 require_trained: bool = False) -> ExportResult:
    """Export the project's model to ``out`` in ``fmt`` (``torchscript`` or ``onnx``) after checking that the
    exported model gives the original's outputs on two example batches; raise :class:`ExportError` otherwise
    (nothing is written then)."""
    from workbench.core.training.session import ModelSession

    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    out = Path(out)
    folder = out.resolve().parent
    if not folder.is_dir():
        raise ExportError(f"cannot write {out}: the folder {folder} does not exist")
    if fmt == "onnx" and _onnx_modules_missing():
        missing = _onnx_modules_missing()
        raise ExportError(f"ONNX export needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                          f"not installed: {ONNX_INSTALL}")
    try:
        loaded = ModelSession(registry).load(project, base_dir, "best" if best else "current", "cpu")
    except ValueError as exc:   # no best weights yet
        raise ExportError(str(exc)) from None
    if require_trained and not loaded.trained:
        raise ExportError("this project has no trained weights for its graph: train it first")
    model, task = loaded.model, loaded.task
    model.eval()
    length = length or max(2, min(int(project.train.chunk_len or 16), 32))
    first, second = _example_batches(task, model, batch_size, length)
    names = _input_names(model, first)
    output_names = list(model.outputs_map)
    time_major = _time_major_inputs(model, loaded.task_spec)
    example = tuple(first[n] for n in names)
    check = tuple(second[n] for n in names)
    axes = {n: _axis_names(n, first[n], time_major.get(n, False)) for n in names}
    wrapper = ForwardExport(model, names, output_names).eval()
    with torch.no_grad():
        expected = [wrapper(*example), wrapper(*check)]
    b1, b2 = (_batch_size(x, names, axes) for x in (example, check))
    out_axes = {name: {i: ("batch" if (a.shape[i], b.shape[i]) == (b1, b2) else "time")
                       for i in range(a.dim()) if a.shape[i] != b.shape[i]}
                for name, a, b in zip(output_names, expected[0], expected[1])}
    meta = {"app": "sequence-workbench", "app_version": __version__, "project": project.name,
            "task": project.task.id, "step": loaded.step, "trained": loaded.trained, "weights": "best" if best else
            "current", "layout": "time-major", "inputs": _describe(names, list(example), axes),
            "outputs": _describe(output_names, list(expected[0]), out_axes),
            "vocab": list(task.vocab) if getattr(task, "vocab", None) else None}
    notes: list[str] = []
    if not loaded.trained:
        notes.append("the project has no trained weights for its graph: the export holds freshly initialised "
                     "weights")
    dynamic = {n: sorted(set(a.values()), reverse=True) for n, a in axes.items()}

    diffs: list[float]
    data: bytes | None
    if fmt == "torchscript":
        with torch.no_grad():
            traced = _trace(wrapper, example)
            try:
                got = [list(traced(*example)), list(traced(*check))]
                diffs = [_max_diff(e, g) for e, g in zip(expected, got)]
            except Exception as exc:  # noqa: BLE001
                raise ExportError(_shape_bound_message("TorchScript", exc, None, model)) from None
        if max(diffs) > ATOL:
            raise ExportError(_shape_bound_message("TorchScript", None, max(diffs), model))
        data = _torchscript_bytes(traced, meta, model)
        checked_with = "torch.jit (the traced model, reloaded from the bytes written)"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            reloaded = torch.jit.load(io.BytesIO(data))
        with torch.no_grad():
            diffs.append(_max_diff(expected[1], list(reloaded(*check))))
    else:
        failures: list[str] = []
        data = None
        for label, free, result in _onnx_attempts(wrapper, example, names, output_names, axes, folder):
            if isinstance(result, Exception):
                failures.append(f"{label}: {_first_line(result)}")
                continue
            try:
                outputs = _onnx_run(result, names, example)
                if outputs is None:     # no onnxruntime: the first export that worked, unchecked
                    diffs, checked_with = [], "not checked: onnxruntime is not installed (pip install onnxruntime)"
                    notes.append(checked_with)
                else:
                    diffs = [_max_diff(expected[0], outputs)]
                    if free:
                        diffs.append(_max_diff(expected[1], _onnx_run(result, names, check) or []))
                    checked_with = "onnxruntime"
            except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
                failures.append(f"{label}: the exported model fails on another batch size or length "
                                f"({_first_line(exc)})")
                continue
            if diffs and max(diffs) > ATOL:
                failures.append(f"{label}: outputs differ from the model's by {max(diffs):.3g}")
                continue
            data = _with_meta(result, meta)
            notes.append(f"exported with {label}")
            if not free:
                dynamic = {n: [] for n in names}
                notes.append("the batch and time axes are fixed to the example's shapes: " + "; ".join(failures))
            break
        if data is None:
            raise ExportError("torch.onnx cannot export this model: " + "; ".join(failures) + _stepped_layers(model))
    assert data is not None
    write_bytes(out, data)
    inputs = meta["inputs"] if dynamic.get(names[0]) else _describe(names, list(example), {})
    return ExportResult(str(out), fmt, inputs, meta["outputs"], dynamic, max(diffs) if diffs else None,
                        checked_with, notes)


def _batch_size(inputs: tuple[Tensor, ...], names: list[str], axes: dict[str, dict[int, str]]) -> int:
    return next(int(x.shape[i]) for n, x in zip(names, inputs) for i, a in axes[n].items() if a == "batch")


def _stepped_layers(model: Any) -> str:
    """Which recurrent layers run a Python loop over time (cells without a fused whole-sequence path)."""
    stepped = [f"{name} ({type(cell).__name__})" for name, cell in model.recurrent_layers()
               if not getattr(cell, "has_fused", False)]
    return f". Layers that loop over time steps in Python: {', '.join(stepped)}" if stepped else ""


def _shape_bound_message(what: str, exc: BaseException | None, diff: float | None, model: Any) -> str:
    why = f"({_first_line(exc)})" if exc is not None else f"(outputs differ by {diff:.3g})"
    return (f"{what} cannot export this model with free batch and time axes: run on a batch of another size or "
            f"length, the exported model fails {why}. Tracing records the example's sizes wherever a block "
            f"computes with them in Python (a loop over time steps, a mask sized from a Python number), so such a "
            f"block works for that one shape only{_stepped_layers(model)}. Nothing was written")
