"""Project files: save and load time of a 10-million-parameter model with the history of a long run.

The project is the char-LM template widened to about 10 million parameters (embedding 64 -> 2 x LSTM 900 ->
linear), set up and trained for two steps by the workbench's own :class:`Trainer` (so the checkpoint holds what a
real run holds: weights, Adam's two moment tensors per parameter, the best weights kept at a validation, RNG and
carried-state tensors), then given the history of a long run: every series the Trainer logged, extended to
``--history`` steps (per-step series at every step, validation every 200 steps, spectral norms and a
gradient-through-time record of ``chunk_len`` = 100 timesteps every 100 steps, a 200-character sample every 200
steps) — the shape and size of a 20,000-step run's history, with made-up numbers.

It is saved with :func:`workbench.core.projectfile.save_project` (what ``seqwb train`` and the window's Save call: temporary
file, fsync, ``.bak`` of the previous version, rename) and loaded with :func:`workbench.core.projectfile.load_project`
(every member checked against the manifest's sha256, the weights read as safetensors), alternately, ``--runs``
times each; the figures are medians.  The file goes to ``--dir`` (default: a fresh folder in the system's temporary
directory) and is deleted afterwards.

    python benchmarks/project_io.py              # full: 9 alternating save/load rounds
    python benchmarks/project_io.py --quick      # 5 rounds
    python benchmarks/project_io.py --smoke      # a tiny model and history, 1 round: checks the script works
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _results beside it, also when imported
from _results import figures_writer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def build_project(reg, hidden: int, history_steps: int, chunk: int, max_chars: int = 200_000):
    """A char-LM project of ``hidden`` units per layer, trained two steps, with a long run's history."""
    import torch

    from workbench.core.settings import template_project
    from workbench.core.training.trainer import Trainer
    project, _ = template_project(reg.template("char-lm"), {
        "hidden_size": str(hidden), "layers": "2", "task.max_chars": str(max_chars)}, reg)
    # two tiny steps are enough to have every tensor a run's checkpoint holds; the probe runs on chunk_len steps
    project.train = dataclasses.replace(project.train, batch_size=2, chunk_len=chunk, probe_len=chunk,
                                        probe_batch=2, eval_every=0, eval_batches=1, sample_every=0,
                                        probe_every=1, threads=1, steps=10 ** 9)
    trainer = Trainer(project, reg)
    trainer.setup()
    trainer.fit(steps=2, final_eval=False)
    trainer.evaluate_and_track()          # keeps the best weights, as a run with validation does
    project.checkpoint = trainer.checkpoint()
    run = project.history.current
    extend_history(run, history_steps, probe_every=100, eval_every=200, sample_every=200)
    n_params = sum(p.numel() for p in trainer.model.parameters())
    del trainer
    torch.set_num_threads(1)
    return project, n_params


def extend_history(run, steps: int, probe_every: int, eval_every: int, sample_every: int) -> None:
    """Give ``run`` the history of a ``steps``-step run with the series names and record shapes it already has."""
    from workbench.core.project import Series
    rng = random.Random(0)

    def walk(n: int, start: float) -> list[float]:
        out, v = [], start
        for _ in range(n):
            v = max(1e-6, v * math.exp(rng.gauss(0, 0.01)))
            out.append(v)
        return out

    for name, series in list(run.series.items()):
        if name.startswith("valid/"):
            every = eval_every
        elif name.startswith("sigma/"):
            every = probe_every
        else:
            every = 1
        step = list(range(every, steps + 1, every))
        run.series[name] = Series(step=step, value=walk(len(step), series.last() or 1.0))
    template = run.gtt[-1]
    gtt = []
    for s in range(probe_every, steps + 1, probe_every):
        layers = {layer: {k: [x * math.exp(rng.gauss(0, 0.1)) for x in v] for k, v in entry.items()}
                  for layer, entry in template["layers"].items()}
        gtt.append({"step": s, "layers": layers})
    run.gtt = gtt
    letters = "abcdefghijklmnopqrstuvwxyz ():.\n    "
    run.samples = [{"step": s, "text": "".join(rng.choice(letters) for _ in range(200))}
                   for s in range(sample_every, steps + 1, sample_every)]


write_figures = figures_writer(__file__)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 rounds (well under 2 minutes)")
    ap.add_argument("--smoke", action="store_true", help="tiny model and history, 1 round: checks that it runs")
    ap.add_argument("--runs", type=int, default=9, help="alternating save/load rounds")
    ap.add_argument("--hidden", type=int, default=900, help="units per LSTM layer (900: about 10 M parameters)")
    ap.add_argument("--history", type=int, default=20000, help="steps of the run whose history the project holds")
    ap.add_argument("--dir", default="", help="where to write the file (default: a new temporary folder)")
    ap.add_argument("--json", nargs="?", const="-", metavar="FILE",
                    help="write the figures as JSON to FILE (alone: print them instead of the table)")
    args = ap.parse_args(argv)
    load_start = os.getloadavg()[0]
    hidden, history, runs, chunk = args.hidden, args.history, args.runs, 100
    if args.quick:
        runs = 5
    if args.smoke:
        hidden, history, runs, chunk = 16, 300, 1, 10

    import torch
    torch.set_num_threads(1)
    from workbench.core.projectfile import load_project, project_plugins_used, save_project
    from workbench.plugin_system import discover
    reg = discover()
    t0 = time.perf_counter()
    project, n_params = build_project(reg, hidden, history, chunk, 20_000 if args.smoke else 200_000)
    build_s = time.perf_counter() - t0

    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="seqwb-io-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bench.seqwb"
    plugins = project_plugins_used(project, reg)
    save_s: list[float] = []
    load_s: list[float] = []
    save_cpu: list[float] = []    # CPU seconds of the process, all threads (the machine is shared)
    load_cpu: list[float] = []
    try:
        save_project(project, path, plugins_used=plugins)        # warm-up: page cache, imports
        load_project(path, registry=reg)
        for _ in range(runs):
            t0, c0 = time.perf_counter(), time.process_time()
            save_project(project, path, plugins_used=plugins)
            save_s.append(time.perf_counter() - t0)
            save_cpu.append(time.process_time() - c0)
            t0, c0 = time.perf_counter(), time.process_time()
            loaded = load_project(path, registry=reg)
            load_s.append(time.perf_counter() - t0)
            load_cpu.append(time.process_time() - c0)
        size = path.stat().st_size
        import zipfile
        with zipfile.ZipFile(path) as zf:
            members = {i.filename: i.file_size for i in zf.infolist()}
        # what was loaded is what was saved
        ck, lk = project.checkpoint, loaded.checkpoint
        assert set(ck.weights) == set(lk.weights) and all(torch.equal(ck.weights[k], lk.weights[k])
                                                          for k in ck.weights)
        run, lrun = project.history.current, loaded.history.current
        assert lrun.series.keys() == run.series.keys() and len(lrun.gtt) == len(run.gtt)
        assert all(lrun.series[k].value == run.series[k].value for k in run.series)
    finally:
        for p in (path, path.with_name(path.name + ".bak")):
            if p.exists():
                p.unlink()
        if not args.dir:
            shutil.rmtree(folder, ignore_errors=True)

    run = project.history.current
    points = sum(len(s.step) for s in run.series.values())
    res = {"parameters": n_params, "hidden": hidden, "history_steps": history, "series": len(run.series),
           "series_points": points, "gtt_records": len(run.gtt), "samples": len(run.samples),
           "file_bytes": size, "members": members, "runs": runs,
           "save_s": statistics.median(save_s), "load_s": statistics.median(load_s),
           "save_cpu_s": statistics.median(save_cpu), "load_cpu_s": statistics.median(load_cpu),
           "save_all_s": save_s, "load_all_s": load_s, "build_s": build_s, "dir": str(folder)}
    if args.json:
        write_figures(args.json, res, load_start, argv)
        if args.json == "-":
            return 0
    print(f"torch {torch.__version__}; project: {n_params:,} parameters (2 x LSTM {hidden}), history of a "
          f"{history:,}-step run: {len(run.series)} series, {points:,} points, {len(run.gtt)} gradient-through-time "
          f"records, {len(run.samples)} samples")
    print(f"file: {size / 1e6:,.1f} MB in {folder} (deleted afterwards)")
    for name, n in sorted(members.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<24} {n / 1e6:9.2f} MB")
    for what, wall, cpu in (("save", save_s, save_cpu), ("load", load_s, load_cpu)):
        print(f"{what}: median {statistics.median(wall):.3f} s wall of {runs} (min {min(wall):.3f}, max "
              f"{max(wall):.3f}); CPU time (all threads) {statistics.median(cpu):.3f} s  (target < 0.5 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
