"""Startup time: from process start to the first painted main window, cold and warm.

Each run starts a fresh Python process that runs the app on its default project with ``SEQWB_STARTUP_PROBE=1``:
the window prints a timestamp once its first paint has been flushed, and quits.  The time is measured from just
before the process is spawned (so it includes the interpreter's own start) to that timestamp.

- **cold**: no bytecode cache for the workbench, its plugins or any other Python module: every run points
  ``PYTHONPYCACHEPREFIX`` at a new empty folder and sets ``PYTHONDONTWRITEBYTECODE``, so Python compiles every
  ``.py`` file it imports, as after a fresh install.  (The operating system's file cache stays warm: this is a cold
  *Python* start, not a cold disk.)
- **warm**: the normal case, with the bytecode cache filled by a first unmeasured run.

Runs alternate cold / warm so that drift in the machine's speed hits both alike.  Settings go to a temporary
folder (``XDG_CONFIG_HOME``), never the user's.

    python benchmarks/startup.py                       # 5 cold + 5 warm runs, offscreen
    python benchmarks/startup.py --runs 3 --platform xcb   # on a real (or Xvfb) display
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
CHILD = "from workbench.gui.app import run_app; raise SystemExit(run_app())"
PHASES = ("app_module", "qapplication", "registry", "window_built", "painted")


def one_run(cold: bool, platform: str, config_dir: str) -> dict:
    env = dict(os.environ)
    env.update({"SEQWB_STARTUP_PROBE": "1", "QT_QPA_PLATFORM": platform, "XDG_CONFIG_HOME": config_dir})
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    with tempfile.TemporaryDirectory(prefix="seqwb-pycache-") as cache:
        if cold:
            env["PYTHONPYCACHEPREFIX"] = cache
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        start = time.time()
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=ROOT, capture_output=True, text=True,
                             timeout=300)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("{")), None)
    if out.returncode != 0 or line is None:
        raise SystemExit(f"the app did not report its first paint (exit {out.returncode}):\n{out.stderr}")
    report = json.loads(line)
    marks = report["marks"]
    return {"total": marks["painted"] - start, "torch_imported": report["torch_imported"],
            **{phase: marks[phase] - start for phase in PHASES}}


write_figures = figures_writer(__file__)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each kind (median reported)")
    parser.add_argument("--platform", default=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
                        help="Qt platform plugin: offscreen (default), xcb with DISPLAY set, ...")
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="write the figures as JSON to FILE (alone: print them instead of the table)")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="seqwb-settings-") as config_dir:
        one_run(False, args.platform, config_dir)   # fills the bytecode cache for the warm runs
        runs: dict[str, list[dict]] = {"cold": [], "warm": []}
        for _ in range(args.runs):
            for kind in ("cold", "warm"):
                runs[kind].append(one_run(kind == "cold", args.platform, config_dir))

    result = {}
    for kind, rs in runs.items():
        result[kind] = {
            "median_s": round(statistics.median(r["total"] for r in rs), 3),
            "min_s": round(min(r["total"] for r in rs), 3),
            "max_s": round(max(r["total"] for r in rs), 3),
            "phases_s": {p: round(statistics.median(r[p] for r in rs), 3) for p in PHASES},
            "torch_imported_before_paint": any(r["torch_imported"] for r in rs),
        }
    if args.json:
        write_figures(args.json, {"runs": args.runs, "platform": args.platform, **result}, load_start, None)
        if args.json == "-":
            return 0
    print(f"Startup to first painted window, median of {args.runs} runs ({args.platform}, Python "
          f"{sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    print(f"{'':6} {'median':>8} {'min':>8} {'max':>8}   phases (median, from process start)")
    for kind, r in result.items():
        phases = "  ".join(f"{p} {r['phases_s'][p]:.2f}" for p in PHASES)
        print(f"{kind:6} {r['median_s']:7.2f}s {r['min_s']:7.2f}s {r['max_s']:7.2f}s   {phases}")
    early = any(r["torch_imported_before_paint"] for r in result.values())
    print(f"torch imported before the first paint: {'YES (a regression)' if early else 'no'}")
    warm = result["warm"]["median_s"]
    print(f"target: warm under 2 s — {'met' if warm < 2.0 else 'NOT met'} ({warm:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
