"""Automatic threads follow the cores that other processes leave free (workbench.core.threads)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.helpers import small_project, with_train
from workbench.core import threads as th
from workbench.core.training.trainer import Trainer


class FakeMachine:
    """CPU readings of a 2-core machine where other processes keep ``others`` cores busy, and this one ``own``."""

    def __init__(self):
        self.t = 0.0
        self.busy = 0.0
        self.own = 0.0
        self.others = 0.0

    def advance(self, seconds: float, own: float = 1.0) -> None:
        self.t += seconds
        self.own += own * seconds
        self.busy += (own + self.others) * seconds

    def read(self) -> th.CpuTimes:
        return th.CpuTimes(machine_busy=self.busy, own=self.own, wall=self.t)


def test_the_free_cores_of_a_shared_machine():
    assert th.free_cores(2, 0.0) == 2
    assert th.free_cores(2, 0.3) == 2           # a little background work keeps both cores
    assert th.free_cores(2, 0.67) == 1          # a busy process squeezed by our two spinning threads
    assert th.free_cores(2, 1.0) == 1
    assert th.free_cores(2, 3.0) == 1           # never fewer than one
    assert th.free_cores(8, 2.9) == 5


def test_others_busy_subtracts_this_process():
    before = th.CpuTimes(machine_busy=10.0, own=4.0, wall=100.0)
    after = th.CpuTimes(machine_busy=13.0, own=6.0, wall=102.0)       # 3 busy seconds in 2 s, 2 of them ours
    assert th.others_busy(before, after) == pytest.approx(0.5)
    assert th.others_busy(after, after) == 0.0


def test_the_governor_backs_off_under_load_and_comes_back(monkeypatch):
    machine = FakeMachine()
    monkeypatch.setattr(th.time, "monotonic", lambda: machine.t)
    applied: list[int] = []
    gov = th.ThreadGovernor(2, applied.append, cores=2, read=machine.read, interval=5.0, first_look=1.0)
    assert gov.active and gov.current == 2
    machine.others = 0.7                                       # another process is busy from the start
    machine.advance(0.5, own=1.3)
    assert gov.tick() is None and applied == []                # no look before the first one is due
    machine.advance(0.6, own=1.3)
    assert gov.tick() == 1 and applied == [1]
    machine.advance(5.0, own=1.0)
    machine.others = 1.0
    assert gov.tick() is None and gov.current == 1             # still loaded: kept
    machine.others = 0.05                                      # it ended
    machine.advance(5.0, own=1.0)
    assert gov.tick() == 2 and applied == [1, 2]
    assert [threads for _, threads, _ in gov.changes] == [1, 2]


def test_the_governor_keeps_one_thread_and_machines_without_proc_stat_alone():
    assert not th.ThreadGovernor(1, lambda n: None, cores=2, read=lambda: th.CpuTimes(0, 0, 0)).active
    assert not th.ThreadGovernor(2, lambda n: None, cores=2, read=lambda: None).active


@pytest.mark.skipif(th.read_cpu_times() is None, reason="no /proc/stat here")
def test_a_busy_process_is_seen_on_this_machine():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        before = th.read_cpu_times()
        time.sleep(1.0)
        after = th.read_cpu_times()
    finally:
        busy.kill()
        busy.wait()
    assert th.others_busy(before, after) >= 0.6


def test_only_an_automatic_thread_count_is_governed(reg, monkeypatch):
    pinned = Trainer(with_train(small_project(reg), threads=1, steps=2), reg)
    pinned.setup()
    assert pinned.governor is None and pinned.cpu_threads == 1
    # a count the caller chose is kept, unless it asks to follow the load (the window, for threads = 0)
    chosen = Trainer(with_train(small_project(reg), threads=0, steps=2), reg, threads=2)
    chosen.setup()
    assert chosen.governor is None
    window = Trainer(with_train(small_project(reg), threads=0, steps=2), reg, threads=2, follow_load=True)
    window.setup()
    assert window.governor is not None or window.cpu_threads == 1     # (one core: nothing to follow)
    machine = FakeMachine()
    machine.others = 1.0
    monkeypatch.setattr(th, "read_cpu_times", machine.read)
    monkeypatch.setattr(th, "FIRST_LOOK_S", 0.0)
    monkeypatch.setattr("workbench.core.training.trainer.default_threads", lambda behind_window: 2)
    monkeypatch.setattr(th, "cpu_count", lambda: 2)
    auto = Trainer(with_train(small_project(reg), threads=0, steps=3), reg)
    auto.setup()
    if auto.governor is None:
        pytest.skip("one core: nothing to govern")
    events = []

    class Keep:
        def on_step_end(self, trainer, ev):
            machine.advance(1.0)
            events.append(ev)

    auto.callbacks.append(Keep())
    machine.advance(1.0)
    auto.fit(final_eval=False)
    assert [ev.threads for ev in events] == [1, 1, 1]


def test_the_cli_says_the_thread_count_of_each_step_and_when_it_changes(reg, tmp_path, capsys, monkeypatch):
    import json

    from workbench import cli
    from workbench.core.projectfile import save_project
    path = tmp_path / "p.seqwb"
    save_project(with_train(small_project(reg), threads=1, steps=2, log_every=1), path)
    assert cli.main(["train", str(path), "--json"]) == 0
    steps = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"event": "step"' in line]
    assert [s["threads"] for s in steps] == [1, 1]
    # automatic threads on a machine where another process keeps a core busy: the change is said once
    machine = FakeMachine()
    machine.others = 1.0
    monkeypatch.setattr(th, "read_cpu_times", machine.read)
    monkeypatch.setattr(th, "INTERVAL_S", 0.0)
    monkeypatch.setattr("workbench.core.training.trainer.default_threads", lambda behind_window: 2)
    monkeypatch.setattr(th, "cpu_count", lambda: 2)
    monkeypatch.setattr(th.time, "monotonic", lambda: machine.t)
    machine.advance(2.0)
    save_project(with_train(small_project(reg), threads=0, steps=3, log_every=1), path)
    real_read = machine.read

    def read():
        machine.advance(1.0)
        return real_read()

    monkeypatch.setattr(th, "read_cpu_times", read)
    assert cli.main(["train", str(path)]) == 0
    err = capsys.readouterr().err
    assert err.count("training on 1 thread now") == 1, err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_a_lowered_thread_and_the_threads_it_starts_run_below_the_others():
    """Behind the window the training thread lowers its own priority before torch starts its OpenMP pool, which
    inherits it; the main (GUI) thread keeps its own."""
    import threading

    import torch
    seen: dict[str, object] = {}
    main_before = th.thread_nice()

    def worker():
        before = th.thread_nice()
        seen["lowered"] = th.lower_thread_priority()
        seen["own"] = (before, th.thread_nice())
        child = threading.Thread(target=lambda: seen.__setitem__("child", th.thread_nice()))
        child.start()
        child.join()
        torch.set_num_threads(2)
        torch.randn(300, 300) @ torch.randn(300, 300)     # OpenMP's pool for this thread starts here

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    before, after = seen["own"]
    assert seen["lowered"] is True and after == min(19, before + th.BEHIND_WINDOW_NICE)
    assert seen["child"] == after                      # inherited by what it starts
    assert th.thread_nice() == main_before             # the calling (GUI) thread is untouched
    assert th.lower_thread_priority(0) is False         # nothing to do


def test_lowering_is_linux_only(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert th.can_lower_priority() is False and th.lower_thread_priority() is False
