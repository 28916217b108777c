"""The Trainer: a Qt-free training loop that reports through callbacks.

Truncated BPTT with the hidden state carried across chunks, gradient clipping by value and by norm, five
optimizers, learning-rate schedules, validation, best-checkpoint tracking, probes, seeds and devices.  A
:class:`RunControl` lets another thread stop or pause it between steps.  Everything else (the CLI's log lines,
the GUI's plots, autosave) observes training through callbacks.
"""


from __future__ import annotations

import collections
import dataclasses
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from workbench.core import precision, probes
from workbench.core.blocks import map_state
from workbench.core.build import SequenceModel, build_model
from workbench.core.cells import after_optimizer_step
from workbench.core.data_access import check_task_paths
from workbench.core.device import bounded_threads, default_threads, resolve_device
from workbench.core.project import Checkpoint, Project, Run
from workbench.core.tasks import Task
from workbench.schema.registry import Registry
from workbench.schema.specs import TaskSpec
from workbench.core.training import checkpointing, restore_checks
from workbench.core.training.evaluation import evaluate_model
from workbench.core.training.events import (EPOCH, GRAD_CLIPPED_PREFIX, GRAD_NORM, GRAD_NORM_CLIPPED, GRAD_PREFIX, LOSS,
                                            LR, SKIPPED_STEPS, TOKENS_PER_S, WALL_TIME, Callback, EndEvent,
                                            EvalEvent, ProbeEvent, RunControl, SampleEvent, StepEvent,
                                            started_timestamp)
from workbench.core.training.faults import check_data_fits, nonfinite_origin, plugin_at_fault, progress_argument
from workbench.core.training.optim import make_optimizer, scheduled_lr
from workbench.schema.errors import TrainingError, WorkbenchError
from workbench.schema.params import ParamError, params_from_dict, params_to_dict

# ---- the trainer --------------------------------------------------------------------------------------------

@dataclass
class Position:
    step: int = 0
    epoch: int = 0
    batch: int = 0     # index of the next batch within the epoch


class Trainer:
    """Train a :class:`~workbench.core.project.Project` in place (weights, history and checkpoint)."""

    def __init__(self, project: Project, registry: Registry, *, callbacks: list[Callback] | tuple = (),
                 control: RunControl | None = None, base_dir: str | Path | None = None,
                 threads: int | None = None, new_run: bool = False, device: str | None = None,
                 distributed: Any = None, checkpoint_seconds: float = 0.0, follow_load: bool | None = None):
        """``threads``: torch's intra-op threads on a CPU, chosen by the caller (the window passes
        ``default_threads(behind_window=True)``); None: the project's ``threads`` setting, else every core.
        ``follow_load``: lower the count to the cores other processes leave free while training, and raise it back
        (:class:`workbench.core.threads.ThreadGovernor`); None: when neither the caller nor the project chose a
        count.  Checkpoints (:meth:`Callback.on_checkpoint`) are taken every ``train.checkpoint_every``
        steps and, with ``checkpoint_seconds``, at least that often."""
        self.project = project
        # a workbench.core.distributed.DistributedContext (or the LaunchEnv to start one in setup, on the
        # configured device): this process trains its shard of every batch
        self.dist = distributed
        self._train_module: Any = None      # the model, or the model in DistributedDataParallel
        self._carry_global: Any = None      # distributed: the carried state of the whole batch (for checkpoints)
        self._carry_global_batch = 0
        self._stop_agreed = False
        self.registry = registry
        self.callbacks = list(callbacks)
        self.control = control or RunControl()
        self.base_dir = Path(base_dir) if base_dir else Path.cwd()
        self.threads = threads
        self.follow_load = follow_load
        self.governor: Any = None           # a ThreadGovernor when the thread count is automatic
        self._fixed_threads = 0             # torch's CPU threads when no governor changes them (0 on a GPU)
        self.checkpoint_seconds = float(checkpoint_seconds)
        self.cfg = project.train
        if device is not None:
            self.cfg = dataclasses.replace(self.cfg, device=device)
        self._force_new_run = new_run
        # set by setup(); the trainer is used only after it
        self.model: SequenceModel
        self.task: Task
        self.task_spec: TaskSpec
        self.optimizer: torch.optim.Optimizer
        self.run: Run
        self.device: torch.device
        self.precision: precision.Precision
        self.pos = Position()
        self.notices: list[str] = []
        self.skipped_steps = 0  # steps skipped for a non-finite loss or gradient (nan_policy="skip"), this session
        self._carry: Any = None
        self._carry_batch = 0
        self._last_count = 0
        self._plateau: dict[str, Any] = {"lr": None, "best": None, "bad": 0}
        self.best: dict[str, Any] = {}
        self._best_weights: dict[str, torch.Tensor] | None = None
        self._is_setup = False

    # ---- setup -----------------------------------------------------------------------------------------
    def setup(self) -> None:
        """Read the data, build the model, restore the checkpoint (if it fits the graph) or initialise.

        Running out of memory here (a model or a batch too large for the machine) is one TrainingError with the
        advice of an out-of-memory step, not the allocator's text blamed on a plugin."""
        if self._is_setup:
            return
        try:
            self._setup()
        except WorkbenchError:
            raise
        except Exception as exc:
            if restore_checks.is_out_of_memory(exc):
                raise TrainingError(f"out of memory while setting up the run (reading the data and building the "
                                    f"model; batch_size {self.cfg.batch_size}, chunk_len {self.cfg.chunk_len}): try "
                                    f"a smaller batch_size or chunk_len, or a smaller model; the last checkpoint is "
                                    f"kept") from exc
            raise

    def _setup(self) -> None:
        cfg = self.cfg
        try:
            self.device = resolve_device(cfg.device)
        except ValueError as exc:
            raise TrainingError(str(exc)) from None
        if self.dist is not None:
            from workbench.core.distributed import DistributedContext, LaunchEnv
            if isinstance(self.dist, LaunchEnv):
                self.dist = DistributedContext.start(self.dist, cfg.device)
            self.device = self.dist.device
            self.dist.check_batch_size(cfg.batch_size)
        if self.device.type == "cpu":
            automatic = not (self.threads or cfg.threads)
            follow = (automatic if self.follow_load is None else self.follow_load) and self.dist is None
            threads = self.threads or cfg.threads or (self.dist.cpu_threads() if self.dist is not None
                                                      else default_threads(behind_window=False))
            threads, notice = bounded_threads(int(threads))
            if notice:
                self.notices.append(notice)
            torch.set_num_threads(threads)
            self._fixed_threads = threads
            if follow:          # threads = 0: follow the cores the machine's other processes leave free
                from workbench.core.threads import ThreadGovernor
                self.governor = ThreadGovernor(threads, torch.set_num_threads)
        project, registry = self.project, self.registry
        if not project.task.id:
            raise TrainingError("the project has no task to train on: choose one first (drag it from the "
                                "palette's Tasks onto the canvas, or seqwb new --task ID)")
        task_spec = registry.task(project.task.id)
        self.task_spec = task_spec
        try:
            task_params = params_from_dict(task_spec.params, project.task.params, "task")
        except ParamError as exc:          # settings from a file: said as the project's own error, not a raw one
            raise TrainingError(f"the project's task settings are not valid: {exc} (change it with --set, or in the "
                                f"inspector)") from None
        # data outside the project's folder that its file named is read only once confirmed (data_access)
        check_task_paths(task_spec, project.task.params, self.base_dir)
        self.task = task_spec.load()(task_params, self.base_dir)
        self.task.prepare(vocab=project.vocab, **progress_argument(self.task, self._data_progress))
        if cfg.bptt_k2 and not self.task.stateful:
            raise TrainingError(f"bptt_k2 is truncated backpropagation through a carried state; task "
                                f"{project.task.id!r} trains whole independent sequences, so set bptt_k2=0")
        ckpt = project.checkpoint
        graph_hash = project.graph.content_hash()
        resume = ckpt is not None and ckpt.graph_hash == graph_hash and ckpt.weights and not self._force_new_run
        if resume:
            check_data_fits(project, self.task.sizes)  # before project.data is replaced: nothing changes on error
        project.vocab = self.task.vocab
        project.data = {"files": self.task.data_files, "sizes": dict(self.task.sizes)}
        if ckpt is not None and ckpt.graph_hash != graph_hash and not self._force_new_run:
            self.notices.append("the model graph changed since the last checkpoint: starting a new run from "
                                "fresh weights")
        if not resume:
            self._seed_everything(cfg.seed)
        self.model = build_model(project.graph, registry, task_spec, self.task.sizes)
        if not resume:
            self.model.init_weights(cfg.init, cfg.init_scale)
        self.model.to(self.device)
        self.precision, notice = precision.for_model(cfg.precision, self.device, self.model)
        if notice:
            self.notices.append(notice)
        self.optimizer = make_optimizer(cfg, self.model.parameters())
        self.group_names, self._group_params, self._group_index = probes.group_index(self.model)
        self._group_index = self._group_index.to(self.device)
        if resume:
            assert ckpt is not None
            self._restore(ckpt)
            self.run = project.history.current or project.history.new_run(self._run_settings())
            self.run.truncate_after(self.pos.step)
        else:
            self.pos = Position()
            self.run = project.history.new_run(self._run_settings())
        self._train_module = self.model
        if self.dist is not None:
            self._start_distributed()
        self._probe_batch: dict[str, Any] | None = None
        self._is_setup = True

    @property
    def cpu_threads(self) -> int:
        """torch's CPU threads now (0 on a GPU): the governor's count when the count is automatic."""
        return self.governor.current if self.governor is not None else self._fixed_threads

    @property
    def is_main(self) -> bool:
        """True in a single process, and on rank 0 of a distributed run (the one that validates, probes, samples)."""
        return self.dist is None or self.dist.rank == 0

    def _start_distributed(self) -> None:
        from workbench.core.distributed import rank_seed
        dist = self.dist
        if self._carry is not None:  # a checkpoint holds the whole batch's state: keep this process's rows
            self._carry_global, self._carry_global_batch = self._carry, self._carry_batch
            self._carry = dist.shard_state(self.model, self._carry)
            total, r, n = self._carry_batch, dist.rank, dist.world_size
            self._carry_batch = (r + 1) * total // n - r * total // n
        if dist.rank > 0:
            # every rank built the same initial weights from the seed; from here dropout masks must differ
            torch.manual_seed(rank_seed(self.cfg.seed, dist.rank, self.pos.step))
        self._train_module = dist.wrap(self.model)

    def _run_settings(self) -> dict[str, Any]:
        cells = sorted({str(n.params.get("cell")) for n in self.project.graph.nodes.values() if "cell" in n.params})
        return {"train": params_to_dict(self.cfg), "precision": self.precision.name,
                "task": self.project.task.id, "cells": cells,
                "graph_hash": self.project.graph.content_hash(),
                "parameters": sum(p.numel() for p in self.model.parameters())}

    @staticmethod
    def _seed_everything(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % (2 ** 32))
        torch.manual_seed(seed)

    # ---- checkpoints (workbench.core.training.checkpointing) -------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        """Capture everything needed to continue exactly here; also stored as ``project.checkpoint``."""
        self.setup()
        ckpt = checkpointing.capture(self)
        self.project.checkpoint = ckpt
        return ckpt

    def _restore(self, ckpt: Checkpoint) -> None:
        checkpointing.restore(self, ckpt)

    # ---- events ------------------------------------------------------------------------------------------
    def _data_progress(self, stage: str, done: int, total: int) -> None:
        self._emit("on_data_progress", stage, int(done), int(total))

    def _wants(self, name: str) -> bool:
        """True if a callback implements ``name`` (a checkpoint nobody takes is not worth copying the weights)."""
        return any(getattr(type(cb), name, None) not in (None, getattr(Callback, name, None))
                   for cb in self.callbacks)

    def _emit(self, name: str, *args) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, name, None)
            if fn is not None:
                fn(self, *args)

    # ---- data position -------------------------------------------------------------------------------------
    def _batches(self) -> Iterator[dict[str, Any]]:
        cfg = self.cfg
        while True:
            n = self.task.num_batches("train", cfg.batch_size, cfg.chunk_len)
            if self.pos.batch >= n:
                self.pos.epoch += 1
                self.pos.batch = 0
            for batch in self.task.batches("train", cfg.batch_size, cfg.chunk_len, epoch=self.pos.epoch,
                                           start=self.pos.batch, seed=cfg.seed):
                yield batch
            if self.pos.batch < n:  # the task yielded fewer batches than it announced
                self.pos.batch = n

    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {k: (v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
                for k, v in batch.items()}

    # ---- the loop ---------------------------------------------------------------------------------------------
    def fit(self, steps: int | None = None, epochs: int | None = None, *, final_eval: bool = True) -> EndEvent:
        """Train ``steps`` more steps (or ``epochs`` more epochs; default: up to the config's totals).

        With ``final_eval`` the run ends with a validation pass (unless one just ran).

        Returns the end event; raises :class:`TrainingError` after a fault (NaN loss, out of memory, an
        exception in a plugin), with the run marked failed and the last checkpoint left as it was.
        """
        self.setup()
        cfg = self.cfg
        start_step, start_epoch = self.pos.step, self.pos.epoch
        target_step: int | None = None
        target_epoch: int | None = None
        if steps is not None:
            target_step = start_step + steps
        elif epochs is not None:
            target_epoch = start_epoch + epochs
        elif cfg.epochs:
            target_epoch = cfg.epochs
        else:
            target_step = cfg.steps
        n_per_epoch = self.task.num_batches("train", cfg.batch_size, cfg.chunk_len)
        total = target_step if target_step is not None else (target_epoch or 0) * n_per_epoch
        done_at_start = self.pos.step if target_step is not None else self.pos.epoch * n_per_epoch + self.pos.batch
        self.run.status = "running"
        self._emit("on_train_start")
        model = self.model
        model.train()
        status, message = "finished", ""
        t_start = time.perf_counter()
        run_start = started_timestamp(self.run.started)
        run_start = run_start if math.isfinite(run_start) else time.time()
        speed = _SpeedWindow()
        last_checkpoint = time.monotonic()
        scaler = torch.amp.GradScaler(self.device.type) if self.precision.scaler else None
        batches = self._batches()
        last_eval_step = -1
        try:
            while True:
                if target_step is not None and self.pos.step >= target_step:
                    break
                if target_epoch is not None and self.pos.epoch >= target_epoch and self.pos.batch == 0:
                    break
                if target_epoch is not None and self.pos.epoch >= target_epoch:
                    break
                if self.control.paused:
                    self._emit("on_pause")
                    self.control.wait_while_paused()
                    if not self.control.stopped:
                        self._emit("on_resume")
                # distributed: every rank stops after the same step (the stop flags travel with the loss)
                if self.control.stopped if self.dist is None else self._stop_agreed:
                    status, message = "stopped", f"stopped by the user at step {self.pos.step}"
                    break
                t_batch = time.perf_counter()
                batch = next(batches)
                if target_epoch is not None and self.pos.epoch >= target_epoch:
                    break
                ev = self._train_step(batch, scaler)
                if self.governor is not None:
                    self.governor.tick()
                ev.threads = self.cpu_threads
                now = time.perf_counter()
                # the time of this step alone (its batch, forward, backward and update): validation, probes,
                # samples, callbacks and pauses are not training time
                rate = speed.add(now - t_batch, self._last_count)
                if rate is not None:
                    ev.metrics[TOKENS_PER_S] = rate
                    self.run.log(TOKENS_PER_S, ev.step, rate)
                if ev.step == 1 or ev.step % max(1, cfg.log_every) == 0:   # the dashboard's wall-clock axis
                    ev.metrics[WALL_TIME] = wall = time.time() - run_start
                    self.run.log(WALL_TIME, ev.step, wall)
                done = (self.pos.step if target_step is not None
                        else self.pos.epoch * n_per_epoch + self.pos.batch) - done_at_start
                remaining = max(total - done_at_start - done, 0)
                elapsed = now - t_start
                ev.elapsed = elapsed
                ev.progress = min(1.0, (done_at_start + done) / max(total, 1))
                ev.eta = elapsed / max(done, 1) * remaining
                self._emit("on_step_end", ev)
                step = self.pos.step
                epoch_ended = self.pos.batch >= n_per_epoch
                if (cfg.eval_every and step % cfg.eval_every == 0) or (
                        cfg.eval_every_epochs and epoch_ended and (self.pos.epoch + 1) % cfg.eval_every_epochs == 0):
                    self.evaluate_and_track()
                    last_eval_step = step
                if cfg.probe_every and step % cfg.probe_every == 0 and self.is_main:
                    self.probe()
                if cfg.sample_every and step % cfg.sample_every == 0 and self.task.generative and self.is_main:
                    self.sample()
                # after the step's validation, probe and sample: a checkpoint here is the one the run would
                # leave if it ended now
                due = (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or (
                    self.checkpoint_seconds and time.monotonic() - last_checkpoint >= self.checkpoint_seconds)
                if due and not ev.skipped and self.is_main and self._wants("on_checkpoint"):
                    last_checkpoint = time.monotonic()
                    self._emit("on_checkpoint", self.checkpoint())
            if final_eval and status == "finished" and last_eval_step != self.pos.step \
                    and self.pos.step > start_step:
                self.evaluate_and_track()
        except WorkbenchError as exc:
            self._fail(exc)
            raise
        except Exception as exc:
            err = TrainingError(self._describe_fault(exc))
            self._fail(err, exc)
            raise err from exc
        self.run.status = status
        self.run.message = message
        end = EndEvent(self.pos.step, status, message)
        self._emit("on_train_end", end)
        return end

    def _describe_fault(self, exc: BaseException) -> str:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if restore_checks.is_out_of_memory(exc) or "out of memory" in text.lower():
            # the allocator's own words vary ("can't allocate memory" on a capped host): the same advice for all
            return (f"out of memory at step {self.pos.step + 1} (batch_size {self.cfg.batch_size}, chunk_len "
                    f"{self.cfg.chunk_len}): try a smaller batch_size or chunk_len; the last checkpoint is kept")
        culprit = plugin_at_fault(exc, self.project, self.registry)
        where = f" in {culprit}" if culprit else ""
        return f"training failed at step {self.pos.step + 1}{where}: {type(exc).__name__}: {text}"

    def _fail(self, err: BaseException, cause: BaseException | None = None) -> None:
        run = getattr(self, "run", None)     # None when setup failed before the run existed
        if run is not None:
            run.status = "failed"
            run.message = str(err)
        self._emit("on_exception", cause or err)
        self._emit("on_train_end", EndEvent(self.pos.step, "failed", str(err)))

    def _train_step(self, batch: dict[str, Any], scaler: Any = None) -> StepEvent:
        cfg, model, opt = self.cfg, self.model, self.optimizer
        if self.dist is not None:
            batch = self.dist.shard(self.task, batch)
        batch = self._to_device(batch)
        B = batch[model.input_ports[0]].shape[1]
        if batch.get("reset") or not self.task.stateful or self._carry is None or self._carry_batch != B:
            state = model.init_state(B, self.device)
        else:
            state = self._carry
        lr = scheduled_lr(cfg, self.pos.step, self.pos.epoch, cfg.steps, self._plateau.get("lr"))
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        reduced = self.precision.reduced
        full_batch, start_state = batch, state      # what a non-finite loss is traced back through
        with torch.autocast(self.device.type, dtype=self.precision.dtype(), enabled=reduced):
            if cfg.bptt_k2 and cfg.bptt_k2 < batch[model.input_ports[0]].shape[0]:
                outputs, new_state, batch = self._forward_k2(batch, state)
            else:
                outputs, new_state = self._train_module(batch, state)
        if reduced:
            # the loss, its softmax and everything after it in float32 (see workbench.core.precision)
            outputs = {k: _float32(v) for k, v in outputs.items()}
            new_state = map_state(new_state, _float32)
        loss = self.task.loss(outputs, batch)
        self._last_count = self.task.count(batch)
        loss_value = float(loss.detach())
        if self.dist is not None:
            # log the mean over the whole batch; weight this shard's mean by its share of the items, so that the
            # gradients DDP averages are those of the whole batch's mean (and every rank agrees to skip or stop)
            local = self._last_count
            loss_value, self._last_count, self._stop_agreed = self.dist.reduce_step(loss_value, local,
                                                                                    self.control.stopped)
            loss = loss * self.dist.loss_weight(local, self._last_count)
        # the mean over tokens times what the chosen convention sums over (the whole batch's counts under
        # distributed training): the gradient, its norms and the clipping are in the units of that convention
        if cfg.loss_reduction == "sum":
            loss = loss * self._last_count
        elif cfg.loss_reduction == "sum_over_time":
            steps = self.task.loss_steps(batch)
            loss = loss * (steps if self.dist is None else self.dist.max_int(steps))
        next_step = self.pos.step + 1
        skipped = False
        if not math.isfinite(loss_value):
            if cfg.nan_policy == "stop":
                where = nonfinite_origin(self.model, full_batch, start_state, self.task, self.project,
                                         self.registry)
                raise TrainingError(f"the loss became {loss_value} at step {next_step}{where}; the run stopped and "
                                    f"the last good checkpoint is kept (try a lower lr or clipping)")
            skipped = True
        grads: list[torch.Tensor] = []
        if not skipped:
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
            else:
                loss.backward()
            grads = [p.grad for p in self._group_params if p.grad is not None]
            index = self._group_index if len(grads) == len(self._group_params) else torch.tensor(
                [i for p, i in zip(self._group_params, self._group_index.tolist()) if p.grad is not None],
                dtype=torch.long, device=self.device)
            total, per_group = probes.gradient_norms(grads, index, len(self.group_names))
            if cfg.clip_value:
                torch._foreach_clamp_min_(grads, -cfg.clip_value)
                torch._foreach_clamp_max_(grads, cfg.clip_value)
                total_c, per_group_c = probes.gradient_norms(grads, index, len(self.group_names))
            else:
                total_c, per_group_c = total, per_group
            if cfg.clip_norm:
                coef = torch.clamp(cfg.clip_norm / (total_c + 1e-6), max=1.0)
                torch._foreach_mul_(grads, coef)
                total_c, per_group_c = total_c * coef, per_group_c * coef
            stats = torch.cat([total.view(1), total_c.view(1), per_group, per_group_c]).tolist()
            gn, gn_c = stats[0], stats[1]
            k = len(self.group_names)
            groups = dict(zip(self.group_names, stats[2:2 + k]))
            groups_c = dict(zip(self.group_names, stats[2 + k:2 + 2 * k]))
            if not math.isfinite(gn):
                if cfg.nan_policy == "stop":
                    raise TrainingError(f"the gradient norm became {gn} at step {next_step}; the run stopped and "
                                        f"the last good checkpoint is kept (try clipping or a lower lr)")
                skipped = True
                opt.zero_grad(set_to_none=True)
            else:
                if scaler is not None:
                    scaler.step(opt)
                    scaler.update()
                else:
                    opt.step()
                after_optimizer_step(model)     # cells that keep a constraint on their weights (IndRNN's clip)
        metrics: dict[str, float] = {LOSS: loss_value, LR: lr, EPOCH: self.pos.epoch}
        if skipped:
            self.skipped_steps += 1
            self.notices.append(f"step {next_step}: non-finite loss or gradient, step skipped")
            del self.notices[:-100]  # a long run that skips often must not grow without bound
            metrics[SKIPPED_STEPS] = self.skipped_steps
        else:
            metrics[GRAD_NORM], metrics[GRAD_NORM_CLIPPED] = gn, gn_c
            for name in self.group_names:
                metrics[GRAD_PREFIX + name] = groups[name]
                metrics[GRAD_CLIPPED_PREFIX + name] = groups_c[name]
        self._carry = model.detach_state(new_state) if self.task.stateful else None
        self._carry_batch = B
        if self.dist is not None and self._carry is not None:
            self._carry_global = self.dist.gather_state(model, self._carry)
            self._carry_global_batch = B * self.dist.world_size
        self.pos.step = next_step
        self.pos.batch += 1
        for key, value in metrics.items():
            self.run.log(key, next_step, value)
        return StepEvent(step=next_step, epoch=self.pos.epoch, metrics=metrics, skipped=skipped)

    def _forward_k2(self, batch, state):
        """TBPTT(k1, k2): the first k1-k2 steps only advance the state; loss and gradient use the last k2."""
        model, k2 = self.model, self.cfg.bptt_k2
        T = batch[model.input_ports[0]].shape[0]
        head = {k: (v[:T - k2] if isinstance(v, torch.Tensor) and v.dim() >= 2 else v) for k, v in batch.items()}
        tail = {k: (v[T - k2:] if isinstance(v, torch.Tensor) and v.dim() >= 2 else v) for k, v in batch.items()}
        with torch.no_grad():
            _, state = model(head, state)
        outputs, new_state = self._train_module(tail, model.detach_state(state))
        return outputs, new_state, tail

    # ---- evaluation, probes, samples ---------------------------------------------------------------------
    def evaluate(self, split: str = "valid", max_batches: int | None = None) -> dict[str, float]:
        self.setup()
        limit = self.cfg.eval_batches if max_batches is None else max_batches
        return evaluate_model(self.model, self.task, split, self.cfg.batch_size, self.cfg.chunk_len, limit,
                              self.device)

    def evaluate_and_track(self) -> dict[str, float]:
        if self.dist is not None and not self.is_main:
            return self._follow_evaluation()
        metrics = self.evaluate("valid")
        if self.dist is not None:  # rank 0 validates; the others need its loss for the plateau schedule
            loss = metrics.get("loss")
            self.dist.broadcast_metric(float(loss) if isinstance(loss, (int, float)) else None)
        step = self.pos.step
        for k, v in metrics.items():
            if isinstance(v, (int, float)):
                self.run.log(f"valid/{k}", step, float(v))
        loss = metrics.get("loss")
        best = False
        if loss is not None and math.isfinite(loss) and (not self.best or loss < self.best["value"]):
            self.best = {"metric": "valid/loss", "value": float(loss), "step": step}
            self._best_weights = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            best = True
        if self.cfg.schedule == "plateau" and loss is not None:
            self._update_plateau(loss)
        self._emit("on_eval_end", EvalEvent(step, self.pos.epoch, "valid", metrics, best))
        return metrics

    def _follow_evaluation(self) -> dict[str, float]:
        """Ranks > 0: take rank 0's validation loss and keep the same best / plateau state (no weights kept)."""
        loss = self.dist.broadcast_metric(None)
        if loss is None:
            return {}
        if math.isfinite(loss) and (not self.best or loss < self.best["value"]):
            self.best = {"metric": "valid/loss", "value": float(loss), "step": self.pos.step}
        if self.cfg.schedule == "plateau":
            self._update_plateau(loss)
        return {"loss": loss}

    def _update_plateau(self, loss: float) -> None:
        pl = self._plateau
        if pl.get("best") is None or loss < pl["best"] - 1e-9:
            pl["best"], pl["bad"] = float(loss), 0
        else:
            pl["bad"] = int(pl.get("bad", 0)) + 1
            if pl["bad"] > self.cfg.plateau_patience:
                current = pl.get("lr") or self.cfg.lr
                pl["lr"] = max(self.cfg.min_lr, current * self.cfg.decay_factor)
                pl["bad"] = 0

    def probe_batch(self) -> dict[str, Any]:
        if self._probe_batch is None:
            length = self.cfg.probe_len or self.cfg.chunk_len
            self._probe_batch = self._to_device(self.task.probe_batch(self.cfg.probe_batch, length))
        return self._probe_batch

    def probe(self) -> ProbeEvent:
        self.setup()
        gtt = probes.GradientThroughTimeProbe(self.model, self.task, self.probe_batch()).run()
        sigma = probes.spectral_norms(self.model)
        step = self.pos.step
        self.run.gtt.append({"step": step, "layers": gtt})
        for k, v in sigma.items():
            self.run.log(f"sigma/{k}", step, v)
        ev = ProbeEvent(step, gtt, sigma)
        self._emit("on_probe_end", ev)
        return ev

    def sample(self, length: int | None = None) -> SampleEvent:
        from workbench.core.decode import run_decoder
        self.setup()
        dec = self.project.decode
        spec_id = dec.decoder if self.registry.has("decoder", dec.decoder) else "sample"
        spec = self.registry.decoder(spec_id)
        settings = {k: v for k, v in dec.params.items()}
        from workbench.schema.params import field_info
        names = {f.name for f in field_info(spec.params)}
        settings = {k: v for k, v in settings.items() if k in names}
        if "max_len" in names:
            settings["max_len"] = length or self.cfg.sample_len
        result = run_decoder(spec, self.model, self.task, settings, prompt=dec.prompt, device=self.device,
                             seed=self.cfg.seed + self.pos.step)
        shown = dec.prompt + result.text if self.task.continues_prompt else f"{dec.prompt} → {result.text}"
        ev = SampleEvent(self.pos.step, shown)
        self.run.samples.append({"step": ev.step, "text": ev.text})
        self._emit("on_sample", ev)
        return ev


def _float32(value: Any) -> Any:
    return value.float() if isinstance(value, torch.Tensor) and value.is_floating_point() else value


class _SpeedWindow:
    """Items per second of training time over the last ``seconds`` of it (at least one step).

    The first step of a session is left out (it pays for allocations and warm-up), so the first reading is the
    second step's; after that every step gives a reading, never one held from seconds before.
    """

    def __init__(self, seconds: float = 2.0):
        self.seconds = seconds
        self.steps: collections.deque[tuple[float, int]] = collections.deque()
        self.time = 0.0
        self.items = 0
        self.first = True

    def add(self, duration: float, items: int) -> float | None:
        if self.first:
            self.first = False
            return None
        self.steps.append((duration, items))
        self.time += duration
        self.items += items
        while len(self.steps) > 1 and self.time - self.steps[0][0] >= self.seconds:
            d, n = self.steps.popleft()
            self.time -= d
            self.items -= n
        return self.items / max(self.time, 1e-9)
