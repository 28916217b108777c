"""Two writers on one project file (issue 19, point 1): the lock beside the project names its holder, a second
``seqwb train`` is refused naming it, a lock left by a dead process is taken over, and a save that finds the file
changed since it was read merges that version in: no run is ever dropped.  The window against the command line
is tests/gui/test_shared_file.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import make_subprocess_env
from tests.core.reliability_figures import record
from tests.helpers import small_project, with_train, write_corpus
from workbench import cli
from workbench.core.project import Checkpoint
from workbench.core.project_merge import merge_projects
from workbench.core.project_store import FileChangedError, fingerprint, open_shared, save_shared
from workbench.core.projectfile import load_project, save_project
from workbench.core.projectfile.lock import (LockHolder, ProjectLock, ProjectLockedError, lock_path, read_holder,
                                             remove_stale_lock)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes and signals")

FAST = ["--set", "threads=1", "--set", "log_every=1"]


def _project(folder: Path, reg, **settings) -> Path:
    write_corpus(folder)
    project = with_train(small_project(reg, **{"task.corpus": "corpus.txt", **settings}), threads=1)
    path = folder / "c.seqwb"
    save_project(project, path)
    return path


def _holder_process(path: Path, program: str = "seqwb train") -> subprocess.Popen:
    """Another process that takes the project's lock and keeps it until it is killed."""
    code = textwrap.dedent("""
        import sys, time
        from workbench.core.projectfile.lock import ProjectLock
        lock = ProjectLock(sys.argv[1], sys.argv[2]); lock.acquire()
        print("locked", flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), program], stdout=subprocess.PIPE, text=True,
                            env=make_subprocess_env())
    assert proc.stdout.readline().strip() == "locked"
    return proc


# ---- the lock ----------------------------------------------------------------------------------------------------

def test_the_lock_names_its_holder_and_refuses_a_second_writer(tmp_path):
    path = tmp_path / "c.seqwb"
    path.write_bytes(b"")
    holder = _holder_process(path)
    try:
        assert lock_path(path) == tmp_path / ".c.seqwb.lock"
        who = read_holder(path)
        assert (who.pid, who.host, who.program) == (holder.pid, socket.gethostname(), "seqwb train")
        with pytest.raises(ProjectLockedError) as info:
            ProjectLock(path, "seqwb train").acquire()
        assert str(info.value).startswith(f"{path} is in use: seqwb train (pid {holder.pid} on "
                                          f"{socket.gethostname()}")
        assert info.value.holder == who
    finally:
        holder.kill()
        holder.wait()
    # the operating system dropped the dead holder's lock: its file is still there, naming it, and is taken over
    assert lock_path(path).exists()
    lock = ProjectLock(path, "seqwb train")
    note = lock.acquire()
    assert note == (f"took over the lock of c.seqwb left by {who.describe()}, which is no longer running")
    assert read_holder(path).pid == os.getpid()
    lock.release()
    assert not lock_path(path).exists() and read_holder(path) is None


def test_opening_removes_a_lock_whose_holder_died(tmp_path):
    path = tmp_path / "c.seqwb"
    path.write_bytes(b"")
    holder = _holder_process(path, "Sequence Workbench window")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    gone = remove_stale_lock(path)
    assert gone is not None and gone.pid == holder.pid and not lock_path(path).exists()


def test_without_operating_system_locks_the_text_decides(tmp_path, monkeypatch):
    """A share that passes no locks on: a holder on this machine whose process is gone is stale; one on another
    machine is stale only after HEARTBEAT_STALE_SECONDS without a refresh."""
    from workbench.core.projectfile import lock as lockmod
    monkeypatch.setattr(lockmod, "_try_lock", lambda fd: None)
    path = tmp_path / "c.seqwb"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    lock_path(path).write_text(json.dumps(LockHolder(int(dead), socket.gethostname(), "seqwb train").to_json()))
    lock = ProjectLock(path, "seqwb train")
    assert "which is no longer running" in lock.acquire()
    lock.release()
    elsewhere = LockHolder(1, "another-machine", "seqwb train").to_json()
    lock_path(path).write_text(json.dumps(elsewhere))
    with pytest.raises(ProjectLockedError, match="on another-machine"):
        ProjectLock(path, "x").acquire()
    old = time.time() - lockmod.HEARTBEAT_STALE_SECONDS - 5
    os.utime(lock_path(path), (old, old))
    lock = ProjectLock(path, "x")
    assert "another-machine" in lock.acquire()
    lock.release()


# ---- merging -----------------------------------------------------------------------------------------------------

def _with_checkpoint(project, run, step):
    project.checkpoint = Checkpoint(weights={"w": step}, graph_hash=project.graph.content_hash(), step=step,
                                    trainer_state={"run_id": run.id})


def test_merge_keeps_every_run_and_the_newer_checkpoint(reg):
    base = small_project(reg)
    first = base.history.new_run({"who": "base"})
    first.started = "2026-01-01T10:00:00+00:00"
    for s in (1, 2, 3):
        first.log("train/loss", s, 1.0 / s)
    _with_checkpoint(base, first, 3)
    from workbench.core.runs import snapshot_project
    mine, theirs = snapshot_project(base), snapshot_project(base)
    # mine: continued run-1 to step 5, and the design changed
    mine.history.runs[-1].log("train/loss", 4, 0.2)
    mine.history.runs[-1].log("train/loss", 5, 0.1)
    _with_checkpoint(mine, mine.history.runs[-1], 5)
    mine.notes = "edited in the window"
    # theirs: another run-2 started later, with its checkpoint
    other = theirs.history.new_run({"who": "cli"})
    other.started = "2026-01-01T11:00:00+00:00"
    other.log("train/loss", 1, 3.0)
    _with_checkpoint(theirs, other, 1)
    result = merge_projects(mine, theirs)
    assert [(r.id, r.settings.get("who")) for r in mine.history.runs] == [("run-1", "base"), ("run-2", "cli")]
    assert mine.history.runs[0].series["train/loss"].step == [1, 2, 3, 4, 5]   # mine went further: kept
    assert result.added == ["run-2"] and result.checkpoint_from_theirs
    assert mine.checkpoint.trainer_state["run_id"] == "run-2" and mine.notes == "edited in the window"


def test_two_runs_with_the_same_id_are_both_kept(reg):
    base = small_project(reg)
    from workbench.core.runs import snapshot_project
    mine, theirs = snapshot_project(base), snapshot_project(base)
    a = mine.history.new_run({"who": "a"})
    a.started = "2026-01-01T10:00:00+00:00"
    a.log("train/loss", 1, 1.0)
    b = theirs.history.new_run({"who": "b"})
    b.started = "2026-01-01T10:00:05+00:00"
    b.log("train/loss", 1, 2.0)
    _with_checkpoint(theirs, b, 1)
    result = merge_projects(mine, theirs)
    assert [(r.id, r.settings["who"]) for r in mine.history.runs] == [("run-1", "a"), ("run-2", "b")]
    assert result.renamed == [("run-1", "run-2")]
    assert mine.checkpoint.trainer_state["run_id"] == "run-2"       # the checkpoint follows its run's new id


def test_a_save_merges_a_version_saved_meanwhile_and_can_refuse_instead(tmp_path, reg):
    path = _project(tmp_path, reg)
    mine = open_shared(path, reg)
    theirs = open_shared(path, reg)
    theirs.project.history.new_run({"who": "other writer"}).log("train/loss", 1, 2.0)
    save_shared(theirs.project, path, known=theirs.fingerprint, registry=reg)
    mine.project.notes = "mine"
    mine.project.history.new_run({"who": "me"}).log("train/loss", 1, 1.0)
    with pytest.raises(FileChangedError):
        save_shared(mine.project, path, known=mine.fingerprint, on_change="raise", registry=reg)
    saved = save_shared(mine.project, path, known=mine.fingerprint, registry=reg)
    back = load_project(path)
    assert sorted(r.settings["who"] for r in back.history.runs) == ["me", "other writer"]
    assert back.notes == "mine" and saved.merge is not None and saved.fingerprint == fingerprint(path)
    assert "merged: kept run-" in saved.notes[0]


def test_a_save_waits_for_nobody_it_refuses_while_another_process_writes(tmp_path, reg):
    path = _project(tmp_path, reg)
    before = path.read_bytes()
    opened = open_shared(path, reg)
    holder = _holder_process(path)
    try:
        with pytest.raises(ProjectLockedError, match=f"pid {holder.pid}"):
            save_shared(opened.project, path, known=opened.fingerprint, registry=reg)
    finally:
        holder.kill()
        holder.wait()
    assert path.read_bytes() == before


# ---- two seqwb train processes -----------------------------------------------------------------------------------

def _train(path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "workbench", "train", str(path), *args, *FAST],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=make_subprocess_env(),
                            cwd=path.parent)


def test_a_second_seqwb_train_is_refused_naming_the_first_and_no_run_is_lost(tmp_path, reg):
    """As a new user would: train, and half a second later train the same file with --new-run in a second
    terminal.  The second is refused before it reads anything, naming the first; after the first has finished,
    the second trains; the file holds both runs."""
    path = _project(tmp_path, reg, hidden_size=128, batch_size=16, chunk_len=64)
    first = _train(path, "--steps", "100000", "--json")
    try:
        assert json.loads(first.stdout.readline())["event"] == "step"       # training: the lock is held
        second = subprocess.run([sys.executable, "-m", "workbench", "train", str(path), "--steps", "3", "--new-run",
                                 *FAST], capture_output=True, text=True, env=make_subprocess_env(), timeout=300)
        assert second.returncode == 1, second.stderr
        line = second.stderr.strip().splitlines()[-1]
        assert line.startswith(f"seqwb: error: {path} is in use: seqwb train (pid {first.pid} on "
                               f"{socket.gethostname()}"), line
        assert "nothing was trained or written" in line
        first.send_signal(signal.SIGINT)                  # Ctrl-C: the first stops after its step and saves
        out, err = first.communicate(timeout=300)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert not lock_path(path).exists()
    after_first = load_project(path, weights=False)
    assert [r.id for r in after_first.history.runs] == ["run-1"]
    again = subprocess.run([sys.executable, "-m", "workbench", "train", str(path), "--steps", "3", "--new-run",
                            *FAST], capture_output=True, text=True, env=make_subprocess_env(), timeout=300)
    assert again.returncode == 0, again.stderr
    runs = load_project(path, weights=False).history.runs
    assert [r.id for r in runs] == ["run-1", "run-2"]
    assert runs[0].series["train/loss"].step == after_first.history.runs[0].series["train/loss"].step
    record("two-cli-writers", group="Two writers", times=1,
           tried="seqwb train FILE, and while it trains seqwb train FILE --new-run (a second process)",
           result="the second is refused before it reads anything, naming the first (seqwb train, pid, host, "
                  "since); after the first finished it trains; the file holds both runs")


def test_a_lock_left_by_a_killed_seqwb_train_is_taken_over(tmp_path, reg):
    path = _project(tmp_path, reg)
    first = _train(path, "--steps", "100000", "--json")
    assert json.loads(first.stdout.readline())["event"] == "step"
    first.kill()                                          # SIGKILL: no clean-up at all
    first.wait()
    assert read_holder(path) is None and lock_path(path).exists()
    again = subprocess.run([sys.executable, "-m", "workbench", "train", str(path), "--steps", "2", *FAST],
                           capture_output=True, text=True, env=make_subprocess_env(), timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"seqwb train (pid {first.pid} on {socket.gethostname()}" in again.stderr
    assert "which is no longer running" in again.stderr
    assert not lock_path(path).exists()
    record("stale-lock", group="Two writers", times=1,
           tried="seqwb train killed with SIGKILL while it held the lock, then seqwb train again",
           result="the lock of the dead process is taken over with a note naming it; the run trains and saves")


def test_a_read_only_project_is_not_trained_and_not_replaced(tmp_path, reg):
    path = _project(tmp_path, reg)
    before = path.read_bytes()
    path.chmod(0o444)
    try:
        assert cli.main(["train", str(path), "--steps", "2", *FAST]) == 1
    finally:
        path.chmod(0o644)
    assert path.read_bytes() == before and not lock_path(path).exists()
