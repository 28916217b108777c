"""Python's cyclic collector stays off (and runs in the GUI thread only) while any worker runs: training and the
views' job runners (the decoder, the hidden-unit recorder, the device probe) share one reference-counted manager
(pytest-qt, offscreen)."""

from __future__ import annotations

import gc
import threading

import pytest

pytest.importorskip("pytestqt")

from tests.helpers import small_project  # noqa: E402
from workbench.gui.document import ProjectDocument  # noqa: E402
from workbench.gui.inspect_decode import DecodeInspector  # noqa: E402
from workbench.gui.run_bridge import GuiThreadCollector  # noqa: E402
from workbench.gui.worker_gc import WorkerGcManager, worker_gc  # noqa: E402



@pytest.fixture(autouse=True)
def idle_manager(qtbot):
    """The process's manager, once the workers of earlier tests (an autosave, say) have let go of it: its timer
    only ticks while the event loop runs, which it does not between tests."""
    manager = worker_gc()
    try:
        qtbot.waitUntil(lambda: not manager.active, timeout=10000)
    except qtbot.TimeoutError:
        raise AssertionError(f"a worker is still holding: {manager.holders()}") from None
    assert gc.isenabled(), f"a worker is still holding: {manager.holders()}"
    yield manager
    qtbot.waitUntil(lambda: not manager.active, timeout=10000)
    assert gc.isenabled()


def test_holders_are_counted_and_idle_holds_end_after_two_idle_ticks(qapp):
    manager = WorkerGcManager()
    assert gc.isenabled()
    a = manager.acquire("a")
    b = manager.acquire("b")
    assert not gc.isenabled() and manager.active and manager.holders() == ["a", "b"]
    manager.release(a)
    assert not gc.isenabled()                       # b still runs
    busy = {"v": True}
    manager.hold_until("pool", lambda: not busy["v"])
    manager.release(b)
    manager.release(b)                              # twice is harmless
    assert not gc.isenabled() and manager.holders() == ["pool"]
    manager.tick()
    assert not gc.isenabled()                       # still busy
    busy["v"] = False
    manager.tick()
    assert not gc.isenabled()                       # idle once: the thread may still be finishing its last lines
    manager.tick()
    assert gc.isenabled() and not manager.active and manager.holders() == []

    def broken() -> bool:
        raise RuntimeError("Internal C++ object already deleted")

    manager.hold_until("gone", broken)              # an owner that was deleted counts as idle
    manager.tick()
    manager.tick()
    assert gc.isenabled() and not manager.active


def test_a_collection_that_is_due_runs_in_the_gui_thread(qapp):
    manager = WorkerGcManager()
    token = manager.acquire("x")
    junk = []
    for _ in range(gc.get_threshold()[0] + 10):    # container allocations past the generation-0 threshold
        junk.append([])
    assert gc.get_count()[0] > gc.get_threshold()[0]
    manager.tick()
    assert sum(manager.collections) == 1 and gc.get_count()[0] < gc.get_threshold()[0]
    manager.release(token)
    assert gc.isenabled()


def decoding_view(reg, qtbot):
    view = DecodeInspector(ProjectDocument(reg, small_project(reg, hidden_size=8, embed_size=4)), reg)
    qtbot.addWidget(view)
    return view


def test_decoder_jobs_run_with_the_collector_off_and_a_run_ending_does_not_turn_it_on(qtbot, reg, idle_manager):
    runner = decoding_view(reg, qtbot).jobs
    go = threading.Event()
    seen = {}

    def job(_job):
        seen["enabled_in_worker"] = gc.isenabled()
        seen["thread"] = threading.current_thread().name
        go.wait(30)
        return "done"

    answers = []
    runner.finished.connect(lambda j, result: answers.append(result))
    runner.submit(job)
    qtbot.waitUntil(lambda: "thread" in seen, timeout=30000)
    assert seen == {"enabled_in_worker": False, "thread": "seqwb-decode"}
    assert not gc.isenabled() and "decoder" in idle_manager.holders()

    # a training run starts and ends while the decoder still works: collection stays off
    collector = GuiThreadCollector()
    collector.start()
    assert collector.active and "training run" in idle_manager.holders()
    collector.stop()
    assert not collector.active and not gc.isenabled()

    go.set()
    qtbot.waitUntil(lambda: answers == ["done"], timeout=10000)
    qtbot.waitUntil(gc.isenabled, timeout=5000)     # back to automatic once the thread is idle
    assert not idle_manager.active


def test_a_decoder_stopped_with_jobs_queued_lets_go_of_the_collector(qtbot, reg, idle_manager):
    """A view closed while jobs are queued stops its worker: the jobs behind the running one never run, and the
    hold must still end (it used to wait for them forever, leaving automatic collection off for the session)."""
    runner = decoding_view(reg, qtbot).jobs
    go = threading.Event()
    ran = []
    runner.submit(lambda _job: go.wait(30))
    runner.submit(lambda _job: ran.append("queued"))
    runner.stop()
    assert not gc.isenabled() and "decoder" in idle_manager.holders()
    go.set()
    qtbot.waitUntil(lambda: not runner.busy(), timeout=10000)
    qtbot.waitUntil(gc.isenabled, timeout=5000)
    assert not idle_manager.active and ran == []
    # the runner starts a fresh thread for the next request
    answers = []
    runner.finished.connect(lambda j, result: answers.append(result))
    runner.submit(lambda _job: "again")
    qtbot.waitUntil(lambda: answers == ["again"], timeout=10000)
    qtbot.waitUntil(gc.isenabled, timeout=5000)


def test_hidden_unit_recorder_runs_with_the_collector_off(qtbot, reg, idle_manager):
    from workbench.gui.inspect_units import HiddenUnitsPanel
    doc = ProjectDocument(reg, small_project(reg, hidden_size=8, embed_size=4))
    panel = HiddenUnitsPanel(doc, reg)
    qtbot.addWidget(panel)
    seen = {}

    def record(*_args, **_kwargs):
        seen["enabled_in_worker"] = gc.isenabled()
        seen["thread"] = threading.current_thread() is not threading.main_thread()
        raise ValueError("stop here: only the thread matters")

    panel.recorder.record = record
    with qtbot.waitSignal(panel.recordingFailed, timeout=30000):
        assert panel.record("text", "abc def")
    assert seen == {"enabled_in_worker": False, "thread": True}
    qtbot.waitUntil(gc.isenabled, timeout=5000)
    assert not idle_manager.active


def test_the_device_probe_thread_runs_with_the_collector_off(qtbot, idle_manager):
    from workbench.gui.device_probe import DeviceProbe
    probe = DeviceProbe()
    with qtbot.waitSignal(probe.found, timeout=60000):
        probe.start()
        assert "device probe" in idle_manager.holders() and not gc.isenabled()
    qtbot.waitUntil(gc.isenabled, timeout=5000)
