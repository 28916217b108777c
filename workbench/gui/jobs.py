"""Work off the GUI thread: a :class:`JobRunner` runs callables one after another in a worker thread of its own and
delivers what they bring back on the GUI thread.

Every view that reads data, loads a model or writes a file without freezing the window does it through a runner
(decoding, hidden units, Evaluate, the device probe), so they all follow the same rules:

- ``runner.submit(fn, key=..., on_result=..., on_error=..., on_progress=..., on_cancelled=...)`` queues
  ``fn(job)``; it runs in the runner's thread, after the jobs queued before it.  The answer comes back on the GUI
  thread as the runner's signals (``finished``, ``failed``, ``cancelled``, ``progress``, each with the job first)
  and as the handlers given to ``submit``.  A job that raises is reported by ``failed`` with one line of text,
  never raised into Qt.
- Inside the job, ``job.report(done, total)`` sends progress and ``job.check()`` stops the job (raising
  :class:`JobCancelled`) once it was asked to: ``job.cancel()``.  A job that was asked to stop and then ends with
  an exception, whatever it is, was cancelled.
- A newer job with the same ``key`` *supersedes* the older one, and ``runner.drop(key)`` supersedes without a
  replacement (another project was opened, a dialog was closed): a superseded job is asked to stop, never starts
  if it had not, and nothing it brings back is delivered.  ``runner.pending(key)`` says whether the newest job of
  ``key`` still has an answer to come.
- While the thread runs, Python's cyclic collector runs only in the GUI thread (:mod:`workbench.gui.worker_gc`):
  a collection in the worker could free Qt objects there.
- The thread ends when the queue is empty and starts again with the next job.  A runner that is deleted (with its
  view) waits for the job that is running, so no job outlives the view that asked for it: ask it to stop first.
"""

from __future__ import annotations

import collections
import functools
import itertools
import threading
from typing import Any, Callable, Hashable, Optional

from PySide6.QtCore import QObject, Qt, Signal

#: ``runner.drop()`` without a key: every job so far
ALL: Any = object()


class JobCancelled(Exception):
    """Raised inside a job by :meth:`Job.check` / :meth:`Job.report` once the job was asked to stop."""


def one_line(exc: BaseException) -> str:
    """An error as one line for the user: the message of the errors that explain themselves (a task's data error,
    a bad value, a missing file), the exception's name before any other's."""
    from workbench.schema.errors import WorkbenchError
    msg = str(exc) if isinstance(exc, (WorkbenchError, ValueError, OSError)) else f"{type(exc).__name__}: {exc}"
    return (msg.splitlines() or [type(exc).__name__])[0]


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (its name when it has none)."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class Job:
    """One call handed to a :class:`JobRunner`.  ``cancel()`` may be called from any thread; ``check()`` and
    ``report()`` are for the job itself, in the worker thread."""

    def __init__(self, number: int, fn: Callable[["Job"], Any], key: Hashable | None,
                 handlers: dict[str, Optional[Callable[..., Any]]], report: Callable[["Job", int, int], None]):
        self.number = number
        self.fn = fn
        self.key = key
        self.handlers = handlers
        self._report = report
        self._stop = threading.Event()
        self.dropped = False             # superseded: nothing it brings back is delivered
        self.answered = False            # its result, failure or cancellation has been delivered

    def __repr__(self) -> str:
        return f"<Job {self.number} {self.key!r}>"

    @property
    def cancelled(self) -> bool:
        """Whether the job was asked to stop."""
        return self._stop.is_set()

    def cancel(self) -> None:
        """Ask the job to stop at its next ``check()`` or ``report()``; its answer still comes (``cancelled``, or
        its result if it finished first)."""
        self._stop.set()

    def check(self) -> None:
        if self._stop.is_set():
            raise JobCancelled()

    def report(self, done: int, total: int) -> None:
        """Progress, delivered as the runner's ``progress`` signal; stops the job when it was asked to."""
        self.check()
        self._report(self, int(done), int(total))


class _Worker:
    """The runner's queue and thread: plain Python, so that a runner's C++ object being deleted can still wait for
    its thread (see :meth:`join`)."""

    def __init__(self, thread_name: str, execute: Callable[[Job], None]):
        self.thread_name = thread_name
        self.execute = execute
        self.lock = threading.Lock()
        self.queue: collections.deque[Job] = collections.deque()
        self.thread: Optional[threading.Thread] = None

    def put(self, job: Job, starting: Callable[[], Any]) -> None:
        """Queue ``job``; when no thread runs, call ``starting()`` and start one."""
        with self.lock:
            self.queue.append(job)
            if self.thread is not None:
                return
            self.thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            thread = self.thread
        starting()
        thread.start()

    def _run(self) -> None:
        # the jobs' model work runs below the window's priority, as training does (and so do the OpenMP threads
        # torch starts for this thread): the GUI thread gets a core the moment it wakes
        from workbench.core.threads import lower_thread_priority
        lower_thread_priority()
        while True:
            with self.lock:
                while self.queue and self.queue[0].dropped:
                    self.queue.popleft()          # superseded before it started: it never runs
                if not self.queue:
                    self.thread = None
                    return
                job = self.queue.popleft()
            self.execute(job)

    def idle(self) -> bool:
        with self.lock:
            return self.thread is None

    def join(self, timeout_s: float | None = None) -> bool:
        with self.lock:
            thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
            return not thread.is_alive()
        return True


class _Mailbox(QObject):
    """What the worker thread emits on.  A child of the runner, so it is still there while a runner being deleted
    waits for the job that runs (a QObject emits ``destroyed`` before it deletes its children)."""

    answer = Signal(object, str, object)     # job, kind, payload


def _wait_for(worker: _Worker, *_destroyed: Any) -> None:
    worker.join()


class JobRunner(QObject):
    """``JobRunner(name, parent)``: see the module docstring.  ``name`` is what holds the garbage collector
    (:meth:`workbench.gui.worker_gc.WorkerGcManager.holders`); the thread is named ``thread_name``
    (``seqwb-<name>`` by default); ``describe(exc)`` turns a failure into the line ``failed`` carries."""

    finished = Signal(object, object)        # job, result
    failed = Signal(object, str)             # job, one line
    cancelled = Signal(object)               # job
    progress = Signal(object, int, int)      # job, done, total

    def __init__(self, name: str, parent: QObject | None = None, *, thread_name: str = "",
                 describe: Callable[[BaseException], str] = one_line):
        super().__init__(parent)
        self.name = name
        self._numbers = itertools.count(1)
        self._latest: dict[Hashable, Job] = {}
        self._live: set[Job] = set()            # submitted, neither answered nor dropped
        self._mailbox = _Mailbox(self)
        self._mailbox.answer.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._worker = _Worker(thread_name or f"seqwb-{name}",
                               functools.partial(_execute, self._mailbox.answer, describe))
        # deleted with its view: the job still running finishes first (its answer goes nowhere)
        self.destroyed.connect(functools.partial(_wait_for, self._worker))

    # ---- the GUI thread's side --------------------------------------------------------------------------
    def submit(self, fn: Callable[[Job], Any], *, key: Hashable | None = None,
               on_result: Optional[Callable[[Any], Any]] = None, on_error: Optional[Callable[[str], Any]] = None,
               on_progress: Optional[Callable[[int, int], Any]] = None,
               on_cancelled: Optional[Callable[[], Any]] = None) -> Job:
        """Queue ``fn(job)``; a job with the same ``key`` supersedes the earlier one (see the module docstring)."""
        handlers = {"finished": on_result, "failed": on_error, "progress": on_progress, "cancelled": on_cancelled}
        job = Job(next(self._numbers), fn, key, handlers, functools.partial(_send_progress, self._mailbox.answer))
        if key is not None:
            self.drop(key)
            self._latest[key] = job
        self._live.add(job)
        self._worker.put(job, self._hold_collector)
        return job

    def _hold_collector(self) -> None:
        # before the thread can allocate: no automatic collection in the worker thread while it runs
        from workbench.gui.worker_gc import worker_gc
        worker_gc().hold_until(self.name, self._worker.idle)

    def drop(self, key: Hashable = ALL) -> None:
        """Supersede the jobs of ``key`` (every job, by default): asked to stop, never started if they had not
        been, and nothing they bring back is delivered."""
        for job in list(self._live):
            if key is ALL or job.key == key:
                job.dropped = True
                job.cancel()
                self._live.discard(job)
        if key is ALL:
            self._latest.clear()
        else:
            self._latest.pop(key, None)

    def cancel_all(self) -> None:
        """Ask every job to stop, delivering their answers as usual.  Touches no Qt object: safe to call while the
        runner's parent is being deleted."""
        for job in list(self._live):
            job.cancel()

    def pending(self, key: Hashable = ALL) -> bool:
        """Whether an answer is still to come: from the newest job of ``key``, or from any job."""
        if key is ALL:
            return bool(self._live)
        job = self._latest.get(key)
        return job is not None and job in self._live

    def busy(self) -> bool:
        """Whether the thread runs (jobs are queued or running, superseded or not)."""
        return not self._worker.idle()

    def wait(self, timeout_ms: int = 60000) -> bool:
        """Block until the thread has ended (tests, closing); False when it was still running at the timeout.
        Answers arrive afterwards, from the event loop."""
        return self._worker.join(timeout_ms / 1000)

    def stop(self) -> None:
        """Drop every job: the running one is asked to stop and the thread ends after it."""
        self.drop()

    def _deliver(self, job: Job, kind: str, payload: Any) -> None:
        if job.dropped or job.answered:
            return
        if kind == "progress":
            done, total = payload
            self.progress.emit(job, done, total)
        else:
            job.answered = True
            self._live.discard(job)
            if job.key is not None and self._latest.get(job.key) is job:
                del self._latest[job.key]
            if kind == "finished":
                self.finished.emit(job, payload)
            elif kind == "failed":
                self.failed.emit(job, payload)
            else:
                self.cancelled.emit(job)
        handler = job.handlers.get(kind)
        if handler is None:
            return
        if kind == "progress":
            handler(*payload)
        elif kind == "cancelled":
            handler()
        else:
            handler(payload)


# ---- the worker thread's side ---------------------------------------------------------------------------------

def _execute(answer: Any, describe: Callable[[BaseException], str], job: Job) -> None:
    try:
        job.check()
        result = job.fn(job)
    except Exception as exc:  # noqa: BLE001 - every failure is shown to the user, none kills the thread
        if isinstance(exc, JobCancelled) or job.cancelled:
            _send(answer, job, "cancelled", None)
        else:
            _send(answer, job, "failed", describe(exc))
    else:
        _send(answer, job, "finished", result)


def _send_progress(answer: Any, job: Job, done: int, total: int) -> None:
    _send(answer, job, "progress", (done, total))


def _send(answer: Any, job: Job, kind: str, payload: Any) -> None:
    try:
        answer.emit(job, kind, payload)
    except RuntimeError:     # the runner has gone while the job ran: nobody is waiting for the answer
        pass
