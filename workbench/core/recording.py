"""Looking inside a recording: unit search, hypothesis selection, gate saturation, colour levels and export.

Qt-free; the hidden-units views (``workbench/gui/inspect_units.py``) and ``seqwb record`` / ``seqwb units`` call
these functions, so the window and the command line show the same numbers.  numpy is all this module needs at
import time; torch is imported only by the functions that load and run a model (:class:`Recorder`, :func:`record`).

A *recording* is the dict :func:`workbench.core.probes.record_activations` returns, completed by :func:`annotate`::

    {"text": str,                       # what was recorded
     "tokens": [int] * T,               # the task's token ids, one per step
     "labels": [str] * T,               # each step's token as text (a character for character-level tasks)
     "offsets": np.ndarray[T] int64,    # where each step's token starts in ``text``
     "layers": {layer: {quantity: np.ndarray[T, H] float32}},   # h, c, and every gate the cell reports
     "kinds": {layer: {quantity: "state" | "gate"}},
     "meta": {"weights": "current" | "best", "step": int, "trained": bool, ...}}

Unit search correlates units with the feature tracks of :mod:`workbench.core.features`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import numpy as np

from workbench.core.features import compute_track, feature_title, token_offsets
from workbench.schema.registry import Registry

NPZ_FORMAT = 1


def annotate(recording: dict[str, Any], task: Any = None, model: Any = None,
             meta: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Complete a raw recording with ``labels``, ``offsets``, ``kinds`` and ``meta`` (in place; returned)."""
    text, ids = recording["text"], list(recording["tokens"])
    if "labels" not in recording:
        if len(ids) == len(text):
            labels = list(text)
        elif task is not None:
            labels = [task.decode([i]) for i in ids]
        else:
            labels = [str(i) for i in ids]
        recording["labels"] = labels
    offsets = recording.get("offsets")
    recording["offsets"] = np.asarray(token_offsets(text, recording["labels"]) if offsets is None else offsets,
                                      dtype=np.int64)
    kinds = recording.setdefault("kinds", {})
    states: dict[str, tuple[str, ...]] = {}
    if model is not None and hasattr(model, "recurrent_layers"):
        for layer, cell in model.recurrent_layers():
            states[layer] = tuple(getattr(cell, "state_names", ("h",)))
    for layer, qs in recording["layers"].items():
        slot = kinds.setdefault(layer, {})
        for q in qs:
            if q not in slot:
                slot[q] = "state" if q in states.get(layer, ("h", "c")) else "gate"
    recording["meta"] = {**recording.get("meta", {}), **(meta or {})}
    return recording


def steps(recording: dict[str, Any]) -> int:
    return len(recording["tokens"])


def layer_names(recording: dict[str, Any]) -> list[str]:
    return list(recording["layers"])


def quantities(recording: dict[str, Any], layer: str) -> list[str]:
    """States first (h, c...), then gates, in the order the cell reported them."""
    qs = list(recording["layers"][layer])
    kinds = recording.get("kinds", {}).get(layer, {})
    return [q for q in qs if kinds.get(q, "state" if q in ("h", "c") else "gate") == "state"] + \
           [q for q in qs if kinds.get(q, "state" if q in ("h", "c") else "gate") != "state"]


def activations(recording: dict[str, Any], layer: str, quantity: str) -> np.ndarray:
    """``[T, H]`` values of ``quantity`` in ``layer`` (a clear error names what there is)."""
    layers = recording["layers"]
    if layer not in layers:
        raise ValueError(f"no layer {layer!r} in this recording; layers: {', '.join(layers) or 'none'}")
    if quantity not in layers[layer]:
        raise ValueError(f"layer {layer!r} has no {quantity!r}; it has: {', '.join(layers[layer])}")
    return layers[layer][quantity]


def step_track(recording: dict[str, Any], feature: str | np.ndarray, registry: Registry) -> np.ndarray:
    """A feature track per recorded step: per character sampled at each token's first character."""
    if isinstance(feature, str):
        per_char = compute_track(feature, recording["text"], registry)
    else:
        per_char = np.asarray(feature, dtype=np.float64).reshape(-1)
    T = steps(recording)
    if per_char.shape[0] == T:
        return per_char
    offsets = recording.get("offsets")
    if offsets is None:
        offsets = token_offsets(recording["text"], recording["labels"])
    offsets = np.asarray(offsets)
    if per_char.shape[0] != len(recording["text"]):
        raise ValueError(f"the track has {per_char.shape[0]} values; the recording has {T} steps and "
                         f"{len(recording['text'])} characters")
    return per_char[np.clip(offsets, 0, max(per_char.shape[0] - 1, 0))]


def constant_message(feature: str, value: float, registry: Registry) -> str:
    what = f"the feature “{feature_title(feature, registry)}”" if feature else "the track"
    return (f"{what} is constant over this text ({value:g} everywhere): nothing to correlate with; record a text "
            f"where it changes")


def correlations(values: np.ndarray, track: np.ndarray) -> np.ndarray:
    """Pearson correlation over time of every column of ``values [T, H]`` with ``track [T]`` (0 where either is
    constant)."""
    a = np.asarray(values, dtype=np.float64)
    t = np.asarray(track, dtype=np.float64).reshape(-1)
    if a.shape[0] != t.shape[0]:
        raise ValueError(f"{a.shape[0]} steps of activations but {t.shape[0]} of the track")
    a = a - a.mean(0)
    t = t - t.mean()
    num = t @ a
    den = np.sqrt((a * a).sum(0)) * math.sqrt(float(t @ t))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return np.clip(r, -1.0, 1.0)


def unit_search(recording: dict[str, Any], layer: str, quantity: str, track: str | np.ndarray,
                registry: Registry, top: int | None = None) -> list[tuple[int, float]]:
    """Units of ``layer``'s ``quantity`` ranked by how well they follow ``track``: ``[(unit, r)]``.

    ``r`` is Pearson's correlation over time; the ranking is by ``|r|`` (a unit that is low inside quotes tracks
    them as well as one that is high), the sign is kept.  ``track`` is a feature name, ``regex:PATTERN``, or an
    array (per step or per character).  A track that is constant over the text cannot be correlated with: that
    raises ``ValueError`` with the reason.
    """
    values = activations(recording, layer, quantity)
    t = step_track(recording, track, registry)
    if t.size < 2 or float(t.max() - t.min()) == 0.0:
        raise ValueError(constant_message(track if isinstance(track, str) else "", float(t[0]) if t.size else 0.0,
                                          registry))
    r = correlations(values, t)
    order = np.lexsort((np.arange(r.size), -np.abs(r)))      # by |r|, ties by unit number
    if top:
        order = order[:top]
    return [(int(u), float(r[u])) for u in order]


def search_layers(recording: dict[str, Any], track: str | np.ndarray, quantity: str = "h",
                  layers: Iterable[str] | None = None, top: int | None = None,
                  *, registry: Registry) -> list[tuple[str, int, float]]:
    """:func:`unit_search` over several layers (all by default), merged: ``[(layer, unit, r)]`` by ``|r|``."""
    rows: list[tuple[str, int, float]] = []
    names = list(layers) if layers is not None else layer_names(recording)
    for layer in names:
        if quantity in recording["layers"].get(layer, {}):
            rows.extend((layer, u, r) for u, r in unit_search(recording, layer, quantity, track, registry=registry))
    if not rows:
        raise ValueError(f"no layer of this recording has {quantity!r}")
    rows.sort(key=lambda x: (-abs(x[2]), names.index(x[0]), x[1]))
    return rows[:top] if top else rows


# ---- hypothesis selection (LSTMVis) -----------------------------------------------------------------------

def default_threshold(recording: dict[str, Any], layer: str, quantity: str) -> float:
    """A starting threshold for "on": 30 % of the way from the colour map's centre to its top."""
    return threshold_for_levels(display_levels(recording, layer, quantity))


def threshold_for_levels(levels: tuple[float, float]) -> float:
    lo, hi = levels
    mid = (lo + hi) / 2
    return round(mid + 0.3 * (hi - mid), 4)


def units_on_span(recording: dict[str, Any], layer: str, quantity: str, start: int, end: int,
                  threshold: float, margin: int = 1) -> list[int]:
    """Units that are on (``>= threshold``) at every step of ``[start, end)`` and off (``< threshold``) at the
    ``margin`` steps before and after it (Strobelt et al., LSTMVis, 2018).  Strongest over the span first."""
    values = activations(recording, layer, quantity)
    T = values.shape[0]
    start, end = max(0, int(start)), min(T, int(end))
    if end <= start:
        raise ValueError(f"empty span [{start}, {end})")
    span = values[start:end]
    keep = (span >= threshold).all(0)
    before = values[max(0, start - margin):start]
    after = values[end:end + margin]
    if before.size:
        keep &= (before < threshold).all(0)
    if after.size:
        keep &= (after < threshold).all(0)
    units = np.flatnonzero(keep)
    strength = span.mean(0)[units]
    return [int(u) for u in units[np.lexsort((units, -strength))]]


def matching_spans(recording: dict[str, Any], layer: str, quantity: str, units: list[int], threshold: float,
                   min_length: int = 1, min_units: int | None = None) -> list[tuple[int, int]]:
    """Every stretch ``[start, end)`` where at least ``min_units`` (all, by default) of ``units`` are on at once,
    at least ``min_length`` steps long, in text order: the other places where the same units switch on."""
    if not units:
        return []
    values = activations(recording, layer, quantity)[:, list(units)]
    need = len(units) if min_units is None else max(1, min(int(min_units), len(units)))
    on = (values >= threshold).sum(1) >= need
    # run boundaries of the boolean track
    padded = np.concatenate([[False], on, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    starts, ends = edges[0::2], edges[1::2]
    return [(int(s), int(e)) for s, e in zip(starts, ends) if e - s >= max(1, min_length)]


# ---- gate saturation and colour levels ---------------------------------------------------------------------

def gate_range(values: np.ndarray) -> str:
    """``"sigmoid"`` (0..1), ``"tanh"`` (-1..1) or ``"unbounded"``, read from the values themselves: cells declare
    their gates' names but not their non-linearities, and a plugin's cell is as welcome as a built-in."""
    a = np.asarray(values)
    if not a.size:
        return "sigmoid"
    lo, hi = float(a.min()), float(a.max())
    eps = 1e-6
    if lo >= -eps and hi <= 1 + eps:
        return "sigmoid"
    if lo >= -1 - eps and hi <= 1 + eps:
        return "tanh"
    return "unbounded"


def gate_saturation(recording: dict[str, Any], low: float = 0.1, high: float = 0.9) -> dict[str, dict[str, Any]]:
    """Per layer and gate: the fraction of steps each unit is left-saturated and right-saturated.

    Sigmoid gates (i, f, o; GRU's r, z): left ``< low``, right ``> high`` (Karpathy, Johnson & Fei-Fei 2016).
    Gates with a tanh (LSTM's candidate ``g``, GRU's ``n``) live in -1..1, where 0.1 is the middle, not an edge;
    they are measured on the same scale mapped to -1..1: left ``< -high``, right ``> high`` (|a| > 0.9).  Their
    ``range`` says which; unbounded gates are left out (saturation means nothing there).
    Returns ``{layer: {gate: {"left": [H], "right": [H], "range": str, "low": float, "high": float}}}``.
    """
    out: dict[str, dict[str, Any]] = {}
    for layer, qs in recording["layers"].items():
        kinds = recording.get("kinds", {}).get(layer, {})
        for q, arr in qs.items():
            kind = kinds.get(q, "state" if q in ("h", "c") else "gate")
            if kind != "gate":
                continue
            a = np.asarray(arr)
            rng = gate_range(a)
            if rng == "unbounded":
                continue
            lo_t, hi_t = (low, high) if rng == "sigmoid" else (-high, high)
            out.setdefault(layer, {})[q] = {"left": (a < lo_t).mean(0).tolist(), "right": (a > hi_t).mean(0).tolist(),
                                            "range": rng, "low": lo_t, "high": hi_t}
    return out


def _nice_ceiling(x: float) -> float:
    """Round up to 1, 2 or 5 times a power of ten, so colour-bar ends are readable numbers."""
    if x <= 0:
        return 1.0
    p = 10 ** math.floor(math.log10(x))
    for m in (1, 2, 2.5, 5, 10):
        if m * p >= x - 1e-12:
            return m * p
    return 10 * p


def display_levels(recording: dict[str, Any], layer: str, quantity: str) -> tuple[float, float]:
    """The fixed colour levels of a quantity, symmetric around the colour map's centre.

    Sigmoid gates: 0..1 (centre 0.5).  Values within -1..1 (h of tanh cells, tanh gates): -1..1.  Anything else
    (an LSTM's cell state c, a ReLU cell's h): ±m with m the 99.5th percentile of |value| (of a strided sample of
    at most a million values) rounded up to 1, 2, 2.5 or 5 × 10^k, so a few outliers do not wash out the rest.
    Fixed per recording: zooming and choosing another unit never changes what a colour means.
    """
    a = activations(recording, layer, quantity)
    kind = recording.get("kinds", {}).get(layer, {}).get(quantity, "state" if quantity in ("h", "c") else "gate")
    rng = gate_range(a)
    if kind == "gate" and rng == "sigmoid":
        return (0.0, 1.0)
    if rng in ("sigmoid", "tanh"):
        return (-1.0, 1.0)
    # a strided sample of at most ~1 million values: the end of a colour bar rounded to 1-2-5 does not need the
    # exact percentile of 10 million (which takes most of a second)
    flat = np.asarray(a).reshape(-1)
    flat = flat[::max(1, flat.size // 1_000_000)]
    m = float(np.percentile(np.abs(flat), 99.5)) if flat.size else 1.0
    m = _nice_ceiling(m)
    return (-m, m)


# ---- export ---------------------------------------------------------------------------------------------

def recording_arrays(recording: dict[str, Any]) -> dict[str, np.ndarray]:
    """Everything the hidden-unit views show, as the arrays of an ``.npz`` (``seqwb record --npz`` writes these).

    ``text``               ``<U1 [len(text)]`` the recorded text, one character per element
    ``tokens``             ``int64 [T]`` token ids, one per step
    ``labels``             ``<U [T]`` each step's token as text (the text view's characters)
    ``offsets``            ``int64 [T]`` where each step's token starts in ``text``
    ``LAYER/Q``            ``float32 [T, H]`` quantity ``Q`` (h, c, a gate) of ``LAYER``: the heatmap's image,
                           time along x, units along y (unit 0 at the top)
    ``levels/LAYER/Q``     ``float64 [2]`` the fixed colour levels of that heatmap and of the text view
    ``saturation/LAYER/G`` ``float64 [2, H]`` left- and right-saturated fraction per unit of gate ``G`` (the
                           scatter's x and y)
    ``meta``               ``<U`` scalar: JSON with the format number, layers and their quantities' kinds, the
                           weights (current / best), step, whether they were trained, and saturation thresholds
    """
    out: dict[str, np.ndarray] = {
        "text": np.asarray(list(recording["text"]), dtype="<U1"),
        "tokens": np.asarray(recording["tokens"], dtype=np.int64),
        "labels": np.asarray(list(recording.get("labels") or []), dtype=str),
        "offsets": np.asarray(recording.get("offsets", np.zeros(0)), dtype=np.int64),
    }
    for layer, qs in recording["layers"].items():
        for q, a in qs.items():
            out[f"{layer}/{q}"] = np.asarray(a, dtype=np.float32)
            out[f"levels/{layer}/{q}"] = np.asarray(display_levels(recording, layer, q), dtype=np.float64)
    sat = gate_saturation(recording)
    thresholds: dict[str, dict[str, Any]] = {}
    for layer, gates in sat.items():
        for g, s in gates.items():
            out[f"saturation/{layer}/{g}"] = np.asarray([s["left"], s["right"]], dtype=np.float64)
            thresholds.setdefault(layer, {})[g] = {"range": s["range"], "low": s["low"], "high": s["high"]}
    meta = {"format": NPZ_FORMAT, "layers": {layer: {q: recording.get("kinds", {}).get(layer, {}).get(q, "")
                                                     for q in qs} for layer, qs in recording["layers"].items()},
            "saturation": thresholds, **{k: v for k, v in recording.get("meta", {}).items() if k != "layers"}}
    out["meta"] = np.asarray(json.dumps(meta, sort_keys=True))
    return out


def save_npz(recording: dict[str, Any], path: str | Path) -> None:
    """Write :func:`recording_arrays` to ``path`` (atomically: readers never see half a file)."""
    from workbench.atomic import atomic_write
    arrays: dict[str, Any] = recording_arrays(recording)
    with atomic_write(path) as fh:
        np.savez_compressed(fh, **arrays)


def load_npz(path: str | Path) -> dict[str, Any]:
    """A recording read back from :func:`save_npz` (what the views need to show it again)."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"])) if "meta" in data else {}
        layers_meta = meta.get("layers") or {}
        layers: dict[str, dict[str, np.ndarray]] = {}
        kinds: dict[str, dict[str, str]] = {}
        for layer, qs in layers_meta.items():
            for q, kind in qs.items():
                layers.setdefault(layer, {})[q] = np.asarray(data[f"{layer}/{q}"])
                kinds.setdefault(layer, {})[q] = kind or ("state" if q in ("h", "c") else "gate")
        rec = {"text": "".join(data["text"].tolist()), "tokens": data["tokens"].tolist(),
               "labels": data["labels"].tolist(), "offsets": np.asarray(data["offsets"]), "layers": layers,
               "kinds": kinds, "meta": {k: v for k, v in meta.items() if k not in ("layers", "saturation", "format")}}
    return rec


def write_csv(recording: dict[str, Any], layer: str, quantity: str, path: str | Path) -> None:
    """One row per step: ``step, offset, token, unit_0 ... unit_{H-1}`` (values of ``quantity`` in ``layer``)."""
    from workbench.atomic import atomic_write
    values = activations(recording, layer, quantity)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["step", "offset", "token", *(f"unit_{u}" for u in range(values.shape[1]))])
    offsets = recording.get("offsets", np.arange(values.shape[0]))
    labels = recording.get("labels") or [""] * values.shape[0]
    for t in range(values.shape[0]):
        w.writerow([t, int(offsets[t]), labels[t], *(f"{v:.6g}" for v in values[t])])
    with atomic_write(path, "w") as fh:
        fh.write(buf.getvalue())


# ---- running the model ----------------------------------------------------------------------------------

class RecordingCancelled(Exception):
    """Raised from a progress callback to stop a recording."""


class Recorder:
    """Records hidden states and gates of a project's model; the model comes from a
    :class:`~workbench.core.training.session.ModelSession` kept between recordings (reading the data and building
    the model take seconds).  Like the session, it changes nothing process-wide, so a training run may go on in
    another thread.  Use one Recorder from one thread at a time."""

    def __init__(self, registry: Registry):
        from workbench.core.training.session import ModelSession
        self.session = ModelSession(registry)

    def sample_text(self, project: Any, base_dir: str | Path | None, length: int) -> str:
        """``length`` characters of the validation data (``task.sample_text``)."""
        return self.session.sample_text(project, base_dir, length)

    def record(self, project: Any, text: str, base_dir: str | Path | None = None, weights: str = "current",
               device: Any = None, progress: Optional[Callable[[int, int], None]] = None,
               threads: int | None = 1, path: str = "auto") -> dict[str, Any]:
        """Record ``text`` at the chosen weights: an annotated recording (see the module docstring).  ``path``:
        ``"auto"`` (whole chunks through the fused kernels where the model allows it) or ``"steps"`` (see
        :func:`workbench.core.probes.record_activations`)."""
        loaded = self.session.load(project, base_dir, weights, device)
        return record_loaded(loaded, text, progress=progress, project_name=getattr(project, "name", ""),
                             threads=threads, path=path)


#: refuse recordings that would hold more than this many bytes of activations (the views keep all of them)
MAX_RECORDING_BYTES = 3 * 10 ** 9


def recording_bytes(model: Any, steps: int) -> int:
    """What recording ``steps`` steps will hold: every state and gate of every recurrent layer, float32."""
    per_step = 0
    for _, cell in model.recurrent_layers():
        n = len(getattr(cell, "state_names", ("h",))) + len(getattr(cell, "gate_names", ()))
        per_step += n * int(getattr(cell, "hidden_size", 0))
    return 4 * per_step * int(steps)


def record_loaded(loaded: Any, text: str, progress: Optional[Callable[[int, int], None]] = None,
                  project_name: str = "", threads: int | None = 1, path: str = "auto") -> dict[str, Any]:
    """Run the recorder on a loaded model (``path``: see :func:`workbench.core.probes.record_activations`).

    ``threads``: torch's intra-op threads while recording on a CPU (None: leave as is).  One step of one sequence
    is a few small matrix products that more threads cannot speed up, and on a busy machine every step's
    OpenMP barrier waits for descheduled threads: measured on 2 shared cores, 1 thread took 0.5-1 ms per step of a
    128-unit LSTM, 2 threads 9-11 ms.  With torch's OpenMP backend (its usual CPU build) the setting belongs to
    the calling thread, so the window's worker does not change the training thread's; it is put back afterwards.
    """
    import torch

    from workbench.core.probes import record_activations
    from workbench.schema.errors import DataError
    if getattr(loaded.model, "context_order", None):
        raise DataError("this model reads a context first (an encoder's source, an image): the recorder runs "
                        "models that read the text itself one token at a time, such as language models and "
                        "classifiers")
    try:
        loaded.task.encode(text[:1] or " ")
    except NotImplementedError:
        raise DataError(f"the task {type(loaded.task).__name__} does not read text (it has no encode): there is "
                        f"no text to record its hidden units over") from None
    need = recording_bytes(loaded.model, len(text))   # characters: at least as many as tokens
    if need > MAX_RECORDING_BYTES:
        per_char = max(1, need // max(1, len(text)))
        raise DataError(f"recording {len(text):,} characters would hold {need / 1e9:.1f} GB of activations; "
                        f"record at most {MAX_RECORDING_BYTES // per_char:,} characters of this model")
    before = torch.get_num_threads()
    change = bool(threads) and getattr(loaded.device, "type", str(loaded.device)) == "cpu" and threads != before
    if change:
        torch.set_num_threads(int(threads or 1))
    try:
        rec = record_activations(loaded.model, loaded.task, text, loaded.device, progress=progress, path=path)
    except NotImplementedError as exc:    # a block without a per-step path (a bidirectional layer)
        raise DataError("the recorder runs the model one step at a time, and "
                        + (str(exc) or "a block of this model cannot")) from None
    finally:
        if change:
            torch.set_num_threads(before)
    return annotate(rec, loaded.task, loaded.model,
                    {"weights": loaded.weights, "step": loaded.step, "trained": loaded.trained,
                     "project": project_name})


def record(project: Any, registry: Registry, text: str, base_dir: str | Path | None = None, weights: str = "current",
           device: Any = None) -> dict[str, Any]:
    """One recording of ``text`` (what ``seqwb record`` and the window's Record button both run)."""
    return Recorder(registry).record(project, text, base_dir, weights, device)
