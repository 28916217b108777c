"""``seqwb``: the headless twin of every GUI action that computes something.

Exit codes: 0 success, 2 usage error (bad command line, unknown template or setting), 1 failure (a file, the
data or training went wrong).  Errors are one line on stderr; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from workbench import __version__

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input on the command line: exit code 2."""


# ---- helpers ------------------------------------------------------------------------------------------------

def _registry():
    from workbench.plugin_system import default_registry
    return default_registry()


def _settings(items: list[str] | None) -> dict[str, str]:
    from workbench.plugin_system.params import ParamError, parse_assignments
    try:
        return parse_assignments(items or [])
    except ParamError as exc:
        raise UsageError(str(exc)) from None


def _open(path: str, registry=None):
    from workbench.core.io import load_project
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such project file: {path}")
    return load_project(p, registry=registry or _registry())


def _save(project, path: str, registry) -> None:
    from workbench.core.io import project_plugins_used, save_project
    save_project(project, path, plugins_used=project_plugins_used(project, registry))


def _apply(project, items, registry) -> list[str]:
    from workbench.core.settings import apply_project_settings
    from workbench.plugin_system.loader import UnknownContributionError
    from workbench.plugin_system.params import ParamError
    try:
        return apply_project_settings(project, _settings(items), registry)
    except (ParamError, UnknownContributionError) as exc:
        raise UsageError(str(exc)) from None


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _finite(x: Any) -> Any:
    """A JSON-safe metric: non-finite numbers become null; lists (a confusion matrix) are kept, element-wise."""
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


def _note(msg: str) -> None:
    sys.stderr.write(f"seqwb: {msg}\n")


# ---- commands -----------------------------------------------------------------------------------------------

def cmd_plugins(args) -> int:
    reg = _registry()
    if args.markdown:
        from workbench.docgen import catalog_markdown
        sys.stdout.write(catalog_markdown(reg, None if args.all else "sequence-workbench"))
        return EXIT_OK
    rows = []
    for kind, spec in reg.all():
        rows.append({"kind": kind, "id": spec.id, "title": spec.title, "version": spec.version,
                     "distribution": spec.distribution, "plugin": spec.plugin, "status": "ok", "error": ""})
    for f in reg.failures:
        # "incompatible": its SEQWB_API range excludes this version's plugin API; it was not loaded
        rows.append({"kind": "plugin", "id": f.entry_point, "title": "", "version": "",
                     "distribution": f.distribution, "plugin": f.entry_point,
                     "status": "incompatible" if f.category == "incompatible" else "error",
                     "error": f.error, "hook": f.hook})
    if args.check:   # build every cell and run one trial step: wrong shapes are named here, before any project
        from workbench.plugin_system.checks import check_cells
        _checked, problems = check_cells(reg)
        for f in problems:
            rows.append({"kind": "plugin", "id": f.entry_point, "title": "", "version": "",
                         "distribution": f.distribution, "plugin": f.entry_point, "status": "error",
                         "error": f.error, "hook": f.hook})
    for d in reg.disabled:
        rows.append({"kind": "plugin", "id": d.entry_point, "title": "", "version": d.version,
                     "distribution": d.distribution, "plugin": d.entry_point, "status": "disabled",
                     "error": "", "reason": d.reason})
    for n in reg.notes:
        rows.append({"kind": "plugin", "id": n.entry_point, "title": "", "version": "",
                     "distribution": n.distribution, "plugin": n.entry_point, "status": "note",
                     "error": "", "note": n.note})
    if args.json:
        _print_json(rows)
        return EXIT_OK
    width = max((len(r["id"]) for r in rows), default=10)
    for r in rows:
        if r["status"] == "ok":
            print(f"{r['kind']:<13} {r['id']:<{width}}  {r['title']}  [{r['distribution']} {r['version']}]")
    labels = {"error": "FAILED", "incompatible": "INCOMPATIBLE", "disabled": "DISABLED", "note": "NOTE"}
    for status in ("error", "incompatible", "disabled", "note"):
        for r in rows:
            if r["status"] == status:
                text = r.get("error") or r.get("reason") or r.get("note", "")
                print(f"{labels[status]:<13} {r['id']:<{width}}  {r['distribution'] or '?'}: {text}")
    return EXIT_OK


def cmd_plugin_new(args) -> int:
    from workbench.scaffold import scaffold
    names, root, written = scaffold(args.name, args.dir)
    if args.json:
        _print_json({"distribution": names.distribution, "package": names.package, "cell": names.cell_id,
                     "path": str(root), "files": [str(p.relative_to(root)) for p in written]})
        return EXIT_OK
    print(f"created {root} (distribution {names.distribution}, cell {names.cell_id!r}):")
    for path in written:
        print(f"  {path.relative_to(root)}")
    print(f"next: pip install -e {root}  &&  seqwb plugins  &&  pytest {root}")
    return EXIT_OK


def cmd_templates(args) -> int:
    from workbench.plugin_system.params import field_info
    reg = _registry()
    rows = [{"id": s.id, "title": s.title, "task": s.task, "description": s.description,
             "distribution": s.distribution, "version": s.version,
             "params": {i.name: i.default for i in field_info(s.params)}} for s in reg.items["template"].values()]
    if args.json:
        _print_json(rows)
    else:
        width = max((len(r["id"]) for r in rows), default=10)
        for r in rows:
            print(f"{r['id']:<{width}}  {r['description'] or r['title']}")
    return EXIT_OK


def cmd_new(args) -> int:
    from workbench.core.settings import template_project
    from workbench.plugin_system.loader import UnknownContributionError
    from workbench.plugin_system.params import ParamError
    reg = _registry()
    try:
        spec = reg.template(args.template)
        project, changed = template_project(spec, _settings(args.set), reg)
    except (UnknownContributionError, ParamError) as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.output)
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists already; use --force to overwrite it")
    if args.name:
        project.name = args.name
    _save(project, str(out), reg)
    if args.json:
        _print_json({"file": str(out), "template": spec.id, "changed": changed})
    else:
        print(f"created {out} from template {spec.id!r}" + (f" ({'; '.join(changed)})" if changed else ""))
    return EXIT_OK


class _CLIReporter:
    """Prints log lines (human or JSON) and saves every ``checkpoint_every`` steps."""

    def __init__(self, args, path: str, registry, project):
        self.args, self.path, self.registry, self.project = args, path, registry, project
        self.last_step_logged = -1
        self._data_shown: dict[str, float] = {}

    def on_data_progress(self, trainer, stage: str, done: int, total: int) -> None:
        # at most one line per stage every 10% (and the last one): a 2 GB corpus shows its scan moving
        if total < (1 << 20):  # small files are read in a blink: no progress lines for them
            return
        fraction = done / total
        last = self._data_shown.get(stage)
        if last is not None and fraction < 1.0 and fraction - last < 0.1:
            return
        if last is not None and last >= 1.0:
            return
        self._data_shown[stage] = fraction
        if self.args.json:
            _print_json({"event": "data", "stage": stage, "done_bytes": done, "total_bytes": total})
        else:
            _note(f"reading data: {stage} {fraction:4.0%} ({done / 1e6:,.0f} of {total / 1e6:,.0f} MB)")

    def on_step_end(self, trainer, ev) -> None:
        cfg = trainer.cfg
        if ev.skipped:
            _note(f"step {ev.step}: the loss or gradient is not finite (loss {ev.loss}); step skipped as "
                  f"nan_policy=skip asks ({trainer.skipped_steps} skipped so far)")
        if ev.step % cfg.log_every == 0 or ev.progress >= 1.0:
            self._log(ev)
        if cfg.checkpoint_every and ev.step % cfg.checkpoint_every == 0:
            trainer.checkpoint()
            _save(self.project, self.path, self.registry)

    def _log(self, ev) -> None:
        self.last_step_logged = ev.step
        if self.args.json:
            _print_json({"event": "step", "step": ev.step, "epoch": ev.epoch, "loss": _finite(ev.loss),
                         "grad_norm": _finite(ev.grad_norm), "grad_norm_clipped": _finite(ev.grad_norm_clipped),
                         "lr": ev.lr, "tokens_per_s": round(ev.tokens_per_s, 1),
                         "elapsed_s": round(ev.elapsed, 3), "eta_s": round(ev.eta, 1)})
        else:
            print(f"step {ev.step:>6} | epoch {ev.epoch:>3} | loss {ev.loss:8.4f} | grad {ev.grad_norm:8.3f} | "
                  f"lr {ev.lr:.3g} | {ev.tokens_per_s:,.0f} tok/s | eta {ev.eta:,.0f}s", flush=True)

    def on_eval_end(self, trainer, ev) -> None:
        if self.args.json:
            _print_json({"event": "eval", "step": ev.step, "epoch": ev.epoch, "split": ev.split,
                         **{f"valid_{k}": _finite(v) for k, v in ev.metrics.items()}, "best": ev.best})
        else:
            from workbench.core.train import format_metric   # loaded already: this runs during training
            metrics = "  ".join(f"{k} {format_metric(v)}" for k, v in ev.metrics.items())
            print(f"valid @ {ev.step}: {metrics}{'  (best)' if ev.best else ''}", flush=True)

    def on_sample(self, trainer, ev) -> None:
        if self.args.json:
            _print_json({"event": "sample", "step": ev.step, "text": ev.text})
        elif not self.args.quiet:
            print(f"---- sample @ {ev.step} ----\n{ev.text}\n----", flush=True)

    def on_probe_end(self, trainer, ev) -> None:
        if self.args.json:
            summary = {layer: {"dLT_dh_first": v["dLT_dh"][0] if v["dLT_dh"] else None,
                               "dLT_dh_last": v["dLT_dh"][-1] if v["dLT_dh"] else None}
                       for layer, v in ev.gtt.items()}
            _print_json({"event": "probe", "step": ev.step, "gradient_through_time": summary, "sigma_max": ev.sigma})


def cmd_train(args) -> int:
    """``seqwb train``; under torchrun each process trains its shard of every batch (docs/scaling.md)."""
    from workbench.core import distributed
    from workbench.core.errors import TrainingError
    try:
        launch = distributed.torchrun_env()
    except TrainingError as exc:
        raise UsageError(str(exc)) from None
    if launch is None and args.distributed:
        if not args.nproc:
            raise UsageError(distributed.launch_hint(args.file))
        if args.nproc < 1:
            raise UsageError(f"--nproc {args.nproc}: start at least one process")
        return _launch_distributed(args)
    if launch is not None and args.nproc:
        raise UsageError("--nproc starts torchrun; this process already runs under torchrun (drop --nproc)")
    try:
        return _train(args, launch)
    finally:
        if launch is not None:
            distributed.leave()


def _launch_distributed(args) -> int:
    """``seqwb train FILE --distributed --nproc N``: run the same command in N local processes under torchrun."""
    import subprocess

    from workbench.core.distributed import launch_command
    reg = _registry()
    project = _open(args.file, reg)
    _apply(project, args.set, reg)
    if project.train.batch_size % args.nproc:   # say it once here, rather than once per process after the launch
        raise UsageError(f"batch_size {project.train.batch_size} is not a multiple of --nproc {args.nproc}: every "
                         f"process trains batch_size / {args.nproc} rows of each batch")
    argv = ["train", args.file]
    argv += ["--steps", str(args.steps)] if args.steps is not None else []
    argv += ["--epochs", str(args.epochs)] if args.epochs is not None else []
    argv += ["--device", args.device] if args.device else []
    argv += ["--new-run"] if args.new_run else []
    argv += ["--json"] if args.json else []
    argv += ["--quiet"] if args.quiet else []
    argv += ["--debug"] if getattr(args, "debug", False) else []
    for item in args.set or []:
        argv += ["--set", item]
    proc = subprocess.Popen(launch_command(argv, args.nproc))
    # SIGTERM to this process goes on to torchrun, which passes it to the workers: they stop after the same step
    # and rank 0 saves.  Ctrl-C reaches torchrun and the workers directly (one process group); we wait for them.
    forward = getattr(signal, "SIGTERM", None)
    previous = signal.signal(forward, lambda signum, frame: proc.send_signal(signum)) if forward else None
    try:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:
                continue
    finally:
        if forward:
            signal.signal(forward, previous)


def _train(args, launch) -> int:
    from workbench.core.train import RunControl, Trainer
    main_rank = launch is None or launch.rank == 0   # rank 0 alone prints and writes the project file
    reg = _registry()
    project = _open(args.file, reg)
    changed = _apply(project, args.set, reg)
    if args.device:
        from workbench.core.device import resolve_device
        try:
            resolve_device(args.device)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    control = RunControl()
    reporter = _CLIReporter(args, args.file, reg, project)
    trainer = Trainer(project, reg, callbacks=[reporter] if main_rank else [], control=control,
                      base_dir=Path(args.file).resolve().parent, new_run=args.new_run, device=args.device,
                      distributed=launch)

    def quit_now(signum, frame):
        raise KeyboardInterrupt  # SIGTERM while the data is read: nothing to save yet, leave as Ctrl-C does

    term_before = signal.signal(signal.SIGTERM, quit_now) if hasattr(signal, "SIGTERM") else None
    try:
        trainer.setup()  # data or model errors stop here, before anything is written
    except Exception as exc:  # noqa: BLE001 - a bug in a plugin's code: name the plugin, not just the error
        from workbench.core.errors import TrainingError, WorkbenchError
        from workbench.core.train import plugin_at_fault
        if isinstance(exc, WorkbenchError):
            raise
        culprit = plugin_at_fault(exc, project, reg)
        text = str(exc).splitlines()[0] if str(exc) else ""
        raise TrainingError(f"training could not start{' in ' + culprit if culprit else ''}: "
                            f"{type(exc).__name__}: {text}") from exc
    finally:
        if term_before is not None:
            signal.signal(signal.SIGTERM, term_before)
    for n in trainer.notices if main_rank else ():
        _note(n)
    if changed and not args.json and main_rank:
        print("settings: " + "; ".join(changed))
    if not args.json and main_rank:
        from workbench.core.device import describe_device
        params = sum(p.numel() for p in trainer.model.parameters())
        where = describe_device(trainer.device)
        if launch is not None:
            where = f"{launch.world_size} processes ({trainer.dist.backend}; rank 0: {where})"
        print(f"training {project.name!r} on {where}: {params:,} parameters, "
              f"from step {trainer.pos.step} ({trainer.run.id})", flush=True)

    interrupted: dict[str, Any] = {"n": 0, "by": ""}

    def on_signal(signum, frame):
        # First Ctrl-C / SIGTERM: finish the current step, save a checkpoint, exit 0.  A second one: leave at
        # once (KeyboardInterrupt, exit 130); the file on disk stays the last complete save (saves are atomic).
        interrupted["n"] += 1
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        if interrupted["n"] > 1:
            raise KeyboardInterrupt
        interrupted["by"] = name
        _note(f"{name}: stopping after this step and saving a checkpoint (Ctrl-C again to quit at once without "
              f"saving)")
        control.stop()

    handled = [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
    previous = {sig: signal.signal(sig, on_signal) for sig in handled}
    try:
        steps = args.steps
        end = trainer.fit(steps=steps, epochs=args.epochs)
    except Exception:
        # the run is marked failed; save the record, keep the last good checkpoint as it was
        if main_rank:
            _save(project, args.file, reg)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not main_rank:
        return EXIT_OK
    trainer.checkpoint()
    _save(project, args.file, reg)
    skipped = trainer.skipped_steps
    if args.json:
        _print_json({"event": "end", "status": end.status, "step": end.step, "message": end.message,
                     "file": args.file, "best": trainer.best, "skipped_steps": skipped,
                     "signal": interrupted["by"] or None})
    else:
        extra = f" ({skipped} step(s) skipped: non-finite loss or gradient)" if skipped else ""
        if end.status == "stopped" and interrupted["by"]:
            print(f"stopped by {interrupted['by']} at step {end.step}; checkpoint saved to {args.file}{extra}")
        else:
            print(f"{end.status} at step {end.step}; saved {args.file}{extra}")
    return EXIT_OK


def cmd_eval(args) -> int:
    from workbench.core.project import available_weights
    from workbench.core.train import evaluate_weights, load_for_inference
    reg = _registry()
    project = _open(args.file, reg)
    _apply(project, args.set, reg)
    loaded = load_for_inference(project, reg, Path(args.file).resolve().parent, args.device, best=args.best)
    if not loaded.trained:
        _note("this project has no trained weights for its graph: evaluating freshly initialised weights")
    # the step the weights come from: for the best weights the step of that validation, as the window shows it
    best = available_weights(project).get("best") if args.best else None
    step = best["step"] if best and isinstance(best.get("step"), int) else loaded.step
    # the same timed, counted evaluation as the window's Run ▸ Evaluate…
    result = evaluate_weights(loaded.model, loaded.task, loaded.device, args.split, project.train.batch_size,
                              project.train.chunk_len, args.max_batches, step=step, trained=loaded.trained,
                              best=bool(args.best))
    out = {"split": args.split, "step": result.step, "trained": result.trained, "best_weights": result.best,
           "metrics": {k: _finite(v) for k, v in result.metrics.items()}, "batches": result.batches,
           "seconds": result.seconds}
    if args.json:
        _print_json(out)
    else:
        print(result.summary())
    return EXIT_OK


def cmd_decode(args) -> int:
    from workbench.core.search import DecodeSession, available_weights, write_attention, write_document
    from workbench.plugin_system.loader import UnknownContributionError
    from workbench.plugin_system.params import ParamError, field_info, params_from_dict
    reg = _registry()
    project = _open(args.file, reg)
    base_dir = Path(args.file).resolve().parent
    decoder_id = args.decoder or project.decode.decoder
    try:
        spec = reg.decoder(decoder_id)
        settings = dict(project.decode.params) if decoder_id == project.decode.decoder else {}
        names = {f.name for f in field_info(spec.params)}
        settings = {k: v for k, v in settings.items() if k in names}
        settings.update(_settings(args.set))
        params_from_dict(spec.params, settings, spec.id)
    except (UnknownContributionError, ParamError) as exc:
        raise UsageError(str(exc)) from None
    weights = "best" if args.best else "current"
    if weights not in available_weights(project):
        raise UsageError("this project has no best weights yet: they are kept at the first validation of a run")
    import torch

    from workbench.core.device import default_threads, resolve_device
    try:
        device = resolve_device(args.device or project.train.device)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if device.type == "cpu":
        torch.set_num_threads(project.train.threads or default_threads(False))
    # the same session the window's decoding view uses, so --tree writes exactly what the view draws
    session = DecodeSession(reg)
    task = session.task(project, base_dir)
    if not task.generative:
        raise UsageError(f"task {project.task.id!r} does not generate tokens; decoders do not apply")
    if not available_weights(project)["current"]["trained"]:
        _note("this project has no trained weights for its graph: decoding with freshly initialised weights")
    prompt = args.input if args.input is not None else project.decode.prompt
    try:
        doc = session.decode(project, base_dir, spec.id, settings, prompt, prefix_text=args.prefix or "",
                             weights=weights, device=device, seed=args.seed)
    except ValueError as exc:   # a prefix the task cannot take, an example index out of range
        raise UsageError(str(exc)) from None
    attention = None
    if args.attention:
        best = doc["alternatives"][0] if doc["alternatives"] else {"tokens": doc["tokens"], "finished": False}
        attention = session.attention(project, base_dir, doc["input"], best["tokens"], bool(best.get("finished")),
                                      weights=weights, device=device)
        if attention is None:
            raise UsageError("this model has no attention block: there is no attention map to write")
        write_attention(args.attention, attention)
    if args.tree:
        write_document(doc, args.tree)
    if args.json:
        _print_json({"prompt": doc["input"], **doc})
    else:
        print(doc["input"] + doc["text"] if task.continues_prompt else doc["text"])
        for path in (args.tree, args.attention):
            if path:
                print(f"wrote {path}")
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
    from workbench.core.io import read_manifest
    reg = _registry()
    project = _open(args.file, reg)
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
        _print_json(info)
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
    reg = _registry()
    project = _open(args.file, reg)
    runs = project.history.runs
    if args.run:
        runs = [r for r in runs if r.id == args.run]
        if not runs:
            raise UsageError(f"no run {args.run!r}; runs: {', '.join(r.id for r in project.history.runs)}")
    out = []
    for run in runs:
        series = {k: {"step": s.step, "value": [_finite(v) for v in s.value]} for k, s in run.series.items()
                  if not args.series or any(k.startswith(x) for x in args.series)}
        out.append({"id": run.id, "status": run.status, "settings": run.settings, "series": series,
                    "gradient_through_time": run.gtt if args.gtt or not args.series else [],
                    "samples": run.samples})
    if args.json:
        _print_json(out)
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


def cmd_probe(args) -> int:
    from workbench.core import probes
    from workbench.core.train import load_for_inference
    reg = _registry()
    project = _open(args.file, reg)
    _apply(project, args.set, reg)
    if not (args.gradient_through_time or args.spectral):
        raise UsageError("choose what to probe: --gradient-through-time and/or --spectral")
    loaded = load_for_inference(project, reg, Path(args.file).resolve().parent, args.device)
    out: dict[str, Any] = {"step": loaded.step, "trained": loaded.trained}
    if args.gradient_through_time:
        length = args.length or project.train.probe_len or project.train.chunk_len
        batch = loaded.task.probe_batch(args.batch or project.train.probe_batch, length)
        batch = {k: (v.to(loaded.device) if hasattr(v, "to") else v) for k, v in batch.items()}
        gtt = probes.GradientThroughTimeProbe(loaded.model, loaded.task, batch).run()
        out["gradient_through_time"] = gtt
    if args.spectral:
        out["sigma_max"] = probes.spectral_norms(loaded.model)
    if args.json:
        _print_json(out)
        return EXIT_OK
    for layer, v in (out.get("gradient_through_time") or {}).items():
        T = len(v["dLT_dh"])
        picks = sorted({0, T // 4, T // 2, 3 * T // 4, T - 1})
        print(f"{layer}: ||dL_T/dh_t|| at t=" + "  ".join(f"{t}:{v['dLT_dh'][t]:.3e}" for t in picks))
        print(f"{' ' * len(layer)}  ||dL/dh_t||   at t=" + "  ".join(f"{t}:{v['dL_dh'][t]:.3e}" for t in picks))
    for k, v in (out.get("sigma_max") or {}).items():
        print(f"sigma_max {k}: {v:.4f}")
    return EXIT_OK


def _inspect_text(args, recorder, project, base_dir: Path) -> str:
    """The text to record: --text, --text-file, or --sample N characters of the validation data."""
    given = [x for x in (args.text is not None, args.text_file is not None, bool(args.sample)) if x]
    if not given:
        raise UsageError("give the text to record with --text TEXT, --text-file FILE or --sample N")
    if len(given) > 1:
        raise UsageError("give only one of --text, --text-file and --sample")
    if args.text_file:
        from workbench.core.errors import DataError
        try:
            return Path(args.text_file).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{args.text_file} is not valid UTF-8 (byte offset {exc.start})") from None
    if args.sample:
        return recorder.sample_text(project, base_dir, args.sample)
    if not args.text:
        raise UsageError("the text to record is empty")
    return args.text


def _inspect_record(args, check_text=None) -> tuple[Any, dict[str, Any]]:
    """Open the project and record the chosen text at the chosen weights, as the window's Record button does.
    ``check_text(text)`` may refuse the text before the model runs."""
    from workbench.core.inspect import Recorder, available_weights
    reg = _registry()
    project = _open(args.file, reg)
    base_dir = Path(args.file).resolve().parent
    weights = "best" if args.best else "current"
    if weights not in available_weights(project):
        raise UsageError("this project has no best weights yet: they are kept at the first validation of a run")
    recorder = Recorder(reg)
    text = _inspect_text(args, recorder, project, base_dir)
    if check_text is not None:
        check_text(text)
    if args.device:
        from workbench.core.device import resolve_device
        try:
            resolve_device(args.device)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    rec = recorder.record(project, text, base_dir, weights, args.device)
    if not rec["meta"]["trained"]:
        _note("this project has no trained weights for its graph: recording freshly initialised weights")
    return project, rec


def cmd_record(args) -> int:
    from workbench.core import inspect
    _, rec = _inspect_record(args)
    text = rec["text"]
    if args.npz:
        inspect.save_npz(rec, args.npz)
    saturation = inspect.gate_saturation(rec) if args.saturation else None
    summary = {"chars": len(text), "steps": len(rec["tokens"]),
               "layers": {layer: {q: list(a.shape) for q, a in qs.items()} for layer, qs in rec["layers"].items()},
               "weights": rec["meta"]["weights"], "step": rec["meta"]["step"], "trained": rec["meta"]["trained"],
               "npz": args.npz, "saturation": saturation}
    if args.json:
        if args.values:
            summary["values"] = {layer: {q: a.tolist() for q, a in qs.items()} for layer, qs in rec["layers"].items()}
        _print_json(summary)
    else:
        for layer, qs in summary["layers"].items():
            print(f"{layer}: " + ", ".join(f"{q} {tuple(s)}" for q, s in qs.items()))
        for layer, gates in (saturation or {}).items():
            for g, v in gates.items():
                left, right = sum(v["left"]) / len(v["left"]), sum(v["right"]) / len(v["right"])
                print(f"saturation {layer}/{g} ({v['range']}: left < {v['low']:g}, right > {v['high']:g}): "
                      f"mean left {left:.3f}, mean right {right:.3f}")
        if args.npz:
            print(f"wrote {args.npz}")
    return EXIT_OK


def cmd_units(args) -> int:
    from workbench.core import inspect
    reg = _registry()    # the feature tracks of every plugin (seqwb_feature_tracks), built-ins included
    feature = args.feature
    if feature.startswith(inspect.REGEX_PREFIX):
        try:
            inspect.track_regex("", feature[len(inspect.REGEX_PREFIX):])
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    else:
        try:
            inspect.get_track(feature, reg)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    def check_text(text: str) -> None:
        from workbench.core.errors import DataError
        track = inspect.compute_track(feature, text, reg)
        if track.size < 2 or float(track.max() - track.min()) == 0.0:  # before spending time on the model
            raise DataError(inspect.constant_message(feature, float(track[0]) if track.size else 0.0))

    _, rec = _inspect_record(args, check_text)
    layers = inspect.layer_names(rec)
    if not layers:
        raise UsageError("this model has no recurrent layer to look inside")
    if args.layer and args.layer not in layers:
        raise UsageError(f"no layer {args.layer!r}; layers: {', '.join(layers)}")
    chosen = [args.layer] if args.layer else layers
    quantity = args.quantity
    if not any(quantity in rec["layers"][layer] for layer in chosen):
        have = sorted({q for layer in chosen for q in rec["layers"][layer]})
        raise UsageError(f"no {quantity!r} in {', '.join(chosen)}; choose one of: {', '.join(have)}")
    track = inspect.step_track(rec, feature, reg)
    try:
        rows = inspect.search_layers(rec, track, quantity, chosen, args.top, registry=reg)
    except ValueError as exc:
        from workbench.core.errors import DataError
        raise DataError(str(exc).replace("the track", f"the feature “{inspect.feature_title(feature, reg)}”")) \
            from None
    out = {"feature": feature, "title": inspect.feature_title(feature, reg), "quantity": quantity, "layers": chosen,
           "steps": len(rec["tokens"]), "chars": len(rec["text"]), "fraction_nonzero": float((track != 0).mean()),
           "weights": rec["meta"]["weights"], "step": rec["meta"]["step"], "trained": rec["meta"]["trained"],
           "units": [{"layer": layer, "unit": unit, "r": r} for layer, unit, r in rows]}
    if args.json:
        _print_json(out)
        return EXIT_OK
    print(f"{out['title']} over {out['chars']:,} characters ({100 * out['fraction_nonzero']:.1f} % non-zero); "
          f"{quantity} of {', '.join(chosen)}; {out['weights']} weights, step {out['step']}")
    print(f"{'rank':>4}  {'layer':<12} {'unit':>5}  {'r':>7}")
    for i, row in enumerate(out["units"], 1):
        print(f"{i:>4}  {row['layer']:<12} {row['unit']:>5}  {row['r']:+.4f}")
    return EXIT_OK


def cmd_gui(args) -> int:
    from workbench.gui.app import run_app
    return run_app(getattr(args, "file", None))


# ---- parser -------------------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line, exit code 2
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="seqwb", description="Sequence Workbench: build, train and look inside recurrent models.")
    p.add_argument("--version", action="version", version=f"seqwb {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    def add(name, func, help_text):
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(func=func)
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
        return sp

    def sets(sp):
        sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="change a setting (repeatable): lr=0.1, rnn.hidden_size=512, task.corpus=FILE")

    sp = add("gui", cmd_gui, "open the desktop window (on FILE, or on the default project)")
    sp.add_argument("file", nargs="?")

    sp = add("plugins", cmd_plugins, "list every contribution of every plugin, and plugins that failed to load")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--markdown", action="store_true",
                    help="print the reference of the built-in plugins with their parameters (docs/catalog.md)")
    sp.add_argument("--all", action="store_true", help="with --markdown: include third-party plugins")
    sp.add_argument("--check", action="store_true",
                    help="also build every cell and run a trial step (imports torch): names cells with wrong shapes")

    sp = add("plugin", None, "plugin authoring: `seqwb plugin new NAME` scaffolds a plugin package")
    plugin_sub = sp.add_subparsers(dest="plugin_command", parser_class=_Parser, metavar="ACTION", required=True)
    sp = plugin_sub.add_parser("new", help="create a plugin package (pyproject, entry point, a working cell, tests)",
                               description="create a plugin package (pyproject, entry point, a working cell, "
                                           "tests using the contract checks, README)")
    sp.set_defaults(func=cmd_plugin_new)
    sp.add_argument("name", help="plugin name, e.g. my-cell (the distribution becomes seqwb-my-cell)")
    sp.add_argument("--dir", default=".", help="folder to create the package in (default: the current one)")
    sp.add_argument("--json", action="store_true")

    sp = add("templates", cmd_templates, "list the project templates")
    sp.add_argument("--json", action="store_true")

    sp = add("new", cmd_new, "create a project file from a template")
    sp.add_argument("template")
    sp.add_argument("-o", "--output", required=True, metavar="FILE")
    sp.add_argument("--name", help="project name")
    sp.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    sp.add_argument("--json", action="store_true")
    sets(sp)

    sp = add("train", cmd_train, "train a project (continuing from its checkpoint) and save it")
    sp.add_argument("file")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--steps", type=int, help="train this many more steps")
    g.add_argument("--epochs", type=int, help="train this many more epochs")
    sp.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps")
    sp.add_argument("--new-run", action="store_true", help="start a new run from fresh weights")
    sp.add_argument("--json", action="store_true", help="one JSON object per log line")
    sp.add_argument("-q", "--quiet", action="store_true", help="no samples in the log")
    sp.add_argument("--distributed", action="store_true",
                    help="data-parallel training over processes: under torchrun it is automatic; without "
                         "torchrun, --nproc N starts it (docs/scaling.md)")
    sp.add_argument("--nproc", type=int, metavar="N",
                    help="with --distributed: start N local processes with torchrun --standalone")
    sets(sp)

    sp = add("eval", cmd_eval, "evaluate the trained model on a split")
    sp.add_argument("file")
    sp.add_argument("--split", choices=["train", "valid", "test"], default="valid")
    sp.add_argument("--max-batches", type=int, default=0, help="0: the whole split")
    sp.add_argument("--best", action="store_true", help="use the best weights seen in validation")
    sp.add_argument("--device")
    sp.add_argument("--json", action="store_true")
    sets(sp)

    sp = add("decode", cmd_decode, "generate with a decoder")
    sp.add_argument("file")
    sp.add_argument("--decoder", help="decoder id (default: the project's)")
    sp.add_argument("--input", help="prompt / input text (captioning: an example index such as 12 or test:3)")
    sp.add_argument("--prefix", metavar="TEXT", help="force the output to start with TEXT, then decode the rest")
    sp.add_argument("--best", action="store_true", help="use the best weights seen in validation")
    sp.add_argument("--tree", metavar="OUT", help="write the search document (tree, n-best, settings) as JSON, "
                                                  "the data the decoding view draws")
    sp.add_argument("--attention", metavar="OUT", help="write the best hypothesis's attention map to OUT (.npz: "
                                                       "weights [target, source], source, target)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--device")
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

    sp = add("probe", cmd_probe, "measure gradients through time / spectral norms of the current weights")
    sp.add_argument("file")
    sp.add_argument("--gradient-through-time", action="store_true")
    sp.add_argument("--spectral", action="store_true", help="largest singular value of each recurrent matrix")
    sp.add_argument("--batch", type=int, help="sequences in the probe batch")
    sp.add_argument("--length", type=int, help="timesteps in the probe batch")
    sp.add_argument("--device")
    sp.add_argument("--json", action="store_true")
    sets(sp)

    def inspect_input(sp):
        sp.add_argument("file")
        sp.add_argument("--text", help="the text to record")
        sp.add_argument("--text-file", metavar="FILE", help="record the contents of FILE (UTF-8)")
        sp.add_argument("--sample", type=int, metavar="N", help="record N characters of the validation data")
        sp.add_argument("--best", action="store_true", help="the best weights seen in validation (default: current)")
        sp.add_argument("--device")
        sp.add_argument("--json", action="store_true")

    sp = add("record", cmd_record, "record hidden states, cell states and gates over a text")
    inspect_input(sp)
    sp.add_argument("--npz", metavar="OUT",
                    help="write what the hidden-unit views show to OUT (.npz; keys in 'Looking inside', README)")
    sp.add_argument("--saturation", action="store_true", help="gate saturation fractions per unit")
    sp.add_argument("--values", action="store_true", help="with --json: include every value")

    sp = add("units", cmd_units, "rank hidden units by how well they track a feature of the text (unit search)")
    inspect_input(sp)
    sp.add_argument("--feature", required=True, metavar="FEATURE",
                    help="quotes | comment | brackets | line_position | indent | word_start | regex:PATTERN "
                         "(or a feature track a plugin registered)")
    sp.add_argument("--layer", help="only this layer (default: every recurrent layer)")
    sp.add_argument("--quantity", default="h", help="h (default), c, or a gate (i, f, g, o; r, z, n)")
    sp.add_argument("--top", type=int, default=10, help="show the K best units (0: all; default 10)")

    from workbench.export_cli import add_export_command
    add_export_command(add)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0].endswith(".seqwb") and not argv[0].startswith("-"):
        argv = ["gui", *argv]  # `seqwb FILE` opens FILE in the window (a file name is never a command name)
    args = parser.parse_args(argv)
    if args.command is None:
        args.func, args.file = cmd_gui, None
    debug = bool(getattr(args, "debug", False))
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        sys.stderr.write(f"seqwb: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("seqwb: interrupted\n")
        return 130
    except Exception as exc:  # noqa: BLE001 - one clear line unless --debug
        from workbench.core.errors import WorkbenchError
        if debug:
            traceback.print_exc()
        msg = str(exc) if isinstance(exc, (WorkbenchError, FileNotFoundError, OSError)) else \
            f"{type(exc).__name__}: {exc}"
        sys.stderr.write(f"seqwb: error: {msg.splitlines()[0] if msg else type(exc).__name__}\n")
        if not debug and not isinstance(exc, (WorkbenchError, FileNotFoundError)):
            sys.stderr.write("seqwb: (run with --debug for the traceback)\n")
        return EXIT_FAIL


def gui_main() -> int:
    return main(["gui", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
