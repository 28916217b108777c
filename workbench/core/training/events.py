"""What the trainer reports (events and callbacks) and the token another thread stops or pauses it with.

Plain Python: no torch, no Qt.  The window's run bridge, the CLI's reporter and autosave observe training through
:class:`Callback`.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.core.training.trainer import Trainer

# The names of the series a training step records in the run's history (``Run.series``); a StepEvent carries the
# same names, so what a live view draws is what a reopened project shows.  Per parameter group: GRAD_PREFIX +
# group and GRAD_CLIPPED_PREFIX + group.
LOSS = "train/loss"
LR = "train/lr"
EPOCH = "train/epoch"
TOKENS_PER_S = "train/tokens_per_s"
GRAD_NORM = "train/grad_norm"
GRAD_NORM_CLIPPED = "train/grad_norm_clipped"
SKIPPED_STEPS = "train/skipped_steps"
#: seconds from the run's start (``Run.started``) to the end of a step, every ``log_every`` steps: what a wall-clock
#: x axis places the steps by (a run continued another day counts the days between)
WALL_TIME = "train/wall_time"
GRAD_PREFIX = "grad/"
GRAD_CLIPPED_PREFIX = "grad_clipped/"


def started_timestamp(started: str) -> float:
    """A run's start (``Run.started``, ISO 8601) in seconds since the epoch; nan when it does not say."""
    import datetime as dt
    try:
        when = dt.datetime.fromisoformat(started)
    except (TypeError, ValueError):
        return math.nan
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


# ---- events ---------------------------------------------------------------------------------------------------

@dataclass
class StepEvent:
    """One optimizer step.  ``metrics`` holds what the step recorded in the run's history, by series name (the
    names above); the properties read the common ones."""

    step: int
    epoch: int
    metrics: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0
    progress: float = 0.0
    eta: float = 0.0
    skipped: bool = False
    #: torch's CPU threads for this step (0 on a GPU); automatic threads follow the cores other processes leave free
    threads: int = 0

    @property
    def loss(self) -> float:
        return self.metrics.get(LOSS, math.nan)

    @property
    def lr(self) -> float:
        return self.metrics.get(LR, math.nan)

    @property
    def grad_norm(self) -> float:
        return self.metrics.get(GRAD_NORM, math.nan)

    @property
    def grad_norm_clipped(self) -> float:
        return self.metrics.get(GRAD_NORM_CLIPPED, math.nan)

    @property
    def tokens_per_s(self) -> float:
        return self.metrics.get(TOKENS_PER_S, 0.0)

    def group_norms(self, clipped: bool = False) -> dict[str, float]:
        prefix = GRAD_CLIPPED_PREFIX if clipped else GRAD_PREFIX
        return {k[len(prefix):]: v for k, v in self.metrics.items() if k.startswith(prefix)}


@dataclass
class EvalEvent:
    step: int
    epoch: int
    split: str
    metrics: dict[str, float]
    best: bool


@dataclass
class ProbeEvent:
    step: int
    gtt: dict[str, dict[str, list[float]]]
    sigma: dict[str, float]


@dataclass
class SampleEvent:
    step: int
    text: str


@dataclass
class EndEvent:
    step: int
    status: str         # finished | stopped | failed
    message: str = ""


class Callback:
    """Base class with every hook as a no-op; override what you need."""

    def on_train_start(self, trainer: "Trainer") -> None: ...
    def on_step_end(self, trainer: "Trainer", event: StepEvent) -> None: ...
    def on_eval_end(self, trainer: "Trainer", event: EvalEvent) -> None: ...
    def on_probe_end(self, trainer: "Trainer", event: ProbeEvent) -> None: ...
    def on_sample(self, trainer: "Trainer", event: SampleEvent) -> None: ...
    # between two steps, at a point where a checkpoint is consistent: just before blocking on a pause, and after
    # the pause ends (unless it ended with a stop); the window saves a checkpoint there, so Save while paused works
    def on_pause(self, trainer: "Trainer") -> None: ...
    def on_resume(self, trainer: "Trainer") -> None: ...
    def on_exception(self, trainer: "Trainer", exc: BaseException) -> None: ...
    # while the task reads its data (in setup): ``stage`` such as "vocabulary scan", bytes done and in all
    def on_data_progress(self, trainer: "Trainer", stage: str, done: int, total: int) -> None: ...
    # a fresh checkpoint (also in ``trainer.project.checkpoint``) at a consistent point, on the trainer's schedule:
    # every ``checkpoint_every`` steps and every ``checkpoint_seconds`` (see Trainer); the CLI saves the file here
    def on_checkpoint(self, trainer: "Trainer", checkpoint: Any) -> None: ...
    def on_train_end(self, trainer: "Trainer", event: EndEvent) -> None: ...


class RunControl:
    """Stop / pause token shared with another thread.  Pausing blocks on an Event: no spinning."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._go = threading.Event()
        self._go.set()

    def stop(self) -> None:
        self._stop.set()
        self._go.set()

    def pause(self) -> None:
        self._go.clear()

    def resume(self) -> None:
        self._go.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._go.is_set()

    def wait_while_paused(self) -> None:
        self._go.wait()
