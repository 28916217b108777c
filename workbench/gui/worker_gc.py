"""Python's cyclic garbage collector runs in the GUI thread only, while any worker thread of the window is busy.

Left automatic, a collection runs in whichever thread happens to allocate when the counts pass the threshold:
often a worker (training, recording hidden units, decoding, writing an autosave).  There it may free a reference
cycle that holds a Qt object (a closed dialog's, a plot's menu) and so destroy that object outside the GUI thread,
which crashes or deadlocks Qt.  So, as pyqtgraph's ``GarbageCollector`` does, automatic collection is switched
off while a worker runs, and a timer in the GUI thread collects each generation when the counts say it is due.

There is one :class:`WorkerGcManager` per process (:func:`worker_gc`), shared by every window and every kind of
worker, and it counts its holders: collection goes back to automatic only when the last worker is done.  (One
switch per worker would not do: the first worker to finish would turn automatic collection back on while another
still runs.)

Two ways to hold it, both called in the GUI thread:

- ``token = acquire(name)`` ... ``release(token)``: for a worker whose end the GUI thread sees after its thread has
  been joined (a training run).
- ``hold_until(name, idle)``: for pools and long-lived worker threads, whose thread runs on for a few bytecodes
  after it has reported back.  The hold ends once ``idle()`` has been true at two ticks of the timer in a row
  (so the thread is back waiting for work, not finishing its last lines).
"""

from __future__ import annotations

import gc
import itertools
from typing import Callable, Optional

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer

#: how often the GUI thread looks at the counts (and at draining holders)
TICK_MS = 250


class WorkerGcManager(QObject):
    """Reference-counted "no automatic collection while any worker runs"; see the module docstring."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = TICK_MS):
        super().__init__(parent)
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.tick)
        self._ids = itertools.count(1)
        self._holders: dict[int, str] = {}                         # token -> what holds it (for messages/tests)
        self._draining: dict[int, tuple[str, Callable[[], bool], int]] = {}   # token -> (name, idle, idle ticks)
        self._was_enabled = False
        self._frozen = False
        self.active = False
        self.collections = [0, 0, 0]      # collections this manager ran, per generation

    # ---- holding --------------------------------------------------------------------------------------------
    def acquire(self, name: str) -> int:
        """Automatic collection stays off until ``release(token)``."""
        self._check_thread()
        token = next(self._ids)
        self._holders[token] = name
        self._begin()
        return token

    def release(self, token: int) -> None:
        """The worker of ``token`` has ended (its thread joined).  Unknown or released tokens are ignored."""
        self._check_thread()
        if self._holders.pop(token, None) is not None:
            self._maybe_end()

    def hold_until(self, name: str, idle: Callable[[], bool]) -> int:
        """Automatic collection stays off until ``idle()`` has been true at two ticks in a row.  ``idle`` runs in
        the GUI thread; an exception from it (its owner was deleted, say) counts as idle."""
        self._check_thread()
        token = next(self._ids)
        self._draining[token] = (name, idle, 0)
        self._begin()
        return token

    def holders(self) -> list[str]:
        """What keeps automatic collection off now."""
        return list(self._holders.values()) + [name for name, _, _ in self._draining.values()]

    def freeze(self) -> None:
        """Move everything alive now out of the collector's sight (``gc.freeze``) until the last holder ends:
        the full passes while a long run trains no longer walk torch, the data and the model."""
        if self.active:
            gc.freeze()
            self._frozen = True

    # ---- the GUI thread's collector ------------------------------------------------------------------------
    def tick(self) -> None:
        for token, (name, idle, ticks) in list(self._draining.items()):
            try:
                now_idle = bool(idle())
            except Exception:  # noqa: BLE001 - the owner is gone: its thread has nothing left to do here
                now_idle = True
            ticks = ticks + 1 if now_idle else 0
            if ticks >= 2:
                del self._draining[token]
            else:
                self._draining[token] = (name, idle, ticks)
        self.collect_if_due()
        self._maybe_end()

    def collect_if_due(self) -> None:
        counts, limits = gc.get_count(), gc.get_threshold()
        if counts[0] > limits[0]:
            generation = 2 if counts[2] > limits[2] else 1 if counts[1] > limits[1] else 0
            gc.collect(generation)
            self.collections[generation] += 1

    # ---- inside ---------------------------------------------------------------------------------------------
    def _begin(self) -> None:
        if self.active:
            return
        self.active = True
        self._was_enabled = gc.isenabled()
        gc.disable()
        self.timer.start()

    def _maybe_end(self) -> None:
        if not self.active or self._holders or self._draining:
            return
        self.active = False
        self.timer.stop()
        if self._frozen:
            gc.unfreeze()           # nothing of the workers outlives them
            self._frozen = False
        if self._was_enabled:
            gc.enable()

    def _check_thread(self) -> None:
        if QThread.currentThread() is not self.thread():
            raise RuntimeError("WorkerGcManager is used from the GUI thread only")


_MANAGER: Optional[WorkerGcManager] = None


def worker_gc() -> WorkerGcManager:
    """The process's manager (made on first use, in the GUI thread, owned by the application object)."""
    global _MANAGER
    try:
        if _MANAGER is not None:
            _MANAGER.objectName()      # raises RuntimeError once the C++ object is gone (a new QApplication)
            return _MANAGER
    except RuntimeError:
        _MANAGER = None
    _MANAGER = WorkerGcManager(QCoreApplication.instance())
    return _MANAGER
