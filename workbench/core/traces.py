"""A run's series, probes and samples in fixed memory: what a live view of training draws.

Long runs keep fixed memory and smooth plots: every series lives in a :class:`Decimator`, preallocated numpy
arrays that, when full, merge neighbouring points pairwise and from then on fold every two (four, eight...) new
points into one, so the whole run stays visible at an even resolution whatever its length.  A :class:`RunTraces`
holds one run's decimated series, its gradient-through-time probes as rows of log10 norms, its latest samples and
where its epochs began; it is built from a run's record (:meth:`RunTraces.from_run`) and extended by the trainer's
events (:meth:`RunTraces.add_events`), and both ways give the same traces.

Runs from other project files are overlaid read-only, as TensorBoard users expect: :func:`runs_from_file` reads
their history (the quick read, no weights) into traces that carry the file they come from (``source``), a ``key``
unique across files and a ``label`` that names the file.  :func:`run_matches` is the runs list's filter, and
:func:`time_of` places a run's steps on a wall-clock axis from its ``train/wall_time`` series (seconds since the
run started, which the trainer records).

numpy only: the window's dashboard draws these, and tests check them without Qt.
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from workbench.core.training.events import EPOCH, WALL_TIME, started_timestamp

SERIES_CAPACITY = 4096      # points kept per series per run (whatever the run's length)
HEATMAP_ROWS = 256          # probe rows kept per layer and quantity
SAMPLES_KEPT = 6
#: the gradient-through-time quantities a probe records per layer: the loss at the last step only, the whole loss
GTT_QUANTITIES = ("dLT_dh", "dL_dh")
#: floor for log-scale values: a gradient that vanished to exactly 0 is drawn at the bottom, not dropped
LOG_FLOOR = 1e-12

# Serial numbers for series and for traces: a view asks "is this still the series I drew?", and ``id()`` cannot
# answer that, because an object freed with its run (another project opened) leaves its id to the next one.
_series_uids = itertools.count(1)
_trace_uids = itertools.count(1)


# ---- fixed-memory series ----------------------------------------------------------------------------------

class Decimator:
    """Points ``(x, y)`` in preallocated arrays of ``capacity`` rows; ``y`` is a number or a fixed-length row.

    While there is room every point is kept.  When the arrays fill up, neighbouring pairs are merged (x by the
    mean, y by ``reduce``: "mean" or "max", max keeps gradient spikes visible) and the stride doubles: from then
    on every ``stride`` new points are folded into one as they arrive (the unfinished fold shows as a provisional
    last point).  Memory stays fixed, and points stay evenly spread over the whole run.
    """

    def __init__(self, capacity: int = 4096, reduce: str = "mean", width: int = 0):
        self.capacity = max(2, capacity - capacity % 2)
        self.reduce = reduce
        self.width = width                       # 0: scalar y; otherwise the length of each y row
        shape = (self.capacity,) if width == 0 else (self.capacity, width)
        self.x = np.empty(self.capacity, dtype=np.float64)
        self.y = np.empty(shape, dtype=np.float64)
        self.n = 0
        self.stride = 1
        self._pend_x: list[float] = []
        self._pend_y: list[Any] = []
        self.count = 0                           # raw points seen
        self.version = 0                         # bumps on every change: views redraw only what changed
        self.uid = next(_series_uids)            # never reused, unlike id(): (uid, version) names what was drawn

    def __len__(self) -> int:
        return self.n + (1 if self._pend_x else 0)

    def clear(self) -> None:
        self.n, self.stride, self.count = 0, 1, 0
        self._pend_x, self._pend_y = [], []
        self.version += 1

    def _fold(self, ys: np.ndarray) -> Any:
        return ys.max(axis=0) if self.reduce == "max" else ys.mean(axis=0)

    def _halve(self) -> None:
        half = self.n // 2
        self.x[:half] = self.x[:2 * half].reshape(half, 2).mean(axis=1)
        ys = self.y[:2 * half].reshape((half, 2) + self.y.shape[1:])
        self.y[:half] = ys.max(axis=1) if self.reduce == "max" else ys.mean(axis=1)
        if self.n % 2:       # an odd point out is kept as it is
            self.x[half] = self.x[self.n - 1]
            self.y[half] = self.y[self.n - 1]
            half += 1
        self.n = half
        self.stride *= 2

    def _commit(self, x: float, y: Any) -> None:
        if self.n == self.capacity:
            self._halve()
        self.x[self.n] = x
        self.y[self.n] = y
        self.n += 1

    def append(self, x: float, y: Any) -> None:
        self.extend([x], [y])

    def extend(self, xs: Any, ys: Any) -> None:
        if len(xs) == 0:
            return
        self.count += len(xs)
        self.version += 1
        if self.stride == 1 and not self._pend_x and len(xs) <= self.capacity - self.n:
            xs_a = np.asarray(xs, dtype=np.float64)
            self.x[self.n:self.n + len(xs_a)] = xs_a
            self.y[self.n:self.n + len(xs_a)] = np.asarray(ys, dtype=np.float64)
            self.n += len(xs_a)
            return
        if self.n == 0 and not self._pend_x:
            self._load(np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64))
            return
        for x, y in zip(xs, ys):
            self._pend_x.append(float(x))
            self._pend_y.append(y)
            if len(self._pend_x) >= self.stride:
                self._commit(float(np.mean(self._pend_x)), self._fold(np.asarray(self._pend_y, dtype=np.float64)))
                self._pend_x, self._pend_y = [], []

    def _load(self, xs: np.ndarray, ys: np.ndarray) -> None:
        """A long record into an empty series at once (a run from the history): folded with numpy, not a loop."""
        stride = self.stride
        while len(xs) > stride * self.capacity:
            stride *= 2
        self.stride = stride
        n = len(xs) // stride
        full = n * stride
        self.x[:n] = xs[:full].reshape(n, stride).mean(axis=1)
        folded = ys[:full].reshape((n, stride) + ys.shape[1:])
        self.y[:n] = folded.max(axis=1) if self.reduce == "max" else folded.mean(axis=1)
        self.n = n
        self._pend_x = [float(v) for v in xs[full:]]
        self._pend_y = list(ys[full:])

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the points, with the unfinished fold as a provisional last point."""
        x, y = self.x[:self.n], self.y[:self.n]
        if self._pend_x:
            x = np.append(x, np.mean(self._pend_x))
            y = np.concatenate([y, self._fold(np.asarray(self._pend_y, dtype=np.float64))[None, ...]])
        return x.copy(), y.copy()

    def last(self) -> Any:
        if self._pend_y:
            return self._pend_y[-1]
        return self.y[self.n - 1] if self.n else None


def trailing_mean(y: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` points at every point (fewer at the start): smoothing that never looks ahead,
    so the right end of the curve is as trustworthy as the rest.  O(n) with a cumulative sum."""
    if window <= 1 or len(y) < 2:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    idx = np.arange(1, len(y) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def reduce_for(key: str) -> str:
    """How a series folds when a long run is decimated: gradient norms keep their peaks (an explosion must stay
    visible), everything else its mean."""
    return "max" if key.startswith(("train/grad_norm", "grad/", "grad_clipped/")) else "mean"


def log10_row(values: Iterable[float]) -> np.ndarray:
    """A probe's norms as log10, with zeros and non-finite values at :data:`LOG_FLOOR`."""
    a = np.asarray(list(values), dtype=np.float64)
    a = np.where(np.isfinite(a), a, LOG_FLOOR)
    return np.log10(np.maximum(a, LOG_FLOOR))


def last_step(run: Any) -> int:
    """The last step a run's record has a training loss for (0: none)."""
    s = run.series.get("train/loss")
    return int(s.step[-1]) if s and s.step else 0


# ---- one run ------------------------------------------------------------------------------------------------

class RunTraces:
    """The series, probes and samples of one run as a live view draws them.  ``source``: the project file a run of
    another project comes from ("" for the project's own runs)."""

    def __init__(self, run_id: str, settings: dict | None = None, source: str = ""):
        self.run_id = run_id
        self.source = source
        self.started = ""                                    # when the run began (ISO 8601, from its record)
        #: the colour a run of another file is drawn in (an index into the plots' palette; None: by its number)
        self.color_index: Optional[int] = None
        self.settings = dict(settings or {})
        self.status = ""
        self.message = ""
        self.series: dict[str, Decimator] = {}
        self.gtt: dict[tuple[str, str], Decimator] = {}      # (layer, quantity) -> rows of log10 norms
        self.gtt_latest: dict[str, dict[str, list[float]]] = {}
        self.gtt_latest_step = 0
        self.layers: list[str] = []
        self.samples: list[tuple[int, str]] = []
        self.epoch_starts: list[tuple[int, int]] = []        # (step, epoch) where an epoch began
        self._epoch: int | None = None
        self.last_step = 0
        self.version = 0
        self.uid = next(_trace_uids)

    # ---- building from the record ------------------------------------------------------------------------
    @classmethod
    def from_run(cls, run: Any, source: str = "") -> "RunTraces":
        traces = cls(run.id, run.settings, source)
        traces.status, traces.message = run.status, run.message
        traces.started = str(getattr(run, "started", "") or "")
        for key, s in run.series.items():
            if not s.step:
                continue
            if key == EPOCH:
                traces._epochs(s.step, s.value)
                continue
            steps = np.asarray(s.step, dtype=np.float64)
            values = np.asarray(s.value, dtype=np.float64)
            ok = np.isfinite(values)
            traces._series(key).extend(steps[ok], values[ok])
            traces.last_step = max(traces.last_step, int(s.step[-1]))
        for record in run.gtt:
            traces._probe(int(record.get("step", 0)), record.get("layers") or {})
        for sample in run.samples[-SAMPLES_KEPT:]:
            traces.samples.append((int(sample.get("step", 0)), str(sample.get("text", ""))))
        return traces

    def _series(self, key: str) -> Decimator:
        dec = self.series.get(key)
        if dec is None:
            dec = self.series[key] = Decimator(SERIES_CAPACITY, reduce_for(key))
        return dec

    def _epochs(self, steps: Any, epochs: Any) -> None:
        """Remember the steps where a new epoch began (vectorised: a long record has a value per step)."""
        e = np.asarray(epochs, dtype=np.int64)
        if not len(e):
            return
        if self._epoch is None:
            self._epoch = int(e[0])
        previous = np.concatenate([[self._epoch], e[:-1]])
        for i in np.nonzero(e != previous)[0]:
            self.epoch_starts.append((int(steps[i]), int(e[i])))
        self._epoch = int(e[-1])

    def _probe(self, step: int, layers: dict[str, dict[str, list[float]]]) -> None:
        for layer, quantities in layers.items():
            if layer not in self.layers:
                self.layers.append(layer)
            for q in GTT_QUANTITIES:
                values = quantities.get(q)
                if not values:
                    continue
                row = log10_row(values)
                dec = self.gtt.get((layer, q))
                if dec is None or dec.width != len(row):   # a new probe length starts the picture again
                    dec = self.gtt[(layer, q)] = Decimator(HEATMAP_ROWS, "mean", width=len(row))
                dec.append(step, row)
            self.gtt_latest[layer] = {q: list(v) for q, v in quantities.items()}
        self.gtt_latest_step = step
        self.version += 1

    # ---- live events ---------------------------------------------------------------------------------------
    def add_events(self, events: list[tuple[str, Any]]) -> dict[str, Any]:
        """Add a tick's worth of ``(kind, event)`` pairs ("step", "eval", "probe", "sample", as the window's run
        bridge hands them over); returns what a status line needs: ``{"step": the last StepEvent or None}``."""
        columns: dict[str, tuple[list[float], list[float]]] = {}

        def put(key: str, step: int, value: float) -> None:
            if value is not None and math.isfinite(value):
                xs, ys = columns.setdefault(key, ([], []))
                xs.append(step)
                ys.append(value)

        last_step_event = None
        for kind, ev in events:
            if kind == "step":
                last_step_event = ev
                s = ev.step
                for key, value in ev.metrics.items():   # the series the step recorded, by their own names
                    if key != EPOCH:
                        put(key, s, value)
                self._epochs([s], [ev.epoch])
                self.last_step = s
            elif kind == "eval":
                for k, v in ev.metrics.items():
                    if isinstance(v, (int, float)):
                        put(f"{ev.split}/{k}", ev.step, float(v))
            elif kind == "probe":
                for k, v in ev.sigma.items():
                    put(f"sigma/{k}", ev.step, v)
                self._probe(ev.step, ev.gtt)
            elif kind == "sample":
                self.samples.append((ev.step, ev.text))
                del self.samples[:-SAMPLES_KEPT]
        for key, (xs, ys) in columns.items():
            self._series(key).extend(xs, ys)
        self.version += 1
        return {"step": last_step_event}

    # ---- reading -------------------------------------------------------------------------------------------
    def keys(self, prefix: str) -> list[str]:
        return sorted(k[len(prefix):] for k in self.series if k.startswith(prefix))

    def metric_names(self) -> list[str]:
        return [k for k in self.keys("valid/") if k != "loss"]

    @property
    def key(self) -> str:
        """Unique among the runs shown together: the run's id, after its file's name for another project's run."""
        return f"{self.file}/{self.run_id}" if self.source else self.run_id

    @property
    def file(self) -> str:
        """The name of the file a run of another project comes from ("" for the project's own)."""
        return Path(self.source).name if self.source else ""

    @property
    def label(self) -> str:
        return run_label(self.run_id, self.settings, self.file)

    def has_times(self) -> bool:
        """Whether the run recorded when its steps happened (runs trained before ``train/wall_time`` did not)."""
        dec = self.series.get(WALL_TIME)
        return dec is not None and len(dec) > 0

    def start_time(self) -> float:
        """When the run began, in seconds since the epoch (nan when its record does not say)."""
        return started_timestamp(self.started)

    def planned_steps(self) -> int:
        """The steps the run was set to train (0 when it trains by epochs: the record does not say how many)."""
        train = self.settings.get("train") or {}
        return 0 if train.get("epochs") else int(train.get("steps") or 0)


# ---- runs across files, their names and their times -------------------------------------------------------------

def runs_from_file(path: str | Path) -> tuple[str, list[RunTraces]]:
    """The project name and the runs of the project file ``path``, as traces that name the file (read-only: the
    quick read, without weights, and nothing is written back)."""
    from workbench.core.projectfile import load_project
    project = load_project(path, weights=False)
    return project.name, [RunTraces.from_run(run, source=str(path)) for run in project.history.runs]


def run_label(run_id: str, settings: dict | None, file: str = "") -> str:
    """How lists and legends name a run: "run-2 (lstm+lstm)", after its file's name for another project's run."""
    cells = "+".join((settings or {}).get("cells") or []) or "?"
    return f"{file}: {run_id} ({cells})" if file else f"{run_id} ({cells})"


def run_matches(pattern: str, *names: str) -> bool:
    """The runs filter: ``pattern`` as a regular expression, case-insensitive, found in any of ``names`` (a run's
    label, its file); a pattern that is not a valid expression is looked for as plain text.  Empty matches all."""
    if not pattern.strip():
        return True
    try:
        rx = re.compile(pattern, re.IGNORECASE)
    except re.error:
        return any(pattern.lower() in name.lower() for name in names)
    return any(rx.search(name) for name in names)


#: x-axis modes of the plots over training time: the optimizer step, seconds since each run began, the wall clock
X_AXES = ("step", "relative", "wall")


def time_of(traces: RunTraces, steps: np.ndarray, mode: str) -> Optional[np.ndarray]:
    """``steps`` of a run as times: seconds since the run began (``relative``) or since the epoch (``wall``),
    interpolated between the steps the run recorded its time at; None when it recorded none (or the start is
    unknown, for ``wall``)."""
    if mode == "step":
        return np.asarray(steps, dtype=np.float64)
    dec = traces.series.get(WALL_TIME)
    if dec is None or len(dec) == 0:
        return None
    at, seconds = dec.data()
    times = np.interp(np.asarray(steps, dtype=np.float64), at, seconds)
    if mode == "wall":
        start = traces.start_time()
        if not math.isfinite(start):
            return None
        return times + start
    return times
