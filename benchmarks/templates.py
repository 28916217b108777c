"""Every template's default result: trained as a new user would, from a fresh project, and measured on its test split.

For each template this runs the commands a user runs, in a fresh folder, each in its own process:

    seqwb new TEMPLATE -o T.seqwb --set threads=N
    seqwb train T.seqwb --json                      # the budget the template ships with (steps or epochs)
    seqwb eval T.seqwb --split test --json          # the weights the run ended with
    seqwb eval T.seqwb --split valid --json

so the figures are exactly what ``seqwb eval`` prints, on the split it names: a naive baseline a task reports
(forecast's naive MSE, the adding problem's always-answer-1 MSE) comes from the same call, on the same split, as the
model's own figure.  Templates that need files this machine does not have (the PTB templates need the user's copy
of the Penn Treebank) are not trained: they are listed with the figures their own notes publish, marked as such.

    python benchmarks/templates.py                          # every template, one after the other, 1 thread
    python benchmarks/templates.py --only char-lm forecast  # some of them (the others keep their entries)
    python benchmarks/templates.py --smoke --json /tmp/t.json   # 3 steps each: checks the plumbing only

Figures go to ``benchmarks/results/templates.json`` (``--json`` elsewhere); ``python benchmarks/docs_tables.py
--write`` turns them into the template tables of README.md and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "templates.json"

#: template -> (settings, why): budgets shorter than the template ships with, where the shipped one is too long for
#: a 2-core CPU.  Empty today: every template's own budget trains here in minutes.  An entry is stated in the
#: table next to the template's figures.
SHORTER: dict[str, tuple[dict[str, str], str]] = {}

#: a template whose parameters include one of these reads the user's own files, which nothing downloads
NEEDS_DATA_PARAMS = ("data_dir",)


def seqwb(*args: str, cwd: Path) -> str:
    """Run ``seqwb ARGS`` (as ``python -m workbench``, the same entry point) and return its standard output; a
    failure stops the benchmark with the command's own error line."""
    proc = subprocess.run([sys.executable, "-m", "workbench", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"seqwb {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def published(notes: str) -> dict[str, float]:
    """The figures a template's notes publish ("Published: validation perplexity 120.7, test 114.5."): read from the
    notes the template ships with, so the table never states a figure the template itself does not."""
    m = re.search(r"Published: validation perplexity (\d+(?:\.\d+)?), test (\d+(?:\.\d+)?)", notes or "")
    return {"valid_perplexity": float(m.group(1)), "test_perplexity": float(m.group(2))} if m else {}


def describe(reg, spec) -> dict:
    """The template as shipped: its budget, its task, whether it needs the user's data, its notes."""
    from workbench.core.settings import template_project
    from workbench.schema.params import field_info
    project, _ = template_project(spec, {}, reg)
    return {"template": spec.id, "task": project.task.id, "shipped_steps": project.train.steps,
            "shipped_epochs": project.train.epochs,
            "needs_data": any(i.name in NEEDS_DATA_PARAMS for i in field_info(spec.params)),
            "notes": project.notes}


def code_version() -> dict:
    """Which code trained: the commit, and the engine and plugin files that differed from it (a run on a tree
    with local edits says so).  A source snapshot without .git carries its commit in a COMMIT file."""
    import workbench
    src = Path(workbench.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True,
                                check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--", "workbench", "plugins"], cwd=src,
                                capture_output=True, text=True, check=True).stdout
        return {"commit": commit, "modified": [line[3:] for line in status.splitlines()]}
    except (subprocess.CalledProcessError, FileNotFoundError):
        stamp = src / "COMMIT"
        return {"commit": stamp.read_text().strip() if stamp.exists() else "unknown", "modified": []}


def train_one(info: dict, threads: int, smoke: bool) -> dict:
    name = info["template"]
    settings = {"threads": str(threads)}
    budget_note = ""
    if smoke:
        settings.update({"steps": "3", "epochs": "0", "eval_every": "0", "probe_every": "0",
                         "sample_every": "0", "eval_batches": "2"})
        budget_note = "smoke: 3 steps"
    elif name in SHORTER:
        extra, budget_note = SHORTER[name]
        settings.update(extra)
    sets = [a for k, v in settings.items() for a in ("--set", f"{k}={v}")]
    with tempfile.TemporaryDirectory(prefix=f"seqwb-{name}-") as tmp:
        folder = Path(tmp)
        seqwb("new", name, "-o", "t.seqwb", *sets, cwd=folder)
        t0 = time.perf_counter()
        events = json_lines(seqwb("train", "t.seqwb", "--json", cwd=folder))
        wall = time.perf_counter() - t0
        steps = [e for e in events if e.get("event") == "step"]
        last = steps[-1] if steps else {}
        row = {**{k: info[k] for k in ("template", "task", "shipped_steps", "shipped_epochs")},
               "trained_steps": last.get("step", 0), "trained_epochs": last.get("epoch", 0),
               "budget": budget_note or "as shipped", "threads": threads, "train_wall_s": round(wall, 1)}
        for split in ("test", "valid"):
            try:
                out = json.loads(seqwb("eval", "t.seqwb", "--split", split, "--json", cwd=folder))
            except RuntimeError as exc:   # a task without that split says why; keep the reason, not a number
                row[split] = {"error": str(exc).splitlines()[-1]}
                continue
            row[split] = {"metrics": out["metrics"], "batches": out["batches"], "step": out["step"]}
    return row


def write(path: Path, smoke: bool, rows: list[dict]) -> None:
    import torch

    from workbench.atomic import atomic_write
    doc = {"command": "python benchmarks/templates.py" + (" --smoke" if smoke else ""),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                       "system": platform.system()},
           "code": code_version(), "templates": rows}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as fh:
        fh.write(json.dumps(doc, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", metavar="TEMPLATE", help="train these templates; keep the others' entries")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1: a shared machine)")
    ap.add_argument("--smoke", action="store_true", help="3 steps per template: checks that everything runs")
    ap.add_argument("--json", metavar="FILE", help=f"write here (default: {RESULTS.relative_to(ROOT)})")
    args = ap.parse_args(argv)
    if args.smoke and not args.json:
        ap.error("--smoke needs --json FILE: its figures are not results")
    from workbench.plugin_system import discover
    reg = discover()
    specs = [s for s in reg.items["template"].values() if s.distribution == "sequence-workbench"]
    known = {s.id for s in specs}
    for name in args.only or ():
        if name not in known:
            ap.error(f"unknown template {name!r}; built-in templates: {', '.join(sorted(known))}")
    out_path = Path(args.json) if args.json else RESULTS
    doc = json.loads(out_path.read_text()) if out_path.exists() else {}
    rows = {r["template"]: r for r in doc.get("templates", [])}
    for spec in specs:
        info = describe(reg, spec)
        name = info["template"]
        if args.only and name not in args.only:
            continue
        if info["needs_data"]:
            rows[name] = {**{k: info[k] for k in ("template", "task", "shipped_steps", "shipped_epochs")},
                          "needs_data": True, "published": published(info["notes"])}
            print(f"{name}: needs your data; published {rows[name]['published']}", flush=True)
        else:
            print(f"{name}: training ({info['shipped_steps']} steps, {info['shipped_epochs']} epochs)...",
                  flush=True)
            load = os.getloadavg()
            row = train_one(info, args.threads, args.smoke)
            row["load_average"] = [round(load[0], 2), round(os.getloadavg()[0], 2)]   # at the start and the end
            row["measured"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
            rows[name] = row
            print(f"  {row['train_wall_s']} s; test {row['test']}", flush=True)
        # written after every template, so an interrupted run keeps what it measured
        write(out_path, args.smoke, [rows[s.id] for s in specs if s.id in rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
