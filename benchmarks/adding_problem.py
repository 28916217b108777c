"""The adding problem (Hochreiter & Schmidhuber 1997, experiment 4) at several lengths: vanilla RNN vs IRNN vs LSTM vs
GRU with the same budget, and the vanishing gradient in one number per cell.

Every run trains the ``adding-problem-lstm`` template with only the cell changed (same graph: projection -> one
recurrent layer -> last state -> regression; same data, seed, optimizer, batch and number of steps).  At the end of
training it reports:

- the final validation MSE (always answering 1 scores 1/6 ~ 0.167; **solved** means MSE < 0.01, as issue 7 defines
  it);
- the ratio ``||dL_T/dh_1|| / ||dL_T/dh_T||`` from the workbench's gradient-through-time probe
  (:class:`workbench.core.probes.GradientThroughTimeProbe`, via ``Trainer.probe``): how much of the gradient of the
  loss at the last step still reaches the first hidden state.  Near 0 (1e-10, say) is the vanishing gradient; the
  gated cells keep it within a few orders of magnitude once they have learned the task.

    python benchmarks/adding_problem.py                    # full: T = 50 100 200, 4 cells, 2 seeds, 2000 steps
    python benchmarks/adding_problem.py --quick            # T = 50 100 200, 4 cells, 1 seed, 150 steps (< 2 min)
    python benchmarks/adding_problem.py --smoke            # seconds: T = 10, rnn and lstm, 20 steps
    python benchmarks/adding_problem.py --json out.json    # also write every figure as JSON (atomically)

``benchmarks/memory_tasks.py`` covers copy memory and temporal order and counts steps to solve; this script is the
issue-7 version of the adding problem, with the gradient ratio.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

from workbench.atomic import atomic_write
from workbench.plugin_system import discover

import memory_tasks  # noqa: E402 - its neighbour in benchmarks/ (on sys.path when run as a script)

TEMPLATE = "adding-problem-lstm"
SOLVED_MSE = 0.01  # issue 7: "which solve it (MSE < 0.01)"

MODES = {
    # mode: lengths, cells, steps, seeds, eval-every, valid size
    "full": ([50, 100, 200], ["rnn", "irnn", "lstm", "gru"], 2000, [1, 2], 250, 1000),
    "quick": ([50, 100, 200], ["rnn", "irnn", "lstm", "gru"], 150, [1], 150, 500),
    "smoke": ([10], ["rnn", "lstm"], 20, [1], 10, 64),
}


def gradient_ratio(gtt: dict) -> tuple[float, float, float]:
    """(||dL_T/dh_1||, ||dL_T/dh_T||, their ratio) of the first recurrent layer in a probe result."""
    layer = sorted(gtt)[0]
    norms = gtt[layer]["dLT_dh"]
    first, last = float(norms[0]), float(norms[-1])
    ratio = first / last if last > 0 else float("nan")
    return first, last, ratio


def run_one(reg, args, cell: str, length: int, seed: int) -> dict:
    settings = {"cell": cell, "length": str(length), "hidden_size": str(args.hidden), "seed": str(seed),
                "threads": str(args.threads), "eval_every": "0", "probe_every": "0", "batch_size": str(args.batch),
                "clip_norm": str(args.clip), "task.valid_size": str(args.valid_size),
                "probe_batch": str(args.probe_batch)}
    trainer, evals, solved_at, seconds = memory_tasks.train_in_rounds(
        reg, TEMPLATE, settings, args.lr_for.get(cell, args.lr), args.steps, args.eval_every,
        lambda metrics: metrics["mse"] < SOLVED_MSE)
    last = evals[-1][1]
    mse = float(last["mse"])
    probe = trainer.probe()
    first, final, ratio = gradient_ratio(probe.gtt)
    return {"cell": cell, "T": length, "seed": seed, "lr": trainer.cfg.lr, "mse": mse,
            "baseline_mse": float(last["baseline_mse"]), "solved": mse < SOLVED_MSE, "solved_at": solved_at,
            "dLT_dh1": first, "dLT_dhT": final, "ratio": ratio, "seconds": seconds,
            "curve": [(step, float(m["mse"])) for step, m in evals]}


def fmt_ratio(x: float) -> str:
    if not math.isfinite(x):
        return "nan"
    return "0 (underflow)" if x == 0 else f"{x:.1e}"


def _geomean(xs: list[float]) -> float:
    if not xs:
        return float("nan")
    if min(xs) <= 0:
        return 0.0
    return math.exp(statistics.mean(math.log(x) for x in xs))


def summary_rows(results: list[dict]) -> list[dict]:
    rows: dict[tuple[int, str], list[dict]] = {}
    for r in results:
        rows.setdefault((r["T"], r["cell"]), []).append(r)
    out = []
    for (length, cell), rs in rows.items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            out.append({"T": length, "cell": cell, "failed": [r["error"] for r in rs]})
            continue
        # a ratio of exactly 0 is a gradient that underflowed float32 on its way back: vanished, and kept as 0
        ratios = [r["ratio"] for r in ok if math.isfinite(r["ratio"])]
        out.append({"T": length, "cell": cell, "mse_mean": statistics.mean(r["mse"] for r in ok),
                    "mse_min": min(r["mse"] for r in ok), "mse_max": max(r["mse"] for r in ok),
                    "solved": sum(r["solved"] for r in ok), "runs": len(rs),
                    # geometric mean: the ratios of different seeds differ by orders of magnitude
                    "ratio_geomean": _geomean(ratios),
                    "ratio_min": min(ratios) if ratios else float("nan"),
                    "ratio_max": max(ratios) if ratios else float("nan"),
                    "seconds_mean": statistics.mean(r["seconds"] for r in ok)})
    return out


def print_table(rows: list[dict]) -> None:
    head = (f"{'T':>4} {'cell':<6} {'final MSE (mean)':>16} {'range':>15} {'solved':>7} "
            f"{'|dL_T/dh_1|/|dL_T/dh_T|':>24} {'(range)':>19} {'s/run':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        if "failed" in r:
            print(f"{r['T']:>4} {r['cell']:<6} failed: {'; '.join(r['failed'])}")
            continue
        rng = f"{r['mse_min']:.4f}-{r['mse_max']:.4f}"
        rr = f"{fmt_ratio(r['ratio_min'])}..{fmt_ratio(r['ratio_max'])}"
        print(f"{r['T']:>4} {r['cell']:<6} {r['mse_mean']:>16.4f} {rng:>15} {r['solved']:>3}/{r['runs']:<3} "
              f"{fmt_ratio(r['ratio_geomean']):>24} {rr:>19} {r['seconds_mean']:>7.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="< 2 minutes on a quiet 2-core machine")
    mode.add_argument("--smoke", action="store_true", help="a few seconds: keeps the script working in CI")
    ap.add_argument("--lengths", type=int, nargs="+", help="sequence lengths T (default: the mode's)")
    ap.add_argument("--cells", nargs="+", help="cells (default: rnn irnn lstm gru)")
    ap.add_argument("--steps", type=int, help="training steps per run (the budget; default: the mode's)")
    ap.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the mode's)")
    ap.add_argument("--eval-every", type=int, help="validate every N steps (to find when a run solved it)")
    ap.add_argument("--valid-size", type=int, help="validation sequences (fixed set)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.01, help="Adam learning rate, every cell")
    ap.add_argument("--cell-lr", action="append", default=[], metavar="CELL=LR",
                    help="learning rate for one cell, e.g. irnn=0.001 (repeatable)")
    ap.add_argument("--clip", type=float, default=1.0, help="gradient norm clipping")
    ap.add_argument("--probe-batch", type=int, default=32, help="sequences in the gradient-through-time probe")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (smoke and quick always use 1)")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE")
    args = ap.parse_args(argv)
    name = "smoke" if args.smoke else "quick" if args.quick else "full"
    lengths, cells, steps, seeds, eval_every, valid_size = MODES[name]
    args.lengths = args.lengths or lengths
    args.cells = args.cells or cells
    args.steps = args.steps or steps
    args.seeds = args.seeds or seeds
    args.eval_every = args.eval_every or eval_every
    args.valid_size = args.valid_size or valid_size
    if name != "full":
        args.threads = 1
    torch.set_num_threads(args.threads)
    args.lr_for = {}
    for item in args.cell_lr:
        cell, sep, value = item.partition("=")
        try:
            args.lr_for[cell] = float(value)
        except ValueError:
            ap.error(f"--cell-lr {item!r}: expected CELL=LR, e.g. irnn=0.001")

    reg = discover()
    missing = [c for c in args.cells if not reg.has("cell", c)]
    if missing:
        print(f"adding_problem: cell(s) not registered: {', '.join(missing)}", file=sys.stderr)
        return 2
    print(f"adding problem ({name}): T {args.lengths}, cells {args.cells}, {args.steps} steps x batch "
          f"{args.batch} per run, hidden {args.hidden}, Adam lr {args.lr} "
          f"{'(' + ', '.join(args.cell_lr) + ') ' if args.cell_lr else ''}clip {args.clip}, seeds {args.seeds}, "
          f"{args.threads} thread(s); solved = validation MSE < {SOLVED_MSE}", flush=True)
    results = []
    t_all = time.perf_counter()
    for length in args.lengths:
        for cell in args.cells:
            for seed in args.seeds:
                try:
                    r = run_one(reg, args, cell, length, seed)
                except Exception as exc:  # noqa: BLE001 - a diverging run is a result too
                    r = {"cell": cell, "T": length, "seed": seed, "error": str(exc).splitlines()[0]}
                    print(f"  T={length} {cell} seed {seed}: failed: {r['error']}", flush=True)
                    results.append(r)
                    continue
                results.append(r)
                print(f"  T={length} {cell:<5} seed {seed}: MSE {r['mse']:.4f} (baseline {r['baseline_mse']:.4f})"
                      f"{', solved at step ' + str(r['solved_at']) if r['solved_at'] else ', not solved'}; "
                      f"|dL_T/dh_1|/|dL_T/dh_T| = {fmt_ratio(r['ratio'])}; {r['seconds']:.1f}s", flush=True)
    total = time.perf_counter() - t_all
    print()
    rows = summary_rows(results)
    print_table(rows)
    print(f"\ntotal {total:.0f}s")
    if args.json:
        doc = {"mode": name, "settings": {k: v for k, v in vars(args).items() if k not in ("json",)},
               "torch": torch.__version__, "results": results, "summary": rows, "seconds": total}
        with atomic_write(Path(args.json), "w") as fh:
            json.dump(doc, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
