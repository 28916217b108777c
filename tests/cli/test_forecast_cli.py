"""``seqwb forecast``: the dashboard's predicted-vs-actual plot as numbers (a subprocess on a real file)."""

from __future__ import annotations

import json

import numpy as np

from tests.cli.test_cli import seqwb


def test_forecast_prints_predictions_against_actual_and_the_naive_forecast(tmp_path):
    path = tmp_path / "f.seqwb"
    seqwb("new", "forecast", "-o", path, "--set", "task.horizon=2", check=0)
    seqwb("train", path, "--steps", 15, "--set", "eval_every=15", "--set", "sample_every=0",
          "--set", "probe_every=0", check=0)
    out = json.loads(seqwb("forecast", path, "--json", check=0).stdout)
    assert out["trained"] and out["training_step"] == 15 and out["horizon"] == 2 and out["step"] == 1
    actual, predicted, naive = (np.asarray(out[k]) for k in ("actual", "predicted", "naive"))
    assert len(out["x"]) == len(actual) == len(predicted) == len(naive) > 100
    assert np.isclose(out["mse"], np.mean((predicted - actual) ** 2))
    assert np.isclose(out["naive_mse"], np.mean((naive - actual) ** 2))
    assert np.isclose(out["skill"], 1 - out["mse"] / out["naive_mse"])
    # the MSE over every step of the horizon is the one validation reports
    ev = json.loads(seqwb("eval", path, "--json", check=0).stdout)["metrics"]
    assert np.isclose(out["all_steps"]["mse"], ev["mse"], rtol=1e-5)
    assert np.isclose(out["all_steps"]["naive_mse"], ev["naive_mse"], rtol=1e-5)
    # the second step: the value one row later, against the same naive value
    second = json.loads(seqwb("forecast", path, "--step", 2, "--json", check=0).stdout)
    assert second["x"] == [x + 1 for x in out["x"]] and second["naive"] == out["naive"]
    text = seqwb("forecast", path, "--rows", 2, check=0).stdout
    assert "naive  MSE" in text and "skill" in text and text.count("  row ") == 2
    assert "between 1 and the horizon (2)" in seqwb("forecast", path, "--step", 3, check=2).stderr
    other = tmp_path / "lm.seqwb"
    seqwb("new", "char-lm", "-o", other, "--set", "hidden_size=8", check=0)
    assert "does not forecast a series" in seqwb("forecast", other, check=1).stderr
