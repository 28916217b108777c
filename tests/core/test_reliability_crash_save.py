"""Crash during save (issues 8 and 19): processes saving a large project are killed with SIGKILL at random points,
100 times; the file on disk is always the old complete version or the new complete version, the backup is intact,
and the next open of the project leaves no temporary file behind.

A supervisor subprocess (it imports the project-file code but not torch, so that it can fork safely) forks one
saver per kill.  Each saver saves the two versions in turn, without end; the supervisor kills it after a random
delay of up to two save durations, reports where the kill landed (temp files left behind mean mid-save), and
waits for this test to check the files before the next kill.  ``SEQWB_FAULT_SCALE=full`` kills 300 savers of a
9.6 MB project (benchmarks/reliability.py); the normal run kills 100 savers of a 2.4 MB one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import make_subprocess_env
from tests.core.reliability_figures import count, record
from workbench.core.project_store import open_shared
from workbench.core.projectfile import load_project, read_manifest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork and SIGKILL")

KILLS = count(100, 300)
# a series of VALUES int64 steps and float64 values: 16 bytes a value (2.4 MB, or 9.6 MB at full scale)
VALUES = count(150_000, 600_000)

SUPERVISOR = textwrap.dedent('''
    import json, os, random, signal, sys, time
    import numpy as np
    from workbench.core.projectfile import save_project
    from workbench.core.graph import Graph
    from workbench.core.project import History, Project, Series, TaskConfig

    target, kills, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    assert "torch" not in sys.modules

    def version(tag, scale):
        history = History()
        run = history.new_run({"version": tag})
        # numpy arrays where the app keeps lists: the same bytes on disk, and little time spent before the
        # temporary file is opened, so that most kills land while a file is being written
        run.series["big"] = Series(step=np.arange(n, dtype=np.int64), value=np.arange(n, dtype=np.float64) * scale)
        return Project(name=f"version {tag}", graph=Graph(), task=TaskConfig("char-lm", {}), history=history,
                       notes=tag * 1000)

    old, new = version("A", 1.0), version("B", 2.0)
    save_project(old, target)          # the file ...
    save_project(old, target)          # ... and its backup, both complete
    scratch = target + ".timing.seqwb"
    t0 = time.perf_counter()
    save_project(new, scratch)
    duration = time.perf_counter() - t0
    os.remove(scratch)
    print(json.dumps({"ready": True, "save_seconds": duration}), flush=True)

    rng = random.Random(seed)
    folder = os.path.dirname(target) or "."
    for kill in range(kills):
        pid = os.fork()
        if pid == 0:  # the saver: B, A, B, ... (A, B, A, ... every other kill) until it is killed
            first, second = (new, old) if kill % 2 == 0 else (old, new)
            try:
                while True:
                    save_project(first, target)
                    save_project(second, target)
            finally:
                os._exit(1)
        delay = rng.uniform(0.0, 2.0 * duration)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        temps = sorted(f for f in os.listdir(folder) if f.startswith("."))
        print(json.dumps({"kill": kill, "delay": delay, "temps": temps}), flush=True)
        if sys.stdin.readline().strip() != "next":
            break
''')


def _version_of(path: Path) -> str:
    """Load ``path`` completely (every checksum verified) and say which version it is: "A" or "B"."""
    project = load_project(path)
    tag = project.history.runs[0].settings["version"]
    series = project.history.runs[0].series["big"]
    scale = {"A": 1.0, "B": 2.0}[tag]
    assert project.name == f"version {tag}" and project.notes == tag * 1000
    assert len(series.value) == VALUES and series.step[-1] == VALUES - 1
    assert series.value[-1] == (VALUES - 1) * scale and series.value[12345] == 12345 * scale
    manifest = read_manifest(path)
    assert set(manifest["members"]) >= {"project.json", "history.json", "history.safetensors"}
    return tag


def test_sigkill_during_save_leaves_old_or_new_file_and_intact_backup(tmp_path):
    target = tmp_path / "big.seqwb"
    backup = tmp_path / "big.seqwb.bak"
    proc = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(target), str(KILLS), str(VALUES), "8"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=make_subprocess_env())
    try:
        ready = json.loads(proc.stdout.readline() or "{}")
        assert ready.get("ready"), proc.stderr.read()
        assert target.stat().st_size > VALUES * 15
        outcomes = {"A": 0, "B": 0}
        mid_save = 0
        litter = 0
        for kill in range(KILLS):
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            report = json.loads(line)
            assert report["kill"] == kill
            outcomes[_version_of(target)] += 1
            assert _version_of(backup) in ("A", "B")
            if report["temps"]:
                mid_save += 1
                for name in report["temps"]:  # what a killed save leaves behind: never the file itself
                    assert name.startswith(".big.seqwb.") and name.endswith(".tmp")
            # the next open removes what the killed saver left (its pid is gone): no litter, nothing else touched
            open_shared(target)
            left = sorted(p.name for p in tmp_path.iterdir())
            litter += len(left) - 2
            assert left == ["big.seqwb", "big.seqwb.bak"], left
            proc.stdin.write("next\n")
            proc.stdin.flush()
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"\n{KILLS} kills: file was version A {outcomes['A']} times, version B {outcomes['B']} times; "
          f"{mid_save} kills landed while a temporary file existed (mid-save); backup intact every time")
    assert sum(outcomes.values()) == KILLS
    assert mid_save >= KILLS // 5  # the kills really did land in the middle of saves
    record("sigkill-during-save", group="Crash during save", times=KILLS,
           tried=f"SIGKILL of a process saving a {VALUES * 16 / 1e6:.1f} MB project (two versions in turn), at a "
                 f"random delay of 0 to 2 save durations; then the file and its backup loaded in full, and the "
                 f"project opened once",
           result=f"the file was always one complete version or the other (A {outcomes['A']} times, B "
                  f"{outcomes['B']} times), its backup too; the next open left no temporary file",
           version_a=outcomes["A"], version_b=outcomes["B"], mid_save=mid_save, litter_after_open=litter)
