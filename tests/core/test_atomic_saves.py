"""Atomic saves (issues 7 and 19): the hidden temporary file a killed save leaves behind (its name carries the file,
the writer's pid and the machine) is removed by the next save or open as soon as its writer is gone; live ones
and other machines' recent ones are kept (project files and ``workbench.atomic.atomic_write`` alike); and what
atomic_write creates gets the permissions of any new file.
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


def killed_saver(folder: Path, name: str = "p.seqwb") -> Path:
    """The temporary file of a real saver process that died (no clean-up: os._exit) after creating it, as a kill
    would leave it."""
    code = ("import os, sys; from pathlib import Path; from workbench.atomic import create_temp; "
            "tmp, fd = create_temp(Path(sys.argv[1]), sys.argv[2], '.tmp'); os.write(fd, b'PK half'); "
            "print(tmp.name, flush=True); os._exit(9)")
    out = subprocess.run([sys.executable, "-c", code, str(folder), name], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert out.returncode == 9, out.stderr
    leftover = folder / out.stdout.strip()
    assert leftover.exists()
    return leftover


def test_temporary_names_carry_the_file_the_pid_and_the_machine(tmp_path: Path) -> None:
    name = atomic.temp_name(tmp_path, "p.seqwb", ".tmp").name
    stem, pid, tag_and_random, suffix = name[1:].rsplit(".", 3)
    assert (stem, pid, suffix) == ("p.seqwb", str(os.getpid()), "tmp") and name.startswith(".")
    assert tag_and_random.startswith(atomic.host_tag() + "-")


def test_a_killed_saves_temporary_file_is_removed_by_the_next_save_at_once(tmp_path: Path) -> None:
    leftover = killed_saver(tmp_path)
    assert leftover.name.startswith(".p.seqwb.") and f".{atomic.host_tag()}-" in leftover.name
    pf.save_project(make_project(), tmp_path / "p.seqwb")
    assert not leftover.exists()          # its writer ran here and is gone: nothing will ever finish it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.seqwb"]


def test_opening_a_project_removes_the_leftovers_of_dead_writers(tmp_path: Path) -> None:
    """Opening (not only saving) tidies: a project opened but never saved again keeps no litter, and neither does
    a folder whose project was deleted (another project of the folder is opened)."""
    from workbench.core.project_store import open_shared
    target = tmp_path / "p.seqwb"
    pf.save_project(make_project(), target)
    mine, of_a_deleted_project = killed_saver(tmp_path), killed_saver(tmp_path, "gone.seqwb")
    live = age(tmp_path / f".p.seqwb.{os.getppid()}.{atomic.host_tag()}-0123456789ab.tmp", 1)
    before = target.read_bytes()
    opened = open_shared(target)
    assert not mine.exists() and not of_a_deleted_project.exists() and live.exists()
    assert sorted(p.name for p in opened.tidied.temps) == sorted([mine.name, of_a_deleted_project.name])
    assert target.read_bytes() == before
    assert opened.tidied.notes() == [f"removed 2 temporary files that interrupted saves left in {tmp_path}"]


def test_which_temporaries_are_removed(tmp_path: Path) -> None:
    dead, live, here = dead_pid(), os.getppid(), atomic.host_tag()
    other = "0" * 6 if here != "0" * 6 else "1" * 6
    grace, stale = atomic.DEAD_WRITER_TEMP_SECONDS + 5, atomic.STALE_TEMP_SECONDS + 5
    removed = [
        age(tmp_path / f".p.seqwb.{dead}.{here}-0123456789ab.tmp", 0),         # written here, writer gone: at once
        age(tmp_path / f".p.seqwb.{dead}.{here}-0123456789ab.bak.tmp", 0),     # the backup's temporary name
        age(tmp_path / f".p.seqwb.{dead}.0123456789ab.tmp", grace),            # older name: pid, no machine
        age(tmp_path / ".p.seqwb.0123456789ab.tmp", stale),                    # older name without a pid, long idle
        age(tmp_path / f".p.seqwb.{live}.{other}-0123456789ab.tmp", stale),    # another machine's, long idle
        age(tmp_path / f".q.seqwb.{dead}.{here}-0123456789ab.tmp", 0),         # another file's, written here, gone
    ]
    kept = [
        age(tmp_path / f".p.seqwb.{dead}.{other}-abcdefabcdef.tmp", grace),    # another machine's: its pid is not ours
        age(tmp_path / f".p.seqwb.{live}.{here}-abcdefabcdef.tmp", grace),     # a save in progress elsewhere
        age(tmp_path / f".p.seqwb.{os.getpid()}.{here}-aaaaaaaaaaaa.tmp", grace),  # one of this process's saves
        age(tmp_path / f".p.seqwb.{dead}.abcdefabcdef.tmp", 1),                # older name, just written
        age(tmp_path / ".p.seqwb.abcdefabcdef.tmp", grace),                    # no pid and not old enough
        age(tmp_path / f".q.seqwb.{dead}.0123456789ab.tmp", grace),            # another file's, older name
        age(tmp_path / f".p.seqwb.{dead}.notes.txt", stale),                   # not a temporary file
        age(tmp_path / "p.seqwb.tmp", stale),                                  # not hidden: the user's own file
    ]
    pf.save_project(make_project(checkpoint=False), tmp_path / "p.seqwb")
    atomic.remove_stale_temps(tmp_path, None)    # what opening a project of the folder adds
    assert [p.name for p in removed if p.exists()] == []
    assert [p.name for p in kept if not p.exists()] == []


def test_atomic_write_cleans_up_after_killed_writes_too(tmp_path: Path) -> None:
    target = tmp_path / "settings.json"
    leftover = age(tmp_path / f".settings.json.{dead_pid()}.k3_x9q2a.tmp", atomic.DEAD_WRITER_TEMP_SECONDS + 5)
    fresh = age(tmp_path / f".settings.json.{os.getppid()}.abcdefgh.tmp", 1)   # an older name of a live writer
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
