"""``seqwb forecast``: a forecasting model's predictions over a split against what happened and against the naive
forecast (the dashboard's "Forecast vs actual" plot, as numbers)."""

from __future__ import annotations

from workbench.cli.common import EXIT_OK, UsageError, load_model, open_project, print_json, registry


def cmd_forecast(args) -> int:
    from workbench.core.forecasts import forecast_lines
    from workbench.core.project import available_weights
    reg = registry()
    project = open_project(args.file, reg)
    weights = "best" if args.best else "current"
    if weights not in available_weights(project):
        raise UsageError("this project has no best weights yet: they are kept at the first validation of a run")
    loaded = load_model(args, project, reg, weights=weights)
    try:
        out = forecast_lines(loaded, args.split, args.step)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out.update(weights=loaded.weights, trained=loaded.trained, training_step=loaded.step)
    if args.json:
        print_json(out)
        return EXIT_OK
    whole = out["all_steps"]
    print(f"{out['target']} on the {out['split']} split, {len(out['x']):,} forecasts {out['step']} step"
          f"{'s' if out['step'] != 1 else ''} ahead ({out['weights']} weights, step {out['training_step']:,})")
    print(f"  model  MSE {out['mse']:.5g}  MAE {out['mae']:.5g}")
    print(f"  naive  MSE {out['naive_mse']:.5g}  MAE {out['naive_mae']:.5g}   (repeat the last observed value)")
    print(f"  skill  {out['skill']:+.3f}   (1 - MSE / naive MSE: above 0, the model beats the naive forecast)")
    if out["horizon"] > 1:
        print(f"  every step of the horizon ({out['horizon']}): MSE {whole['mse']:.5g}, naive {whole['naive_mse']:.5g}")
    for row in range(min(args.rows, len(out["x"]))):
        print(f"  row {out['x'][row]:>7}  actual {out['actual'][row]:>10.4f}  predicted {out['predicted'][row]:>10.4f}"
              f"  naive {out['naive'][row]:>10.4f}")
    return EXIT_OK


def register(add, sets) -> None:
    """``seqwb forecast`` (``add(name, func, help)`` makes a sub-command)."""
    sp = add("forecast", cmd_forecast, "a forecasting model's predictions against what happened and the naive "
                                       "forecast, over a split")
    sp.add_argument("file")
    sp.add_argument("--split", default="valid", choices=("train", "valid", "test"))
    sp.add_argument("--step", type=int, default=1, help="which step of the horizon (1: the next value)")
    sp.add_argument("--rows", type=int, default=5, help="without --json: print the first N forecasts")
    sp.add_argument("--best", action="store_true", help="the best weights seen in validation (default: current)")
    sp.add_argument("--device")
    sp.add_argument("--json", action="store_true",
                    help="x (rows), actual, predicted, naive, mse, mae, naive_mse, naive_mae, skill, all_steps")
