"""Checks of what a checkpoint from a file supplies, before the trainer uses it.

A project file is data from anywhere: a mutated or hostile file can load (every member is valid JSON and
safetensors) and still hold a position near 2**63, an optimizer state of the wrong shape, a random state of the
wrong size, or a carried hidden state for ten million sequences.  Used as they are, they fail far into training
with a raw TypeError or OverflowError, or make training allocate gigabytes.  Each check here says what does not
fit, in words; the trainer then drops that part with a notice (see :meth:`Trainer._restore`).
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import torch

#: as workbench.core.projectfile.format.MAX_POSITION: a trillion steps, so seed + step stays within 64 bits
MAX_POSITION = 10 ** 12
_KINDS = ("sgd", "adam", "adamw", "adagrad", "rmsprop")


def _count(value: Any, limit: int = MAX_POSITION) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is the machine running out of memory (torch's, numpy's or Python's way of saying so)."""
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        words in text for words in ("out of memory", "not enough memory", "can't allocate memory",
                                    "unable to allocate", "cannot allocate memory"))


# ---- position, schedule, best ------------------------------------------------------------------------------------

def position(doc: Any, step: int, epoch: int) -> tuple[dict[str, int], str]:
    """``({"step", "epoch", "batch"}, problem)``: the saved position, or the checkpoint's step and epoch (at the
    start of that epoch) with what was wrong with it."""
    fallback = {"step": step, "epoch": epoch, "batch": 0}
    if doc is None:
        return fallback, ""
    if not isinstance(doc, dict):
        return fallback, f"position is {type(doc).__name__}, not a table"
    out = {}
    for key, default in fallback.items():
        value = doc.get(key, default)
        if not _count(value):
            return fallback, f"position.{key} is {value!r}"
        out[key] = value
    return out, ""


def plateau(doc: Any) -> dict[str, Any] | None:
    """The plateau schedule's state, or None when it is malformed (the schedule then starts over)."""
    if not isinstance(doc, dict):
        return None
    lr, best, bad = doc.get("lr"), doc.get("best"), doc.get("bad", 0)
    if (lr is not None and not (_number(lr) and lr >= 0)) or (best is not None and not _number(best)) \
            or not _count(bad):
        return None
    return {"lr": lr, "best": best, "bad": bad}


def best(doc: Any) -> dict[str, Any]:
    """The best validation so far, or {} when it is malformed (the next validation is the best then)."""
    if not isinstance(doc, dict) or not doc:
        return {}
    if not (isinstance(doc.get("metric"), str) and _number(doc.get("value")) and _count(doc.get("step"))):
        return {}
    return {"metric": doc["metric"], "value": float(doc["value"]), "step": doc["step"]}


# ---- random state ----------------------------------------------------------------------------------------------

def restore_random_state(tensors: dict[str, Any], st: dict[str, Any]) -> list[str]:
    """Set the torch, Python and numpy generators from a checkpoint; returns what did not fit (nothing is set from
    a part that does not: a wrong-size state raises deep inside the generators)."""
    problems = []
    state = tensors.get("rng/torch")
    if state is not None:
        want = torch.get_rng_state()
        if not isinstance(state, torch.Tensor) or state.dtype != torch.uint8 or state.shape != want.shape:
            shape = tuple(state.shape) if isinstance(state, torch.Tensor) else type(state).__name__
            problems.append(f"rng/torch is {shape}, the generator's state is {tuple(want.shape)} bytes")
        else:
            torch.set_rng_state(state.cpu())
    if torch.cuda.is_available():
        cuda = [tensors[f"rng/cuda/{i}"] for i in range(torch.cuda.device_count()) if f"rng/cuda/{i}" in tensors]
        if cuda:
            try:
                torch.cuda.set_rng_state_all(cuda)
            except (RuntimeError, TypeError, ValueError) as exc:
                problems.append(f"rng/cuda: {exc}")
    if "rng_python" in st:
        problem = _python_state(st["rng_python"])
        if problem:
            problems.append(problem)
    if "rng_numpy" in st:
        problem = _numpy_state(st["rng_numpy"])
        if problem:
            problems.append(problem)
    return problems


def _python_state(doc: Any) -> str:
    if not (isinstance(doc, list) and len(doc) == 3 and isinstance(doc[1], list) and len(doc[1]) == 625
            and all(_count(x, 2 ** 32 - 1) for x in doc[1]) and doc[1][-1] <= 624
            and _count(doc[0], 10) and (doc[2] is None or _number(doc[2]))):
        return "rng_python is not a Mersenne Twister state of 625 words"
    try:
        random.setstate((doc[0], tuple(doc[1]), doc[2]))
    except (TypeError, ValueError, OverflowError) as exc:
        return f"rng_python: {exc}"
    return ""


def _numpy_state(doc: Any) -> str:
    if not (isinstance(doc, list) and len(doc) == 5 and doc[0] == "MT19937" and isinstance(doc[1], list)
            and len(doc[1]) == 624 and all(_count(x, 2 ** 32 - 1) for x in doc[1]) and _count(doc[2], 624)
            and _count(doc[3], 1) and _number(doc[4])):
        return "rng_numpy is not a Mersenne Twister state of 624 words"
    try:
        np.random.set_state((doc[0], np.array(doc[1], dtype=np.uint32), doc[2], doc[3], doc[4]))
    except (TypeError, ValueError, OverflowError) as exc:
        return f"rng_numpy: {exc}"
    return ""


# ---- optimizer ---------------------------------------------------------------------------------------------------

def optimizer_kind(meta: Any) -> str | None:
    """Which optimizer a checkpoint's state belongs to: its recorded name, else what its settings show (files
    from before the name was recorded); ``"adam-like"`` when Adam and AdamW cannot be told apart, None when
    unknown."""
    if not isinstance(meta, dict):
        return None
    if meta.get("optimizer") in _KINDS:
        return meta["optimizer"]
    groups = meta.get("param_groups")
    if not (isinstance(groups, list) and groups and isinstance(groups[0], dict)):
        return None
    keys = set(groups[0])
    if "betas" in keys:
        if "decoupled_weight_decay" in keys:
            return "adamw" if groups[0]["decoupled_weight_decay"] else "adam"
        return "adam-like"
    for key, kind in (("lr_decay", "adagrad"), ("alpha", "rmsprop"), ("dampening", "sgd")):
        if key in keys:
            return kind
    return None


def optimizer_problem(opt: torch.optim.Optimizer, tensors: dict[str, Any], meta: Any) -> str | None:
    """What keeps a saved optimizer state from fitting ``opt`` (the fresh optimizer of this model), or None.

    The settings must be those the optimizer has (the same names, numbers where it has numbers) and every tensor
    must belong to a parameter and have its shape (or be one number, like a step count): torch's own loading
    checks none of this, and a mismatch fails at the first step."""
    if not isinstance(meta, dict):
        return "its settings are not a table"
    fresh = opt.state_dict()["param_groups"]
    groups = meta.get("param_groups")
    if groups is not None:
        if not (isinstance(groups, list) and len(groups) == len(fresh)):
            return f"it has {len(groups) if isinstance(groups, list) else 'no list of'} parameter groups, the model " \
                   f"{len(fresh)}"
        for saved, want in zip(groups, fresh):
            if not isinstance(saved, dict) or set(saved) != set(want):
                return "its settings are not those of this optimizer"
            for key, value in want.items():
                got = saved[key]
                if key == "params":
                    if not (isinstance(got, list) and len(got) == len(value) and all(_count(i) for i in got)):
                        return "its parameter list does not fit the model"
                elif isinstance(value, bool) or value is None:
                    if not (got is None or isinstance(got, bool)):
                        return f"its setting {key} is {got!r}"
                elif isinstance(value, (int, float)):
                    if not _number(got):
                        return f"its setting {key} is {got!r}"
                elif isinstance(value, (tuple, list)):
                    if not (isinstance(got, (tuple, list)) and len(got) == len(value) and all(map(_number, got))):
                        return f"its setting {key} is {got!r}"
    plain = meta.get("plain") or {}
    if not isinstance(plain, dict) or not all(isinstance(v, dict) for v in plain.values()):
        return "its plain state is not a table of tables"
    params = [p for group in opt.param_groups for p in group["params"]]
    for key, values in plain.items():
        if not (isinstance(key, str) and key.isdigit() and int(key) < len(params)):
            return f"its plain state names parameter {key!r}, which the model does not have"
        for name, value in values.items():
            if not (value is None or isinstance(value, bool) or _number(value)):
                return f"its plain state {key}/{name} is {type(value).__name__}"
    for key, tensor in tensors.items():
        idx, _, name = key.partition("/")
        if not (idx.isdigit() and int(idx) < len(params) and name):
            return f"its tensor {key!r} belongs to no parameter of the model"
        if not isinstance(tensor, torch.Tensor) or not (tensor.is_floating_point() or tensor.dtype == torch.int64):
            return f"its tensor {key!r} is not a number tensor"
        shape = tuple(params[int(idx)].shape)
        if tuple(tensor.shape) != shape and tensor.numel() != 1:
            return f"its tensor {key!r} is {tuple(tensor.shape)}, the parameter {shape}"
    return None


# ---- the carried hidden state ------------------------------------------------------------------------------------

def carry_batch_problem(batch: Any, batch_size: int) -> str | None:
    """The carried state's batch must be one this project trains with (at most its batch_size): the file's number
    decides how large a state is allocated."""
    if not _count(batch) or not 1 <= batch <= batch_size:
        return f"it is for a batch of {batch!r}, the project trains batches of {batch_size}"
    return None


def carry_shape_problem(template: dict[str, torch.Tensor], carry: dict[str, Any]) -> str | None:
    """Every tensor the model's initial state has, with its shape and dtype, and nothing else."""
    if set(template) != set(carry):
        missing, extra = sorted(set(template) - set(carry)), sorted(set(carry) - set(template))
        return "its tensors are not the model's" + (f" (missing {', '.join(missing[:3])})" if missing else "") + \
            (f" (unexpected {', '.join(extra[:3])})" if extra else "")
    for key, want in template.items():
        got = carry[key]
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(want.shape) or got.dtype != want.dtype:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return f"carry/{key} is {shape}, the model's state is {tuple(want.shape)} {want.dtype}"
    return None
