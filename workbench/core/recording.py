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

A model that reads a context first (an encoder–decoder, a captioner) gives a *multi-part recording*
(:mod:`workbench.core.record_context`): ``{"parts": {"source": <recording>, "output": <recording>}, "attention":
{node: [T_output, S_source]}, "meta": {...}}``, every part a recording as above over its own sequence.  Layer names
are unique across parts, so :func:`layer_names`, :func:`quantities`, :func:`activations`, :func:`display_levels`,
:func:`gate_saturation` and the exports take either kind; what depends on the text (feature tracks, unit search,
spans) takes the part (:func:`part_for`).  A recording of many examples (the validation split of such a model, see
:mod:`workbench.core.corpus`) lists where each example starts in ``segments``; spans never cross them.

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
# what a recording is (its parts, its layers) lives below the modules that make recordings, which this one calls
from workbench.core.recording_format import (annotate, is_multipart, layer_names, part_for, part_of, parts,
                                             steps)
from workbench.schema.registry import Registry

__all__ = ["annotate", "is_multipart", "layer_names", "part_for", "part_of", "parts", "steps"]

NPZ_FORMAT = 1
#: values per slice when correlating long recordings (8 MB of float64 at a time)
CORRELATION_ROWS = 1 << 20


def quantities(recording: dict[str, Any], layer: str) -> list[str]:
    """States first (h, c...), then gates, in the order the cell reported them."""
    recording = part_for(recording, layer)
    qs = list(recording["layers"][layer])
    kinds = recording.get("kinds", {}).get(layer, {})
    return [q for q in qs if kinds.get(q, "state" if q in ("h", "c") else "gate") == "state"] + \
           [q for q in qs if kinds.get(q, "state" if q in ("h", "c") else "gate") != "state"]


def activations(recording: dict[str, Any], layer: str, quantity: str) -> np.ndarray:
    """``[T, H]`` values of ``quantity`` in ``layer`` (a clear error names what there is)."""
    if is_multipart(recording) and layer in layer_names(recording):
        recording = part_for(recording, layer)
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
    values = np.asarray(values)
    t = np.asarray(track, dtype=np.float64).reshape(-1)
    if values.shape[0] != t.shape[0]:
        raise ValueError(f"{values.shape[0]} steps of activations but {t.shape[0]} of the track")
    # in slices of time, centred by the mean of the whole (two passes): a validation split of 150,000 steps x 512
    # units in float64 at once would take 600 MB twice over
    T = values.shape[0]
    rows = max(1, CORRELATION_ROWS // max(1, values.shape[1] if values.ndim > 1 else 1))
    mean = np.zeros(values.shape[1:], dtype=np.float64)
    for i in range(0, T, rows):
        mean += values[i:i + rows].sum(0, dtype=np.float64)
    mean /= max(T, 1)
    t = t - t.mean()
    num = np.zeros_like(mean)
    sq = np.zeros_like(mean)
    for i in range(0, T, rows):
        a = values[i:i + rows].astype(np.float64) - mean
        num += t[i:i + rows] @ a
        sq += (a * a).sum(0)
    den = np.sqrt(sq) * math.sqrt(float(t @ t))
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


def search_parts(recording: dict[str, Any], feature: str, quantity: str = "h", layers: Iterable[str] | None = None,
                 top: int | None = None, *, registry: Registry) -> list[tuple[str, int, float]]:
    """:func:`search_layers` for a recording of one text or of several parts: the units of each part's layers
    correlated with ``feature`` over that part's own text (an encoder's over the source, a decoder's over the
    output), merged by ``|r|``.  A part where the feature is constant is left out; when it is constant in every
    part, ``ValueError`` says so."""
    chosen = list(layers) if layers is not None else layer_names(recording)
    rows: list[tuple[str, int, float]] = []
    reasons: list[str] = []
    for part in parts(recording).values():
        mine = [layer for layer in chosen if layer in part["layers"] and quantity in part["layers"][layer]]
        if not mine:
            continue
        try:
            track = step_track(part, feature, registry)
            rows.extend(search_layers(part, track, quantity, mine, registry=registry))
        except ValueError as exc:
            reasons.append(str(exc))
    if not rows:
        if reasons:
            raise ValueError(reasons[0])
        raise ValueError(f"no layer of this recording has {quantity!r}")
    rows.sort(key=lambda x: (-abs(x[2]), chosen.index(x[0]), x[1]))
    return rows[:top] if top else rows


def feature_share(recording: dict[str, Any], feature: str, layers: Iterable[str], registry: Registry) -> float:
    """The fraction of the steps of the parts holding ``layers`` where ``feature`` is not zero."""
    shares, weights = [], []
    wanted = set(layers)
    for part in parts(recording).values():
        if wanted & set(part["layers"]):
            track = step_track(part, feature, registry)
            shares.append(float((track != 0).mean()) if track.size else 0.0)
            weights.append(track.size)
    return float(np.average(shares, weights=weights)) if shares and sum(weights) else 0.0


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
    runs = [(int(s), int(e)) for s, e in zip(starts, ends)]
    segments = recording.get("segments")
    if segments is not None and len(segments) > 1:
        # examples recorded one after another: a run never continues from one example into the next
        cuts = np.asarray(segments, dtype=np.int64)
        split: list[tuple[int, int]] = []
        for s, e in runs:
            inside = cuts[(cuts > s) & (cuts < e)].tolist()
            bounds = [s, *inside, e]
            split.extend(zip(bounds[:-1], bounds[1:]))
        runs = split
    return [(s, e) for s, e in runs if e - s >= max(1, min_length)]


def span_text(recording: dict[str, Any], start: int, end: int, width: int = 48) -> str:
    """The text of steps ``[start, end)`` of a recording of one sequence, newlines and tabs shown as ↵ and →,
    cut to ``width`` characters (what lists of matches show)."""
    offsets, labels, text = recording["offsets"], recording["labels"], recording["text"]
    a = int(offsets[start])
    b = int(offsets[end - 1]) + len(labels[end - 1])
    s = text[a:b]
    if len(s) > width:
        s = s[:width - 1] + "…"
    return "".join({"\n": "↵", "\t": "→"}.get(ch, ch) for ch in s)


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
    everything = [(layer, qs, part.get("kinds", {}).get(layer, {}))
                  for part in parts(recording).values() for layer, qs in part["layers"].items()]
    for layer, qs, kinds in everything:
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
    recording = part_for(recording, layer)
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

    A multi-part recording (an encoder–decoder) has ``part/P/text``, ``part/P/tokens``, ``part/P/labels`` and
    ``part/P/offsets`` for each part ``P`` (``source``, ``output``) instead of the first four, the layers of every
    part as above (layer names are unique across parts; ``meta`` says which part each belongs to), and
    ``attention/NODE``: ``float32 [T_output, S_source]``, row ``t`` the weights output step ``t`` used.
    """
    out: dict[str, np.ndarray] = {}
    for name, part in parts(recording).items():
        prefix = f"part/{name}/" if is_multipart(recording) else ""
        out[prefix + "text"] = np.asarray(list(part["text"]), dtype="<U1")
        out[prefix + "tokens"] = np.asarray(part["tokens"], dtype=np.int64)
        out[prefix + "labels"] = np.asarray(list(part.get("labels") or []), dtype=str)
        out[prefix + "offsets"] = np.asarray(part.get("offsets", np.zeros(0)), dtype=np.int64)
    for node, weights in (recording.get("attention") or {}).items():
        out[f"attention/{node}"] = np.asarray(weights, dtype=np.float32)
    all_layers = {layer: part["layers"][layer] for part in parts(recording).values() for layer in part["layers"]}
    kinds_of = {layer: part.get("kinds", {}).get(layer, {}) for part in parts(recording).values()
                for layer in part["layers"]}
    for layer, qs in all_layers.items():
        for q, a in qs.items():
            out[f"{layer}/{q}"] = np.asarray(a, dtype=np.float32)
            out[f"levels/{layer}/{q}"] = np.asarray(display_levels(recording, layer, q), dtype=np.float64)
    sat = gate_saturation(recording)
    thresholds: dict[str, dict[str, Any]] = {}
    for layer, gates in sat.items():
        for g, s in gates.items():
            out[f"saturation/{layer}/{g}"] = np.asarray([s["left"], s["right"]], dtype=np.float64)
            thresholds.setdefault(layer, {})[g] = {"range": s["range"], "low": s["low"], "high": s["high"]}
    meta = {"format": NPZ_FORMAT, "layers": {layer: {q: kinds_of[layer].get(q, "") for q in qs}
                                             for layer, qs in all_layers.items()},
            "saturation": thresholds, **{k: v for k, v in recording.get("meta", {}).items() if k != "layers"}}
    if is_multipart(recording):
        # a list: the parts' order (source, then output) survives the sorted keys of the JSON
        meta["parts"] = [[name, list(part["layers"])] for name, part in parts(recording).items()]
    out["meta"] = np.asarray(json.dumps(meta, sort_keys=True, default=_json_value))
    return out


def _json_value(value: Any) -> Any:
    """numpy scalars in a recording's meta as plain numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


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
        part_layers = dict(meta.get("parts") or [("", list(layers_meta))])
        info = {k: v for k, v in meta.items() if k not in ("layers", "saturation", "format", "parts")}
        out: dict[str, dict[str, Any]] = {}
        for name, names in part_layers.items():
            prefix = f"part/{name}/" if name else ""
            layers: dict[str, dict[str, np.ndarray]] = {}
            kinds: dict[str, dict[str, str]] = {}
            for layer in names:
                for q, kind in (layers_meta.get(layer) or {}).items():
                    layers.setdefault(layer, {})[q] = np.asarray(data[f"{layer}/{q}"])
                    kinds.setdefault(layer, {})[q] = kind or ("state" if q in ("h", "c") else "gate")
            out[name] = {"text": "".join(data[prefix + "text"].tolist()), "tokens": data[prefix + "tokens"].tolist(),
                         "labels": data[prefix + "labels"].tolist(), "offsets": np.asarray(data[prefix + "offsets"]),
                         "layers": layers, "kinds": kinds, "meta": dict(info)}
        if "" in out:
            return out[""]
        attention = {key[len("attention/"):]: np.asarray(data[key]) for key in data.files
                     if key.startswith("attention/")}
    return {"parts": out, "attention": attention, "meta": info}


def write_csv(recording: dict[str, Any], layer: str, quantity: str, path: str | Path) -> None:
    """One row per step: ``step, offset, token, unit_0 ... unit_{H-1}`` (values of ``quantity`` in ``layer``)."""
    from workbench.atomic import atomic_write
    values = activations(recording, layer, quantity)
    recording = part_for(recording, layer)
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

    def input_info(self, project: Any, base_dir: str | Path | None = None) -> dict[str, Any]:
        """What the model reads, for the window's Input tab: ``{"kind": "text"}`` for a model that reads the
        recorded text itself, else the decoding view's description of its input (``kind`` ``source`` or
        ``example``, label, hint, default and examples; see :func:`workbench.core.search.describe_input`)."""
        from workbench.core.record_context import reads_context
        from workbench.core.search import describe_input
        loaded = self.session.load(project, base_dir, "current")
        if not reads_context(loaded.model):
            return {"kind": "text"}
        return describe_input(loaded.task, 40)

    def record(self, project: Any, text: str, base_dir: str | Path | None = None, weights: str = "current",
               device: Any = None, progress: Optional[Callable[[int, int], None]] = None,
               threads: int | None = 1, path: str = "auto") -> dict[str, Any]:
        """Record ``text`` at the chosen weights: an annotated recording (see the module docstring).  ``path``:
        ``"auto"`` (whole chunks through the fused kernels where the model allows it) or ``"steps"`` (see
        :func:`workbench.core.probes.record_activations`).  For a model that reads a context first, ``text`` is
        its input as the decoding view takes it (a source sentence, a captioning example's number) and the output
        is the project's decoder's (a multi-part recording, :mod:`workbench.core.record_context`)."""
        loaded = self.session.load(project, base_dir, weights, device)
        return record_loaded(loaded, text, progress=progress, project_name=getattr(project, "name", ""),
                             threads=threads, path=path, decoding=decoding_of(project, self.session.registry),
                             precision=recording_precision(project, loaded))

    def record_corpus(self, project: Any, base_dir: str | Path | None = None, weights: str = "current",
                      quantity: str = "h", device: Any = None, progress: Optional[Callable[[int, int], None]] = None,
                      threads: int | None = 1) -> dict[str, Any]:
        """``quantity`` of every layer over the whole validation split, for unit search and span matches across
        the corpus (see :func:`workbench.core.corpus.record_corpus`)."""
        from workbench.core.corpus import record_corpus
        loaded = self.session.load(project, base_dir, weights, device)
        chosen = recording_precision(project, loaded)
        with cpu_threads(loaded, threads), in_precision(loaded, chosen):
            rec = record_corpus(loaded, quantity, decoding=decoding_of(project, self.session.registry),
                                progress=progress)
        return _stamp(rec, loaded, getattr(project, "name", ""), chosen.name)


def decoding_of(project: Any, registry: Registry) -> tuple[Any, dict[str, Any]]:
    """The project's decoder (its spec) and settings: what produces the output of a model that reads a context."""
    decode = project.decode
    return registry.decoder(decode.decoder), dict(decode.params or {})


def recording_precision(project: Any, loaded: Any) -> Any:
    """The precision a model that reads text is recorded in: the one the project trains in on this device
    (``precision``, resolved and fitted to the model as the trainer does).  Under bfloat16 autocast the recorder
    reads text about twice as fast on a CPU with native bfloat16 (``benchmarks/recorder_speed.py``), and the values
    are those of the arithmetic the model trains with; the stored values are float32 either way."""
    from workbench.core import precision
    return precision.for_model(getattr(project.train, "precision", "fp32"), loaded.device, loaded.model)[0]


def in_precision(loaded: Any, chosen: Any) -> Any:
    """``with in_precision(loaded, chosen):`` the model's forward passes under ``chosen``'s autocast (nothing for
    float32)."""
    import torch
    return torch.autocast(getattr(loaded.device, "type", str(loaded.device)), dtype=chosen.dtype(),
                          enabled=chosen.reduced)


def _stamp(rec: dict[str, Any], loaded: Any, project_name: str, precision: str = "fp32") -> dict[str, Any]:
    """The weights a recording was made at, and the precision it was computed in, in its meta (and its parts')."""
    stamp = {"weights": loaded.weights, "step": loaded.step, "trained": loaded.trained, "project": project_name,
             "precision": precision}
    rec["meta"] = {**rec.get("meta", {}), **stamp}
    if is_multipart(rec):
        for part in rec["parts"].values():
            part["meta"] = {**part.get("meta", {}), **stamp}
    return rec


class cpu_threads:
    """``with cpu_threads(loaded, n):`` torch's intra-op threads set to ``n`` on a CPU while recording, put back
    afterwards (see :func:`record_loaded` for why one thread)."""

    def __init__(self, loaded: Any, threads: int | None):
        self.loaded, self.threads, self.before = loaded, threads, 0

    def __enter__(self) -> None:
        import torch
        self.before = torch.get_num_threads()
        self.change = bool(self.threads) and getattr(self.loaded.device, "type", str(self.loaded.device)) == "cpu" \
            and self.threads != self.before
        if self.change:
            torch.set_num_threads(int(self.threads or 1))

    def __exit__(self, *exc: Any) -> None:
        import torch
        if self.change:
            torch.set_num_threads(self.before)


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
                  project_name: str = "", threads: int | None = 1, path: str = "auto",
                  decoding: Optional[tuple[Any, dict[str, Any]]] = None, precision: Any = None) -> dict[str, Any]:
    """Run the recorder on a loaded model (``path``: see :func:`workbench.core.probes.record_activations`).
    A model that reads a context first is recorded by :func:`workbench.core.record_context.record_conditioned`
    on the input ``text``, with ``decoding`` (the decoder's spec and settings, :func:`decoding_of`), in float32
    like every decoder (bfloat16 decoding steps are slower: ``benchmarks/beam_speed.py``).  A model that reads
    the text itself is recorded in ``precision`` (:func:`recording_precision`; None: float32).

    ``threads``: torch's intra-op threads while recording on a CPU (None: leave as is).  One step of one sequence
    is a few small matrix products that more threads cannot speed up, and on a busy machine every step's
    OpenMP barrier waits for descheduled threads: measured on 2 shared cores, 1 thread took 0.5-1 ms per step of a
    128-unit LSTM, 2 threads 9-11 ms.  With torch's OpenMP backend (its usual CPU build) the setting belongs to
    the calling thread, so the window's worker does not change the training thread's; it is put back afterwards.
    """
    from workbench.core.probes import record_activations
    from workbench.core.record_context import reads_context, record_conditioned
    from workbench.schema.errors import DataError
    if reads_context(loaded.model):
        if decoding is None:
            raise DataError("this model reads a context first (an encoder's source, an image): say which decoder "
                            "produces its output")
        with cpu_threads(loaded, threads):
            try:
                rec = record_conditioned(loaded, text, decoding[0], decoding[1], progress=progress)
            except NotImplementedError as exc:    # a decoder block without a per-step path
                raise DataError("the recorder runs the decoder one step at a time, and "
                                + (str(exc) or "a block of this model cannot")) from None
        return _stamp(rec, loaded, project_name)
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
    from workbench.core.precision import Precision
    chosen = precision or Precision("fp32")
    with cpu_threads(loaded, threads), in_precision(loaded, chosen):
        try:
            rec = record_activations(loaded.model, loaded.task, text, loaded.device, progress=progress, path=path)
        except NotImplementedError as exc:    # a block without a per-step path (a bidirectional layer)
            raise DataError("the recorder runs the model one step at a time, and "
                            + (str(exc) or "a block of this model cannot")) from None
    return _stamp(annotate(rec, loaded.task, loaded.model), loaded, project_name, chosen.name)


def record(project: Any, registry: Registry, text: str, base_dir: str | Path | None = None, weights: str = "current",
           device: Any = None) -> dict[str, Any]:
    """One recording of ``text`` (what ``seqwb record`` and the window's Record button both run)."""
    return Recorder(registry).record(project, text, base_dir, weights, device)
