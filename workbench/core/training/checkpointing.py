"""A trainer's checkpoints: what :meth:`Trainer.checkpoint` captures and how :meth:`Trainer._restore` takes one back.

A checkpoint holds the weights, the optimizer's state, the random states, the position, the best weights and the
hidden state carried into the next chunk (in distributed training every process's rows, so any world size can
resume).  Restoring checks every part a file supplies against what the project implies (``restore_checks``) and
drops a part that does not fit with a notice; only weights that do not fit the model are an error.
"""

from __future__ import annotations

import dataclasses
import random
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from workbench.core.blocks import flatten_state, map_state, unflatten_like
from workbench.core.project import Checkpoint
from workbench.core.training import restore_checks
from workbench.core.training.faults import check_weights_fit
from workbench.core.training.optim import flatten_optimizer, make_optimizer, unflatten_optimizer
from workbench.schema.errors import TrainingError

if TYPE_CHECKING:
    from workbench.core.training.trainer import Trainer


def capture(trainer: Trainer) -> Checkpoint:
    """Everything needed to continue exactly where ``trainer`` (set up) is."""
    weights = {k: v.detach().cpu().contiguous().clone() for k, v in trainer.model.state_dict().items()}
    opt_tensors, opt_meta = flatten_optimizer(trainer.optimizer)
    opt_meta["optimizer"] = trainer.cfg.optimizer     # a later run with another optimizer starts it fresh
    tensors: dict[str, torch.Tensor] = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = s
    carry, carry_batch = trainer._carry, trainer._carry_batch
    if trainer.dist is not None:   # every process's rows of the carried state, so any world size can resume
        carry, carry_batch = trainer._carry_global, trainer._carry_global_batch
    if carry is not None:
        for k, v in flatten_state(carry).items():
            tensors[f"carry/{k}"] = v.detach().cpu().contiguous().clone()
    if trainer._best_weights is not None:
        for k, v in trainer._best_weights.items():
            tensors[f"best/{k}"] = v
    py_state = random.getstate()
    np_state: Any = np.random.get_state()   # the legacy tuple (numpy types it as tuple | dict)
    trainer_state = {
        "position": dataclasses.asdict(trainer.pos),
        "plateau": dict(trainer._plateau),
        "best": dict(trainer.best),
        "run_id": trainer.run.id,
        "carry_batch": int(carry_batch) if carry is not None else 0,
        "rng_python": [py_state[0], list(py_state[1]), py_state[2]],
        "rng_numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "device": str(trainer.device),
    }
    ckpt = Checkpoint(weights=weights, graph_hash=trainer.project.graph.content_hash(), step=trainer.pos.step,
                      epoch=trainer.pos.epoch, optimizer=opt_tensors, optimizer_meta=opt_meta,
                      trainer_state=trainer_state, tensors=tensors)
    return ckpt


def restore(trainer: Trainer, ckpt: Checkpoint) -> None:
    """Load a checkpoint.  The weights must fit (a clear error otherwise); every other part a file supplies is
    checked against what the project implies before it is used (restore_checks), and a part that does not fit
    is dropped with a notice: the optimizer starts fresh, the random state is reseeded, the carried state
    starts from zeros.  Nothing from the file sizes an allocation unchecked."""
    check_weights_fit(trainer.model, ckpt.weights)
    try:
        trainer.model.load_state_dict({k: v for k, v in ckpt.weights.items()}, strict=True)
    except RuntimeError as exc:
        raise TrainingError(f"the saved weights do not fit this model: {str(exc).splitlines()[0]}") from None
    trainer.model.to(trainer.device)
    _restore_optimizer(trainer, ckpt)
    st = ckpt.trainer_state if isinstance(ckpt.trainer_state, dict) else {}
    pos, problem = restore_checks.position(st.get("position"), ckpt.step, ckpt.epoch)
    if problem:
        trainer.notices.append(f"the checkpoint's position is damaged ({problem}); continuing from step "
                            f"{pos['step']} at the start of epoch {pos['epoch']}")
    trainer.pos = dataclasses.replace(trainer.pos, step=pos["step"], epoch=pos["epoch"], batch=pos["batch"])
    trainer._plateau = restore_checks.plateau(st.get("plateau")) or trainer._plateau
    trainer.best = restore_checks.best(st.get("best"))
    best = {k[5:]: v for k, v in ckpt.tensors.items() if k.startswith("best/")}
    trainer._best_weights = best or None
    problems = restore_checks.restore_random_state(ckpt.tensors, st)
    if problems:
        trainer._seed_everything(trainer.cfg.seed + trainer.pos.step)
        trainer.notices.append(f"the checkpoint's random state does not fit ({'; '.join(problems)}); training goes "
                            f"on with a fresh seed, so it will not repeat a straight run exactly")
    _restore_carry(trainer, ckpt, st)


def _restore_optimizer(trainer: Trainer, ckpt: Checkpoint) -> None:
    if not (ckpt.optimizer or ckpt.optimizer_meta):
        return
    saved = restore_checks.optimizer_kind(ckpt.optimizer_meta)
    if saved is not None and saved not in (trainer.cfg.optimizer, "adam-like"):
        trainer.notices.append(f"the optimizer changed from {saved} to {trainer.cfg.optimizer} since the last "
                            f"checkpoint: {trainer.cfg.optimizer} starts fresh (the weights carry on)")
        return
    problem = restore_checks.optimizer_problem(trainer.optimizer, ckpt.optimizer, ckpt.optimizer_meta)
    if problem is None:
        try:
            unflatten_optimizer(trainer.optimizer, ckpt.optimizer, ckpt.optimizer_meta)
            return
        except (ValueError, KeyError, RuntimeError, TypeError, IndexError, AttributeError) as exc:
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    trainer.optimizer = make_optimizer(trainer.cfg, trainer.model.parameters())   # nothing half-loaded
    trainer.notices.append(f"optimizer state not restored ({problem}); continuing with a fresh optimizer")


def _restore_carry(trainer: Trainer, ckpt: Checkpoint, st: dict[str, Any]) -> None:
    """The hidden state carried into the next chunk: used only if its batch is one this project trains with
    and every tensor has the shape the model's own initial state has (a file cannot make us allocate more)."""
    carry = {k[6:]: v for k, v in ckpt.tensors.items() if k.startswith("carry/")}
    batch = st.get("carry_batch")
    if not carry or not batch:
        return
    problem = restore_checks.carry_batch_problem(batch, trainer.cfg.batch_size)
    if problem is None:
        template = trainer.model.init_state(int(batch), trainer.device)
        problem = restore_checks.carry_shape_problem(flatten_state(template), carry)
    if problem is not None:
        trainer.notices.append(f"the carried hidden state in the checkpoint does not fit ({problem}); the next chunk "
                            f"starts from a zero state")
        return
    trainer._carry = map_state(unflatten_like(template, carry), lambda t: t.to(trainer.device))
    trainer._carry_batch = int(batch)
