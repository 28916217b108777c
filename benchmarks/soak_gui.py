"""Soak: the window trains the char-LM template for N minutes with every dashboard plot live; is memory flat and
does the window stay responsive to the end?

The project is the char-LM template (embedding 64 -> 2 x LSTM 256 -> linear, batch 32, chunk 100, on the Python
standard library's source) with its probes on: validation every 200 steps, samples every 200, gradient through
time and the singular values of the recurrent matrices every 100.  Only ``steps`` is raised, so that the run
outlasts the soak.  A child process opens the main window on the Training tab (dashboard plots live), presses
Run ▸ Train and, N minutes after the first step, Stop.  It reports:

- the resident set size (RSS, from ``/proc/self/statm``) when the window is up, at the first step, at about ten
  points in between and after the run has ended; and the number of objects Python's collector tracks at the first
  step and at the end (a leak of Python objects shows there first);
- the lateness of a 10 ms precise ``QTimer`` (lateness = interval - 10 ms) in the first and in the last minute of
  training: p50, p99 and max;
- steps done, the training events the dashboard received per kind (steps, evaluations, probes, samples), events
  the bounded buffer dropped, and the dashboard's redraws.

    python benchmarks/soak_gui.py                       # 30 minutes, offscreen
    python benchmarks/soak_gui.py --quick               # 2 minutes
    DISPLAY=:95 python benchmarks/soak_gui.py --platform xcb --minutes 60 --json soak.json
    python benchmarks/soak_gui.py --minutes 0.15 --hidden 16 --probe-every 2 --sample-every 4 --eval-every 4 \\
        --max-chars 40000                               # smoke (seconds; tests/benchmarks/test_soak_smoke.py)

Settings, recent files and recovery files go to temporary folders, never the user's.
"""

from __future__ import annotations

import argparse
import array
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICK_S = 0.010


def make_project(path: Path, args: argparse.Namespace) -> None:
    from workbench.core.projectfile import project_plugins_used, save_project
    from workbench.core.settings import template_project
    from workbench.plugin_system import discover
    reg = discover()
    settings = {"hidden_size": str(args.hidden), "steps": "10000000", "device": "cpu"}
    for name in ("probe_every", "sample_every", "eval_every"):
        value = getattr(args, name)
        if value is not None:
            settings[name] = str(value)
    if args.max_chars:
        settings["task.max_chars"] = str(args.max_chars)
    project, _ = template_project(reg.template("char-lm"), settings, reg)
    save_project(project, path, plugins_used=project_plugins_used(project, reg))


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (2**20 if sys.platform == "darwin" else 2**10)


def percentiles(values: array.array) -> dict:
    ms = sorted(v * 1000 for v in values)
    if not ms:
        return {"ticks": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {"ticks": len(ms), "p50_ms": round(statistics.median(ms), 2),
            "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 2), "max_ms": round(ms[-1], 2)}


# ---- the window (child process) --------------------------------------------------------------------------------

def window_child(path: str, minutes: float, window_s: float, points: int) -> None:
    import gc

    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication
    app = QApplication(sys.argv[:1])
    from workbench.core.projectfile import load_project
    from workbench.gui.mainwindow import MainWindow
    from workbench.plugin_system import discover
    reg = discover()
    project = load_project(path, registry=reg)
    win = MainWindow(reg, project, path, detect_device=False)
    win.resize(1400, 900)
    win.show()
    win.show_dashboard()
    duration = minutes * 60.0
    window_s = min(window_s, duration / 2)

    first, last = array.array("d"), array.array("d")     # preallocated-style storage: no per-tick objects kept
    rss: list[dict] = []
    counts = {"step": 0, "eval": 0, "probe": 0, "sample": 0}
    state: dict = {"t0": None, "prev": None, "end": None, "stopping": False, "step": 0, "objects_start": None}

    def tracked_objects() -> int:
        return len(gc.get_objects()) + gc.get_freeze_count()   # frozen while a run is live: count those too

    def mark(label: str) -> None:
        elapsed = None if state["t0"] is None else round(time.perf_counter() - state["t0"], 1)
        rss.append({"at": label, "elapsed_s": elapsed, "step": state["step"], "rss_mb": round(rss_mb(), 1)})
        print(f"PROGRESS {json.dumps(rss[-1])}", flush=True)

    def tick() -> None:
        now = time.perf_counter()
        prev, state["prev"] = state["prev"], now
        t0 = state["t0"]
        if t0 is None or prev is None or state["stopping"]:
            return
        late = max(0.0, now - prev - TICK_S)
        elapsed = now - t0
        if elapsed <= window_s:
            first.append(late)
        elif elapsed >= duration - window_s:
            last.append(late)
        if elapsed >= duration:
            state["stopping"] = True
            mark("before stop")
            win.runs.stop()

    def sample_rss() -> None:
        if state["t0"] is not None and not state["stopping"]:
            mark("during")

    def on_events(events) -> None:
        for kind, ev in events:
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "step":
                state["step"] = ev.step
                if state["t0"] is None:
                    # from the first step: set-up (torch, data, model) is not part of the soak
                    state["t0"] = time.perf_counter()
                    state["prev"] = None
                    state["objects_start"] = tracked_objects()
                    mark("first step")
                    rss_timer.start()

    def on_end(end) -> None:
        state["end"] = end
        rss_timer.stop()
        QTimer.singleShot(500, finish)      # the last drain, the final redraw

    def finish() -> None:
        mark("after the run ended")
        state["objects_end"] = tracked_objects()
        win.doc.undo_stack.setClean()        # quit() closes the window: nothing to ask
        app.quit()

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(round(TICK_S * 1000))
    timer.timeout.connect(tick)
    rss_timer = QTimer()
    rss_timer.setInterval(max(1000, round(duration * 1000 / max(1, points))))
    rss_timer.timeout.connect(sample_rss)
    win.bridge.eventsReady.connect(on_events)
    win.bridge.runEnded.connect(on_end)
    timer.start()
    mark("window shown")
    QTimer.singleShot(300, win.runs.train)
    app.exec()
    end = state["end"]
    dash = win.dashboard
    out = {"status": end.status if end else "?", "message": end.message if end else "",
           "minutes": minutes, "lateness_window_s": window_s, "steps": state["step"],
           "first": percentiles(first), "last": percentiles(last), "rss": rss,
           "objects_first_step": state["objects_start"], "objects_end": state.get("objects_end"),
           "events": counts, "dropped": win.bridge.buffer.dropped,
           "redraws": dash.redraws if dash is not None else 0,
           "autosaves": getattr(getattr(win, "recovery", None), "writes", None),   # copies written (recovery)
           "threads": dash.status.text() if dash is not None else ""}
    print("RESULT " + json.dumps(out), flush=True)


def child_env(platform: str, scratch: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["QT_QPA_PLATFORM"] = platform
    # never the user's settings, recent files or recovery files
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("SEQWB_RECOVERY_DIR", "recovery")):
        (scratch / sub).mkdir(exist_ok=True)
        env[var] = str(scratch / sub)
    return env


def run_soak(args: argparse.Namespace) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="seqwb-soak-"))
    try:
        path = scratch / "soak.seqwb"
        sys.path.insert(0, str(ROOT))
        make_project(path, args)
        cmd = [sys.executable, __file__, "--child-window", str(path), "--minutes", str(args.minutes),
               "--window", str(args.window), "--points", str(args.points)]
        proc = subprocess.Popen(cmd, env=child_env(args.platform, scratch), cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + args.minutes * 60 + 900
        result = None
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("PROGRESS ") and not args.quiet:
                p = json.loads(line[len("PROGRESS "):])
                load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
                print(f"  {p['at']:>20}: t={p['elapsed_s'] if p['elapsed_s'] is not None else '-':>7} s  step "
                      f"{p['step']:>6}  RSS {p['rss_mb']:7.1f} MiB  (load {load:.2f})", flush=True)
            elif line.startswith("RESULT "):
                result = json.loads(line[len("RESULT "):])
            if time.monotonic() > deadline:
                proc.kill()
                break
        stderr = proc.stderr.read() if proc.stderr is not None else ""
        code = proc.wait()
        if code != 0 or result is None:
            raise SystemExit(f"the soak window failed (exit {code}):\n{stderr[-3000:]}")
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training time from the first step (30)")
    parser.add_argument("--quick", action="store_true", help="2 minutes")
    parser.add_argument("--window", type=float, default=60.0, help="seconds at the start and at the end over which "
                                                                   "lateness is measured (60)")
    parser.add_argument("--points", type=int, default=10, help="RSS samples between start and end (10)")
    parser.add_argument("--hidden", type=int, default=256, help="LSTM units per layer (256: the template)")
    parser.add_argument("--probe-every", type=int, default=None, help="the template's unless given")
    parser.add_argument("--sample-every", type=int, default=None, help="the template's unless given")
    parser.add_argument("--eval-every", type=int, default=None, help="the template's unless given")
    parser.add_argument("--max-chars", type=int, default=0, help="corpus characters (0: the template's)")
    parser.add_argument("--platform", default=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    parser.add_argument("--json", help="also write the result to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--child-window", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.minutes = 2.0
    if args.child_window:
        window_child(args.child_window, args.minutes, args.window, args.points)
        return 0

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"soak: char-LM 2 x LSTM {args.hidden} in the window for {args.minutes:g} min (Training tab, plots live), "
          f"CPU with {cores} cores, platform {args.platform}; load average at start {load0:.2f}", flush=True)
    r = run_soak(args)
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    r["load_start"], r["load_end"] = load0, load1
    rss = r["rss"]
    start = next(p for p in rss if p["at"] == "first step")
    print(f"\nstatus {r['status']} at step {r['steps']} ({r['threads']})")
    print(f"RSS: window shown {rss[0]['rss_mb']:.1f} MiB, first step {start['rss_mb']:.1f} MiB, before stop "
          f"{next((p['rss_mb'] for p in rss if p['at'] == 'before stop'), float('nan')):.1f} MiB, after the run "
          f"{rss[-1]['rss_mb']:.1f} MiB")
    print(f"tracked Python objects: {r['objects_first_step']:,} at the first step, {r['objects_end']:,} at the end")
    for label in ("first", "last"):
        q = r[label]
        print(f"lateness of a 10 ms timer, {label} {r['lateness_window_s']:g} s: p50 {q['p50_ms']} ms, p99 "
              f"{q['p99_ms']} ms, max {q['max_ms']} ms over {q['ticks']} ticks")
    ev = r["events"]
    print(f"events received: steps {ev.get('step', 0)}, evaluations {ev.get('eval', 0)}, probes "
          f"{ev.get('probe', 0)}, samples {ev.get('sample', 0)}; dropped by the buffer {r['dropped']}; dashboard "
          f"redraws {r['redraws']}")
    print(f"autosaved recovery copies written: {r.get('autosaves')}")
    print(f"load average: {load0:.2f} at start, {load1:.2f} at end")
    if args.json:
        from workbench.atomic import atomic_write
        with atomic_write(args.json, "w") as fh:
            json.dump(r, fh, indent=1)
    return 0 if r["status"] in ("stopped", "finished") else 1


if __name__ == "__main__":
    raise SystemExit(main())
