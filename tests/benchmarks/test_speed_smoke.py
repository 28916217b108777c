"""Tiny runs of the speed benchmarks (benchmarks/*.py --smoke), so that the scripts keep working.

They check that each script runs end to end through the real code paths and reports sane figures; they never
assert a speed (that is what the full benchmarks and docs/benchmarks.md are for).
"""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
import torch

from tests.conftest import REPO_ROOT


def load_benchmark(name: str):
    path = REPO_ROOT / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"seqwb_benchmark_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def run_json(capsys, name: str) -> object:
    assert load_benchmark(name).main(["--smoke", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_beam_speed_smoke(capsys):
    results = run_json(capsys, "beam_speed")
    assert [r["model"] for r in results] == ["char-LM (smoke)", "seq2seq (smoke)"]
    for r in results:
        sides = set(r["ms_per_step"])
        assert {"greedy", "beam 1", "beam 5", "beam 10", "beam 10, topk 0", "beam 10 + tree",
                "naive beam 10", "greedy, bf16", "beam 10, bf16"} == sides
        assert all(v > 0 and math.isfinite(v) for v in r["ms_per_step"].values())
        assert all(v > 0 for v in r["cpu_ms_per_step"].values())
        assert r["beam10_over_greedy"] > 0 and r["naive10_over_beam10"] > 0
        assert r["greedy_bf16_over_fp32"] > 0 and r["beam10_bf16_over_fp32"] > 0


def test_naive_beam_search_finds_the_batched_best(capsys):
    """The naive baseline is a real beam search: on a small char-LM it returns the batched search's best."""
    bench = load_benchmark("beam_speed")
    from workbench.core.decode import run_decoder
    from workbench.plugin_system import discover
    torch.set_num_threads(1)
    reg = discover()
    model, task, prompt, _ = bench.build(reg, "char-lm", {"hidden_size": "16", "embed_size": "8",
                                                          "task.max_chars": "20000"})
    # a few sharp weights so that no two hypotheses tie (an untrained model is close to uniform)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8)
    proxy = bench.NoEosTask(task)
    batched = run_decoder(reg.decoder("beam"), model, proxy, {"width": 4, "n_best": 1, "max_len": 12,
                                                                 "alpha": 0.0, "topk": 0}, prompt=prompt)
    tokens, score = bench.naive_beam_search(model, proxy, 4, 12, prompt)
    assert len(tokens) == 12
    assert tokens == batched.tokens
    assert score == pytest.approx(batched.score, abs=1e-3)


def test_project_io_smoke(capsys):
    res = run_json(capsys, "project_io")
    assert res["save_s"] > 0 and res["load_s"] > 0
    assert {"manifest.json", "project.json", "history.json", "history.safetensors", "weights.safetensors",
            "optimizer.safetensors", "state.safetensors", "trainer_state.json"} <= set(res["members"])
    # the history really is a long run's: per-step series, probes every 100 steps, samples every 200
    assert res["history_steps"] == 300 and res["gtt_records"] == 3 and res["samples"] == 1
    assert res["series_points"] > 300 * 5


def test_recorder_speed_smoke(capsys):
    res = run_json(capsys, "recorder_speed")
    assert res["chars"] == 300 and res["steps"] == 300 and res["units"] == 32
    assert set(res["chars_per_s"]) == {"recorder (Recorder.record)", "per-step recorder (path=steps)",
                                       "plain per-step loop", "fused nn.LSTM, nothing kept",
                                       "recorder, precision = bf16"}
    assert all(v > 0 for v in res["chars_per_s"].values())
    # the default (whole chunks) and the per-step path recorded the same values
    assert 0 <= res["max_abs_diff"] < 1e-5


def test_train_throughput_smoke(capsys, tmp_path):
    load_benchmark("train_throughput").main(["--smoke", "--json", str(tmp_path / "t.json")])
    out = capsys.readouterr().out
    assert "ratio workbench / plain loop:" in out and "precision auto on this machine:" in out
    assert "gradient-through-time probe overhead at the default interval:" in out
    assert "median plain" in out and "median workbench_no_probes" in out and "median workbench_auto" in out
    doc = json.loads((tmp_path / "t.json").read_text())
    assert doc["auto_resolved"] in ("fp32", "bf16") and doc["ratio_workbench_auto"] > 0
    assert torch.cuda.is_available() or doc["gpu"].startswith("not measured")


def test_precision_safety_smoke(tmp_path):
    out = tmp_path / "p.json"
    assert load_benchmark("precision_safety").main(["--smoke", "--seeds", "2", "--templates", "adding-problem-lstm",
                                                    "--json", str(out)]) == 0
    row = json.loads(out.read_text())["templates"]["adding-problem-lstm"]
    assert len(row["rows"]) == 2 and row["seed_noise_std"] >= 0 and isinstance(row["safe"], bool)
    assert all(r["ran_bf16"] for r in row["rows"])
