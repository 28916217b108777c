"""Opening a project file at launch (``seqwb FILE``): the time to the window's first paint and to the file being in
the window, from spawning the process.

Each run starts a fresh process running ``run_app(FILE)`` with ``SEQWB_STARTUP_PROBE=1``: the window notes its first
paint (and what its title said then), waits until the file is in, prints both times and quits.  Without ``FILE``
the script makes a character language model with trained weights of about 4 MB in a temporary folder (a few
seconds of training).

    python benchmarks/open_file.py --runs 5                          # offscreen
    DISPLAY=:98 python benchmarks/open_file.py --runs 5 --platform xcb
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _results beside it, also when imported
from _results import figures_writer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHILD = "import sys; from workbench.gui.app import run_app; raise SystemExit(run_app(sys.argv[1]))"


def make_file(folder: Path) -> Path:
    """A char-LM (2 x LSTM 128) trained for 2 steps on 20,000 characters: weights and optimizer state, ~4 MB."""
    path = folder / "four-mb.seqwb"
    seqwb = [sys.executable, "-m", "workbench"]
    subprocess.run(seqwb + ["new", "char-lm", "-o", str(path), "--set", "hidden_size=128", "--set", "steps=2",
                            "--set", "eval_every=0", "--set", "sample_every=0", "--set", "probe_every=0",
                            "--set", "task.max_chars=20000"], check=True, cwd=ROOT, capture_output=True)
    subprocess.run(seqwb + ["train", str(path)], check=True, cwd=ROOT, capture_output=True)
    return path


def one_run(path: Path, platform: str, config_dir: str) -> dict:
    env = dict(os.environ)
    env.update({"SEQWB_STARTUP_PROBE": "1", "QT_QPA_PLATFORM": platform, "XDG_CONFIG_HOME": config_dir,
                "SEQWB_RECOVERY_DIR": str(Path(config_dir) / "recovery")})
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    start = time.time()
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("{")), None)
    if out.returncode != 0 or line is None:
        raise SystemExit(f"the app did not report (exit {out.returncode}):\n{out.stderr}")
    report = json.loads(line)
    marks = report["marks"]
    return {"first_paint": marks["painted"] - start, "loaded": marks.get("loaded", marks["painted"]) - start,
            "title_at_first_paint": report.get("title"), "opened": report.get("opened")}


write_figures = figures_writer(__file__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", help="a .seqwb file (default: a ~4 MB char-LM made for the run)")
    parser.add_argument("--runs", type=int, default=5, help="runs (median reported)")
    parser.add_argument("--platform", default=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
                        help="Qt platform plugin: offscreen (default) or xcb")
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="write the figures as JSON to FILE (alone: print them after the table)")
    args = parser.parse_args(argv)
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="seqwb-open-") as folder:
        path = Path(args.file) if args.file else make_file(Path(folder))
        one_run(path, args.platform, folder)          # unmeasured: fills the bytecode cache
        runs = [one_run(path, args.platform, folder) for _ in range(args.runs)]
        size = path.stat().st_size
    paint = statistics.median(r["first_paint"] for r in runs)
    loaded = statistics.median(r["loaded"] for r in runs)
    print(f"{path.name}: {size / 1e6:.1f} MB, {args.runs} runs on {args.platform}, median from spawning the process")
    print(f"  first paint        {paint:.2f} s   (title then: {runs[-1]['title_at_first_paint']!r})")
    print(f"  file in the window {loaded:.2f} s   (opened: {all(r['opened'] for r in runs)})")
    print(f"  load average now   {os.getloadavg()[0]:.2f}")
    if args.json:
        write_figures(args.json, {"file_bytes": size, "runs": args.runs, "platform": args.platform,
                                  "first_paint_s": paint, "loaded_s": loaded, "all": runs}, load_start, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
