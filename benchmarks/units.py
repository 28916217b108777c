"""Units the unit search finds in a trained char-LM: the README's "Looking inside" table, measured by its commands.

Runs, in a fresh folder, what the README shows (and what docs/images/take_inspect_screenshots.py expects of the
project it pictures), each command in its own process:

    seqwb new char-lm -o py.seqwb --set threads=N
    seqwb train py.seqwb --steps 2000 --set batch_size=16
    seqwb eval py.seqwb --split valid --json
    seqwb units py.seqwb --sample 4000 --feature FEATURE --top 1 --json      # for every built-in feature track

    python benchmarks/units.py                          # the README's run, 1 thread
    python benchmarks/units.py --smoke --json /tmp/u.json   # 5 steps: checks the plumbing only

Figures go to ``benchmarks/results/units.json`` (``--json`` elsewhere).  ``--seq2seq`` measures the README's other
unit, the decoder unit of the seq2seq-attention template that follows the dashes it writes:

    seqwb new seq2seq-attention -o dates.seqwb --set threads=N
    seqwb train dates.seqwb --steps 600
    seqwb units dates.seqwb --feature "regex:-" --layer decoder.0 --top 1 --json

into ``benchmarks/results/units-seq2seq.json``.
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
SEQ2SEQ_RESULTS = ROOT / "benchmarks" / "results" / "units-seq2seq.json"
#: the built-in feature tracks, in the README's order
FEATURES = ("quotes", "brackets", "word_start", "line_position", "indent", "comment")


def seqwb(*args: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "workbench", *args], cwd=cwd, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"seqwb {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def write(path: Path, doc: dict) -> None:
    from workbench.atomic import atomic_write
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as fh:
        fh.write(json.dumps(doc, indent=1) + "\n")


def seq2seq_unit(args) -> int:
    """The decoder unit of a trained seq2seq-attention model that best follows the dashes it writes (the README's
    date-normalisation picture)."""
    steps = 5 if args.smoke else 600      # the template's own budget
    load_start = os.getloadavg()[0]
    feature, layer = "regex:-", "decoder.0"
    with tempfile.TemporaryDirectory(prefix="seqwb-units-") as tmp:
        folder = Path(tmp)
        seqwb("new", "seq2seq-attention", "-o", "dates.seqwb", "--set", f"threads={args.threads}", cwd=folder)
        seqwb("train", "dates.seqwb", "--steps", str(steps), "--quiet", cwd=folder)
        out = json.loads(seqwb("units", "dates.seqwb", "--feature", feature, "--layer", layer, "--top", "1",
                               "--json", cwd=folder))
    best = out["units"][0]
    doc = {"command": "python benchmarks/units.py --seq2seq" + (" --smoke" if args.smoke else ""),
           "measured": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
           "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
           "train": f"seqwb train dates.seqwb --steps {steps}", "threads": args.threads, "feature": feature,
           "layer": best["layer"], "unit": best["unit"], "r": best["r"], "chars": out["chars"], "step": out["step"]}
    write(Path(args.json) if args.json else SEQ2SEQ_RESULTS, doc)
    print(f"{layer} unit {best['unit']}, r = {best['r']:+.3f} over {out['chars']:,} characters")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--sample", type=int, default=4000, help="validation characters the search reads")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true", help="5 steps: checks that it runs")
    ap.add_argument("--seq2seq", action="store_true", help="the seq2seq-attention decoder's dash unit instead")
    ap.add_argument("--json", metavar="FILE", help=f"write here (default: {RESULTS.relative_to(ROOT)})")
    args = ap.parse_args(argv)
    if args.smoke and not args.json:
        ap.error("--smoke needs --json FILE: its figures are not results")
    if args.seq2seq:
        return seq2seq_unit(args)
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
    out_path = Path(args.json) if args.json else RESULTS
    write(out_path, doc)
    print(f"validation {valid['metrics'].get('bpc', float('nan')):.3f} bits per character; wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
