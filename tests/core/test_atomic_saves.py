"""Atomic saves (issue 7): the hidden temporary file a killed save leaves behind is removed by a later save of the
same file once it is stale, live ones are kept (project files and ``workbench.atomic.atomic_write`` alike); and
what atomic_write creates gets the permissions of any new file.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.core.test_projectfile import make_project
from workbench import atomic
from workbench.core import projectfile as pf


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def age(path: Path, seconds: float) -> Path:
    path.write_bytes(b"partial")
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_a_killed_saves_temporary_file_is_removed_by_the_next_save(tmp_path: Path) -> None:
    target = tmp_path / "p.seqwb"
    # a real saver process that dies (no clean-up: os._exit) after creating its temporary file, as a kill would
    code = ("import os, sys; from pathlib import Path; from workbench.atomic import create_temp; "
            "tmp, fd = create_temp(Path(sys.argv[1]), 'p.seqwb', '.tmp'); os.write(fd, b'PK half'); "
            "print(tmp.name, flush=True); os._exit(9)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert out.returncode == 9, out.stderr
    leftover = tmp_path / out.stdout.strip()
    assert leftover.exists() and leftover.name.startswith(".p.seqwb.")
    pf.save_project(make_project(), target)
    assert leftover.exists()                   # just written: it might be a writer on another machine
    age(leftover, atomic.DEAD_WRITER_TEMP_SECONDS + 5)
    pf.save_project(make_project(), target)
    assert not leftover.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.seqwb", "p.seqwb.bak"]


def test_only_stale_temporaries_of_the_same_target_are_removed(tmp_path: Path) -> None:
    dead, live = dead_pid(), os.getppid()
    grace, stale = atomic.DEAD_WRITER_TEMP_SECONDS + 5, atomic.STALE_TEMP_SECONDS + 5
    removed = [
        age(tmp_path / f".p.seqwb.{dead}.0123456789ab.tmp", grace),        # its writer is gone
        age(tmp_path / f".p.seqwb.{dead}.0123456789ab.bak.tmp", grace),    # the backup's temporary name
        age(tmp_path / ".p.seqwb.0123456789ab.tmp", stale),                # older name without a pid, long idle
        age(tmp_path / f".p.seqwb.{live}.0123456789ab.tmp", stale),        # a live pid but untouched for ages
    ]
    kept = [
        age(tmp_path / f".p.seqwb.{dead}.abcdefabcdef.tmp", 1),            # just written (another machine?)
        age(tmp_path / f".p.seqwb.{live}.abcdefabcdef.tmp", grace),        # a save in progress elsewhere
        age(tmp_path / f".p.seqwb.{os.getpid()}.aaaaaaaaaaaa.tmp", grace),  # one of this process's own saves
        age(tmp_path / ".p.seqwb.abcdefabcdef.tmp", grace),               # no pid and not old enough
        age(tmp_path / f".q.seqwb.{dead}.0123456789ab.tmp", stale),        # another file's
        age(tmp_path / f".p.seqwb.{dead}.notes.txt", stale),               # not a temporary file
        age(tmp_path / "p.seqwb.tmp", stale),                              # not hidden: the user's own file
    ]
    pf.save_project(make_project(checkpoint=False), tmp_path / "p.seqwb")
    assert not any(p.exists() for p in removed)
    assert all(p.exists() for p in kept)


def test_atomic_write_cleans_up_after_killed_writes_too(tmp_path: Path) -> None:
    target = tmp_path / "settings.json"
    leftover = age(tmp_path / f".settings.json.{dead_pid()}.k3_x9q2a.tmp", atomic.DEAD_WRITER_TEMP_SECONDS + 5)
    fresh = age(tmp_path / f".settings.json.{os.getppid()}.abcdefgh.tmp", 1)
    with atomic.atomic_write(target, "w") as fh:
        fh.write("{}")
    assert target.read_text() == "{}" and not leftover.exists() and fresh.exists()
    assert atomic.remove_stale_temps(tmp_path, "settings.json", now=time.time() + atomic.STALE_TEMP_SECONDS + 5) \
        == [fresh]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_atomic_write_gives_new_files_the_umask_default_and_keeps_a_replaced_files_mode(tmp_path: Path) -> None:
    """A tree, a recording or settings written by the CLI are readable like any new file (tempfile.mkstemp would
    leave them 0600), and a file the user made private stays private when it is written again."""
    old = os.umask(0o022)
    try:
        target = tmp_path / "tree.json"
        with atomic.atomic_write(target, "w") as fh:
            fh.write("{}")
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
        target.chmod(0o600)
        with atomic.atomic_write(target, "w") as fh:
            fh.write("[]")
        assert target.read_text() == "[]" and stat.S_IMODE(target.stat().st_mode) == 0o600
        os.umask(0o077)
        private = tmp_path / "acts.npz"
        with atomic.atomic_write(private) as fh:
            fh.write(b"x")
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
