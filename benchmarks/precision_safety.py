"""Is bfloat16 training safe, not only fast?  Validation loss after a fixed budget of steps, float32 against
bfloat16 autocast, on the char-LM, word-LM and adding-problem templates, over several seeds.

For each template and seed the two precisions start from the same weights and read the same batches.  The noise
is what changing the seed alone does to float32's result (the spread of float32 over seeds); bfloat16 is safe on
a template when its mean validation loss is within that noise of float32's, and the per-seed differences are no
larger than that spread.  The verdicts decide which templates train with ``precision = auto`` (docs/benchmarks.md).

    python benchmarks/precision_safety.py                      # 3 seeds, each template's budget below
    python benchmarks/precision_safety.py --seeds 5 --templates char-lm
    python benchmarks/precision_safety.py --smoke              # seconds: tiny models

Figures go to ``benchmarks/results/precision_safety.json`` (``--json`` elsewhere).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "precision_safety.json"
#: template -> (steps, settings): each template as shipped, with a budget that fits a CPU
BUDGETS = {
    "char-lm": (300, {"eval_batches": "20"}),
    "word-lm": (300, {"eval_batches": "20"}),
    "adding-problem-lstm": (600, {}),
}
SMOKE = {"hidden_size": "16", "eval_batches": "2"}


def validation_loss(reg, template: str, precision: str, seed: int, steps: int, settings: dict, threads: int) -> dict:
    from workbench.core.settings import template_project
    from workbench.core.training.trainer import Trainer
    project, _ = template_project(reg.template(template), {
        **settings, "seed": str(seed), "precision": precision, "steps": str(steps), "epochs": "0",
        "eval_every": "0", "probe_every": "0", "sample_every": "0"}, reg)
    trainer = Trainer(project, reg, base_dir=ROOT, threads=threads)
    t0 = time.perf_counter()
    trainer.fit(final_eval=False)
    seconds = time.perf_counter() - t0
    loss = trainer.evaluate("valid")["loss"]
    return {"precision": trainer.precision.name, "loss": float(loss), "seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--templates", nargs="+", default=list(BUDGETS), choices=list(BUDGETS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    from workbench.plugin_system import discover
    torch.set_num_threads(args.threads)
    reg = discover()
    out_path = Path(args.json) if args.json else RESULTS
    results = {}
    for template in args.templates:
        steps, settings = BUDGETS[template]
        if args.smoke:
            steps, settings = 20, {**settings, **SMOKE}
        rows = []
        for seed in range(1, args.seeds + 1):
            pair = {p: validation_loss(reg, template, p, seed, steps, settings, args.threads) for p in ("fp32", "bf16")}
            rows.append({"seed": seed, "fp32": pair["fp32"]["loss"], "bf16": pair["bf16"]["loss"],
                         "fp32_seconds": pair["fp32"]["seconds"], "bf16_seconds": pair["bf16"]["seconds"],
                         "ran_bf16": pair["bf16"]["precision"] == "bf16"})
            print(f"{template:<20} seed {seed}: valid loss fp32 {rows[-1]['fp32']:.4f}  bf16 {rows[-1]['bf16']:.4f}  "
                  f"({rows[-1]['fp32_seconds']} s / {rows[-1]['bf16_seconds']} s)", flush=True)
        fp32 = [r["fp32"] for r in rows]
        bf16 = [r["bf16"] for r in rows]
        noise = statistics.stdev(fp32) if len(fp32) > 1 else 0.0
        spread = max(fp32) - min(fp32)
        mean_diff = statistics.fmean(bf16) - statistics.fmean(fp32)
        worst_pair = max(abs(b - f) for b, f in zip(bf16, fp32))
        safe = all(r["ran_bf16"] for r in rows) and abs(mean_diff) <= noise and worst_pair <= spread
        results[template] = {"steps": steps, "rows": rows, "fp32_mean": round(statistics.fmean(fp32), 4),
                             "bf16_mean": round(statistics.fmean(bf16), 4), "seed_noise_std": round(noise, 4),
                             "seed_spread": round(spread, 4), "mean_difference": round(mean_diff, 4),
                             "largest_paired_difference": round(worst_pair, 4), "safe": safe}
        print(f"{template:<20} fp32 {results[template]['fp32_mean']:.4f} vs bf16 {results[template]['bf16_mean']:.4f} "
              f"(seed noise: std {noise:.4f}, spread {spread:.4f}; largest paired difference {worst_pair:.4f}): "
              f"{'safe' if safe else 'NOT within the noise'}", flush=True)
    doc = {"seeds": args.seeds, "threads": args.threads, "smoke": args.smoke, "templates": results}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
