"""Threads that hold up when the machine is shared: the automatic thread count follows the cores left free.

torch's CPU build runs its intra-op threads on GNU OpenMP, whose idle threads spin before they sleep.  On a quiet
machine every core is fastest; when another process keeps a core busy, a thread on that core is descheduled at
every barrier and training on all cores collapses (``benchmarks/threads_under_load.py`` measures it: on 2 cores
with one busy process beside it, 2 threads give 0.28 of the quiet figure, 1 thread 0.68).  Waiting passively
instead loses half the quiet speed, so no one wait policy is right in both cases.

:class:`ThreadGovernor` therefore watches, between steps, how much CPU time the *other* processes of the machine
used (``/proc/stat`` minus this process's own time) and sets torch's thread count to the cores they leave free.  It
only acts when the thread count is automatic (``threads = 0``); a number the user set is kept as it is.  Where
``/proc/stat`` is not there (macOS, Windows) it keeps the starting count.

Plain Python: no torch, no Qt.  The trainer applies the count (``torch.set_num_threads``).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Callable

#: seconds between two looks at the machine's load (the first comes sooner, so a loaded start is caught early)
INTERVAL_S = 5.0
FIRST_LOOK_S = 1.0
#: a core counts as taken when other processes used at least this much of it
TAKEN = 0.6


@dataclass(frozen=True)
class CpuTimes:
    """The machine's busy CPU seconds (all cores) and this process's own, at one moment."""

    machine_busy: float
    own: float
    wall: float


def cpu_count() -> int:
    """The cores this process may use (its CPU affinity where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def read_cpu_times() -> CpuTimes | None:
    """Now's :class:`CpuTimes` from ``/proc/stat``; None where the file is not there or not readable as such."""
    try:
        with open("/proc/stat", "rb") as fh:
            first = fh.readline().split()
    except OSError:
        return None
    if len(first) < 5 or first[0] != b"cpu":
        return None
    try:
        # user nice system idle iowait irq softirq steal (guest time is already inside user)
        values = [int(v) for v in first[1:9]]
    except ValueError:
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    own = os.times()
    return CpuTimes(machine_busy=(sum(values) - idle) / hz, own=own.user + own.system, wall=time.monotonic())


def others_busy(before: CpuTimes, after: CpuTimes) -> float:
    """How many cores the other processes kept busy between two readings (0 when it cannot be told)."""
    wall = after.wall - before.wall
    if wall <= 0:
        return 0.0
    other = (after.machine_busy - before.machine_busy) - (after.own - before.own)
    return max(0.0, other / wall)


def free_cores(cores: int, busy_elsewhere: float) -> int:
    """The cores another ``busy_elsewhere`` cores of work leave to us: at least 1."""
    taken = math.floor(busy_elsewhere + (1.0 - TAKEN))
    return max(1, cores - taken)


class ThreadGovernor:
    """Sets the thread count to the free cores, looking at the machine every :data:`INTERVAL_S` seconds.

    ``most``: the most threads to use (the automatic count); ``apply(n)``: sets it (``torch.set_num_threads``);
    ``read``: where the CPU times come from (tests give their own).  :meth:`tick` is called between steps and costs
    one clock read until a look is due."""

    def __init__(self, most: int, apply: Callable[[int], None], *, cores: int | None = None,
                 read: Callable[[], CpuTimes | None] | None = None, interval: float | None = None,
                 first_look: float | None = None):
        self.most = max(1, int(most))
        self.cores = cores or cpu_count()
        self.apply = apply
        self.read = read or read_cpu_times
        self.interval = INTERVAL_S if interval is None else interval
        first_look = FIRST_LOOK_S if first_look is None else first_look
        self.current = self.most
        self.changes: list[tuple[float, int, float]] = []   # (seconds since start, threads, cores busy elsewhere)
        self._start = time.monotonic()
        self._last = self.read()
        self._due = self._start + first_look
        self.active = self._last is not None and self.most > 1

    def tick(self) -> int | None:
        """Look at the load when a look is due; returns the new thread count when it changed, else None."""
        if not self.active:
            return None
        now = time.monotonic()
        if now < self._due:
            return None
        self._due = now + self.interval
        reading = self.read()
        if reading is None or self._last is None:
            self.active = False
            return None
        busy = others_busy(self._last, reading)
        self._last = reading
        wanted = min(self.most, free_cores(self.cores, busy))
        if wanted == self.current:
            return None
        self.current = wanted
        self.apply(wanted)
        self.changes.append((now - self._start, wanted, round(busy, 2)))
        return wanted


#: how many nice steps below the window training runs behind it (Linux): the GUI thread, at the normal priority,
#: gets a core at once when it wakes (benchmarks/gui_latency.py measures the timer's lateness with and without)
BEHIND_WINDOW_NICE = 10


def can_lower_priority() -> bool:
    """True where :func:`lower_thread_priority` lowers a thread and the threads it starts (Linux)."""
    import sys
    return sys.platform.startswith("linux")


def lower_thread_priority(steps: int = BEHIND_WINDOW_NICE) -> bool:
    """Lower the calling thread's scheduling priority by ``steps`` nice steps; the threads it starts afterwards
    (OpenMP's pool for the parallel regions it runs) inherit it.  Linux keeps a nice value per thread; elsewhere
    this returns False and the caller asks its thread library instead (Qt's ``QThread.LowPriority``).  Lowering is
    always allowed, so the only failure is a platform without it."""
    import threading
    if not can_lower_priority() or steps <= 0:
        return False
    tid = threading.get_native_id()
    try:
        now = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, now + steps))
    except OSError:
        return False
    return True


def thread_nice(tid: int | None = None) -> int | None:
    """The nice value of thread ``tid`` (the calling thread by default); None where it cannot be read."""
    import threading
    try:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id() if tid is None else tid)
    except (OSError, AttributeError):
        return None
