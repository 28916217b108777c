"""The memory tasks, long version: which cells learn long-range dependencies, and how fast.

For each sequence length T and each cell, trains the task's template (same graph, data, seed, optimizer and budget;
only the cell differs), evaluates on the fixed validation set every ``--eval-every`` steps and prints a table:
the final metric (mean over seeds, with the range), how many seeds solved the task, the median number of steps
until they did, and the time per run.  ``tests/plugins/test_memory_lstm_vs_rnn.py`` is the short version.

    python benchmarks/memory_tasks.py                                   # adding, T = 50 100 200, 4 cells, 2 seeds
    python benchmarks/memory_tasks.py --task copy-memory --lengths 10 20 40
    python benchmarks/memory_tasks.py --task temporal-order --lengths 50 100
    python benchmarks/memory_tasks.py --lengths 20 --cells rnn lstm --steps 100 --seeds 1   # smoke

Solved means: adding, validation MSE below 0.05 (the baseline of always answering 1 is 0.167; Hochreiter &
Schmidhuber counted a sequence as right when its error is below 0.04); copy memory, accuracy above 0.9 on the
copied symbols; temporal order, accuracy above 0.9.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field

from workbench.core.settings import template_project
from workbench.core.training.trainer import Trainer
from workbench.plugin_system import discover

TASKS = {
    # task: (template, metric, lower is better, solved threshold, baseline metric or constant)
    "adding": ("adding-problem-lstm", "mse", True, 0.05, "baseline_mse"),
    "copy-memory": ("copy-memory-lstm", "accuracy", False, 0.9, 1 / 8),
    "temporal-order": ("temporal-order-lstm", "accuracy", False, 0.9, "baseline_accuracy"),
}


@dataclass
class Result:
    final: list[float] = field(default_factory=list)
    solved_at: list[int | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    baseline: float = float("nan")
    errors: list[str] = field(default_factory=list)


def train_in_rounds(reg, template: str, settings: dict[str, str], lr: float | None, steps: int, eval_every: int,
                    solved) -> tuple[Trainer, list[tuple[int, dict]], int | None, float]:
    """Train ``template`` with ``settings`` for ``steps`` steps, validating on the whole validation set every
    ``eval_every`` steps; ``solved(metrics)`` says when the task counts as solved.  Returns the trainer, the
    ``(step, metrics)`` of every validation, the first step at which it was solved (or None) and the seconds taken.
    (benchmarks/adding_problem.py runs its cells the same way.)"""
    if lr is not None:
        settings = {**settings, "lr": str(lr)}
    project, _ = template_project(reg.template(template), settings, reg)
    trainer = Trainer(project, reg)
    trainer.setup()
    evals: list[tuple[int, dict]] = []
    solved_at = None
    t0 = time.perf_counter()
    done = 0
    while done < steps:
        chunk = min(eval_every, steps - done)
        trainer.fit(steps=chunk, final_eval=False)
        done += chunk
        metrics = trainer.evaluate("valid", max_batches=0)
        evals.append((done, metrics))
        if solved_at is None and solved(metrics):
            solved_at = done
    return trainer, evals, solved_at, time.perf_counter() - t0


def run_one(reg, args, task: str, cell: str, length: int, seed: int) -> tuple[float, int | None, float, float]:
    template, metric, lower, threshold, baseline_key = TASKS[task]
    settings = {"cell": cell, "length": str(length), "hidden_size": str(args.hidden), "seed": str(seed),
                "threads": str(args.threads), "eval_every": "0", "probe_every": "0",
                "task.valid_size": str(args.valid_size)}

    def solved(metrics: dict) -> bool:
        return metrics[metric] < threshold if lower else metrics[metric] > threshold

    _, evals, solved_at, seconds = train_in_rounds(reg, template, settings, args.lr_for.get(cell, args.lr),
                                                   args.steps, args.eval_every, solved)
    if not evals:
        return float("nan"), None, seconds, float("nan")
    last = evals[-1][1]
    baseline = last[baseline_key] if isinstance(baseline_key, str) else baseline_key
    return last[metric], solved_at, seconds, baseline


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=sorted(TASKS), default="adding")
    ap.add_argument("--lengths", type=int, nargs="+", default=[50, 100, 200], help="sequence lengths T")
    ap.add_argument("--cells", nargs="+", default=["rnn", "irnn", "lstm", "gru"])
    ap.add_argument("--steps", type=int, default=3000, help="training steps per run")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--lr", type=float, default=None, help="learning rate (default: the template's)")
    ap.add_argument("--cell-lr", action="append", default=[], metavar="CELL=LR",
                    help="learning rate for one cell, e.g. irnn=0.001 (repeatable)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--valid-size", type=int, default=1000)
    args = ap.parse_args(argv)
    args.lr_for = {}
    for item in args.cell_lr:
        cell, _, value = item.partition("=")
        args.lr_for[cell] = float(value)

    reg = discover()
    missing = [c for c in args.cells if not reg.has("cell", c)]
    if missing:
        print(f"not registered, skipped: {', '.join(missing)}", file=sys.stderr)
    cells = [c for c in args.cells if c not in missing]
    _, metric, lower, threshold, _ = TASKS[args.task]
    print(f"{args.task}: {args.steps} steps, hidden {args.hidden}, seeds {args.seeds}, valid {args.valid_size}; "
          f"solved = {metric} {'<' if lower else '>'} {threshold}", flush=True)
    results: dict[tuple[int, str], Result] = {}
    for length in args.lengths:
        for cell in cells:
            r = results.setdefault((length, cell), Result())
            for seed in args.seeds:
                try:
                    value, solved_at, seconds, baseline = run_one(reg, args, args.task, cell, length, seed)
                except Exception as exc:  # noqa: BLE001 - a diverging run is a result too
                    r.errors.append(f"seed {seed}: {str(exc).splitlines()[0]}")
                    print(f"  T={length} {cell} seed {seed}: failed: {r.errors[-1]}", flush=True)
                    continue
                r.final.append(value)
                r.solved_at.append(solved_at)
                r.seconds.append(seconds)
                r.baseline = baseline
                print(f"  T={length} {cell} seed {seed}: {metric} {value:.4f} (baseline {baseline:.4f}), "
                      f"solved at {solved_at or '-'}, {seconds:.1f}s", flush=True)

    print()
    head = f"{'T':>5} {'cell':<8} {metric + ' (mean)':>14} {'range':>17} {'baseline':>9} {'solved':>7} " \
           f"{'steps to solve':>15} {'s/run':>7}"
    print(head)
    print("-" * len(head))
    for (length, cell), r in results.items():
        n = len(args.seeds)
        if not r.final:
            print(f"{length:>5} {cell:<8} {'failed':>14}  {'; '.join(r.errors)}")
            continue
        solved = [s for s in r.solved_at if s is not None]
        steps = f"{statistics.median(solved):.0f}" if solved else "-"
        rng = f"{min(r.final):.4f}-{max(r.final):.4f}"
        print(f"{length:>5} {cell:<8} {statistics.mean(r.final):>14.4f} {rng:>17} {r.baseline:>9.4f} "
              f"{len(solved):>3}/{n:<3} {steps:>15} {statistics.mean(r.seconds):>7.1f}"
              + (f"  ({len(r.errors)} failed)" if r.errors else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
