"""Hostile project files that got through before (issue 20, "Resource bounds on files", "A shared file must not
steer the user or the machine", "Clear messages"): zip bombs of every member kind, foreign compressions, a file of
thousands of members, unexpected and symbolic-link members, numbers from the file that size allocations, a
position near 2**63, random and optimizer states that do not fit, a changed optimizer, absurd thread counts,
terminal escapes, and running out of memory while a run is set up.  Each ends in one clear line, or trains on
with a notice; memory stays bounded where it applies (measured in a child process)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch

from tests.conftest import make_subprocess_env
from tests.core.reliability_figures import count, record
from tests.core.test_projectfile import make_project, members_of, rewrite
from tests.helpers import small_project, with_train, write_corpus
from workbench import cli
from workbench.core import projectfile as pf
from workbench.core.projectfile.format import human_bytes
from workbench.core.training.trainer import Trainer
from workbench.plugin_system import discover
from workbench.schema.errors import ProjectFileError

posix = pytest.mark.skipif(os.name != "posix", reason="POSIX resource limits")
MIB = 1 << 20


@pytest.fixture(scope="module")
def reg():
    return discover()


def _trained(folder: Path, reg, steps: int = 3, **settings) -> Path:
    """A small char-LM project trained ``steps`` steps (so its checkpoint has a carried state, an optimizer and
    random states) and saved."""
    write_corpus(folder)
    project = with_train(small_project(reg, **{"task.corpus": "corpus.txt", **settings}), threads=1, log_every=1)
    trainer = Trainer(project, reg, base_dir=folder)
    trainer.fit(steps=steps, final_eval=False)
    trainer.checkpoint()
    path = folder / "c.seqwb"
    pf.save_project(project, path)
    return path


def _child(code: str, *args: str, cap_mib: int = 0, timeout: int = 600) -> tuple[subprocess.CompletedProcess, int]:
    """Run ``code`` in a child process (under an address-space cap of ``cap_mib``); returns the result and the
    child's peak resident memory in MiB."""
    runner = textwrap.dedent('''
        import resource, subprocess, sys, json
        cap = int(sys.argv[1])
        def limit():
            if cap:
                resource.setrlimit(resource.RLIMIT_AS, (cap << 20, cap << 20))
        out = subprocess.run(sys.argv[2:], preexec_fn=limit, capture_output=True, text=True)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
        print(json.dumps({"rc": out.returncode, "out": out.stdout, "err": out.stderr, "peak": peak}))
    ''')
    argv = [sys.executable, "-c", runner, str(cap_mib), sys.executable, *(["-c", code] if code else []), *args]
    done = subprocess.run(argv, capture_output=True, text=True, env=make_subprocess_env(), timeout=timeout)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    return subprocess.CompletedProcess(args, doc["rc"], doc["out"], doc["err"]), doc["peak"]


def _seqwb(*args: str, cap_mib: int = 0) -> tuple[subprocess.CompletedProcess, int]:
    return _child("", "-m", "workbench", *args, cap_mib=cap_mib)


# ---- zip bombs -----------------------------------------------------------------------------------------------------

def _deflate_member(zf: zipfile.ZipFile, name: str, head: bytes, pad: int, tail: bytes) -> None:
    """A member of ``head`` + ``pad`` spaces + ``tail``, deflated as it is written (never held in memory)."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=True) as out:
        out.write(head)
        block = b" " * MIB
        for _ in range(pad // MIB):
            out.write(block)
        out.write(tail)


def _lie_about_size(path: Path, name: str, size: int) -> None:
    """Make the zip directory say the member ``name`` inflates to ``size`` bytes (its central entry's field)."""
    data = bytearray(path.read_bytes())
    entry = data.find(b"PK\x01\x02")
    while True:
        name_len = struct.unpack_from("<H", data, entry + 28)[0]
        if data[entry + 46:entry + 46 + name_len] == name.encode():
            break
        entry = data.find(b"PK\x01\x02", entry + 4)
    struct.pack_into("<I", data, entry + 24, size)
    path.write_bytes(bytes(data))


@posix
def test_a_manifest_that_inflates_to_a_gibibyte_is_refused_in_bounded_memory(tmp_path):
    """Declared honestly, it is refused from the directory; declared as 1.7 KB, reading stops at the kind's limit
    (or at the declared size) whatever the data goes on to."""
    size = count(64, 1024) * MIB
    honest, liar = tmp_path / "honest.seqwb", tmp_path / "liar.seqwb"
    for path in (honest, liar):
        with zipfile.ZipFile(path, "w") as zf:
            _deflate_member(zf, pf.MANIFEST, b'{"format": "seqwb-project", "format_version": 1, "pad": "', size,
                            b'", "members": {}}')
    _lie_about_size(liar, pf.MANIFEST, 1700)
    out, peak = _seqwb("info", str(honest), cap_mib=1024)
    assert out.returncode == 1
    assert out.stderr == f"seqwb: error: {honest}: member manifest.json says it holds {human_bytes(size)}, more " \
                         f"than the 1 MiB a manifest.json may hold\n"
    out2, peak2 = _seqwb("info", str(liar), cap_mib=1024)
    # zipfile stops at the declared size, where the checksum cannot match: nothing beyond 1.7 KB was inflated
    assert out2.returncode == 1 and out2.stderr == (f"seqwb: error: {liar}: member manifest.json is corrupt (Bad "
                                                    f"CRC-32 for file 'manifest.json')\n"), out2.stderr
    assert max(peak, peak2) < 400, (peak, peak2)
    record("zip-bomb-manifest", group="Hostile files", times=2,
           tried=f"a manifest.json that inflates to {human_bytes(size)} of valid JSON, with its true size in the zip "
                 f"directory and with 1.7 KB declared; seqwb info under a 1 GiB address-space cap",
           result="refused in one line (over the 1 MiB a manifest may hold, or corrupt where the data outgrows its "
                  "declared size); nothing inflated beyond the limit",
           peak_rss_mib=max(peak, peak2), inflated_mib=size >> 20)


def test_each_member_kind_has_a_limit_enforced_while_reading(tmp_path, monkeypatch):
    """Whatever the directory says, a member is inflated no further than its kind's limit."""
    path = tmp_path / "p.seqwb"
    pf.save_project(make_project(), path)
    monkeypatch.setitem(pf.format.MEMBER_LIMITS, pf.PROJECT, 64)
    with zipfile.ZipFile(path) as zf:
        real = zf.getinfo(pf.PROJECT).file_size
    assert real > 64
    # the directory check sees the true size and refuses first
    with pytest.raises(ProjectFileError, match="member project.json says it holds"):
        pf.load_project(path)
    # skip the directory check: the reader itself stops at 64 bytes + 1
    from workbench.core.projectfile import archive
    monkeypatch.setattr(archive, "_check_directory", lambda *a, **k: None)
    with pytest.raises(ProjectFileError, match=r"member project.json inflates to more than 64 bytes, the most a "
                                               r"project.json may hold \(a zip bomb\?\)"):
        pf.load_project(path)


@pytest.mark.parametrize("method, name", [(zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "LZMA")])
def test_only_deflate_and_stored_members_are_read(tmp_path, method, name):
    path = tmp_path / "p.seqwb"
    pf.save_project(make_project(checkpoint=False), path)
    members = members_of(path)
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data, compress_type=method if member == pf.HISTORY else zipfile.ZIP_DEFLATED)
    with pytest.raises(ProjectFileError) as info:
        pf.load_project(path)
    assert str(info.value) == (f"{path}: member history.json is compressed with {name}; a project file uses only "
                               f"deflate and stored members")


def test_a_bzip2_bomb_is_refused_before_anything_is_inflated(tmp_path):
    size = count(16, 256) * MIB
    path = tmp_path / "p.seqwb"
    pf.save_project(make_project(checkpoint=False), path)
    members = members_of(path)
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in members.items():
            if member != pf.VOCAB:
                zf.writestr(member, data)
        info = zipfile.ZipInfo(pf.VOCAB)
        info.compress_type = zipfile.ZIP_BZIP2
        with zf.open(info, "w", force_zip64=True) as out:
            block = bytes(MIB)
            for _ in range(size // MIB):
                out.write(block)
    _lie_about_size(path, pf.VOCAB, 1700)
    with pytest.raises(ProjectFileError, match="compressed with bzip2"):
        pf.load_project(path)
    record("zip-bomb-bzip2", group="Hostile files", times=1,
           tried=f"a bzip2 vocab.json declared as 1.7 KB that inflates to {size >> 20} MiB",
           result="refused from the zip directory: only deflate and stored members are read")


def test_a_file_of_thousands_of_members_is_refused_in_one_line(tmp_path):
    n = count(2_000, 200_000)
    path = tmp_path / "many.seqwb"
    pf.save_project(make_project(checkpoint=False), path)
    members = members_of(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for member, data in members.items():
            zf.writestr(member, data)
        for i in range(n):
            zf.writestr(f"junk/{i}", b"")
    out = subprocess.run([sys.executable, "-m", "workbench", "info", str(path)], capture_output=True, text=True,
                         env=make_subprocess_env(), timeout=600)
    assert out.returncode == 1
    assert out.stderr == (f"seqwb: error: {path} has {n + len(members):,} members; a project has about ten (at most "
                          f"{pf.format.MAX_MEMBERS} are read), so this is not a project file\n")
    record("many-members", group="Hostile files", times=1, tried=f"a project zip with {n:,} extra members",
           result=f"one line on stderr ({len(out.stderr)} bytes): more than {pf.format.MAX_MEMBERS} members is not a "
                  f"project file")


def test_unexpected_and_symlink_members_are_said_once_in_words(tmp_path, reg):
    path = tmp_path / "p.seqwb"
    pf.save_project(small_project(reg), path)
    link = zipfile.ZipInfo("evil-link")
    link.create_system = 3
    link.external_attr = (0o120777 << 16)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("notes.txt", b"hello")
        zf.writestr(link, b"/etc/passwd")
        zf.writestr("data.pkl", b"\x80\x04.")
    out = subprocess.run([sys.executable, "-W", "default", "-m", "workbench", "info", str(path)], capture_output=True,
                         text=True, env=make_subprocess_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stderr == (f"seqwb: {path}: 3 members this version does not know were left unread: 'notes.txt', "
                          f"'evil-link' (a symbolic link), 'data.pkl'\n")
    # a symbolic link in the place of a member the project reads is refused
    rewrite(path, replace={"evil-link": None, "notes.txt": None, "data.pkl": None})
    members = members_of(path)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            if name == pf.VOCAB or name == pf.HISTORY:
                info.create_system, info.external_attr = 3, 0o120777 << 16
            zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    with pytest.raises(ProjectFileError, match="is a symbolic link, not data"):
        pf.load_project(path)
    record("unexpected-members", group="Hostile files", times=2,
           tried="a project with three members this version does not know (one a symbolic link, one a pickle), then "
                 "one whose vocab.json and history.json are symbolic-link members; seqwb info",
           result="one note in words naming the three, none opened (was: raw Python warnings); the links in the place "
                  "of read members refused in one line")


def test_deep_json_is_one_clear_error(tmp_path):
    path = tmp_path / "p.seqwb"
    pf.save_project(make_project(checkpoint=False), path)
    rewrite(path, replace={pf.PROJECT: b"[" * 200_000 + b"]" * 200_000})
    with pytest.raises(ProjectFileError, match="member project.json is not valid JSON"):
        pf.load_project(path)


def test_a_directory_that_promises_more_bytes_than_the_file_has_is_refused(tmp_path):
    path = tmp_path / "p.seqwb"
    pf.save_project(make_project(), path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        names = [i.filename for i in zf.infolist()]
    entry = data.find(b"PK\x01\x02")
    while True:   # the weights' central entry: claim 3 GB of stored data in a file of a few kB
        name_len = struct.unpack_from("<H", data, entry + 28)[0]
        if data[entry + 46:entry + 46 + name_len] == pf.WEIGHTS.encode():
            break
        entry = data.find(b"PK\x01\x02", entry + 4)
    struct.pack_into("<II", data, entry + 20, 3_000_000_000, 3_000_000_000)
    path.write_bytes(bytes(data))
    assert pf.WEIGHTS in names
    with pytest.raises(ProjectFileError, match="runs past the end of the file|expands|corrupt|says it holds"):
        pf.load_project(path)


# ---- numbers from the file ----------------------------------------------------------------------------------------

def _edit_checkpoint(path: Path, edit) -> None:
    project = pf.load_project(path)
    edit(project.checkpoint)
    pf.save_project(project, path)


@posix
def test_a_carried_state_for_ten_million_sequences_allocates_nothing(tmp_path, reg):
    path = _trained(tmp_path, reg)
    _edit_checkpoint(path, lambda c: c.trainer_state.update(carry_batch=10 ** 7))
    out, peak = _seqwb("train", str(path), "--steps", "2", "--set", "threads=1", cap_mib=3072)
    assert out.returncode == 0, out.stderr
    assert ("seqwb: the carried hidden state in the checkpoint does not fit (it is for a batch of 10000000, the "
            "project trains batches of 4); the next chunk starts from a zero state") in out.stderr
    assert "lstm" not in out.stderr
    assert peak < 1500, peak
    record("carry-batch", group="Numbers from a file", times=1,
           tried="trainer_state.carry_batch = 10**7 in a small project, then seqwb train (3 GiB address-space cap)",
           result="a notice that the carried state does not fit; it starts from zeros and the run trains; no "
                  "allocation sized by the file", peak_rss_mib=peak)


def test_a_position_near_two_to_the_63_is_refused_at_load(tmp_path, reg):
    path = _trained(tmp_path, reg)
    state = json.loads(members_of(path)[pf.TRAINER_STATE])
    state["step"] = 2 ** 62
    rewrite(path, replace={pf.TRAINER_STATE: json.dumps(state).encode()})
    with pytest.raises(ProjectFileError) as info:
        pf.load_project(path)
    assert str(info.value) == (f"{path}: member trainer_state.json is malformed (trainer state: step {2 ** 62} is out "
                               f"of range (0 to 1,000,000,000,000))")
    record("huge-step", group="Numbers from a file", times=1, tried="a checkpoint whose step is 2**62",
           result="refused at load with the project's own error, naming the member and the range (was: OverflowError "
                  "far into training)")


@pytest.mark.parametrize("damage, notice", [
    (lambda c: c.tensors.__setitem__("rng/torch", torch.zeros(100, dtype=torch.uint8)),
     "the checkpoint's random state does not fit (rng/torch is (100,), the generator's state is (5056,) bytes)"),
    (lambda c: c.trainer_state.update(rng_python=[3, [1, 2, 3], None]),
     "rng_python is not a Mersenne Twister state of 625 words"),
    (lambda c: c.trainer_state.update(rng_numpy=["MT19937", [1] * 10, 0, 0, 0.0]),
     "rng_numpy is not a Mersenne Twister state of 624 words"),
    (lambda c: c.optimizer_meta["param_groups"][0].update(lr="fast"),
     "optimizer state not restored (its setting lr is 'fast'); continuing with a fresh optimizer"),
    (lambda c: c.optimizer_meta["param_groups"][0].update(betas=[0.9]),
     "optimizer state not restored (its setting betas is [0.9]); continuing with a fresh optimizer"),
    (lambda c: c.optimizer.__setitem__("0/exp_avg", torch.zeros(3, 3)),
     "optimizer state not restored (its tensor '0/exp_avg' is (3, 3), the parameter"),
    (lambda c: c.optimizer_meta.update(plain={"0": {"step": "x"}}),
     "optimizer state not restored (its plain state 0/step is str)"),
    (lambda c: c.trainer_state.update(position={"step": "3", "epoch": 0, "batch": 0}),
     "the checkpoint's position is damaged (position.step is '3'); continuing from step 3"),
    (lambda c: c.tensors.__setitem__("carry/rnn/0/0", torch.zeros(2, 1, 5)),
     "the carried hidden state in the checkpoint does not fit (carry/rnn/0/0 is (2, 1, 5), the model's state is "
     "(4, 32) torch.float32)"),
], ids=["rng-torch", "rng-python", "rng-numpy", "optimizer-lr", "optimizer-betas", "optimizer-shape",
        "optimizer-plain", "position", "carry-shape"])
def test_a_checkpoint_part_that_does_not_fit_is_dropped_with_a_notice(tmp_path, reg, capsys, damage, notice):
    path = _trained(tmp_path, reg)
    _edit_checkpoint(path, damage)
    assert cli.main(["train", str(path), "--steps", "3", "--set", "threads=1"]) == 0
    err = capsys.readouterr().err
    assert notice in err, err
    assert "Traceback" not in err and "lstm" not in err
    assert pf.load_project(path).checkpoint.step == 6


def test_what_the_checkpoint_rows_count():
    """The nine cases above as one row of the reliability table."""
    record("checkpoint-parts", group="Numbers from a file", times=9,
           tried="a trained project whose checkpoint has a torch random state of 100 bytes, a Python or numpy random "
                 "state of the wrong size, optimizer settings of the wrong type or length, an optimizer tensor of the "
                 "wrong shape, optimizer plain state that is text, a position that is text, a carried state of "
                 "another shape; seqwb train",
           result="each part is checked at restore and dropped with a notice naming it (a fresh optimizer, a fresh "
                  "seed, a zero state); the run trains on, nothing blamed on the lstm plugin (was: TypeError, "
                  "OverflowError, RuntimeError at the first step)")


def test_changing_the_optimizer_of_a_trained_project_starts_it_fresh(tmp_path, reg, capsys):
    path = _trained(tmp_path, reg)
    assert cli.main(["train", str(path), "--steps", "4", "--set", "optimizer=sgd", "--set", "momentum=0.9",
                     "--set", "threads=1"]) == 0
    err = capsys.readouterr().err
    assert ("seqwb: the optimizer changed from adam to sgd since the last checkpoint: sgd starts fresh (the weights "
            "carry on)") in err
    assert pf.load_project(path).checkpoint.optimizer_meta["optimizer"] == "sgd"
    # and back again: the SGD state is not fed to Adam either
    assert cli.main(["train", str(path), "--steps", "2", "--set", "optimizer=adam", "--set", "threads=1"]) == 0
    assert "changed from sgd to adam" in capsys.readouterr().err
    record("optimizer-change", group="Clear messages", times=2,
           tried="--set optimizer=sgd on a project trained with Adam, then back to adam",
           result="a notice that the new optimizer starts fresh; the run trains (was: KeyError 'momentum' at step 3)")


@posix
def test_an_absurd_thread_count_is_bounded_to_the_cores(tmp_path, reg):
    path = _trained(tmp_path, reg)
    out, _ = _seqwb("train", str(path), "--steps", "2", "--set", "threads=1000000")
    assert out.returncode == 0, out.stderr
    cores = len(os.sched_getaffinity(0))
    assert (f"seqwb: threads=1000000 is more than the {cores} core{'s' if cores != 1 else ''} of this machine: "
            f"using {cores}") in out.stderr
    record("threads", group="Clear messages", times=1, tried="seqwb train --set threads=1000000",
           result=f"a notice; training uses the machine's {cores} cores (was: a segmentation fault)")


def test_terminal_escapes_from_a_file_are_printed_as_text(tmp_path, reg):
    path = tmp_path / "p.seqwb"
    project = small_project(reg)
    project.name = "nice\x1b[2J\x1b]0;owned\x07 name\u202e"
    pf.save_project(project, path)
    rewrite(path, manifest=lambda doc: doc.update(app_version="9\x1b[31m.9", format_version=9))
    out = subprocess.run([sys.executable, "-m", "workbench", "info", str(path)], capture_output=True, text=True,
                         env=make_subprocess_env(), timeout=300)
    assert out.returncode == 1
    assert "\x1b" not in out.stderr and "\\x1b[31m" in out.stderr
    rewrite(path, manifest=lambda doc: doc.update(format_version=1))
    out = subprocess.run([sys.executable, "-m", "workbench", "info", str(path)], capture_output=True, text=True,
                         env=make_subprocess_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\x07" not in out.stdout and "\u202e" not in out.stdout
    assert out.stdout.startswith("nice\\x1b[2J\\x1b]0;owned\\x07 name\\u202e  (")
    record("terminal-escapes", group="Steering", times=2,
           tried="ANSI escapes, a bell and a right-to-left override in the project name and app_version; seqwb info",
           result="printed as visible escapes (\\x1b[2J), never sent to the terminal")


@posix
def test_running_out_of_memory_at_setup_gives_the_advice(tmp_path, reg):
    path = _trained(tmp_path, reg)
    before = path.read_bytes()
    out, peak = _seqwb("train", str(path), "--steps", "2", "--new-run", "--set", "hidden_size=20000",
                       "--set", "threads=1", cap_mib=1536)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        "seqwb: error: out of memory while setting up the run (reading the data and building the model; batch_size "
        "4, chunk_len 16): try a smaller batch_size or chunk_len, or a smaller model; the last checkpoint is kept")
    assert path.read_bytes() == before
    record("oom-setup", group="Out of memory", times=1,
           tried="seqwb train --set hidden_size=20000 (a 3.2-billion-parameter LSTM) under a 1.5 GiB cap",
           result="the documented advice in one line, the file unchanged (was: the allocator's text blamed on lstm)")
