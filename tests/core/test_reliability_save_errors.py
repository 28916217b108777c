"""Saves that respect the folder (issue 19, point 2) and paths that are not project files (issue 20): a full disk and
a disk without free inodes (a real small tmpfs where the system allows one, and every stage of a save simulated),
a read-only project (asked, never replaced silently), ``X.seqwb.bak`` being a folder, and project paths that are a
named pipe, a device or a symbolic-link loop.  Each message names the project and says what is on disk now."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import make_subprocess_env
from tests.core.reliability_figures import record
from tests.core.test_projectfile import make_project
from workbench.core import projectfile as pf
from workbench.core.projectfile import writer
from workbench.schema.errors import ProjectFileError

posix = pytest.mark.skipif(os.name != "posix", reason="POSIX files and file systems")


def _only(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---- a full disk, for real ------------------------------------------------------------------------------------

FULL_DISK = textwrap.dedent('''
    import json, os, subprocess, sys
    from pathlib import Path
    folder = Path(sys.argv[1])
    out = {}
    from tests.core.test_projectfile import make_project
    from workbench.core import projectfile as pf
    from workbench.core.project import Series
    small = make_project(checkpoint=False)
    target = folder / "p.seqwb"
    pf.save_project(small, target, backup=False)
    before = target.read_bytes()
    big = make_project(checkpoint=False)
    big.history.runs[0].series["big"] = Series(list(range(200_000)), [0.5] * 200_000)    # 3.2 MB: does not fit
    try:
        pf.save_project(big, target)
    except pf.ProjectSaveError as exc:
        out["full"] = str(exc)
    out["full_intact"] = target.read_bytes() == before
    out["full_left"] = sorted(os.listdir(folder))
    # no free inodes: fill them with empty files, then save a project that would fit in the space left
    os.remove(target.with_name("p.seqwb.bak")) if target.with_name("p.seqwb.bak").exists() else None
    n = 0
    try:
        while True:
            (folder / f"f{n}").touch()
            n += 1
    except OSError as exc:
        out["inodes_errno"] = exc.errno
    try:
        pf.save_project(small, target)
    except pf.ProjectSaveError as exc:
        out["inodes"] = str(exc)
    out["inodes_intact"] = target.read_bytes() == before
    out["inodes_left"] = sorted(p for p in os.listdir(folder) if not p.startswith("f"))
    print(json.dumps(out))
''')


@posix
def test_a_full_disk_and_a_disk_without_inodes_say_not_saved_and_the_old_file_is_intact(tmp_path):
    """On a real 1 MiB tmpfs with 40 inodes, mounted in a user namespace (unprivileged where the system allows
    user namespaces; skipped where it does not: the simulated stages below still run)."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    mount = tmp_path / "disk"
    mount.mkdir()
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK)
    shell = (f'mount -t tmpfs -o size=1m,nr_inodes=40 tmpfs "$1" || exit 77; '
             f'exec "{sys.executable}" "$2" "$1"')
    out = subprocess.run(["unshare", "-rm", "sh", "-c", shell, "sh", str(mount), str(script)], capture_output=True,
                         text=True, env=make_subprocess_env(), timeout=300)
    if out.returncode == 77 or "unshare failed" in out.stderr or "Operation not permitted" in out.stderr:
        pytest.skip(f"no user namespace with a tmpfs here: {out.stderr.strip()[:200]}")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    target = mount / "p.seqwb"
    assert doc["full"].startswith(f"{target} was not saved: the disk is full ({mount}; the project needs about ")
    assert doc["full"].endswith("; the file on disk is intact (the previous version)")
    assert doc["full_intact"] and doc["full_left"] == ["p.seqwb"]
    assert doc["inodes_errno"] == errno.ENOSPC
    assert doc["inodes"] == (f"{target} was not saved: the disk has no room for a new file in {mount} (no free "
                             f"space, or no free inodes); the file on disk is intact (the previous version)")
    assert doc["inodes_intact"] and doc["inodes_left"] == ["p.seqwb"]
    record("full-disk", group="Saving", times=2,
           tried="a save that does not fit a real 1 MiB tmpfs, then a save when the tmpfs has no free inode left",
           result="one line each: \"FILE was not saved: the disk is full (…)\" / \"…no room for a new file (no free "
                  "space, or no free inodes)…; the file on disk is intact (the previous version)\"; the file "
                  "byte-identical, no temporary file left")


@pytest.mark.parametrize("stage, code, words", [
    ("create_temp", errno.ENOSPC, "the disk has no room for a new file"),
    ("_write_zip", errno.ENOSPC, "the disk is full"),
    ("_write_zip", errno.EDQUOT, "the disk quota is used up"),
    ("_keep_backup", errno.ENOSPC, "the disk is full"),
    ("replace", errno.EIO, "Input/output error while putting it in place"),
])
def test_every_stage_of_a_save_that_fails_says_not_saved_and_leaves_the_old_file(tmp_path, monkeypatch, stage, code,
                                                                               words):
    target = tmp_path / "p.seqwb"
    pf.save_project(make_project(), target)
    before = target.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code), ".p.seqwb.123.abcdef-0123456789ab.tmp")

    if stage == "replace":
        real = os.replace
        monkeypatch.setattr(writer.os, "replace",
                            lambda a, b: fail() if Path(b) == target else real(a, b))
    else:
        monkeypatch.setattr(writer, stage, fail)
    with pytest.raises(pf.ProjectSaveError) as info:
        pf.save_project(make_project(), target)
    message = str(info.value)
    assert message.startswith(f"{target} was not saved: ") and words in message, message
    assert message.endswith("the file on disk is intact (the previous version)")
    assert ".tmp" not in message                     # the user's file is named, not our temporary file
    assert isinstance(info.value, OSError) and info.value.errno == code
    assert target.read_bytes() == before
    assert [n for n in _only(tmp_path) if n.endswith(".tmp")] == []


def test_a_new_file_that_cannot_be_written_says_nothing_was_written(tmp_path, monkeypatch):
    monkeypatch.setattr(writer, "_write_zip", lambda *a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space")))
    with pytest.raises(pf.ProjectSaveError, match="the disk is full .*; nothing was written$"):
        pf.save_project(make_project(), tmp_path / "new.seqwb")
    assert _only(tmp_path) == []


# ---- read-only files, .bak folders, targets that are not files --------------------------------------------------

@posix
def test_a_read_only_project_is_not_replaced_unless_the_user_says_so(tmp_path):
    target = tmp_path / "p.seqwb"
    pf.save_project(make_project(checkpoint=False), target)
    target.chmod(0o444)
    before = target.read_bytes()
    with pytest.raises(pf.ReadOnlyProjectError) as info:
        pf.save_project(make_project(), target)
    assert str(info.value) == (f"{target} is read-only, so it was not saved (the file is unchanged): make it "
                               f"writable, or save under another name")
    assert target.read_bytes() == before
    pf.save_project(make_project(), target, overwrite_read_only=True)      # the user answered Replace
    assert target.read_bytes() != before and stat.S_IMODE(target.stat().st_mode) == 0o444
    record("read-only-file", group="Saving", times=1, tried="saving over a 0444 project file",
           result="refused with \"FILE is read-only, so it was not saved (the file is unchanged)\"; the window asks "
                  "Replace / Save As / Cancel, seqwb train refuses before training; Replace keeps the file 0444")


def test_a_folder_named_like_the_backup_is_stepped_around(tmp_path):
    target = tmp_path / "p.seqwb"
    (tmp_path / "p.seqwb.bak").mkdir()
    (tmp_path / "p.seqwb.bak" / "keep.txt").write_text("mine")
    assert pf.save_project(make_project(checkpoint=False), target) == []
    notes = pf.save_project(make_project(), target)
    assert notes == [f"no backup of the previous version was kept: {tmp_path / 'p.seqwb.bak'} is a folder"]
    assert pf.load_project(target).checkpoint is not None
    assert (tmp_path / "p.seqwb.bak" / "keep.txt").read_text() == "mine"
    assert _only(tmp_path) == ["p.seqwb", "p.seqwb.bak"]
    record("bak-is-a-folder", group="Saving", times=2, tried="saving X.seqwb (twice) when X.seqwb.bak is a folder",
           result="saved, with the note that no backup was kept; the folder untouched")


@posix
def test_project_paths_that_are_not_files_are_refused_saying_what_they_are(tmp_path):
    """Opening never blocks on a pipe nor reads a device; saving never writes through them."""
    fifo = tmp_path / "pipe.seqwb"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.seqwb"
    zero.symlink_to("/dev/zero")
    loop = tmp_path / "loop.seqwb"
    loop.symlink_to(tmp_path / "loop2.seqwb")
    (tmp_path / "loop2.seqwb").symlink_to(loop)
    folder = tmp_path / "dir.seqwb"
    folder.mkdir()
    cases = {fifo: "is a named pipe (FIFO), not a project file", zero: "is a character device, not a project file",
             loop: "is a symbolic link that loops (it leads back to itself), not a project file",
             folder: "is a folder, not a project file"}
    for path, words in cases.items():
        with pytest.raises(ProjectFileError) as info:
            pf.load_project(path)
        assert str(info.value) == f"{path} {words}"
        with pytest.raises(pf.ProjectSaveError, match="was not saved: it is|loops"):
            pf.save_project(make_project(checkpoint=False), path)
    # and through the command line, in a process of its own (a hang would fail the timeout)
    for path, words in cases.items():
        out = subprocess.run([sys.executable, "-m", "workbench", "info", str(path)], capture_output=True, text=True,
                             env=make_subprocess_env(), timeout=120)
        assert out.returncode == 1 and out.stderr == f"seqwb: error: {path} {words}\n", out.stderr
    record("project-path-not-a-file", group="Hostile files", times=len(cases) * 3,
           tried="a project path that is a named pipe, a link to /dev/zero, a symbolic-link loop, a folder: "
                 "load, save and seqwb info",
           result="one line saying what the path is; no hang, nothing read from the device, nothing written")
