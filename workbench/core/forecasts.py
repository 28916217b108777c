"""Predicted against actual: a forecasting model's forecasts over a split, next to what happened and to the naive
forecast that repeats the last observed value.

The forecasting task reports MSE and MAE next to the naive forecast's (``skill = 1 - mse / naive_mse``); these
numbers say whether the model beats repeating the last value, but not where it fails: on the peaks, at a change of
trend, always one step late.  :func:`forecast_lines` gives the three lines to draw for one step of the horizon (the
value ``k`` rows after each window, against the row it forecasts), and the errors over them, from a task that can
compute its forecasts (``task.forecasts(model, split, device)``, the built-in ``forecast`` task; see
:func:`can_forecast`).  The dashboard's predicted-vs-actual plot and ``seqwb forecast`` both show what this computes.
Qt-free; the model runs in the caller's :class:`~workbench.core.training.session.ModelSession`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from workbench.schema.registry import Registry


def can_forecast(task: Any) -> bool:
    """Whether the task computes forecasts to draw (``task.forecasts``)."""
    return callable(getattr(task, "forecasts", None))


def forecast_lines(loaded: Any, split: str = "valid", step: int = 1) -> dict[str, Any]:
    """The forecasts of ``loaded``'s model over ``split`` for step ``step`` (1: the next value) of the horizon.

    Returns ``{"x": rows [N], "actual": [N], "predicted": [N], "naive": [N]}`` in the data's units (``x`` is the
    row of the series each value belongs to), ``"mse"`` / ``"naive_mse"`` / ``"mae"`` / ``"naive_mae"`` over these
    points, the same over every step of the horizon (``"all_steps"``), ``"skill"`` (1 - mse / naive_mse for this
    step), the target's name, the horizon and the step."""
    from workbench.schema.errors import DataError
    task = loaded.task
    if not can_forecast(task):
        raise DataError(f"the task {type(task).__name__} does not forecast a series: there is nothing to draw "
                        f"against what happened")
    out = task.forecasts(loaded.model, split, loaded.device)
    actual, predicted, naive = out["actual"], out["predicted"], out["naive"]
    horizon = int(actual.shape[1]) if actual.ndim == 2 else 1
    if not 1 <= step <= horizon:
        raise ValueError(f"step must be between 1 and the horizon ({horizon}), not {step}")
    k = step - 1
    a, p = actual[:, k], predicted[:, k]
    errors = _errors(a, p, naive)
    whole = _errors(actual.reshape(-1), predicted.reshape(-1), np.repeat(naive, horizon))
    return {"x": (np.asarray(out["rows"]) + k).astype(np.int64), "actual": a, "predicted": p, "naive": naive,
            **errors, "all_steps": whole, "target": getattr(task, "target_name", ""), "horizon": horizon,
            "step": step, "split": split}


def _errors(actual: np.ndarray, predicted: np.ndarray, naive: np.ndarray) -> dict[str, float]:
    if not actual.size:
        return {k: float("nan") for k in ("mse", "mae", "naive_mse", "naive_mae", "skill")}
    e, n = predicted - actual, naive - actual
    mse, naive_mse = float(np.mean(e * e)), float(np.mean(n * n))
    return {"mse": mse, "mae": float(np.mean(np.abs(e))), "naive_mse": naive_mse,
            "naive_mae": float(np.mean(np.abs(n))), "skill": 1.0 - mse / naive_mse if naive_mse > 0 else float("nan")}


class Forecaster:
    """A project's forecasts, its model kept between calls (a :class:`~workbench.core.training.session.ModelSession`;
    like it, this changes nothing process-wide).  Use one from one thread at a time."""

    def __init__(self, registry: Registry):
        from workbench.core.training.session import ModelSession
        self.session = ModelSession(registry)

    def lines(self, project: Any, base_dir: str | Path | None = None, *, split: str = "valid", step: int = 1,
              weights: str = "current", device: Any = None) -> dict[str, Any]:
        """:func:`forecast_lines` at ``weights``, with where the weights come from."""
        loaded = self.session.load(project, base_dir, weights, device)
        out = forecast_lines(loaded, split, step)
        out.update(weights=loaded.weights, trained=loaded.trained, training_step=loaded.step)
        return out
