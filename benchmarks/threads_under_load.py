"""Thread count and OpenMP wait policy, quiet and under a competing CPU-bound process.

torch's CPU build runs its intra-op threads on GNU OpenMP (libgomp).  Between parallel regions an idle thread
spins before it sleeps (``GOMP_SPINCOUNT``, 300,000 iterations by default; ``OMP_WAIT_POLICY=PASSIVE`` sleeps at
once).  Spinning costs nothing on an idle machine, but when another process wants the same cores the spinning
threads take its time slices, and every barrier waits for a thread that is descheduled: throughput collapses.

Each configuration trains the char-LM template's model (embedding 64, 2 x LSTM 256, batch 32, chunk 100, Adam)
in a fresh process, since the policy is read when the OpenMP runtime starts, for a fixed number of steps after a
warm-up; "loaded" runs one busy Python process beside it.  Rounds alternate the configurations so that drift hits
them alike; the figures are medians of tokens per second.

    python benchmarks/threads_under_load.py               # 2 rounds of every configuration
    python benchmarks/threads_under_load.py --smoke       # seconds: tiny model, 1 round, 2 configurations
    python benchmarks/threads_under_load.py --auto-only --json benchmarks/results/threads_under_load-auto.json
                                                          # the automatic count only, headless and below the window

Figures go to ``benchmarks/results/threads_under_load.json`` (``--json`` elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "threads_under_load.json"
POLICIES = {
    "default": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "spin 10k": {"GOMP_SPINCOUNT": "10000"},
    # as behind the window: the training thread at nice +10 (workbench.core.threads.lower_thread_priority), its
    # OpenMP pool inheriting it; only with the automatic count, which the window uses
    "below window": {"SEQWB_BENCH_BELOW_WINDOW": "1"},
}
WORKER = r"""
import sys, time, json
import torch
from workbench.core.settings import template_project
from workbench.core.training.trainer import Trainer
from workbench.plugin_system import discover
threads, steps, hidden = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
import os
if os.environ.get("SEQWB_BENCH_BELOW_WINDOW"):
    from workbench.core.threads import lower_thread_priority
    assert lower_thread_priority()
reg = discover()
project, _ = template_project(reg.template("char-lm"), {
    "hidden_size": str(hidden), "task.max_chars": "400000", "eval_every": "0", "probe_every": "0",
    "sample_every": "0", "steps": "1000000", "seed": "0"}, reg)
trainer = Trainer(project, reg, threads=threads or None)     # 0: automatic (follows the free cores)
trainer.setup()
trainer.fit(steps=3, final_eval=False)
t0 = time.perf_counter()
trainer.fit(steps=steps, final_eval=False)
dt = time.perf_counter() - t0
cfg = project.train
print(json.dumps({"tokens_per_s": steps * cfg.batch_size * cfg.chunk_len / dt, "threads": torch.get_num_threads(),
                  "changes": trainer.governor.changes if trainer.governor is not None else []}))
"""


def label(threads: int, policy: str, loaded: bool) -> str:
    count = "auto threads" if threads == 0 else f"{threads} thread{'s' if threads > 1 else ''}"
    return f"{count}, {policy}, {'loaded' if loaded else 'quiet'}"


def run_one(threads: int, policy: str, loaded: bool, steps: int, hidden: int) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}
    env.update(POLICIES[policy])
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if loaded else None
    try:
        time.sleep(0.2 if loaded else 0)
        done = subprocess.run([sys.executable, "-c", WORKER, str(threads), str(steps), str(hidden)], env=env,
                              capture_output=True, text=True, timeout=1800)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    if done.returncode != 0:
        raise SystemExit(f"worker failed: {done.stderr[-2000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["tokens_per_s"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--auto-only", action="store_true", help="only the automatic count's rows (headless and as "
                                                               "behind the window)")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    cores = os.cpu_count() or 1
    # 0: the automatic count (every core, then the cores other processes leave free: workbench.core.threads)
    thread_counts = sorted({1, cores}) + ([0] if cores > 1 else [])
    policies = list(POLICIES)
    hidden = 256
    if args.smoke:
        args.rounds, args.steps, hidden, thread_counts, policies = 1, 2, 16, [1, 0], ["default", "passive"]
    configs = [(t, p, load) for load in (False, True) for t in thread_counts for p in policies
               if (t != 0 and p != "below window") or (t == 0 and p in ("default", "below window"))]
    if args.auto_only:
        configs = [c for c in configs if c[0] == 0]
    speeds: dict[str, list[float]] = {}
    for r in range(args.rounds):
        for threads, policy, loaded in configs:
            key = label(threads, policy, loaded)
            tps = run_one(threads, policy, loaded, args.steps, hidden)
            speeds.setdefault(key, []).append(tps)
            print(f"round {r + 1}: {key:<34} {tps:10,.0f} tokens/s", flush=True)
    med = {k: statistics.median(v) for k, v in speeds.items()}
    best_quiet = max(v for k, v in med.items() if k.endswith("quiet"))
    print()
    rows = []
    for threads, policy, loaded in configs:
        key = label(threads, policy, loaded)
        rows.append({"threads": threads or "auto", "policy": policy, "loaded": loaded, "tokens_per_s": round(med[key]),
                     "of_best_quiet": round(med[key] / best_quiet, 3)})
        print(f"{key:<34} {med[key]:10,.0f} tokens/s  {med[key] / best_quiet:6.2f} of the best quiet figure")
    doc = {"cores": cores, "rounds": args.rounds, "steps": args.steps, "hidden": hidden, "smoke": args.smoke,
           "rows": rows}
    out = Path(args.json) if args.json else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
