"""What a hidden-unit recording is: :func:`annotate` completes one, :func:`parts` and :func:`part_for` find the
sequence a layer was recorded over.  :mod:`workbench.core.recording` (which re-exports these) describes the format;
the modules that make recordings (:mod:`workbench.core.record_context`, :mod:`workbench.core.corpus`) import this
one, below it.  numpy only.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from workbench.core.features import token_offsets


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


# ---- parts (models that read a context first) ------------------------------------------------------------

def parts(recording: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The recording's parts by name: ``{"source": ..., "output": ...}``, or ``{"text": recording}`` for a
    recording of one text."""
    return recording["parts"] if "parts" in recording else {"text": recording}


def is_multipart(recording: dict[str, Any]) -> bool:
    return "parts" in recording


def part_of(recording: dict[str, Any], layer: str) -> str:
    """The name of the part ``layer`` was recorded over ("text" for a recording of one text)."""
    for name, part in parts(recording).items():
        if layer in part["layers"]:
            return name
    raise ValueError(f"no layer {layer!r} in this recording; layers: {', '.join(layer_names(recording)) or 'none'}")


def part_for(recording: dict[str, Any], layer: str) -> dict[str, Any]:
    """The part (a recording of one sequence) that holds ``layer``."""
    return parts(recording)[part_of(recording, layer)]


def layer_names(recording: dict[str, Any]) -> list[str]:
    """Every recorded layer, part after part (the source's encoder before the output's decoder)."""
    return [layer for part in parts(recording).values() for layer in part["layers"]]
