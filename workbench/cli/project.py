"""``seqwb new``, ``seqwb info`` and ``seqwb history``: creating a project and reading what it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.cli.common import EXIT_OK, UsageError, finite, open_project, print_json, registry, save, settings


def cmd_new(args) -> int:
    from workbench.core.settings import template_project
    from workbench.schema.errors import UnknownContributionError
    from workbench.schema.params import ParamError
    reg = registry()
    try:
        spec = reg.template(args.template)
        project, changed = template_project(spec, settings(args.set), reg)
    except (UnknownContributionError, ParamError) as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.output)
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists already; use --force to overwrite it")
    if args.name:
        project.name = args.name
    save(project, str(out), reg)
    if args.json:
        print_json({"file": str(out), "template": spec.id, "changed": changed})
    else:
        print(f"created {out} from template {spec.id!r}" + (f" ({'; '.join(changed)})" if changed else ""))
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
    from workbench.core.graph import analyze
    from workbench.core.projectfile import read_manifest
    reg = registry()
    project = open_project(args.file, reg)
    manifest = read_manifest(args.file)
    ckpt = project.checkpoint
    sizes = dict((project.data or {}).get("sizes") or {})
    report = analyze(project.graph, reg, reg.task(project.task.id), sizes)
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
    }
    if args.json:
        print_json(info)
        return EXIT_OK
    print(f"{project.name}  ({args.file}, format {info['format_version']}, made by seqwb {info['app_version']})")
    print(f"task: {project.task.id}   parameters: {n_params:,}" if n_params else f"task: {project.task.id}")
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
    sp = add("new", cmd_new, "create a project file from a template")
    sp.add_argument("template")
    sp.add_argument("-o", "--output", required=True, metavar="FILE")
    sp.add_argument("--name", help="project name")
    sp.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
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
