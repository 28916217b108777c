"""Loading a project's model for inference (evaluation, recording, decoding, export)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from workbench.core.build import build_model
from workbench.core.device import default_threads, resolve_device
from workbench.core.project import Project
from workbench.core.training.faults import check_weights_fit
from workbench.schema.errors import TrainingError
from workbench.schema.params import params_from_dict

# ---- inference without a run -------------------------------------------------------------------------------

@dataclass
class LoadedModel:
    model: Any
    task: Any
    task_spec: Any
    device: torch.device
    trained: bool          # False: no checkpoint fits the graph; the weights are freshly initialised
    step: int = 0


def load_for_inference(project: Project, registry: Any, base_dir: str | Path | None = None,
                       device: str | None = None, *, best: bool = False,
                       threads: int | None = None) -> LoadedModel:
    """Read the data, build the model and load the checkpoint's weights (the best ones with ``best``)."""
    try:
        dev = resolve_device(device or project.train.device)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    if dev.type == "cpu":
        torch.set_num_threads(threads or project.train.threads or default_threads(False))
    task_spec = registry.task(project.task.id)
    task = task_spec.load()(params_from_dict(task_spec.params, project.task.params, "task"),
                            Path(base_dir) if base_dir else Path.cwd())
    task.prepare(vocab=project.vocab)
    torch.manual_seed(project.train.seed)
    model = build_model(project.graph, registry, task_spec, task.sizes)
    ckpt = project.checkpoint
    trained = bool(ckpt is not None and ckpt.weights and ckpt.graph_hash == project.graph.content_hash())
    if trained:
        weights = ckpt.weights
        if best:
            best_w = {k[5:]: v for k, v in ckpt.tensors.items() if k.startswith("best/")}
            weights = best_w or weights
        check_weights_fit(model, weights)
        try:
            model.load_state_dict(weights, strict=True)
        except RuntimeError as exc:
            raise TrainingError(f"the saved weights do not fit this model: {str(exc).splitlines()[0]}") from None
    model.to(dev)
    model.eval()
    return LoadedModel(model, task, task_spec, dev, trained, ckpt.step if ckpt else 0)
