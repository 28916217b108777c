"""``seqwb eval`` and ``seqwb probe``: metrics of the trained weights, gradients through time, spectral norms."""

from __future__ import annotations

from typing import Any

from workbench.cli.common import (EXIT_OK, UsageError, apply_settings, finite, load_model, note, open_project,
                                  print_json, registry)


def cmd_eval(args) -> int:
    from workbench.core.training.evaluation import evaluate_weights
    reg = registry()
    project = open_project(args.file, reg)
    apply_settings(project, args.set, reg)
    loaded = load_model(args, project, reg, weights="best" if args.best else "current")
    if not loaded.trained:
        note("this project has no trained weights for its graph: evaluating freshly initialised weights")
    # the same timed, counted evaluation as the window's Run ▸ Evaluate…
    result = evaluate_weights(loaded.model, loaded.task, loaded.device, args.split, project.train.batch_size,
                              project.train.chunk_len, args.max_batches, step=loaded.step, trained=loaded.trained,
                              best=bool(args.best))
    out = {"split": args.split, "step": result.step, "trained": result.trained, "best_weights": result.best,
           "metrics": {k: finite(v) for k, v in result.metrics.items()}, "batches": result.batches,
           "seconds": result.seconds}
    if args.json:
        print_json(out)
    else:
        print(result.summary())
    return EXIT_OK


def cmd_probe(args) -> int:
    from workbench.core import probes
    reg = registry()
    project = open_project(args.file, reg)
    apply_settings(project, args.set, reg)
    if not (args.gradient_through_time or args.spectral):
        raise UsageError("choose what to probe: --gradient-through-time and/or --spectral")
    loaded = load_model(args, project, reg)
    out: dict[str, Any] = {"step": loaded.step, "trained": loaded.trained}
    if args.gradient_through_time:
        length = args.length or project.train.probe_len or project.train.chunk_len
        batch = loaded.task.probe_batch(args.batch or project.train.probe_batch, length)
        batch = {k: (v.to(loaded.device) if hasattr(v, "to") else v) for k, v in batch.items()}
        gtt = probes.GradientThroughTimeProbe(loaded.model, loaded.task, batch).run()
        out["gradient_through_time"] = gtt
    if args.spectral:
        out["sigma_max"] = probes.spectral_norms(loaded.model)
    if args.gradient_through_time:
        out["normalisations"] = dict(probes.NORMALISATIONS)
    if args.json:
        print_json(out)
        return EXIT_OK
    if args.gradient_through_time:
        for text in probes.NORMALISATIONS.values():
            print(text)
    for layer, v in (out.get("gradient_through_time") or {}).items():
        T = len(v["dLT_dh"])
        picks = sorted({0, T // 4, T // 2, 3 * T // 4, T - 1})
        print(f"{layer}: ||dL_T/dh_t|| at t=" + "  ".join(f"{t}:{v['dLT_dh'][t]:.3e}" for t in picks))
        print(f"{' ' * len(layer)}  ||dL/dh_t||   at t=" + "  ".join(f"{t}:{v['dL_dh'][t]:.3e}" for t in picks))
    for k, v in (out.get("sigma_max") or {}).items():
        print(f"sigma_max {k}: {v:.4f}")
    return EXIT_OK


def register(add, sets) -> None:
    """Add this module's sub-commands (``add(name, func, help)`` makes one; ``sets(sp)`` adds ``--set``)."""
    sp = add("eval", cmd_eval, "evaluate the trained model on a split")
    sp.add_argument("file")
    sp.add_argument("--split", choices=["train", "valid", "test"], default="valid")
    sp.add_argument("--max-batches", type=int, default=0, help="0: the whole split")
    sp.add_argument("--best", action="store_true", help="use the best weights seen in validation")
    sp.add_argument("--device")
    sp.add_argument("--json", action="store_true")
    sets(sp)

    sp = add("probe", cmd_probe, "measure gradients through time / spectral norms of the current weights")
    sp.add_argument("file")
    sp.add_argument("--gradient-through-time", action="store_true")
    sp.add_argument("--spectral", action="store_true", help="largest singular value of each recurrent matrix")
    sp.add_argument("--batch", type=int, help="sequences in the probe batch")
    sp.add_argument("--length", type=int, help="timesteps in the probe batch")
    sp.add_argument("--device")
    sp.add_argument("--json", action="store_true")
    sets(sp)
