"""``seqwb new``, ``seqwb info`` and ``seqwb history``: creating a project and reading what it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.cli.common import (EXIT_OK, UsageError, apply_settings, finite, open_project, print_json, registry, save,
                                  settings)


def cmd_new(args) -> int:
    from workbench.core.settings import apply_project_settings, template_project
    from workbench.core.task_choice import empty_project, task_project
    from workbench.schema.errors import UnknownContributionError
    from workbench.schema.params import ParamError
    chosen = [what for what, given in (("a template", args.template), ("--empty", args.empty),
                                       ("--task", args.task)) if given]
    if len(chosen) != 1:
        raise UsageError("give a template, --empty or --task ID (one of them)" if not chosen else
                         f"give only one of a template, --empty and --task ({' and '.join(chosen)} given)")
    reg = registry()
    out = Path(args.output)
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists already; use --force to overwrite it")
    try:
        if args.template:
            spec = reg.template(args.template)
            project, changed = template_project(spec, settings(args.set), reg)
            made = f"from template {spec.id!r}"
        else:
            if args.empty:
                project = empty_project()
                made = "empty: no task and no blocks"
            else:
                project = task_project(reg.task(args.task), reg)
                made = f"with the task {args.task!r} and nothing between its input and output"
            given = settings(args.set)
            if args.empty and any(k.startswith("task.") for k in given):
                raise UsageError("an empty project has no task to set; use --task ID to choose one")
            changed = apply_project_settings(project, given, reg)
    except (UnknownContributionError, ParamError) as exc:
        raise UsageError(str(exc)) from None
    if args.name:
        project.name = args.name
    save(project, str(out), reg)
    if args.json:
        print_json({"file": str(out), "template": args.template, "task": project.task.id or None,
                    "empty": bool(args.empty), "changed": changed})
    else:
        print(f"created {out} {made}" + (f" ({'; '.join(changed)})" if changed else ""))
    return EXIT_OK


def cmd_data(args) -> int:
    from workbench.core.data_preview import describe_preview, preview_data
    from workbench.schema.errors import UnknownContributionError
    from workbench.schema.params import ParamError
    reg = registry()
    project = open_project(args.file, reg)
    apply_settings(project, args.set, reg)
    if args.examples < 0:
        raise UsageError("--examples must be 0 or more")
    try:
        preview = preview_data(project, reg, Path(args.file).resolve().parent, examples=args.examples,
                               split=args.split)
    except (ParamError, UnknownContributionError) as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:
        if not project.task.id:
            raise UsageError(str(exc)) from None
        raise
    if args.json:
        print_json(preview)
    else:
        print("\n".join(describe_preview(preview)))
    return EXIT_OK


def _graph_summary(project, reg, report=None) -> list[dict[str, Any]]:
    """Each node with the one-line summary its card on the canvas shows (sizes found by ``report``'s analysis)."""
    from workbench.core.graph import node_summary
    rows = []
    for node in project.graph.nodes.values():
        summary = ""
        if reg.has("architecture", node.type):
            def inferred(node=node) -> int | None:
                outs = report.ports.get(node.id, ((), ()))[1] if report is not None else ()
                return report.sizes.get((node.id, outs[0].name)) if outs else None
            try:
                summary = node_summary(node, reg.block(node.type), reg, inferred)
            except Exception:  # noqa: BLE001 - a summary is cosmetic
                summary = ""
        rows.append({"id": node.id, "type": node.type, "summary": summary, "params": dict(node.params)})
    return rows


def cmd_info(args) -> int:
    from workbench.core.projectfile import read_manifest
    from workbench.core.task_choice import analyze_project
    reg = registry()
    project = open_project(args.file, reg)
    manifest = read_manifest(args.file)
    ckpt = project.checkpoint
    sizes = dict((project.data or {}).get("sizes") or {})
    report = analyze_project(project, reg)
    n_params = sum(int(v.numel()) for v in ckpt.weights.values()) if ckpt and ckpt.weights else None
    if n_params is None and report.ok and sizes:
        from workbench.core.build import build_model, count_parameters
        n_params = count_parameters(build_model(project.graph, reg, reg.task(project.task.id), sizes))
    runs = []
    for run in project.history.runs:
        last = {k: s.last() for k, s in run.series.items() if k in ("train/loss", "valid/loss", "valid/bpc",
                                                                      "valid/ppl")}
        runs.append({"id": run.id, "status": run.status, "started": run.started, "cells": run.settings.get("cells"),
                     "steps": (run.series.get("train/loss").step[-1] if run.series.get("train/loss")
                               and run.series["train/loss"].step else 0), "last": last, "message": run.message})
    best = (ckpt.trainer_state or {}).get("best") if ckpt else None
    if not (isinstance(best, dict) and isinstance(best.get("metric"), str) and finite(best.get("value")) is not None
            and isinstance(best.get("step"), int)):
        best = None          # a file's trainer state is data from anywhere: shown only when well formed
    from workbench.core.data_access import guard_file
    outside = guard_file(project, reg, args.file).pending
    info = {
        "file": args.file, "name": project.name, "task": project.task.id,
        "format_version": manifest.get("format_version"), "app_version": manifest.get("app_version"),
        "nodes": _graph_summary(project, reg, report), "links": [list(map(str, (ln.src, ln.src_port, ln.dst, ln.dst_port)))
                                                           for ln in project.graph.links],
        "valid": report.ok, "problems": report.problems, "parameters": n_params,
        "step": ckpt.step if ckpt else 0, "epoch": ckpt.epoch if ckpt else 0,
        "trained": bool(ckpt and ckpt.graph_hash == project.graph.content_hash()),
        "best": best, "runs": runs, "plugins": manifest.get("plugins", []),
        "vocab_size": len(project.vocab) if project.vocab else None, "data": project.data,
        "outside_data": [{"setting": o.key, "value": o.value, "path": o.resolved} for o in outside],
    }
    if args.json:
        print_json(info)
        return EXIT_OK
    print(f"{project.name}  ({args.file}, format {info['format_version']}, made by seqwb {info['app_version']})")
    task = project.task.id or "none yet (seqwb new --task ID, or drop a task on the canvas)"
    print(f"task: {task}   parameters: {n_params:,}" if n_params else f"task: {task}")
    print("graph:")
    for row in info["nodes"]:
        print(f"  {row['id']:<10} {row['type']:<12} {row['summary']}")
    for p in report.problems:
        print(f"  problem: {p}")
    print(f"step {info['step']}, epoch {info['epoch']}" + (f"; best {best['metric']} {best['value']:.4f} at step "
                                                           f"{best['step']}" if best else ""))
    for r in runs:
        last = "  ".join(f"{k} {v:.4f}" for k, v in r["last"].items() if v is not None)
        print(f"  {r['id']}: {r['status']}, {r['steps']} steps, cells {r['cells']}  {last}")
    print("plugins: " + ", ".join(f"{p['kind']} {p['id']} ({p.get('distribution', '?')} {p.get('version', '')})"
                                  for p in info["plugins"]))
    for o in outside:
        print(f"data outside the project's folder, read only once confirmed (--allow-outside-data): {o.describe()}")
    return EXIT_OK


def cmd_history(args) -> int:
    reg = registry()
    project = open_project(args.file, reg)
    runs = project.history.runs
    if args.run:
        runs = [r for r in runs if r.id == args.run]
        if not runs:
            raise UsageError(f"no run {args.run!r}; runs: {', '.join(r.id for r in project.history.runs)}")
    out = []
    for run in runs:
        series = {k: {"step": s.step, "value": [finite(v) for v in s.value]} for k, s in run.series.items()
                  if not args.series or any(k.startswith(x) for x in args.series)}
        out.append({"id": run.id, "status": run.status, "settings": run.settings, "series": series,
                    "gradient_through_time": run.gtt if args.gtt or not args.series else [],
                    "samples": run.samples})
    if args.json:
        print_json(out)
    else:
        for run in out:
            print(f"{run['id']} ({run['status']}):")
            for k, s in run["series"].items():
                vals = [v for v in s["value"] if v is not None]
                if vals:
                    print(f"  {k:<32} {len(vals):>6} points  last {vals[-1]:.5g}  min {min(vals):.5g}")
            print(f"  gradient-through-time probes: {len(run['gradient_through_time'])}; "
                  f"samples: {len(run['samples'])}")
    return EXIT_OK


def register(add, sets) -> None:
    """Add this module's sub-commands (``add(name, func, help)`` makes one; ``sets(sp)`` adds ``--set``)."""
    sp = add("new", cmd_new, "create a project file: from a template, empty (--empty), or with only a task (--task)")
    sp.add_argument("template", nargs="?", help="a template id (seqwb templates lists them)")
    sp.add_argument("--empty", action="store_true", help="no task and no blocks (as File > New > Empty project)")
    sp.add_argument("--task", metavar="ID", help="only this task: its input and output nodes, nothing between "
                                                 "(seqwb plugins lists the tasks)")
    sp.add_argument("-o", "--output", required=True, metavar="FILE")
    sp.add_argument("--name", help="project name")
    sp.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    sp.add_argument("--json", action="store_true")
    sets(sp)

    sp = add("data", cmd_data, "read the project's data as training would: split sizes, vocabulary, the first "
                               "examples and one batch (the inspector's data preview)")
    sp.add_argument("file")
    sp.add_argument("--split", default="train", choices=("train", "valid", "test"),
                    help="the split the examples come from (default: train)")
    sp.add_argument("--examples", type=int, default=5, metavar="N", help="how many examples to show (default 5)")
    sp.add_argument("--json", action="store_true")
    sets(sp)

    sp = add("info", cmd_info, "summary of a project: graph, parameters, step, best metrics, plugins")
    sp.add_argument("file")
    sp.add_argument("--json", action="store_true")

    sp = add("history", cmd_history, "the recorded series of a project's runs")
    sp.add_argument("file")
    sp.add_argument("--run", help="only this run (e.g. run-2)")
    sp.add_argument("--series", action="append", help="only series starting with this (e.g. train/loss, grad/)")
    sp.add_argument("--gtt", action="store_true", help="include the gradient-through-time probes")
    sp.add_argument("--json", action="store_true")
