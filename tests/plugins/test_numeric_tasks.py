"""Numeric tasks: the forecasting CSV reader and windows, the memory-task generators, the numeric blocks."""

from __future__ import annotations

import math

import pytest
import torch

from workbench.core.blocks import BuildContext
from workbench.core.build import build_model
from workbench.schema.errors import DataError
from workbench.core.graph import Graph, analyze
from workbench.core.settings import template_project
from workbench.core.training.evaluation import evaluate_model
from workbench.core.training.trainer import Trainer
from workbench.plugin_system import discover
from workbench.schema.params import params_from_dict


@pytest.fixture(scope="module")
def reg():
    return discover()


def make_task(reg, task_id: str, base_dir=None, **params):
    spec = reg.task(task_id)
    task = spec.load()(params_from_dict(spec.params, params, "task"), base_dir)
    task.prepare()
    return task


def same_batches(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x) for x, y in zip(a, b))


# ---- forecasting ------------------------------------------------------------------------------------------------

def write(tmp_path, text: str, name: str = "data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def series_csv(rows: int = 60) -> str:
    lines = ["date,temp,load"]
    for i in range(rows):
        lines.append(f"2024-01-{i:03d},{math.sin(i / 3):.4f},{10 + i % 7}")
    return "\n".join(lines) + "\n"


def test_forecast_windows_shapes_and_train_statistics(reg, tmp_path):
    write(tmp_path, series_csv(100))
    task = make_task(reg, "forecast", tmp_path, csv="data.csv", target="load", inputs="temp, load", window=8,
                     horizon=3, valid_fraction=0.2, test_fraction=0.2)
    assert task.sizes == {"features": 2, "horizon": 3}
    assert task.input_names == ["temp", "load"] and task.target_name == "load"
    assert task.data_files["csv"]["path"] == "data.csv" and task.data_files["csv"]["rows"] == 100
    # 60 train rows -> targets starting at rows 8..57; valid rows 60..79 -> starts 60..77 (history may reach back)
    assert task.windows("train") == 50 and task.windows("valid") == 18 and task.windows("test") == 18
    batch = next(task.batches("valid", 4, 0))
    assert batch["series"].shape == (8, 4, 2) and batch["targets"].shape == (4, 3) and batch["last"].shape == (4,)
    # the first valid window: rows 52..59 in, rows 60..62 out; standardised with the training rows only
    loads = torch.tensor([10.0 + i % 7 for i in range(100)])
    mean, std = loads[:60].mean(), loads[:60].std(unbiased=False)
    assert torch.allclose(task.to_units(batch["targets"][0]), loads[60:63], atol=1e-4)
    assert torch.allclose(batch["series"][:, 0, 1], (loads[52:60] - mean) / std, atol=1e-5)
    assert torch.allclose(batch["last"][0], batch["series"][-1, 0, 1])


def test_forecast_batches_are_deterministic_and_resume(reg):
    task = make_task(reg, "forecast", demo_length=400, window=12, horizon=2)
    full = list(task.batches("train", 16, 0, epoch=2, seed=7))
    assert len(full) == task.num_batches("train", 16, 0) == math.ceil(task.windows("train") / 16)
    assert same_batches(full, list(task.batches("train", 16, 0, epoch=2, seed=7)))
    assert same_batches(full[3:], list(task.batches("train", 16, 0, epoch=2, start=3, seed=7)))
    assert not torch.equal(full[0]["targets"], next(task.batches("train", 16, 0, epoch=3, seed=7))["targets"])
    assert not torch.equal(full[0]["targets"], next(task.batches("train", 16, 0, epoch=2, seed=8))["targets"])
    # valid is not shuffled and does not depend on epoch or seed
    assert same_batches(list(task.batches("valid", 16, 0)), list(task.batches("valid", 16, 0, epoch=5, seed=3)))


def test_forecast_demo_data_is_seeded(reg):
    a = make_task(reg, "forecast", demo_length=300)
    b = make_task(reg, "forecast", demo_length=300)
    c = make_task(reg, "forecast", demo_length=300, demo_seed=1)
    assert a.input_names == ["season", "value"] and a.target_name == "value"
    ba, bb, bc = (next(t.batches("valid", 8, 0)) for t in (a, b, c))
    assert torch.equal(ba["series"], bb["series"]) and not torch.equal(ba["series"], bc["series"])


@pytest.mark.parametrize("body, parts", [
    ("date,temp,load\nd1,1.5,2\nd2,abc,3\n", ["data.csv, line 3, column 'temp'", "'abc' is not a number"]),
    ("date,temp,load\nd1,1.5,2\nd2,2.5,NaN\n", ["data.csv, line 3, column 'load'", "NaN (missing value)"]),
    ("date,temp,load\nd1,1.5,2\n\nd2,,3\n", ["data.csv, line 4, column 'temp'", "empty cell"]),
    ("date,temp,load\nd1,1.5,2\nd2,inf,3\n", ["line 3, column 'temp'", "'inf' is not a finite number"]),
    ("date,temp,load\nd1,1.5,2\nd2,2.5\n", ["data.csv, line 3: 2 fields, but the header (line 1) has 3"]),
    ("date,temp,load\n", ["data.csv has a header but no data rows"]),
    ("", ["data.csv is empty"]),
    ("date,temp,lod\nd1,1,2\n", ["no column named 'load'", "columns: date, temp, lod"]),
])
def test_forecast_csv_errors_name_file_line_and_column(reg, tmp_path, body, parts):
    write(tmp_path, body)
    with pytest.raises(DataError) as info:
        make_task(reg, "forecast", tmp_path, csv="data.csv", target="load", inputs="temp,load", window=1)
    message = str(info.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, message


def test_forecast_unused_columns_may_hold_text_and_non_utf8_names_the_offset(reg, tmp_path):
    write(tmp_path, series_csv(60))
    task = make_task(reg, "forecast", tmp_path, csv="data.csv", inputs="load", window=4)  # target: last column
    assert task.target_name == "load" and task.sizes["features"] == 1
    with pytest.raises(DataError, match="line 2, column 'date': '2024-01-000' is not a number; choose the "
                                        "numeric input columns with task.inputs"):
        make_task(reg, "forecast", tmp_path, csv="data.csv", window=4)  # every column, dates included
    (tmp_path / "latin.csv").write_bytes("x,y\n1,2\n3,\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.csv is not valid UTF-8: byte 0xe9 at offset 10"):
        make_task(reg, "forecast", tmp_path, csv="latin.csv", window=1)
    with pytest.raises(DataError, match="CSV file not found"):
        make_task(reg, "forecast", tmp_path, csv="missing.csv")
    with pytest.raises(DataError, match="too few for a window of 50"):
        make_task(reg, "forecast", tmp_path, csv="data.csv", inputs="load", window=50)


def test_forecast_metrics_are_in_original_units_with_naive_baseline(reg):
    task = make_task(reg, "forecast", demo_length=400, window=10, horizon=2)
    batch = next(task.batches("valid", 32, 0))
    perfect = task.eval_finish(_eval(task, {"forecast": batch["targets"]}, batch))
    assert perfect["mse"] == 0 and perfect["mae"] == 0 and perfect["skill"] == 1.0
    naive = batch["last"].unsqueeze(1).expand(-1, 2)
    m = task.eval_finish(_eval(task, {"forecast": naive}, batch))
    assert m["mse"] == pytest.approx(m["naive_mse"]) and m["skill"] == pytest.approx(0.0, abs=1e-9)
    # units: the standardised loss times the target's variance
    assert m["naive_mse"] == pytest.approx(m["loss"] * task.target_std ** 2)
    units = task.to_units(naive) - task.to_units(batch["targets"])
    assert m["naive_mae"] == pytest.approx(float(units.abs().mean()), rel=1e-4)


def _eval(task, outputs, batch) -> dict:
    acc: dict = {}
    task.eval_update(acc, outputs, batch)
    return acc


# ---- memory tasks -----------------------------------------------------------------------------------------------

def test_adding_problem_batches_and_baseline(reg):
    task = make_task(reg, "adding", length=30, train_size=100, valid_size=2000)
    assert task.sizes == {"features": 2, "outputs": 1}
    b = next(task.batches("train", 16, 0, seed=1))
    x, y = b["sequence"], b["targets"]
    assert x.shape == (30, 16, 2) and y.shape == (16, 1) and x.dtype == torch.float32
    assert torch.all(x[..., 1].sum(0) == 2)                                 # exactly two markers
    assert torch.all(x[:15, :, 1].sum(0) == 1) and torch.all(x[15:, :, 1].sum(0) == 1)  # one in each half
    assert torch.all((x[..., 0] >= 0) & (x[..., 0] < 1))
    assert torch.allclose((x[..., 0] * x[..., 1]).sum(0), y[:, 0])
    # the baseline of always answering 1 is Var(X1 + X2) = 1/6, measured on the fixed validation set
    valid = task.fixed_set("valid")
    m = task.eval_finish(_eval(task, {"sum": torch.ones_like(valid["targets"])}, valid))
    assert abs(m["baseline_mse"] - 1 / 6) < 0.02
    assert m["mse"] == pytest.approx(m["baseline_mse"])
    assert task.eval_finish(_eval(task, {"sum": valid["targets"]}, valid))["accuracy"] == 1.0


@pytest.mark.parametrize("task_id, params", [
    ("adding", {"length": 20}),
    ("copy-memory", {"length": 10, "symbols": 3}),
    ("temporal-order", {"length": 20}),
])
def test_memory_batches_are_pure_functions_of_their_arguments(reg, task_id, params):
    task = make_task(reg, task_id, train_size=200, valid_size=50, **params)
    again = make_task(reg, task_id, train_size=200, valid_size=50, **params)
    full = list(task.batches("train", 32, 0, epoch=1, seed=5))
    assert len(full) == task.num_batches("train", 32, 0) == 7
    assert full[-1]["targets"].shape[1 if task_id == "copy-memory" else 0] == 200 - 6 * 32  # a short last batch
    assert same_batches(full, list(again.batches("train", 32, 0, epoch=1, seed=5)))
    assert same_batches(full[4:], list(task.batches("train", 32, 0, epoch=1, start=4, seed=5)))
    other_epoch = next(task.batches("train", 32, 0, epoch=2, seed=5))
    other_seed = next(task.batches("train", 32, 0, epoch=1, seed=6))
    assert not same_batches(full[:1], [other_epoch]) and not same_batches(full[:1], [other_seed])
    # the validation set is fixed: any batch size cuts the same examples, whatever the epoch or seed
    valid = list(task.batches("valid", 20, 0, epoch=3, seed=9))
    assert len(valid) == 3
    assert same_batches(valid, list(again.batches("valid", 20, 0)))
    assert not same_batches(valid[:1], list(task.batches("test", 20, 0))[:1])
    assert not same_batches(valid[:1], full[:1])


def test_copy_memory_layout_and_baseline(reg):
    task = make_task(reg, "copy-memory", length=12, symbols=4, alphabet=8)
    assert task.sizes == {"vocab": 10} and task.vocab[0] == "_" and task.vocab[9] == ":"
    b = next(task.batches("train", 5, 0))
    tokens, targets = b["tokens"], b["targets"]
    assert tokens.shape == targets.shape == (12 + 8, 5) and tokens.dtype == torch.long
    assert torch.all((tokens[:4] >= 1) & (tokens[:4] <= 8))
    assert torch.all(tokens[4:15] == 0) and torch.all(tokens[15] == 9) and torch.all(tokens[16:] == 0)
    assert torch.all(targets[:16] == 0) and torch.equal(targets[16:], tokens[:4])
    # the memoryless strategy (blanks, then uniform over the alphabet) scores exactly the baseline
    probs = torch.zeros(20, 5, 10)
    probs[:16, :, 0] = 1.0
    probs[16:, :, 1:9] = 1 / 8
    m = task.eval_finish(_eval(task, {"logits": probs.clamp_min(1e-30).log()}, b))
    assert m["baseline_ce"] == pytest.approx(4 * math.log(8) / 20)
    assert m["ce"] == pytest.approx(m["baseline_ce"], rel=1e-5)
    perfect = torch.nn.functional.one_hot(targets, 10).float() * 50
    m = task.eval_finish(_eval(task, {"logits": perfect}, b))
    assert m["accuracy"] == 1.0 and m["copy_ce"] < 1e-6


def test_temporal_order_layout(reg):
    task = make_task(reg, "temporal-order", length=100, valid_size=400)
    assert task.sizes == {"vocab": 9, "classes": 4}
    b = task.fixed_set("valid")
    tokens, lengths, y = b["tokens"], b["lengths"], b["targets"]
    assert tokens.shape[1] == 400 and tokens.shape[0] == int(lengths.max()) <= 110
    assert int(lengths.min()) >= 100 and len(set(lengths.tolist())) > 5
    assert torch.all(tokens[0] == 1)
    cols = torch.arange(400)
    assert torch.all(tokens[lengths - 1, cols] == 2)
    relevant = (tokens >= 7).nonzero()
    assert relevant.shape[0] == 800                                   # exactly two X/Y per sequence
    first = tokens[10:21]
    second = tokens[50:61]
    assert torch.all((first >= 7).sum(0) == 1) and torch.all((second >= 7).sum(0) == 1)
    a = first.max(0).values - 7
    c = second.max(0).values - 7
    assert torch.equal(y, 2 * a + c)
    pad = torch.arange(tokens.shape[0]).unsqueeze(1) >= lengths.unsqueeze(0)
    assert torch.all(tokens[pad] == 0) and torch.all(tokens[~pad] > 0)
    m = task.eval_finish(_eval(task, {"logits": torch.zeros(400, 4)}, b))
    assert 0.25 <= m["baseline_accuracy"] < 0.33 and m["loss"] == pytest.approx(math.log(4))
    fixed = make_task(reg, "temporal-order", length=30, vary_length=False)
    b = next(fixed.batches("train", 4, 0))
    assert b["tokens"].shape == (30, 4) and torch.all(b["lengths"] == 30)


# ---- blocks and templates ---------------------------------------------------------------------------------------

def test_numeric_blocks_infer_sizes_and_step_like_forward(reg):
    g = Graph()
    g.add_node("task-input", id="input")
    g.add_node("project", {"size": 6}, id="proj")
    g.add_node("rnn", {"cell": "lstm", "hidden_size": 5}, id="rnn")
    g.add_node("regression-seq", {}, id="head")
    g.add_node("task-output", id="output")
    g.connect("input", "series", "proj", "x")
    g.connect("proj", "y", "rnn", "x")
    g.connect("rnn", "y", "head", "x")
    # a per-step head cannot feed the forecast (one vector of values per example): the editor says why
    g.connect("head", "y", "output", "forecast")
    spec = reg.task("forecast")
    report = analyze(g, reg, spec, {"features": 3, "horizon": 4})
    assert any("type mismatch, values[T] into values" in p for p in report.problems)
    g.add_node("pool", {"mode": "last"}, id="pool")
    g.add_node("regression", {}, id="reg")
    g.connect("rnn", "y", "pool", "x")
    g.connect("pool", "y", "reg", "x")
    g.connect("reg", "y", "output", "forecast")
    g.remove_node("head")
    report = analyze(g, reg, spec, {"features": 3, "horizon": 4})
    assert report.ok, report.problems
    assert report.sizes[("proj", "y")] == 6 and report.sizes[("reg", "y")] == 4
    model = build_model(g, reg, spec, {"features": 3, "horizon": 4})
    out, _ = model({"series": torch.randn(7, 2, 3)})
    assert out["forecast"].shape == (2, 4)
    # the per-step regression head: [T, B, H] -> [T, B, out], and its step path agrees
    from workbench_plugins.numeric_blocks import SequenceRegressionBlock
    block = SequenceRegressionBlock(reg.block("regression-seq").params(), {"x": 4}, {"y": 2},
                                    BuildContext(reg, {}, "head"))
    x = torch.randn(5, 3, 4)
    seq, _ = block({"x": x})
    steps = torch.stack([block.step({"x": x[t]})[0]["y"] for t in range(5)])
    assert seq["y"].shape == (5, 3, 2) and torch.allclose(seq["y"], steps)


@pytest.mark.parametrize("template, sets", [
    ("forecast", {"hidden_size": "8", "task.demo_length": "300", "window": "10", "horizon": "3"}),
    ("adding-problem-lstm", {"hidden_size": "8", "length": "10", "task.train_size": "256", "task.valid_size": "64"}),
    ("copy-memory-lstm", {"hidden_size": "8", "length": "5", "task.valid_size": "64"}),
    ("temporal-order-lstm", {"hidden_size": "8", "length": "20", "task.valid_size": "64"}),
])
def test_templates_train_and_evaluate(reg, tmp_path, template, sets):
    project, _ = template_project(reg.template(template), {"batch_size": "16", "eval_every": "0", **sets}, reg)
    trainer = Trainer(project, reg, base_dir=tmp_path)
    trainer.fit(steps=5)
    metrics = evaluate_model(trainer.model, trainer.task, "valid", 16, 0)
    spec = reg.task(project.task.id)
    assert set(metrics) == set(spec.metrics)
    assert all(math.isfinite(v) for v in metrics.values())
    if project.train.probe_every:  # templates whose blocks all step: the gradient-through-time probe runs
        probe = trainer.probe()
        assert probe.gtt and all(len(v["dLT_dh"]) > 1 for v in probe.gtt.values())
