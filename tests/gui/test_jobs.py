"""The job runner the views share: answers on the GUI thread, progress, cancelling, superseded jobs dropped, and a
runner deleted with its view waiting for the job that runs (pytest-qt, offscreen)."""

from __future__ import annotations

import sys
import threading

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QCoreApplication, QEvent, QObject  # noqa: E402

from workbench.gui.jobs import JobCancelled, JobRunner, first_line, one_line  # noqa: E402
from workbench.gui.worker_gc import worker_gc  # noqa: E402


@pytest.fixture
def runner(qtbot):
    owner = QObject()
    jobs = JobRunner("test jobs", owner)
    yield jobs
    jobs.stop()
    jobs.wait(10000)
    qtbot.waitUntil(lambda: "test jobs" not in worker_gc().holders(), timeout=10000)


def test_results_failures_and_progress_come_back_on_the_gui_thread(runner, qtbot):
    gui = threading.current_thread()
    seen = []

    def count(job):
        assert threading.current_thread() is not gui and threading.current_thread().name == "seqwb-test jobs"
        for i in range(3):
            job.report(i + 1, 3)
        return "counted"

    runner.submit(count, on_progress=lambda done, total: seen.append(("progress", done, total,
                                                                     threading.current_thread() is gui)),
                  on_result=lambda r: seen.append(("result", r, threading.current_thread() is gui)))
    failures = []
    runner.failed.connect(lambda job, message: failures.append((job.number, message)))
    failed = runner.submit(lambda _job: int("x"), on_error=lambda m: seen.append(("error", m)))
    assert runner.pending() and "test jobs" in worker_gc().holders()
    qtbot.waitUntil(lambda: not runner.pending(), timeout=10000)
    assert seen == [("progress", 1, 3, True), ("progress", 2, 3, True), ("progress", 3, 3, True),
                    ("result", "counted", True), ("error", "invalid literal for int() with base 10: 'x'")]
    assert failures == [(failed.number, "invalid literal for int() with base 10: 'x'")]
    assert one_line(KeyError("k")) == "KeyError: 'k'" and first_line(RuntimeError("a\nb")) == "a"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_jobs_run_below_the_windows_priority(runner, qtbot):
    """A job's model work (evaluation, recording, decoding) gives the GUI thread a core the moment it wakes."""
    from workbench.core.threads import BEHIND_WINDOW_NICE, thread_nice
    got = []
    runner.submit(lambda _job: thread_nice(), on_result=got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=10000)
    assert got == [min(19, thread_nice() + BEHIND_WINDOW_NICE)]


def test_a_cancelled_job_stops_at_its_next_check_and_says_so(runner, qtbot):
    started, go = threading.Event(), threading.Event()
    answers = []

    def long(job):
        started.set()
        go.wait(10)
        job.report(1, 100)
        return "finished anyway"

    job = runner.submit(long, on_result=answers.append, on_cancelled=lambda: answers.append("cancelled"))
    assert started.wait(10)
    job.cancel()
    go.set()
    qtbot.waitUntil(lambda: answers == ["cancelled"], timeout=10000)
    assert job.cancelled and job.answered and not runner.pending()
    with pytest.raises(JobCancelled):
        job.check()


def test_a_newer_job_of_the_same_key_supersedes_the_older_and_drop_forgets_them(runner, qtbot):
    go = threading.Event()
    ran, answers = [], []
    runner.submit(lambda _job: go.wait(10))                     # keeps the thread busy while the rest queue up
    first = runner.submit(lambda _job: ran.append("first") or "first", key="decode", on_result=answers.append)
    second = runner.submit(lambda _job: ran.append("second") or "second", key="decode", on_result=answers.append)
    other = runner.submit(lambda _job: ran.append("other") or "other", key="attention", on_result=answers.append)
    assert first.dropped and first.cancelled and not second.dropped
    assert runner.pending("decode") and runner.pending("attention")
    runner.drop("attention")
    assert other.dropped and not runner.pending("attention") and runner.pending("decode")
    go.set()
    qtbot.waitUntil(lambda: not runner.pending(), timeout=10000)
    runner.wait(10000)
    qtbot.wait(20)
    assert ran == ["second"] and answers == ["second"]       # the superseded jobs never started


def test_a_runner_deleted_with_its_view_waits_for_the_running_job(qtbot):
    owner = QObject()
    jobs = JobRunner("deleted view", owner)
    started, ended = threading.Event(), threading.Event()

    def job(_job):
        started.set()
        threading.Event().wait(0.3)
        ended.set()
        return "nobody listens"

    jobs.submit(job)
    assert started.wait(10)
    owner.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)   # deleted now, as its view is
    assert ended.is_set()
    qtbot.wait(20)                   # the answer goes nowhere, and nothing is raised into Qt
    qtbot.waitUntil(lambda: "deleted view" not in worker_gc().holders(), timeout=10000)
