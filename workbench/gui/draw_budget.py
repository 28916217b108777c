"""How often the live plots get new data: as often as the GUI thread's share of a core allows.

Behind the window, training runs on every core.  Each millisecond the GUI thread spends drawing is a millisecond
taken from one of training's threads, and with OpenMP's threads waiting for each other at every barrier, the whole
step waits for it.  So the plots are not updated at a fixed rate: :class:`DrawBudget` watches how much CPU time the
GUI thread used (``time.thread_time``) over the last second of live drawing and lengthens the interval between
two updates of a plot when the thread used more than its budget (:data:`MACHINE_SHARE` of the machine's CPU time:
6 % of one core on two cores), and shortens it again (down to :data:`FASTEST`) when drawing is cheap.  On a fast machine the plots update four times a second; on a slow one with
many plots every second or two, and training keeps its speed (``benchmarks/gui_latency.py`` measures both).
"""

from __future__ import annotations

import time
from typing import Callable

#: the share of the machine's CPU time (all cores) that the GUI thread may use while the plots update live
MACHINE_SHARE = 0.03
#: the shortest and the longest interval between two updates of one plot, in seconds
FASTEST = 0.25
SLOWEST = 2.0
#: how much CPU time is looked at before the interval changes (seconds of wall time)
WINDOW_S = 1.0
#: a gap longer than this between two updates means drawing was idle: that time is not counted
IDLE_GAP_S = 3.0
STEP = 1.5


def default_budget(cores: int | None = None) -> float:
    """The GUI thread's budget as a share of one core: :data:`MACHINE_SHARE` of ``cores`` cores (this machine's)."""
    import os
    cores = cores or os.cpu_count() or 1
    return min(0.5, MACHINE_SHARE * cores)


class DrawBudget:
    """``interval``: the seconds between two updates of one plot now.  Call :meth:`tick` at every redraw pass (in
    the GUI thread); ``cpu`` and ``clock`` are the thread's CPU clock and the wall clock (tests pass their own)."""

    def __init__(self, budget: float | None = None, *, cpu: Callable[[], float] = time.thread_time,
                 clock: Callable[[], float] = time.monotonic):
        self.budget = default_budget() if budget is None else budget   # a share of one core
        self.interval = FASTEST
        self._cpu = cpu
        self._clock = clock
        self._mark: tuple[float, float] | None = None    # (cpu, wall) where the current window began
        self._last = -1e18
        self.share = 0.0                                 # the GUI thread's share of a core in the last window

    def tick(self) -> float:
        """Account for the time since the last look; returns the interval to use now."""
        now, cpu = self._clock(), self._cpu()
        if self._mark is None or now - self._last > IDLE_GAP_S:
            self._mark = (cpu, now)       # drawing (re)starts: what the thread did while idle is not drawing
        self._last = now
        cpu0, wall0 = self._mark
        if now - wall0 >= WINDOW_S:
            self.share = (cpu - cpu0) / (now - wall0)
            if self.share > self.budget:
                self.interval = min(SLOWEST, self.interval * STEP)
            elif self.share < self.budget / 2:
                self.interval = max(FASTEST, self.interval / STEP)
            self._mark = (cpu, now)
        return self.interval
