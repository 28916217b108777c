"""Units the unit search finds in a trained char-LM: the README's "Looking inside" table, measured by its commands.

Runs, in a fresh folder, what the README shows (and what docs/images/take_inspect_screenshots.py expects of the
project it pictures), each command in its own process:

    seqwb new char-lm -o py.seqwb --set threads=N
    seqwb train py.seqwb --steps 2000 --set batch_size=16
    seqwb eval py.seqwb --split valid --json
    seqwb units py.seqwb --sample 4000 --feature FEATURE --top 1 --json      # for every built-in feature track

    python benchmarks/units.py                          # the README's run, 1 thread
    python benchmarks/units.py --smoke --json /tmp/u.json   # 5 steps: checks the plumbing only

Figures go to ``benchmarks/results/units.json`` (``--json`` elsewhere).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "units.json"
#: the built-in feature tracks, in the README's order
FEATURES = ("quotes", "brackets", "word_start", "line_position", "indent", "comment")


def seqwb(*args: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "workbench", *args], cwd=cwd, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"seqwb {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--sample", type=int, default=4000, help="validation characters the search reads")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true", help="5 steps: checks that it runs")
    ap.add_argument("--json", metavar="FILE", help=f"write here (default: {RESULTS.relative_to(ROOT)})")
    args = ap.parse_args(argv)
    if args.smoke and not args.json:
        ap.error("--smoke needs --json FILE: its figures are not results")
    steps = 5 if args.smoke else args.steps
    load_start = os.getloadavg()[0]
    train_cmd = f"seqwb train py.seqwb --steps {steps} --set batch_size={args.batch}"
    with tempfile.TemporaryDirectory(prefix="seqwb-units-") as tmp:
        folder = Path(tmp)
        seqwb("new", "char-lm", "-o", "py.seqwb", "--set", f"threads={args.threads}", cwd=folder)
        t0 = time.perf_counter()
        seqwb("train", "py.seqwb", "--steps", str(steps), "--set", f"batch_size={args.batch}", "--quiet", cwd=folder)
        train_s = time.perf_counter() - t0
        valid = json.loads(seqwb("eval", "py.seqwb", "--split", "valid", "--json", cwd=folder))
        found = []
        for feature in FEATURES:
            out = json.loads(seqwb("units", "py.seqwb", "--sample", str(args.sample), "--feature", feature,
                                   "--top", "1", "--json", cwd=folder))
            best = out["units"][0]
            found.append({"feature": feature, "title": out["title"], "layer": best["layer"], "unit": best["unit"],
                          "r": best["r"], "chars": out["chars"], "step": out["step"]})
            print(f"{out['title']:<20} {best['layer']} unit {best['unit']:<4} r = {best['r']:+.3f}", flush=True)
    doc = {"command": "python benchmarks/units.py" + (" --smoke" if args.smoke else ""),
           "measured": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
           "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
           "train": train_cmd, "threads": args.threads, "train_wall_s": round(train_s, 1), "sample": args.sample,
           "valid": valid["metrics"], "features": found}
    from workbench.atomic import atomic_write
    out_path = Path(args.json) if args.json else RESULTS
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out_path, "w") as fh:
        fh.write(json.dumps(doc, indent=1) + "\n")
    print(f"validation {valid['metrics'].get('bpc', float('nan')):.3f} bits per character; wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
