"""The seqwb command line, run as a user would: subprocesses on real files."""

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_subprocess_env

SMALL = ["--set", "hidden_size=24", "--set", "layers=1", "--set", "embed_size=8"]
FAST = ["--set", "batch_size=4", "--set", "chunk_len=16", "--set", "eval_every=0", "--set", "sample_every=0",
        "--set", "probe_every=0", "--set", "eval_batches=2", "--set", "task.max_chars=20000"]


def seqwb(*args, cwd=None, check=None, timeout=240):
    proc = subprocess.run([sys.executable, "-m", "workbench", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=make_subprocess_env(), timeout=timeout)
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small char-LM project trained for 20 steps (shared by the read-only tests)."""
    folder = tmp_path_factory.mktemp("cli")
    path = folder / "p.seqwb"
    seqwb("new", "char-lm", "-o", path, *SMALL, check=0)
    seqwb("train", path, "--steps", 20, *FAST, "--set", "probe_every=10", check=0)
    return path


def test_help_for_every_command():
    out = seqwb("--help", check=0).stdout
    for cmd in ["gui", "plugins", "templates", "new", "train", "eval", "decode", "info", "probe", "record", "history"]:
        assert cmd in out
        assert seqwb(cmd, "--help", check=0).stdout.startswith("usage: seqwb " + cmd)


def test_version_and_module_entry():
    from workbench import __version__
    assert seqwb("--version", check=0).stdout.strip() == f"seqwb {__version__}"


def test_plugins_json_lists_builtins_ok():
    rows = json.loads(seqwb("plugins", "--json", check=0).stdout)
    have = {(r["kind"], r["id"]) for r in rows if r["status"] == "ok"}
    for item in [("cell", "lstm"), ("architecture", "rnn"), ("architecture", "embedding"), ("task", "char-lm"),
                 ("decoder", "greedy"), ("decoder", "sample"), ("template", "char-lm")]:
        assert item in have
    lstm = next(r for r in rows if r["id"] == "lstm")
    assert lstm["distribution"] == "sequence-workbench" and lstm["version"]
    # the version is the installed distribution's (what pip shows), not the spec's own
    from importlib.metadata import version
    assert {r["version"] for r in rows if r["status"] == "ok" and r["distribution"] == "sequence-workbench"} \
        == {version("sequence-workbench")}
    assert f"[sequence-workbench {version('sequence-workbench')}]" in seqwb("plugins", check=0).stdout


def test_templates():
    rows = json.loads(seqwb("templates", "--json", check=0).stdout)
    assert any(r["id"] == "char-lm" and r["description"] for r in rows)
    assert "char-lm" in seqwb("templates", check=0).stdout


def test_train_json_lines_and_continue(tmp_path):
    path = tmp_path / "p.seqwb"
    seqwb("new", "char-lm", "-o", path, *SMALL, check=0)
    out = seqwb("train", path, "--steps", 10, "--json", *FAST, "--set", "log_every=5", check=0).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    steps = [x for x in lines if x["event"] == "step"]
    assert [s["step"] for s in steps] == [5, 10]
    for key in ["step", "epoch", "loss", "grad_norm", "lr", "tokens_per_s"]:
        assert key in steps[-1]
    assert any(x["event"] == "eval" and "valid_loss" in x for x in lines)  # validation at the end
    assert lines[-1]["event"] == "end" and lines[-1]["status"] == "finished"
    # reopen and keep training: the step count continues
    out = seqwb("train", path, "--steps", 5, "--json", check=0).stdout
    assert [json.loads(x) for x in out.splitlines()][-1]["step"] == 15
    info = json.loads(seqwb("info", path, "--json", check=0).stdout)
    assert info["step"] == 15 and info["trained"] and len(info["runs"]) == 1 and info["runs"][0]["steps"] == 15
    assert (tmp_path / "p.seqwb.bak").exists()


def test_eval_decode_info_probe_record_history(trained, tmp_path):
    ev = json.loads(seqwb("eval", trained, "--json", "--max-batches", 3, check=0).stdout)
    assert ev["trained"] and ev["step"] == 20 and {"loss", "bpc", "ppl"} <= set(ev["metrics"])
    assert abs(ev["metrics"]["ppl"] - np.exp(ev["metrics"]["loss"])) < 1e-3
    test = json.loads(seqwb("eval", trained, "--split", "test", "--json", "--max-batches", 2, check=0).stdout)
    assert test["split"] == "test"

    dec = json.loads(seqwb("decode", trained, "--decoder", "greedy", "--set", "max_len=30", "--input", "def ",
                           "--json", check=0).stdout)
    assert len(dec["tokens"]) == 30 and isinstance(dec["text"], str) and dec["prompt"] == "def "
    s1 = json.loads(seqwb("decode", trained, "--decoder", "sample", "--set", "max_len=40", "--set", "top_k=5",
                          "--seed", 3, "--json", check=0).stdout)
    s2 = json.loads(seqwb("decode", trained, "--decoder", "sample", "--set", "max_len=40", "--set", "top_k=5",
                          "--seed", 3, "--json", check=0).stdout)
    assert s1["tokens"] == s2["tokens"]  # seeded sampling is reproducible

    info = json.loads(seqwb("info", trained, "--json", check=0).stdout)
    assert info["parameters"] > 0 and info["valid"] and info["task"] == "char-lm"
    assert {p["id"] for p in info["plugins"]} >= {"lstm", "rnn", "char-lm"}
    assert "parameters" in seqwb("info", trained, check=0).stdout
    # node summaries as the canvas's cards show them: the cell's title, and inferred sizes filled in once the
    # data is known (a bare "0" used to show for the head's inferred output size)
    summaries = {n["id"]: n["summary"] for n in info["nodes"]}
    vocab = info["vocab_size"]
    assert summaries["head"] == f"→ {vocab}" and summaries["rnn"].startswith("LSTM · ")

    probe = json.loads(seqwb("probe", trained, "--gradient-through-time", "--spectral", "--length", 12, "--json",
                             check=0).stdout)
    gtt = probe["gradient_through_time"]["rnn.0"]
    assert len(gtt["dLT_dh"]) == 12 and len(gtt["dL_dh"]) == 12
    assert all(v > 0 for v in probe["sigma_max"].values())

    npz = tmp_path / "rec.npz"
    rec = json.loads(seqwb("record", trained, "--text", "x = 'a'\n", "--npz", npz, "--saturation", "--json",
                           check=0).stdout)
    assert rec["layers"]["rnn.0"]["h"] == [8, 24] and rec["layers"]["rnn.0"]["f"] == [8, 24]
    with np.load(npz, allow_pickle=False) as data:
        assert data["rnn.0/c"].shape == (8, 24) and "".join(data["text"]) == "x = 'a'\n"
    assert len(rec["saturation"]["rnn.0"]["f"]["left"]) == 24

    hist = json.loads(seqwb("history", trained, "--json", "--gtt", check=0).stdout)
    run = hist[0]
    assert run["series"]["train/loss"]["step"][-1] == 20
    assert "grad/rnn.0" in run["series"] and "train/grad_norm_clipped" in run["series"]
    assert [g["step"] for g in run["gradient_through_time"]] == [10, 20]


@pytest.mark.parametrize("args, code, message", [
    (["new", "no-such-template", "-o", "{d}/x.seqwb"], 2, "unknown template 'no-such-template'"),
    (["new", "char-lm", "-o", "{d}/x.seqwb", "--set", "hiden_size=3"], 2, "did you mean 'hidden_size'"),
    (["new", "char-lm", "-o", "{d}/x.seqwb", "--set", "hidden_size"], 2, "malformed setting 'hidden_size'"),
    (["new", "char-lm", "-o", "{d}/x.seqwb", "--set", "hidden_size=big"], 2, "expected int, got 'big'"),
    (["new", "char-lm", "-o", "{d}/x.seqwb", "--set", "hidden_size=-1"], 2, "below the minimum"),
    (["new", "char-lm", "-o", "{d}/x.seqwb", "--set", "cell=lstn"], 2, "unknown cell 'lstn'"),
    (["train", "{d}/missing.seqwb"], 1, "no such project file"),
    (["frobnicate"], 2, "invalid choice"),
])
def test_bad_input_one_clear_line(tmp_path, args, code, message):
    proc = seqwb(*[a.format(d=tmp_path) for a in args])
    assert proc.returncode == code, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x.seqwb").exists()


def _project(tmp_path: Path, *extra) -> Path:
    path = tmp_path / "p.seqwb"
    seqwb("new", "char-lm", "-o", path, *SMALL, *extra, check=0)
    return path


def test_bad_train_settings_change_nothing(tmp_path):
    path = _project(tmp_path)
    before = digest(path)
    proc = seqwb("train", path, "--steps", 2, "--set", "lr=fast")
    assert proc.returncode == 2 and "lr: expected float, got 'fast'" in proc.stderr
    assert digest(path) == before


def test_missing_corpus_and_non_utf8_corpus(tmp_path):
    path = _project(tmp_path, "--set", "corpus=missing.txt")
    before = digest(path)
    proc = seqwb("train", path, "--steps", 2)
    assert proc.returncode == 1 and "corpus file not found" in proc.stderr and "missing.txt" in proc.stderr
    assert digest(path) == before

    (tmp_path / "latin.txt").write_bytes(("caf\u00e9 " * 2000).encode("latin-1"))
    path2 = tmp_path / "q.seqwb"
    seqwb("new", "char-lm", "-o", path2, *SMALL, "--set", "corpus=latin.txt", check=0)
    before = digest(path2)
    proc = seqwb("train", path2, "--steps", 2, *FAST)
    assert proc.returncode == 1
    assert "latin.txt is not valid utf-8: byte 0xe9 at offset 3" in proc.stderr and "task.encoding" in proc.stderr
    assert digest(path2) == before
    # the offered fix works
    seqwb("train", path2, "--steps", 2, *FAST, "--set", "task.encoding=latin-1", check=0)


def test_corrupt_truncated_and_newer_files(tmp_path, trained):
    bad = tmp_path / "junk.seqwb"
    bad.write_bytes(b"this is not a zip file at all")
    proc = seqwb("info", bad)
    assert proc.returncode == 1 and "junk.seqwb" in proc.stderr and "Traceback" not in proc.stderr

    data = trained.read_bytes()
    cut = tmp_path / "cut.seqwb"
    cut.write_bytes(data[: len(data) // 2])
    before = digest(cut)
    proc = seqwb("train", cut, "--steps", 1)
    assert proc.returncode == 1 and "cut.seqwb" in proc.stderr
    assert digest(cut) == before and not (tmp_path / "cut.seqwb.bak").exists()

    newer = tmp_path / "newer.seqwb"
    with zipfile.ZipFile(trained) as src, zipfile.ZipFile(newer, "w") as dst:
        for item in src.infolist():
            content = src.read(item.filename)
            if item.filename == "manifest.json":
                m = json.loads(content)
                m["format_version"] = 99
                m["app_version"] = "9.0"
                content = json.dumps(m).encode()
            dst.writestr(item, content)
    proc = seqwb("info", newer)
    assert proc.returncode == 1 and "newer version" in proc.stderr


def test_debug_shows_traceback(tmp_path):
    bad = tmp_path / "junk.seqwb"
    bad.write_bytes(b"nope")
    assert "Traceback" in seqwb("--debug", "info", bad).stderr


def test_ctrl_c_saves_and_exits_cleanly(tmp_path):
    import signal
    import time
    path = _project(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "train", str(path), "--steps", "100000", "--json",
                             *FAST, "--set", "log_every=1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=make_subprocess_env())
    # wait until it is training
    first = proc.stdout.readline()
    assert json.loads(first)["event"] == "step"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    end = json.loads(out.splitlines()[-1])
    assert end["event"] == "end" and end["status"] == "stopped"
    info = json.loads(seqwb("info", path, "--json", check=0).stdout)
    assert info["step"] == end["step"] > 0


def test_probe_says_what_each_gradient_is_of(trained):
    out = seqwb("probe", trained, "--gradient-through-time", check=0).stdout
    assert "||dL/dh_t||: L is the task's loss, the mean over every token" in out
    assert "||dL_T/dh_t||: L_T is the loss at the last step alone" in out
    doc = json.loads(seqwb("probe", trained, "--gradient-through-time", "--json", check=0).stdout)
    assert set(doc["normalisations"]) == {"dL_dh", "dLT_dh"}


def test_the_speed_says_what_it_counts(tmp_path):
    path = tmp_path / "s.seqwb"
    seqwb("new", "sentiment", "-o", path, "--set", "hidden_size=8", "--set", "batch_size=8", check=0)
    out = seqwb("train", path, "--steps", 3, "--set", "log_every=1", "--set", "eval_every=0",
                "--set", "probe_every=0", check=0).stdout
    assert "sequences/s" in out and "tok/s" not in out
    lines = [json.loads(x) for x in seqwb("train", path, "--steps", 2, "--json", "--set", "log_every=1",
                                          "--set", "eval_every=0", "--set", "probe_every=0", check=0).stdout.splitlines()
             if x.startswith("{")]
    assert {e["counted"] for e in lines if e["event"] == "step"} == {"sequences"}


def test_a_closed_pipe_is_not_an_error(trained):
    proc = subprocess.run(f"{sys.executable} -m workbench history {trained} --json | head -c 5", shell=True,
                          capture_output=True, text=True, env=make_subprocess_env(), timeout=240)
    assert proc.stdout == '[{"id' and proc.stderr == ""
