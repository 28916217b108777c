"""The issue-7 fidelity scripts (PTB small, adding problem, char-LM budget, translation BLEU) work end to end in
their ``--smoke`` mode, on tiny models, and what they print is consistent with what they measured.  The real runs
and their figures are in docs/benchmarks.md."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT, make_subprocess_env


def run_script(name: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / name), *args], cwd=REPO_ROOT,
                          env=make_subprocess_env(), capture_output=True, text=True, timeout=timeout)


def write_ptb_corpus(folder: Path) -> int:
    """A small PTB-format corpus (one sentence a line, spaces around words, ``<unk>`` and ``N`` as in PTB) from a
    toy grammar; returns the number of distinct words."""
    rng = random.Random(0)
    subjects = ["the cat", "a dog", "the company", "my friend", "the market", "our team"]
    verbs = ["sees", "buys", "sells", "likes", "wants", "finds"]
    objects = ["the house", "N shares", "a car", "the report", "<unk> stocks", "some bread"]
    words = set()
    for split, n in (("train", 1500), ("valid", 150), ("test", 150)):
        lines = []
        for _ in range(n):
            sentence = f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}"
            words.update(sentence.split())
            lines.append(f" {sentence} \n")
        (folder / f"ptb.{split}.txt").write_text("".join(lines), encoding="utf-8")
    return len(words)


def test_ptb_small_without_data_says_so_and_downloads_nothing(tmp_path):
    proc = run_script("ptb_small.py")
    assert proc.returncode == 2
    assert "no data given" in proc.stderr and "nothing is downloaded" in proc.stderr
    assert "Traceback" not in proc.stderr

    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_script("ptb_small.py", "--data", str(empty), "--smoke")
    assert proc.returncode == 1
    assert str(empty) in proc.stderr and "ptb.train.txt" in proc.stderr and "Traceback" not in proc.stderr
    assert list(empty.iterdir()) == []   # nothing written, nothing fetched

    proc = run_script("ptb_small.py", "--data", str(tmp_path / "missing"))
    assert proc.returncode == 2 and "no such folder" in proc.stderr


def test_ptb_small_trains_the_template_and_reports_perplexity_per_epoch(tmp_path):
    data = tmp_path / "ptb"
    data.mkdir()
    n_words = write_ptb_corpus(data)
    out = tmp_path / "ptb.json"
    proc = run_script("ptb_small.py", "--data", str(data), "--smoke", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["vocab"] == n_words + 1          # the training words and <eos> (<unk> is one of the words here)
    assert r["words"]["train"] == 1500 * 6    # five words and <eos> per line
    epochs = r["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert all(e["lr"] == 0.2 for e in epochs)   # the smoke model's lr, kept for the first four epochs
    for e in epochs:
        assert math.isfinite(e["valid_ppl"]) and math.isfinite(e["test_ppl"])
        # better than guessing uniformly over the vocabulary: it learned something
        assert 1.0 < e["valid_ppl"] < 0.9 * r["vocab"] and 1.0 < e["test_ppl"] < 0.9 * r["vocab"]
    assert epochs[1]["train_ppl"] < epochs[0]["train_ppl"]
    for e in epochs:   # the table shows the same figures
        assert f"{e['valid_ppl']:.2f}" in proc.stdout and f"{e['test_ppl']:.2f}" in proc.stdout
    assert "published after 13 epochs: validation 120.7, test 114.5" in proc.stdout


def test_adding_problem_reports_mse_and_the_gradient_ratio_per_cell(tmp_path):
    out = tmp_path / "adding.json"
    proc = run_script("adding_problem.py", "--smoke", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert {(x["T"], x["cell"]) for x in r["results"]} == {(10, "rnn"), (10, "lstm")}
    for x in r["results"]:
        assert "error" not in x
        assert 0 <= x["mse"] < 1 and abs(x["baseline_mse"] - 1 / 6) < 0.1
        assert x["solved"] == (x["mse"] < 0.01)
        # the ratio is the probe's ||dL_T/dh_1|| over its ||dL_T/dh_T||; the latter is never zero
        assert x["dLT_dhT"] > 0 and x["dLT_dh1"] >= 0
        assert math.isclose(x["ratio"], x["dLT_dh1"] / x["dLT_dhT"], rel_tol=1e-9)
        assert [step for step, _ in x["curve"]] == [10, 20]
    assert "|dL_T/dh_1|/|dL_T/dh_T|" in proc.stdout and "solved" in proc.stdout


def test_adding_problem_unknown_cell_is_refused_clearly():
    proc = run_script("adding_problem.py", "--smoke", "--cells", "lstm", "nosuchcell")
    assert proc.returncode == 2 and "nosuchcell" in proc.stderr and "Traceback" not in proc.stderr


def test_charlm_budget_workbench_and_plain_loop_agree_and_units_are_found(tmp_path):
    out = tmp_path / "charlm.json"
    proc = run_script("charlm_budget.py", "--smoke", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["same_initial_weights"] is True
    wb, plain = r["workbench"]["bpc"], r["plain"]["bpc"]
    # same weights, data, batches and optimizer for 5 steps: the loops agree to float precision
    assert abs(wb - plain) < 1e-3, (wb, plain)
    assert 0 < wb < math.log2(r["vocab"]) + 0.5
    units = r["units"]
    assert set(units) == {"quotes", "comment", "indent"}
    found = [u for u in units.values() if "error" not in u]
    assert found, units
    for u in found:
        assert 0 < abs(u["r"]) <= 1 and u["layer"].startswith("rnn")


def test_translation_bleu_greedy_and_beam_through_sacrebleu(tmp_path):
    out = tmp_path / "bleu.json"
    proc = run_script("translation_bleu.py", "--smoke", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["sentences"] == 20 and r["width"] == 5 and r["tokenize"] == "char"
    (row,) = r["rows"]
    assert row["step"] == 20
    for key in ("greedy_bleu", "beam_bleu"):
        assert 0 <= row[key] <= 100
    # the greedy decoder run one sentence at a time and the task's batched greedy decoder give the same BLEU
    assert math.isclose(row["greedy_bleu"], row["batched_greedy_bleu"], abs_tol=1e-6)
    assert 0 <= row["beam_differs"] <= 20
