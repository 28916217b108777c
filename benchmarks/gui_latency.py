"""Responsiveness of the window while it trains, and training throughput behind the window vs headless.

The project is the char-LM template (embedding 64 -> 2 x LSTM 256 -> linear, batch 32, chunk 100) on the CPU, with
validation, probes and samples during the run so that the dashboard has everything to draw.  Three kinds of run
alternate (window, headless, headless with the window's threads, window, ...) so that drift in the machine's load
hits all alike; each is a fresh process on a fresh copy of the project:

- **window**: the app's main window (on the Training tab, plots live) trains the project with Run ▸ Train and the
  default thread setting (every core, the training thread below the window's priority, on Linux).  A 10 ms ``QTimer`` (precise) records how late each of its ticks comes:
  lateness = interval - 10 ms.  p50, p99 and max over the whole run (from the first step to the end).
- **headless**: ``seqwb train FILE --steps N --json`` with its default thread setting (all cores).
- **headless, same threads**: the same with ``--set threads=N`` where N is the window's thread count, which
  isolates what the window itself costs from what the thread count changes.

Throughput is tokens per second between the first and the last step (set-up and the first step, which pays for
oneDNN's warm-up, are left out), from the step events' elapsed times; the ratio is window / headless, per pair
and of the medians.

    python benchmarks/gui_latency.py                          # 3 rounds x 40 steps, offscreen
    DISPLAY=:96 python benchmarks/gui_latency.py --platform xcb
    python benchmarks/gui_latency.py --pairs 1 --steps 6 --hidden 32     # smoke
    python benchmarks/gui_latency.py --window-threads 1       # the window on 1 thread instead of its default
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _results beside it, also when imported
from _results import figures_writer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def make_project(path: Path, steps: int, hidden: int, threads: int = 0) -> None:
    from workbench.core.projectfile import project_plugins_used, save_project
    from workbench.core.settings import template_project
    from workbench.plugin_system import discover
    reg = discover()
    every = max(2, steps // 4)
    project, _ = template_project(reg.template("char-lm"), {
        "hidden_size": str(hidden), "steps": str(steps), "log_every": "1", "device": "cpu",
        "eval_every": str(every), "eval_batches": "5", "probe_every": str(max(2, steps // 8)),
        "sample_every": str(every), "sample_len": "100", "task.max_chars": "400000",
        **({"threads": str(threads)} if threads else {})}, reg)
    save_project(project, path, plugins_used=project_plugins_used(project, reg))


def env_for(platform: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["QT_QPA_PLATFORM"] = platform
    env["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="seqwb-bench-cfg-")   # never the user's settings
    return env


def throughput(points: list[tuple[int, float]], tokens_per_step: int) -> float:
    """Tokens per second between the first and the last (step, elapsed) point."""
    (s0, t0), (s1, t1) = points[0], points[-1]
    return (s1 - s0) * tokens_per_step / max(t1 - t0, 1e-9)


# ---- the window (child process) ------------------------------------------------------------------------------

def window_child(path: str) -> None:
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication
    app = QApplication(sys.argv[:1])
    from workbench.core.projectfile import load_project
    from workbench.gui.mainwindow import MainWindow
    from workbench.plugin_system import discover
    reg = discover()
    project = load_project(path, registry=reg)
    cfg = project.train
    win = MainWindow(reg, project, path, detect_device=False)
    win.resize(1400, 900)
    win.show()
    win.show_dashboard()

    lateness: list[float] = []
    points: list[tuple[int, float]] = []
    state = {"last": None, "measuring": False, "end": None, "cpu0": 0.0, "cpu1": 0.0, "wall0": 0.0, "wall1": 0.0}
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(10)

    def tick() -> None:
        now = time.perf_counter()
        if state["measuring"] and state["last"] is not None:
            lateness.append(max(0.0, now - state["last"] - 0.010))
        state["last"] = now

    def on_events(events) -> None:
        for kind, ev in events:
            if kind == "step":
                points.append((ev.step, ev.elapsed))
                if not state["measuring"]:      # from the first step: set-up (torch, data, model) is not measured
                    state["measuring"] = True
                    state["last"] = None
                    state["cpu0"], state["wall0"] = time.thread_time(), time.perf_counter()

    def on_end(end) -> None:
        state["measuring"] = False
        state["cpu1"], state["wall1"] = time.thread_time(), time.perf_counter()
        state["end"] = end
        win.doc.undo_stack.setClean()         # quit() closes the window: nothing to ask
        QTimer.singleShot(0, app.quit)

    timer.timeout.connect(tick)
    win.bridge.eventsReady.connect(on_events)
    win.bridge.runEnded.connect(on_end)
    timer.start()
    QTimer.singleShot(300, win.runs.train)
    app.exec()
    end = state["end"]
    ms = sorted(v * 1000 for v in lateness)
    out = {"status": end.status if end else "?", "message": end.message if end else "", "ticks": len(ms),
           "p50_ms": statistics.median(ms) if ms else None,
           "p99_ms": ms[min(len(ms) - 1, int(0.99 * len(ms)))] if ms else None, "max_ms": ms[-1] if ms else None,
           "tokens_per_s": throughput(points[1:], cfg.batch_size * cfg.chunk_len) if len(points) > 2 else None,
           "steps": points[-1][0] if points else 0, "redraws": win.dashboard.redraws,
           "threads": win.dashboard.status.text(),
           # the GUI thread's own CPU time over the measured part of the run, as a share of one core
           "gui_cpu": (state["cpu1"] - state["cpu0"]) / max(state["wall1"] - state["wall0"], 1e-9)}
    print("RESULT " + json.dumps(out), flush=True)


def run_window(path: Path, platform: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child-window", str(path)], env=env_for(platform), cwd=ROOT,
                         capture_output=True, text=True, timeout=3600)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise SystemExit(f"the window run failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def run_headless(path: Path, steps: int, tokens_per_step: int, platform: str, threads: int = 0) -> dict:
    extra = ["--set", f"threads={threads}"] if threads else []
    out = subprocess.run([sys.executable, "-m", "workbench", "train", str(path), "--steps", str(steps), "--json",
                          *extra], env=env_for(platform), cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"the headless run failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    points = []
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            doc = json.loads(line)
            if doc.get("event") == "step":
                points.append((doc["step"], doc["elapsed_s"]))
    return {"tokens_per_s": throughput(points[1:], tokens_per_step), "steps": points[-1][0] if points else 0}


write_figures = figures_writer(__file__)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3, help="rounds of window / headless / headless with the "
                                                                "window's threads (medians reported)")
    parser.add_argument("--steps", type=int, default=40, help="training steps per run")
    parser.add_argument("--hidden", type=int, default=256, help="LSTM units per layer (256: the template)")
    parser.add_argument("--platform", default=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    parser.add_argument("--window-threads", type=int, default=0,
                        help="threads for the window's runs (saved in its project; 0: the window's default); "
                             "the third kind of run then uses as many")
    parser.add_argument("--child-window", help=argparse.SUPPRESS)
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="write the figures as JSON to FILE (alone: print them after the table)")
    args = parser.parse_args()
    if args.child_window:
        window_child(args.child_window)
        return 0

    folder = Path(tempfile.mkdtemp(prefix="seqwb-gui-latency-"))
    template = folder / "template.seqwb"
    sys.path.insert(0, str(ROOT))
    make_project(template, args.steps, args.hidden)
    window_template = template
    if args.window_threads:
        window_template = folder / "window-template.seqwb"
        make_project(window_template, args.steps, args.hidden, args.window_threads)
    tokens_per_step = 32 * 100
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"char-LM 2 x LSTM {args.hidden}, batch 32, chunk 100, {args.steps} steps per run, CPU with {cores} "
          f"cores; platform {args.platform}")
    from workbench.core.device import default_threads
    window_threads = args.window_threads or default_threads(behind_window=True)
    windows, headless, same, loads = [], [], [], []
    for i in range(args.pairs):
        for kind in ("window", "headless", "same"):
            path = folder / f"{kind}-{i}.seqwb"
            shutil.copy(window_template if kind == "window" else template, path)
            loads.append(os.getloadavg()[0])
            if kind == "window":
                r = run_window(path, args.platform)
                windows.append(r)
                print(f"window   {i + 1}: lateness p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max "
                      f"{r['max_ms']:.1f} ms over {r['ticks']} ticks; {r['tokens_per_s']:,.0f} tokens/s "
                      f"({r['threads']}; {r['redraws']} redraws; GUI thread {100 * r['gui_cpu']:.0f} % of a core; "
                      f"{r['status']})", flush=True)
            elif kind == "headless":
                r = run_headless(path, args.steps, tokens_per_step, args.platform)
                headless.append(r)
                print(f"headless {i + 1}: {r['tokens_per_s']:,.0f} tokens/s ({cores} threads)", flush=True)
            else:
                r = run_headless(path, args.steps, tokens_per_step, args.platform, window_threads)
                same.append(r)
                print(f"headless {i + 1}: {r['tokens_per_s']:,.0f} tokens/s ({window_threads} thread"
                      f"{'s' if window_threads > 1 else ''}, as the window)", flush=True)
    loads.append(os.getloadavg()[0])
    med = statistics.median
    ratio = med(w["tokens_per_s"] for w in windows) / med(h["tokens_per_s"] for h in headless)
    pairs = [w["tokens_per_s"] / h["tokens_per_s"] for w, h in zip(windows, headless)]
    print(f"\nlateness of a 10 ms timer (median of runs): p50 {med(w['p50_ms'] for w in windows):.1f} ms, "
          f"p99 {med(w['p99_ms'] for w in windows):.1f} ms, max {med(w['max_ms'] for w in windows):.1f} ms "
          f"(worst max {max(w['max_ms'] for w in windows):.1f} ms)")
    print(f"throughput window / headless: {ratio:.2f} (medians); per pair: {', '.join(f'{p:.2f}' for p in pairs)}")
    ratio_same = med(w["tokens_per_s"] for w in windows) / med(h["tokens_per_s"] for h in same)
    pairs_same = [w["tokens_per_s"] / h["tokens_per_s"] for w, h in zip(windows, same)]
    print(f"throughput window / headless with the window's {window_threads} thread(s): {ratio_same:.2f} (medians); "
          f"per pair: {', '.join(f'{p:.2f}' for p in pairs_same)}")
    print(f"1-minute load average during the runs: {min(loads):.1f} to {max(loads):.1f}")
    if args.json:
        write_figures(args.json, {
            "pairs": args.pairs, "steps": args.steps, "hidden": args.hidden, "platform": args.platform,
            "cores": cores, "window_threads": window_threads, "windows": windows, "headless": headless,
            "same_threads": same, "lateness_ms": {q: med(w[f"{q}_ms"] for w in windows) for q in ("p50", "p99", "max")},
            "worst_max_ms": max(w["max_ms"] for w in windows), "window_over_headless": ratio,
            "window_over_headless_per_pair": pairs, "window_over_same_threads": ratio_same,
            "window_over_same_threads_per_pair": pairs_same, "load_during": [min(loads), max(loads)]},
            loads[0], None)
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
