"""Optimizers, their state as safetensors + JSON (never pickle), and learning-rate schedules."""

from __future__ import annotations

import math
from typing import Any

import torch

# ---- optimizer state (safetensors + JSON, never pickle) -----------------------------------------------------

def flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{idx}/{k}"] = v.detach().cpu().contiguous().clone()
            else:
                plain.setdefault(str(idx), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "plain": plain}


def unflatten_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        idx, k = key.split("/", 1)
        # a copy: the optimizer updates its state in place, and the checkpoint these came from must not change
        state.setdefault(int(idx), {})[k] = v.clone()
    for idx, st in (meta.get("plain") or {}).items():
        state.setdefault(int(idx), {}).update(st)
    groups = meta.get("param_groups") or opt.state_dict()["param_groups"]
    opt.load_state_dict({"state": state, "param_groups": groups})


def make_optimizer(cfg, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


# ---- learning-rate schedules ------------------------------------------------------------------------------

def scheduled_lr(cfg, step: int, epoch: int, total_steps: int, plateau_lr: float | None) -> float:
    """The learning rate for the next step: a pure function of the position (plateau keeps its own state)."""
    base = cfg.lr
    if cfg.schedule == "step":
        # Zaremba et al. 2014: keep lr for `decay_start` epochs, then multiply by `decay_factor` every epoch
        if epoch < cfg.decay_start:
            return base
        return base * cfg.decay_factor ** ((epoch - cfg.decay_start) // cfg.decay_every + 1)
    if cfg.schedule == "cosine":
        # Loshchilov & Hutter 2017 (SGDR) without restarts
        frac = min(1.0, step / max(1, total_steps))
        return cfg.min_lr + (base - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * frac))
    if cfg.schedule == "plateau":
        return base if plateau_lr is None else plateau_lr
    return base
