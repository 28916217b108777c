"""Interrupts and memory (issue 19, point 4): Ctrl-C at a random step of ``seqwb train``, then the run resumed to
the same total, gives the same weights bit for bit as a straight run; running out of memory under a real memory
cap in the middle of a run gives the documented advice and keeps the last checkpoint (at setup:
test_reliability_hostile_files.py; in the window: tests/gui/test_reliability_window.py)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tests.conftest import make_subprocess_env
from tests.core.reliability_figures import count, record
from tests.helpers import small_project, with_train, write_corpus
from workbench.core import projectfile as pf
from workbench.plugin_system import discover

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and resource limits")
STEPS = 24
FAST = ["--set", "threads=1", "--set", "log_every=1"]


@pytest.fixture(scope="module")
def reg():
    return discover()


def _project(folder: Path, reg, name: str, corpus_text: str | None = None, **settings) -> Path:
    write_corpus(folder, corpus_text)
    project = with_train(small_project(reg, **{"task.corpus": "corpus.txt", "eval_every": "8", **settings}),
                         threads=1, log_every=1)
    path = folder / name
    pf.save_project(project, path)
    return path


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return pf.load_project(path).checkpoint.weights


def test_ctrl_c_at_a_random_step_then_resume_is_bit_identical_to_a_straight_run(tmp_path, reg):
    tries = count(2, 10)
    rng = random.Random(20)
    straight = _project(tmp_path, reg, "straight.seqwb")
    out = subprocess.run([sys.executable, "-m", "workbench", "train", str(straight), "--steps", str(STEPS), *FAST],
                         capture_output=True, text=True, env=make_subprocess_env(), timeout=600)
    assert out.returncode == 0, out.stderr
    want = _weights(straight)
    want_loss = pf.load_project(straight, weights=False).history.runs[0].series["train/loss"].value
    stops = []
    for attempt in range(tries):
        folder = tmp_path / f"try{attempt}"
        folder.mkdir()
        path = _project(folder, reg, "c.seqwb")
        at = rng.randint(2, STEPS - 4)
        proc = subprocess.Popen([sys.executable, "-m", "workbench", "train", str(path), "--steps", str(STEPS),
                                 "--json", *FAST], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=make_subprocess_env())
        for line in proc.stdout:
            event = json.loads(line)
            if event["event"] == "step" and event["step"] >= at:
                proc.send_signal(signal.SIGINT)
                break
        rest, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        end = [json.loads(x) for x in rest.splitlines() if x.strip()][-1]
        assert end["status"] == "stopped" and end["signal"] == "Ctrl-C"
        stopped = pf.load_project(path, weights=False).checkpoint.step
        stops.append(stopped)
        more = subprocess.run([sys.executable, "-m", "workbench", "train", str(path), "--steps",
                               str(STEPS - stopped), *FAST], capture_output=True, text=True, env=make_subprocess_env(),
                              timeout=600)
        assert more.returncode == 0, more.stderr
        got = _weights(path)
        assert list(got) == list(want)
        assert all(torch.equal(got[k], want[k]) for k in want), f"stopped at {stopped}: weights differ"
        loss = pf.load_project(path, weights=False).history.runs[0].series["train/loss"].value
        assert loss == want_loss
    record("sigint-resume", group="Interrupts", times=tries,
           tried=f"Ctrl-C (SIGINT) to seqwb train at a random step (stopped at {sorted(stops)}), then seqwb train "
                 f"to the same {STEPS} steps",
           result="each stop saved a checkpoint and exited 0; the resumed run's weights and every logged loss are "
                  "bit-identical to a straight run's")


MEMORY = textwrap.dedent('''
    import resource, subprocess, sys, json
    cap = int(sys.argv[1]) << 20
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    out = subprocess.run(sys.argv[2:], preexec_fn=limit, capture_output=True, text=True)
    print(json.dumps({"rc": out.returncode, "out": out.stdout, "err": out.stderr}))
''')


def capped(cap_mib: int, *argv: str, env: dict | None = None) -> dict:
    """Run ``argv`` under an address-space cap of ``cap_mib``: ``{"rc", "out", "err"}``."""
    done = subprocess.run([sys.executable, "-c", MEMORY, str(cap_mib), *argv], capture_output=True, text=True,
                          env={**make_subprocess_env(), **(env or {})}, timeout=900)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_out_of_memory_in_a_step_under_a_memory_cap_keeps_the_last_checkpoint(tmp_path, reg):
    text = ("The quick brown fox jumps over the lazy dog. " * 23 + "\n") * 9000     # 9.6 M characters
    path = _project(tmp_path, reg, "c.seqwb", text, **{"task.max_chars": "9000000", "eval_every": "0"})
    first = subprocess.run([sys.executable, "-m", "workbench", "train", str(path), "--steps", "3", *FAST],
                           capture_output=True, text=True, env=make_subprocess_env(), timeout=600)
    assert first.returncode == 0, first.stderr
    before = _weights(path)
    # a batch of 4096 sequences of 1024 characters: its activations need several GiB, under a 2 GiB cap
    doc = capped(2048, sys.executable, "-m", "workbench", "train", str(path), "--steps", "2", "--set",
                  "batch_size=4096", "--set", "chunk_len=1024", *FAST)
    assert doc["rc"] == 1, doc["err"]
    last = doc["err"].strip().splitlines()[-1]
    assert last == ("seqwb: error: out of memory at step 4 (batch_size 4096, chunk_len 1024): try a smaller "
                    "batch_size or chunk_len; the last checkpoint is kept"), doc["err"]
    after = pf.load_project(path)
    assert after.checkpoint.step == 3 and all(torch.equal(after.checkpoint.weights[k], v) for k, v in before.items())
    assert after.history.runs[-1].status == "failed"
    record("oom-step", group="Out of memory", times=1,
           tried="seqwb train --set batch_size=4096 --set chunk_len=1024 on a project trained to step 3, under a "
                 "2 GiB address-space cap",
           result="out of memory at step 4 with the advice in one line; the file keeps the step-3 checkpoint bit for "
                  "bit and the run is marked failed")
