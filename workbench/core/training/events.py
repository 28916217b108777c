"""What the trainer reports (events and callbacks) and the token another thread stops or pauses it with.

Plain Python: no torch, no Qt.  The window's run bridge, the CLI's reporter and autosave observe training through
:class:`Callback`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.core.training.trainer import Trainer
import threading
from dataclasses import dataclass

# ---- events ---------------------------------------------------------------------------------------------------

@dataclass
class StepEvent:
    step: int
    epoch: int
    loss: float
    grad_norm: float
    grad_norm_clipped: float
    lr: float
    tokens_per_s: float
    group_norms: dict[str, float]
    group_norms_clipped: dict[str, float]
    elapsed: float
    progress: float
    eta: float
    skipped: bool = False


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
