"""Ctrl-C and SIGTERM during `seqwb train`, sent to a real subprocess: the first saves a checkpoint and exits with a
clear message; a second Ctrl-C exits at once and leaves the file as it was (the last complete save)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_subprocess_env

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

FAST = ["--set", "batch_size=4", "--set", "chunk_len=16", "--set", "eval_every=0", "--set", "sample_every=0",
        "--set", "probe_every=0", "--set", "task.max_chars=20000", "--set", "threads=1", "--set", "log_every=1"]
# steps of a few hundred milliseconds, so that a second signal surely lands before the stop has been saved
SLOW = ["--set", "batch_size=32", "--set", "chunk_len=200", "--set", "hidden_size=384", "--set", "eval_every=0",
        "--set", "sample_every=0", "--set", "probe_every=0", "--set", "task.max_chars=200000", "--set", "threads=1",
        "--set", "log_every=1"]


def _project(folder: Path, *settings: str) -> Path:
    """A new char-LM project (made in this process: only the run under test is a subprocess)."""
    from workbench import cli
    path = folder / "p.seqwb"
    assert cli.main(["new", "char-lm", "-o", str(path), "--set", "layers=1", *settings]) == 0
    return path


def _step_on_disk(path: Path) -> int:
    from workbench.core.projectfile import load_project
    return load_project(path, weights=False).checkpoint.step


def _start(path: Path, *settings: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "train", str(path), "--steps", "100000", "--json",
                             *settings], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=make_subprocess_env())
    first = json.loads(proc.stdout.readline())  # training has begun: the signal handlers are installed
    assert first["event"] == "step"
    return proc


def _wait_for(stream, needle: str) -> list[str]:
    seen = []
    for line in stream:
        seen.append(line.rstrip("\n"))
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} never appeared in: {seen}")


@pytest.mark.parametrize("sig, name, as_json", [(signal.SIGINT, "Ctrl-C", True), (signal.SIGTERM, "SIGTERM", False)])
def test_first_signal_saves_a_checkpoint_and_exits_cleanly(tmp_path, sig, name, as_json):
    path = _project(tmp_path, "--set", "hidden_size=24", "--set", "embed_size=8")
    if as_json:
        proc = _start(path, *FAST)
    else:
        proc = subprocess.Popen([sys.executable, "-m", "workbench", "train", str(path), "--steps", "100000", *FAST],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=make_subprocess_env())
        _wait_for(proc.stdout, "| loss ")  # a step log line: training has begun
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert (f"seqwb: {name}: stopping after this step and saving a checkpoint (Ctrl-C again to quit at once "
            f"without saving)") in err.splitlines()
    step = _step_on_disk(path)
    assert step > 0
    if as_json:
        end = json.loads(out.splitlines()[-1])
        assert end["event"] == "end" and end["status"] == "stopped" and end["signal"] == name
        assert end["message"] == f"stopped by the user at step {step}" and end["step"] == step
    else:
        assert out.splitlines()[-1] == f"stopped by {name} at step {step}; checkpoint saved to {path}"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_second_ctrl_c_exits_at_once_without_touching_the_file(tmp_path):
    path = _project(tmp_path, "--set", "hidden_size=384", "--set", "embed_size=32")
    from workbench import cli
    assert cli.main(["train", str(path), "--steps", "1", "--set", "eval_batches=1", *SLOW]) == 0
    before = path.read_bytes()
    proc = _start(path, *SLOW)
    proc.send_signal(signal.SIGINT)
    _wait_for(proc.stderr, "Ctrl-C: stopping after this step")  # the first one has been handled
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert err.splitlines()[-1] == "seqwb: interrupted"
    assert not any(json.loads(line)["event"] == "end" for line in out.splitlines())
    assert path.read_bytes() == before  # the previous complete save, untouched
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert os.path.exists(str(path) + ".bak")


def test_sigterm_while_the_data_is_read_exits_at_once_and_writes_nothing(tmp_path):
    path = _project(tmp_path, "--set", "hidden_size=24", "--set", "embed_size=8")
    corpus = tmp_path / "big.txt"
    corpus.write_bytes(b"def f(x):\n    return 'a' + str(x)  # a comment\n" * 600_000)  # 28 MB: seconds to read
    before = path.read_bytes()
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "train", str(path), "--steps", "5", *FAST,
                             "--set", f"task.corpus={corpus}", "--set", "task.max_chars=100000000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=make_subprocess_env())
    _wait_for(proc.stderr, "seqwb: reading data: counting characters")  # the first chunk is read
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert err.splitlines()[-1] == "seqwb: interrupted"
    assert path.read_bytes() == before
