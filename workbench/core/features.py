"""Feature tracks for unit search: named features of a text, one number per character.

A feature track is a plain function ``track(text: str) -> np.ndarray[len(text)]``: one number per *character*
(``1.0``/``0.0`` for yes/no features, a count for depths and positions).  The value at character ``i`` describes
the situation *after reading* character ``i``, which is what the hidden state at that step can know: an opening
quote is already "inside quotes", the closing one is not; a ``#`` is inside its comment, the newline that ends
it is not.  For character-level tasks a step is a character; for word-level tasks a step's value is the track at
its token's first character (see :func:`token_offsets`).

Tracks come from plugins through the ``seqwb_feature_tracks`` hook; the built-in ones (``quotes``, ``comment``,
``brackets``, ``line_position``, ``indent``, ``word_start``) are the plugin ``workbench_plugins.feature_tracks``.
``regex:PATTERN`` is built in here: it marks every character inside a match of ``PATTERN``.  The functions take
the registry whose tracks they use.

:func:`register_feature_track` still works for code that registers a track at import time (kept for
compatibility; a plugin's hook is the better way: it is listed with its distribution and loads lazily).
numpy only; Qt-free and torch-free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from workbench.schema.registry import Registry

TrackFn = Callable[[str], np.ndarray]


@dataclass(frozen=True)
class FeatureTrack:
    """A named feature of the input text, one number per character."""

    name: str
    fn: TrackFn
    title: str = ""
    description: str = ""
    #: where it comes from: "distribution (entry point)" for a plugin's track, "" for one registered in code
    source: str = ""

    def __call__(self, text: str) -> np.ndarray:
        where = f" from plugin {self.source}" if self.source else ""
        try:
            out = np.asarray(self.fn(text), dtype=np.float64).reshape(-1)
        except Exception as exc:  # noqa: BLE001 - a plugin's code: name it, keep the app running
            raise ValueError(f"feature track {self.name!r}{where} failed: {type(exc).__name__}: {exc}") from exc
        if out.shape[0] != len(text):
            raise ValueError(f"feature track {self.name!r}{where} returned {out.shape[0]} values for {len(text)} "
                             f"characters")
        return out


class _PluginTrackFn:
    """A plugin's track function, imported on first use (discovery never imports a plugin's code)."""

    def __init__(self, spec: Any):
        self.spec = spec
        self._fn: TrackFn | None = None

    def __call__(self, text: str) -> np.ndarray:
        if self._fn is None:
            self._fn = self.spec.load()
        return self._fn(text)


#: tracks registered in code with :func:`register_feature_track` (plugins use the ``seqwb_feature_tracks`` hook)
FEATURE_TRACKS: dict[str, FeatureTrack] = {}
REGEX_PREFIX = "regex:"
_PLUGIN_TRACKS: dict[Any, FeatureTrack] = {}  # spec -> track: one lazy loader per (frozen, hashable) spec


def _plugin_tracks(registry: Registry) -> dict[str, FeatureTrack]:
    out: dict[str, FeatureTrack] = {}
    for spec in getattr(registry, "items", {}).get("feature_track", {}).values():
        track = _PLUGIN_TRACKS.get(spec)
        if track is None:
            source = f"{spec.distribution} ({spec.plugin})" if spec.distribution else spec.plugin
            track = FeatureTrack(spec.id, _PluginTrackFn(spec), spec.title or spec.id, spec.description, source)
            _PLUGIN_TRACKS[spec] = track
        out[spec.id] = track
    return out


def register_feature_track(name: str, fn: TrackFn, *, title: str = "", description: str = "",
                           replace: bool = False) -> FeatureTrack:
    """Make ``fn(text) -> np.ndarray[len(text)]`` available to unit search under ``name``.

    ``name`` is what ``seqwb units --feature NAME`` takes: letters, digits, ``_`` and ``-``.  Registering a name
    twice is an error unless ``replace=True`` (two plugins must not silently shadow each other).
    """
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]*", name or ""):
        raise ValueError(f"feature track name {name!r}: use letters, digits, '_' and '-', starting with a letter")
    if name == REGEX_PREFIX.rstrip(":"):
        raise ValueError("'regex' is reserved for regex:PATTERN")
    if name in FEATURE_TRACKS and not replace:
        raise ValueError(f"a feature track named {name!r} is registered already")
    if not callable(fn):
        raise TypeError(f"feature track {name!r}: {fn!r} is not callable")
    track = FeatureTrack(name, fn, title or name.replace("_", " ").capitalize(), description)
    FEATURE_TRACKS[name] = track
    return track


def feature_tracks(registry: Registry) -> list[FeatureTrack]:
    """Every track: the registry's (built-ins first, then plugins in discovery order), then those registered in
    code whose name no plugin took."""
    tracks = _plugin_tracks(registry)
    for name, track in FEATURE_TRACKS.items():
        tracks.setdefault(name, track)
    return list(tracks.values())


def get_track(feature: str, registry: Registry) -> FeatureTrack:
    """The track named ``feature``; ``ValueError`` listing the known names if there is none."""
    tracks = {t.name: t for t in feature_tracks(registry)}
    if feature not in tracks:
        known = ", ".join([*tracks, "regex:PATTERN"])
        raise ValueError(f"unknown feature {feature!r}; choose one of: {known}")
    return tracks[feature]


def compute_track(feature: str, text: str, registry: Registry) -> np.ndarray:
    """The per-character values of ``feature`` (a track's name or ``regex:PATTERN``) over ``text``."""
    if feature.startswith(REGEX_PREFIX):
        return track_regex(text, feature[len(REGEX_PREFIX):])
    return get_track(feature, registry)(text)


def feature_title(feature: str, registry: Registry) -> str:
    if feature.startswith(REGEX_PREFIX):
        return f"Matches of /{feature[len(REGEX_PREFIX):]}/"
    track = {t.name: t for t in feature_tracks(registry)}.get(feature)
    return track.title if track else feature


def track_regex(text: str, pattern: str) -> np.ndarray:
    """1 on every character inside a match of ``pattern`` (Python ``re`` syntax; empty matches mark nothing)."""
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None
    out = np.zeros(len(text), dtype=np.float64)
    for m in rx.finditer(text):
        out[m.start():m.end()] = 1.0
    return out


# The built-in tracks above are contributed by workbench_plugins.feature_tracks (the seqwb_feature_tracks hook).



def token_offsets(text: str, labels: list[str]) -> np.ndarray:
    """Where each token starts in ``text``: its index for character-level tokens; for words, the next place the
    token's text occurs (case-insensitively), or the current place when it does not (an unknown-word token)."""
    if len(labels) == len(text):
        return np.arange(len(text), dtype=np.int64)
    lowered = text.lower()
    out = np.zeros(len(labels), dtype=np.int64)
    pos = 0
    for i, label in enumerate(labels):
        found = lowered.find(label.lower(), pos) if label else -1
        if found >= 0:
            out[i] = found
            pos = found + len(label)
        else:
            out[i] = min(pos, max(len(text) - 1, 0))
    return out
