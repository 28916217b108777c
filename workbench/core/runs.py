"""Run policy: what Train does with a project, the copy a run trains, and merging what it brings back.

Plain Python (no torch, no Qt).  The window and ``seqwb train`` decide with the same :func:`plan_run`:

* a project with no checkpoint, or whose checkpoint belongs to another graph or to an older run, starts a new
  run from fresh weights;
* asked for more (``seqwb train --steps N`` / ``--epochs N``), the latest run continues for that much more;
* otherwise the latest run continues up to the configured total (``steps`` or ``epochs``), and a run that has
  reached it is not silently extended: Train starts a new run from fresh weights.  Raising ``steps`` (or
  ``epochs``) extends the run instead.

The window trains a snapshot of the project (:func:`snapshot_project`) in a worker thread, so that the user can
go on editing; what the run brings back at consistent points (a :class:`RunState`) goes into the document's
project with :func:`merge_run_state`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from workbench.core.project import History, Project, Run, Series


@dataclass
class RunPlan:
    new_run: bool
    text: str      # what Train will do, in words: the window's tooltip and log, the CLI's first line


def run_total(project: Project) -> str:
    cfg = project.train
    return f"{cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''}" if cfg.epochs else f"{cfg.steps} steps"


def _amount(steps: int | None, epochs: int | None) -> str:
    if steps is not None:
        return f"{steps} step{'s' if steps != 1 else ''}"
    return f"{epochs} epoch{'s' if epochs != 1 else ''}"


def plan_run(project: Project, *, force_new: bool = False, more_steps: int | None = None,
             more_epochs: int | None = None) -> RunPlan:
    """Whether Train continues the latest run from the project's checkpoint or starts a new run, and why.

    ``more_steps`` / ``more_epochs`` (the CLI's ``--steps`` / ``--epochs``) ask for that much more training of
    the latest run, whether or not it has reached its total."""
    asked = more_steps is not None or more_epochs is not None
    total = _amount(more_steps, more_epochs) if asked else run_total(project)
    if force_new:
        return RunPlan(True, f"start a new run from fresh weights ({total})")
    ckpt = project.checkpoint
    current = project.history.current
    if ckpt is None or not ckpt.weights:
        return RunPlan(True, f"start a new run ({total})")
    if ckpt.graph_hash != project.graph.content_hash():
        return RunPlan(True, f"start a new run from fresh weights ({total}): the model graph changed since the "
                             f"last checkpoint")
    run_id = (ckpt.trainer_state or {}).get("run_id")
    if current is None or (run_id and run_id != current.id):
        return RunPlan(True, f"start a new run from fresh weights ({total})")
    if asked:
        return RunPlan(False, f"continue {current.id} from step {ckpt.step} for {total} more")
    cfg = project.train
    done = ckpt.epoch >= cfg.epochs if cfg.epochs else ckpt.step >= cfg.steps
    if done:
        return RunPlan(True, f"start a new run from fresh weights: {current.id} has reached its {total} (raise "
                             f"steps, or train with --steps N, to train {current.id} further)")
    return RunPlan(False, f"continue {current.id} from step {ckpt.step} (to {total})")


# ---- the copy a run trains, and what it brings back --------------------------------------------------------------

@dataclass
class RunState:
    """A consistent picture of a run at ``step``: what :func:`merge_run_state` puts into the project."""

    step: int
    run: Run                       # a copy, safe to keep in another thread
    checkpoint: Any = None         # a Checkpoint (tensors inside); None after a failure: keep the last good one
    vocab: list[str] | None = None
    data: dict[str, Any] = field(default_factory=dict)


def copy_run(run: Run) -> Run:
    """A copy of a run record that another thread can go on appending to.  The lists of numbers are copied
    (C-speed list copies, so this is cheap even for long runs); probe and sample records are shared, because the
    trainer never changes one after appending it."""
    return Run(id=run.id, started=run.started, settings=copy.deepcopy(run.settings), status=run.status,
               message=run.message,
               series={k: Series(list(s.step), list(s.value)) for k, s in run.series.items()},
               gtt=list(run.gtt), samples=list(run.samples))


def snapshot_project(project: Project) -> Project:
    """The copy a run trains: design and settings through their JSON form (a true copy), the vocabulary, the
    history (earlier runs shared read-only, the latest copied because a continued run appends to it) and the
    checkpoint (shared: the trainer loads it into the model and later *replaces* it, never changes it)."""
    snap = Project.from_json(project.to_json())
    snap.vocab = list(project.vocab) if project.vocab is not None else None
    runs = list(project.history.runs)
    if runs:
        runs[-1] = copy_run(runs[-1])
    snap.history = History(runs=runs)
    snap.checkpoint = project.checkpoint
    return snap


def run_state(trainer: Any, take_checkpoint: bool, checkpoint: Any = None) -> RunState:
    """What a trainer has to bring back now: with ``checkpoint`` (one it just took), or a fresh one
    (``take_checkpoint``), or none."""
    ckpt = trainer.checkpoint() if take_checkpoint else checkpoint
    project = trainer.project
    return RunState(step=trainer.pos.step, run=copy_run(trainer.run), checkpoint=ckpt,
                    vocab=list(project.vocab) if project.vocab is not None else None,
                    data=copy.deepcopy(project.data))


def merge_run_state(project: Project, state: RunState) -> None:
    """Put what a run brought back into ``project``: its record replaces the record with the same id (or is
    added); a checkpoint, when there is one, comes with its vocabulary and data description."""
    runs = project.history.runs
    for i, run in enumerate(runs):
        if run.id == state.run.id:
            runs[i] = state.run
            break
    else:
        runs.append(state.run)
    if state.checkpoint is not None:
        project.checkpoint = state.checkpoint
        project.vocab = list(state.vocab) if state.vocab is not None else project.vocab
        if state.data:
            project.data = copy.deepcopy(state.data)
