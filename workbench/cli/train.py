"""``seqwb train``: the Trainer with log lines, checkpoints, signals, and torchrun for several processes."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

from workbench.cli.common import (
    EXIT_OK,
    UsageError,
    apply_settings,
    finite,
    heartbeat,
    hold_lock,
    note,
    open_project,
    print_json,
    registry,
    release_lock,
    save,
)


class _CLIReporter:
    """Prints log lines (human or JSON) and saves the project at each of the trainer's checkpoints."""

    def __init__(self, args, path: str, registry, project):
        self.args, self.path, self.registry, self.project = args, path, registry, project
        self.last_step_logged = -1
        self.threads = 0         # the CPU threads of the last step (automatic threads follow the free cores)
        self.unit = "tokens"     # what the task counts (tokens, sequences...), known once its data is read
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
            print_json({"event": "data", "stage": stage, "done_bytes": done, "total_bytes": total})
        else:
            note(f"reading data: {stage} {fraction:4.0%} ({done / 1e6:,.0f} of {total / 1e6:,.0f} MB)")

    def on_train_start(self, trainer) -> None:
        self.unit = getattr(trainer.task, "count_unit", "tokens")

    def on_step_end(self, trainer, ev) -> None:
        heartbeat(self.path)      # the lock file's time says this run is alive (for machines that cannot see the lock)
        cfg = trainer.cfg
        if ev.skipped:
            note(f"step {ev.step}: the loss or gradient is not finite (loss {ev.loss}); step skipped as "
                  f"nan_policy=skip asks ({trainer.skipped_steps} skipped so far)")
        if not self.threads and trainer.governor is not None:
            self.threads = trainer.governor.most         # what the automatic count started from
        if ev.threads and self.threads and ev.threads != self.threads and not self.args.json:
            note(f"step {ev.step}: training on {ev.threads} thread{'s' if ev.threads != 1 else ''} now (threads=0 "
                 f"follows the cores that other processes leave free; set threads=N to keep N)")
        self.threads = ev.threads or self.threads
        if ev.step % cfg.log_every == 0 or ev.progress >= 1.0:
            self._log(ev)

    def on_checkpoint(self, trainer, checkpoint) -> None:
        save(self.project, self.path, self.registry, program="seqwb train")

    def _log(self, ev) -> None:
        self.last_step_logged = ev.step
        if self.args.json:
            print_json({"event": "step", "step": ev.step, "epoch": ev.epoch, "loss": finite(ev.loss),
                         "grad_norm": finite(ev.grad_norm), "grad_norm_clipped": finite(ev.grad_norm_clipped),
                         "lr": ev.lr, "tokens_per_s": round(ev.tokens_per_s, 1), "counted": self.unit,
                         "threads": ev.threads,
                         "elapsed_s": round(ev.elapsed, 3), "eta_s": round(ev.eta, 1)})
        else:
            print(f"step {ev.step:>6} | epoch {ev.epoch:>3} | loss {ev.loss:8.4f} | grad {ev.grad_norm:8.3f} | "
                  f"lr {ev.lr:.3g} | {ev.tokens_per_s:,.0f} {self.unit}/s | eta {ev.eta:,.0f}s", flush=True)

    def on_eval_end(self, trainer, ev) -> None:
        if self.args.json:
            print_json({"event": "eval", "step": ev.step, "epoch": ev.epoch, "split": ev.split,
                         **{f"valid_{k}": finite(v) for k, v in ev.metrics.items()}, "best": ev.best})
        else:
            from workbench.core.training.evaluation import format_metric  # loaded already: this runs during training
            metrics = "  ".join(f"{k} {format_metric(v)}" for k, v in ev.metrics.items())
            print(f"valid @ {ev.step}: {metrics}{'  (best)' if ev.best else ''}", flush=True)

    def on_sample(self, trainer, ev) -> None:
        if self.args.json:
            print_json({"event": "sample", "step": ev.step, "text": ev.text})
        elif not self.args.quiet:
            print(f"---- sample @ {ev.step} ----\n{ev.text}\n----", flush=True)

    def on_probe_end(self, trainer, ev) -> None:
        if self.args.json:
            summary = {layer: {"dLT_dh_first": v["dLT_dh"][0] if v["dLT_dh"] else None,
                               "dLT_dh_last": v["dLT_dh"][-1] if v["dLT_dh"] else None}
                       for layer, v in ev.gtt.items()}
            print_json({"event": "probe", "step": ev.step, "gradient_through_time": summary, "sigma_max": ev.sigma})


def cmd_train(args) -> int:
    """``seqwb train``; under torchrun each process trains its shard of every batch (docs/scaling.md)."""
    from workbench.core import distributed
    from workbench.schema.errors import TrainingError
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
        release_lock(args.file)        # held since before the file was read (_claim)
        if launch is not None:
            distributed.leave()


def _launch_distributed(args) -> int:
    """``seqwb train FILE --distributed --nproc N``: run the same command in N local processes under torchrun."""

    from workbench.core.distributed import launch_command
    reg = registry()
    project = open_project(args.file, reg)
    apply_settings(project, args.set, reg)
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
    from workbench.core.training.events import RunControl
    from workbench.core.training.trainer import Trainer
    main_rank = launch is None or launch.rank == 0   # rank 0 alone prints and writes the project file
    if main_rank:
        _claim(args.file)
    reg = registry()
    project = open_project(args.file, reg)
    changed = apply_settings(project, args.set, reg)
    if args.device:
        from workbench.core.device import resolve_device
        try:
            resolve_device(args.device)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    from workbench.core.runs import plan_run
    plan = plan_run(project, force_new=args.new_run, more_steps=args.steps, more_epochs=args.epochs)
    control = RunControl()
    reporter = _CLIReporter(args, args.file, reg, project)
    trainer = Trainer(project, reg, callbacks=[reporter] if main_rank else [], control=control,
                      base_dir=Path(args.file).resolve().parent, new_run=plan.new_run, device=args.device,
                      distributed=launch)

    def quit_now(signum, frame):
        raise KeyboardInterrupt  # SIGTERM while the data is read: nothing to save yet, leave as Ctrl-C does

    term_before = signal.signal(signal.SIGTERM, quit_now) if hasattr(signal, "SIGTERM") else None
    try:
        trainer.setup()  # data or model errors stop here, before anything is written
    except Exception as exc:  # noqa: BLE001 - a bug in a plugin's code: name the plugin, not just the error
        from workbench.core.training.faults import plugin_at_fault
        from workbench.schema.errors import TrainingError, WorkbenchError
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
        note(n)
    if changed and not args.json and main_rank:
        print("settings: " + "; ".join(changed))
    if not args.json and main_rank:
        print(f"train: {plan.text}", flush=True)
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
        note(f"{name}: stopping after this step and saving a checkpoint (Ctrl-C again to quit at once without "
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
            save(project, args.file, reg, program="seqwb train")
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not main_rank:
        return EXIT_OK
    trainer.checkpoint()
    save(project, args.file, reg, program="seqwb train")
    skipped = trainer.skipped_steps
    if args.json:
        print_json({"event": "end", "status": end.status, "step": end.step, "message": end.message,
                     "file": args.file, "best": trainer.best, "skipped_steps": skipped,
                     "signal": interrupted["by"] or None})
    else:
        extra = f" ({skipped} step(s) skipped: non-finite loss or gradient)" if skipped else ""
        if end.status == "stopped" and interrupted["by"]:
            print(f"stopped by {interrupted['by']} at step {end.step}; checkpoint saved to {args.file}{extra}")
        else:
            print(f"{end.status} at step {end.step}; saved {args.file}{extra}")
    return EXIT_OK


def _claim(path: str) -> None:
    """Before the file is read: the run will replace it, so it must be a writable project file, and nobody else
    may be writing it (their lock names them)."""
    from pathlib import Path as _Path

    from workbench.core.projectfile import ProjectSaveError, ReadOnlyProjectError, check_writable
    from workbench.core.projectfile.lock import ProjectLockedError
    if not _Path(path).is_file():
        return          # missing, a folder, a pipe, a link that loops: open_project says what it is
    try:
        check_writable(path)
    except ReadOnlyProjectError:
        raise ReadOnlyProjectError(f"{path} is read-only: seqwb train would replace it at every checkpoint, so "
                                   f"nothing was trained; make it writable (chmod u+w {path}) or train a copy of "
                                   f"it") from None
    except ProjectSaveError:
        return          # open_project says what is wrong with it
    try:
        hold_lock(path, "seqwb train")
    except ProjectLockedError as exc:
        raise ProjectLockedError(f"{exc}; nothing was trained or written: wait until it has finished (or stop "
                                 f"it), or train a copy of the file", exc.holder) from None


def register(add, sets) -> None:
    """Add this module's sub-commands (``add(name, func, help)`` makes one; ``sets(sp)`` adds ``--set``)."""
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
