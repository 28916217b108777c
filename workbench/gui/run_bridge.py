"""Training behind the window: the core Trainer in a QThread, its events through a bounded buffer, a timer drains it.

DESIGN §5: the Trainer is Qt-free and reports through callbacks.  Here a callback running in the worker thread
only appends the event objects to an :class:`EventBuffer` (a lock and two deques: no Qt call, no signal per
step); a :class:`QTimer` in the GUI thread drains the buffer about 25 times a second and hands everything that
arrived since the last tick to the dashboard in one ``eventsReady`` signal, so the plots redraw at most once a
tick however fast training goes.

**The run trains a snapshot.**  ``RunBridge.start`` gives the worker a copy of the project taken at the moment of
Train (:func:`snapshot_project`): the graph, the task and training settings, the vocabulary and the run being
continued.  The user may go on editing the document while the run is live (moving nodes, trying another hidden
size, changing the learning rate): none of that reaches the live run, so the run always matches the graph it was
started with, and its record (``Run.settings["graph_hash"]``) says which graph that was.  The next Train starts
a new run on the edited graph (the checkpoint's graph hash no longer fits).  The window tells the user so when it
happens.  We chose this over locking the canvas and inspector because a lock would have to reach every edit path
(canvas, inspector, palette, paste, undo, redo) and would stop the user from preparing the next experiment while
the current one trains.

What comes back is merged into the document's project (:func:`merge_run_state`): the run's record, replacing the
record with the same id, and the checkpoint, the vocabulary and the data description, at consistent points only
(periodically between steps, when a pause takes effect, and at the end).  A failed run brings back its record but
never its weights: the project keeps the last good checkpoint.

Nothing here imports torch: the worker imports the core trainer (which does) when it starts.
"""

from __future__ import annotations

import collections
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, QTimer, Signal

from workbench.core.project import Project
from workbench.core.runs import RunState, run_state, run_total, snapshot_project

#: how often the GUI drains the buffer (DESIGN §5: 20-30 Hz)
DRAIN_HZ = 25
#: data events kept when the GUI falls behind (the oldest are dropped; the run's record keeps every number)
BUFFER_CAPACITY = 4096
#: a checkpoint goes back to the document at least this often while a run is live (seconds)
CHECKPOINT_SECONDS = 30.0


# ---- plain data that crosses the thread boundary ---------------------------------------------------------------

@dataclass
class RunStart:
    run_id: str
    step: int                      # the step the run starts (or continues) from
    resumed: bool
    device: str                    # "CPU (1 thread)", "CUDA: ..."
    precision: str                 # what the run trains in: "fp32", "bf16 autocast", ...
    parameters: int
    total: str                     # "1000 steps" | "3 epochs"
    notices: list[str]
    state: RunState                # the run's record so far (a continued run has earlier series)
    unit: str = "tokens"           # what the speed counts (the task's count_unit)


@dataclass
class RunEnd:
    status: str                    # finished | stopped | failed
    message: str
    step: int
    state: RunState | None         # None when the run never started (the data or the model could not be built)
    details: str = ""              # the traceback of a failure, for the log


class EventBuffer:
    """Bounded and thread-safe.  The worker ``put``s training events (step, eval, probe, sample) and
    ``put_control``s the few lifecycle events (started, checkpoint, paused, ended); the GUI ``drain``s both.

    Data events live in a deque with a maximum length: if the GUI ever falls behind, the oldest are dropped
    (``dropped`` counts them) instead of memory growing; the dashboard redraws from the run's full record at the
    end.  Lifecycle events are few and are never dropped.
    """

    def __init__(self, capacity: int = BUFFER_CAPACITY):
        self._lock = threading.Lock()
        self._data: collections.deque = collections.deque(maxlen=capacity)
        self._control: collections.deque = collections.deque()
        self.dropped = 0

    def put(self, kind: str, payload: Any) -> None:
        with self._lock:
            if len(self._data) == self._data.maxlen:
                self.dropped += 1
            self._data.append((kind, payload))

    def put_control(self, kind: str, payload: Any) -> None:
        with self._lock:
            self._control.append((kind, payload))

    def drain(self) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
        with self._lock:
            data, control = list(self._data), list(self._control)
            self._data.clear()
            self._control.clear()
        return data, control


# ---- the worker --------------------------------------------------------------------------------------------------

class _Relay:
    """The trainer's callback in the worker thread: events go into the buffer, nothing else happens per step.

    The trainer's checkpoints (every ``checkpoint_every`` steps and every CHECKPOINT_SECONDS) and the consistent
    point of a pause go back to the document as run states."""

    def __init__(self, buffer: EventBuffer):
        self.buffer = buffer
        self.exception: BaseException | None = None

    def on_step_end(self, trainer: Any, event: Any) -> None:
        self.buffer.put("step", event)

    def on_checkpoint(self, trainer: Any, checkpoint: Any) -> None:
        self.buffer.put_control("checkpoint", run_state(trainer, False, checkpoint))

    def on_eval_end(self, trainer: Any, event: Any) -> None:
        self.buffer.put("eval", event)

    def on_probe_end(self, trainer: Any, event: Any) -> None:
        self.buffer.put("probe", event)

    def on_sample(self, trainer: Any, event: Any) -> None:
        self.buffer.put("sample", event)

    def on_pause(self, trainer: Any) -> None:
        self.buffer.put_control("paused", run_state(trainer, True))

    def on_resume(self, trainer: Any) -> None:
        self.buffer.put_control("resumed", trainer.pos.step)

    def on_exception(self, trainer: Any, exc: BaseException) -> None:
        self.exception = exc


class TrainingThread(QThread):
    """Builds the trainer on the snapshot and runs it; every outcome ends with exactly one ``ended`` event."""

    def __init__(self, snapshot: Project, registry: Any, buffer: EventBuffer, control: Any, *,
                 base_dir: str | Path | None, new_run: bool, parent: QObject | None = None):
        super().__init__(parent)
        self.setObjectName("seqwb-training")
        self.snapshot = snapshot
        self.registry = registry
        self.buffer = buffer
        self.control = control
        self.base_dir = base_dir
        self.new_run = new_run
        self.lowered = False        # True once the thread runs below the window's priority (Linux)
        self.nice: int | None = None   # its nice value then

    def run(self) -> None:  # the worker thread
        end: RunEnd | None = None
        try:
            end = self._train()
        except BaseException as exc:  # noqa: BLE001 - whatever happens, the window must learn that the run ended
            end = RunEnd("failed", f"training could not go on: {type(exc).__name__}: {exc}", 0, None,
                         "".join(traceback.format_exception(exc)))
        finally:
            self.buffer.put_control("ended", end or RunEnd("failed", "training ended unexpectedly", 0, None))

    def _train(self) -> RunEnd:
        from workbench.core.threads import lower_thread_priority, thread_nice
        # below the window's priority, before torch is imported here and starts this thread's OpenMP pool (which
        # inherits it): the GUI thread gets a core the moment it wakes, and training has every core the rest of
        # the time (benchmarks/gui_latency.py)
        self.lowered = lower_thread_priority()
        self.nice = thread_nice()
        from workbench.core.device import default_threads, describe_device
        from workbench.core.training.trainer import Trainer
        from workbench.schema.errors import WorkbenchError
        relay = _Relay(self.buffer)
        # the project's threads, else the window's default (every core where this thread runs below the window,
        # else one core left for it), which then follows the cores other processes leave free
        threads = self.snapshot.train.threads or default_threads(behind_window=True)
        trainer = Trainer(self.snapshot, self.registry, callbacks=[relay], control=self.control,
                          base_dir=self.base_dir, threads=threads, follow_load=not self.snapshot.train.threads,
                          new_run=self.new_run, checkpoint_seconds=CHECKPOINT_SECONDS)
        try:
            trainer.setup()
        except WorkbenchError as exc:
            return RunEnd("failed", f"training could not start: {exc}", 0, None,
                          "".join(traceback.format_exception(exc)))
        except Exception as exc:  # noqa: BLE001 - a plugin's task or block failed while building
            return RunEnd("failed", f"training could not start: {type(exc).__name__}: {exc}", 0, None,
                          "".join(traceback.format_exception(exc)))
        resumed = trainer.pos.step > 0 and not self.new_run
        start = RunStart(run_id=trainer.run.id, step=trainer.pos.step, resumed=resumed,
                         device=describe_device(trainer.device), precision=trainer.precision.label(),
                         unit=getattr(trainer.task, "count_unit", "tokens"),
                         parameters=sum(p.numel() for p in trainer.model.parameters()),
                         total=run_total(self.snapshot), notices=list(trainer.notices),
                         state=run_state(trainer, False))
        self.buffer.put_control("started", start)
        try:
            end = trainer.fit()
        except Exception as exc:  # noqa: BLE001 - the trainer marked the run failed and says why
            cause = relay.exception or exc
            return RunEnd("failed", str(exc), trainer.pos.step, run_state(trainer, False),
                          "".join(traceback.format_exception(cause)))
        return RunEnd(end.status, end.message, end.step, run_state(trainer, True))


# ---- garbage collection in the GUI thread only ------------------------------------------------------------------

class GuiThreadCollector(QObject):
    """While a run is live, Python's cyclic garbage collector runs only in the GUI thread.

    Left automatic, a collection runs in whichever thread happens to allocate: the training thread, most of the
    time.  There it may free a cycle that holds a Qt widget (a closed window's, a plot's menu) and so destroy the
    widget outside the GUI thread, which crashes Qt; and a full collection holds the GIL for 100-150 ms.  So
    automatic collection is off while the run is live and a timer in the GUI thread collects each generation when
    the counts say it is due: this is one holder of the process's shared, reference-counted
    :class:`~workbench.gui.worker_gc.WorkerGcManager` (which the hidden-unit recorder, the decoder and the autosave
    writer hold too), so the end of a run never turns automatic collection back on while another worker runs.
    Once the run has started (torch, the data and the model loaded), the objects there are then are frozen
    (``gc.freeze``) until the last holder ends.  The hold ends when the run ends (and its thread has been joined).
    """

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._token: int | None = None

    @property
    def active(self) -> bool:
        return self._token is not None

    def start(self) -> None:
        if self._token is None:
            from workbench.gui.worker_gc import worker_gc
            self._token = worker_gc().acquire("training run")

    def settle(self) -> None:
        """The run has started: freeze what is there.  No collection first (a full one takes ~200 ms here, just
        as the first steps arrive): what set-up left behind waits, frozen, until the run ends."""
        if self._token is not None:
            from workbench.gui.worker_gc import worker_gc
            worker_gc().freeze()

    def stop(self) -> None:
        if self._token is not None:
            from workbench.gui.worker_gc import worker_gc
            token, self._token = self._token, None
            worker_gc().release(token)


# ---- the bridge (GUI thread) ---------------------------------------------------------------------------------

class RunBridge(QObject):
    """Owns the worker thread, the stop/pause token, the buffer and the drain timer of one window.

    Signals are emitted in the GUI thread only, from the timer: ``eventsReady`` at most once per tick with every
    training event since the last tick; the lifecycle signals once each.  ``state`` is one of ``idle``,
    ``starting``, ``running``, ``pausing``, ``paused``, ``stopping``.
    """

    runStarted = Signal(object)     # RunStart
    eventsReady = Signal(list)      # [(kind, event)], kind in step | eval | probe | sample
    stateSaved = Signal(object)     # RunState with a checkpoint (periodic, or the pause took effect)
    runEnded = Signal(object)       # RunEnd
    stateChanged = Signal(str)

    def __init__(self, parent: QObject | None = None, *, rate_hz: float = DRAIN_HZ):
        super().__init__(parent)
        self.buffer = EventBuffer()
        self.control: Any = None
        self.thread: TrainingThread | None = None
        self.snapshot: Project | None = None
        self.last_step = 0
        self._state = "idle"
        self.timer = QTimer(self)
        self.timer.setInterval(max(1, round(1000 / rate_hz)))
        self.timer.timeout.connect(self.drain)
        self.collector = GuiThreadCollector(self)

    # ---- state ---------------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    def is_live(self) -> bool:
        return self._state != "idle"

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.stateChanged.emit(state)

    # ---- commands ------------------------------------------------------------------------------------------
    def start(self, project: Project, registry: Any, *, base_dir: str | Path | None = None,
              new_run: bool = False) -> Project:
        """Train a snapshot of ``project`` in the worker thread; returns the snapshot (which the run owns)."""
        if self.is_live():
            raise RuntimeError("a run is already live")
        from workbench.core.training.events import RunControl  # the first Train pays for importing torch, not startup
        self.snapshot = snapshot_project(project)
        self.control = RunControl()
        self.buffer = EventBuffer()
        self.last_step = 0
        self.thread = TrainingThread(self.snapshot, registry, self.buffer, self.control, base_dir=base_dir,
                                     new_run=new_run, parent=self)
        self._set_state("starting")
        self.collector.start()
        # Linux: the thread lowers its own nice value (workbench.core.threads.lower_thread_priority); elsewhere Qt
        # maps LowPriority to the platform's thread priority
        from workbench.core.threads import can_lower_priority
        self.thread.start(QThread.Priority.InheritPriority if can_lower_priority() else QThread.Priority.LowPriority)
        self.timer.start()
        return self.snapshot

    def pause(self) -> None:
        if self._state in ("running", "starting"):
            self.control.pause()
            self._set_state("pausing")

    def resume(self) -> None:
        if self._state in ("pausing", "paused"):
            self.control.resume()
            self._set_state("running")

    def stop(self) -> None:
        if self.is_live() and self._state != "stopping":
            self.control.stop()
            self._set_state("stopping")

    def wait_until_ended(self, timeout_s: float = 60.0) -> bool:
        """Block (draining, so every signal is delivered) until the run has ended; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self.is_live():
            thread = self.thread
            if thread is not None:
                thread.wait(50)
            self.drain()
            if time.monotonic() > deadline:
                return False
        return True

    # ---- the timer ----------------------------------------------------------------------------------------
    def drain(self) -> None:
        data, control = self.buffer.drain()
        # "started" comes before any training event (the worker posts it first), and the dashboard must know
        # the run before its first steps arrive; everything else after the training events of the same tick
        for kind, payload in control:
            if kind == "started":
                self.collector.settle()
                self.last_step = payload.step
                if self._state == "starting":
                    self._set_state("running")
                self.runStarted.emit(payload)
        if data:
            for kind, event in reversed(data):
                if kind == "step":
                    self.last_step = event.step
                    break
            self.eventsReady.emit(data)
        for kind, payload in control:
            if kind == "started":
                continue
            elif kind == "checkpoint":
                self.stateSaved.emit(payload)
            elif kind == "paused":
                self.last_step = payload.step
                if self._state == "pausing":
                    self._set_state("paused")
                self.stateSaved.emit(payload)
            elif kind == "resumed":
                pass
            elif kind == "ended":
                self._finish(payload)

    def _finish(self, end: RunEnd) -> None:
        self.timer.stop()
        if self.thread is not None:
            self.thread.wait()          # run() has returned: this only joins the thread
            self.thread.deleteLater()
            self.thread = None
        self.collector.stop()           # after the join: no automatic collection may run in the worker
        if end.step:
            self.last_step = end.step
        self._set_state("idle")
        self.runEnded.emit(end)
