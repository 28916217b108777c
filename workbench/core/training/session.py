"""One model session for everything that runs a trained model without training it: evaluation, recording,
decoding, export and the probes of ``seqwb probe``.

A :class:`ModelSession` reads the project's data once per task settings and builds one model per weights
(``current`` or ``best``), rebuilt when the graph changes and reloaded when the checkpoint does.  It is safe to use
while a run trains in another thread of the same process, because it touches nothing process-wide:

* a model is built inside ``torch.random.fork_rng``, seeded as the trainer seeds its first model (so untrained
  weights are the same in the window and the CLI), and the global generator is put back as it was;
* it never sets torch's thread count: the caller runs the model on a thread whose count it chose.

Use one session from one thread at a time.  Importing this module does not import torch (the window creates
sessions before it needs a model).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.project import Project, available_weights
from workbench.schema.errors import TrainingError
from workbench.schema.params import params_from_dict
from workbench.schema.registry import Registry

if TYPE_CHECKING:
    import torch

WEIGHTS = ("current", "best")


@dataclass
class LoadedModel:
    model: Any              # in eval mode, on ``device``
    task: Any               # prepared
    task_spec: Any
    device: torch.device
    trained: bool           # False: no checkpoint fits the graph; the weights are freshly initialised
    step: int               # the training step the weights come from (0 when untrained)
    weights: str            # "current" or "best"


class ModelSession:
    """A project's task and models for inference, kept between calls (reading data and building take seconds)."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self._task_key: Any = None
        self._task: Any = None
        self._task_spec: Any = None
        self._models: dict[str, tuple[Any, Any, Any]] = {}   # weights -> (model key, weights key, model)

    def task(self, project: Project, base_dir: str | Path | None = None) -> Any:
        """The project's task with its data read (again only when the task settings or the vocabulary change)."""
        base = Path(base_dir) if base_dir else Path.cwd()
        key = (project.task.id, json.dumps(project.task.params, sort_keys=True, default=str),
               tuple(project.vocab or ()), str(base))
        if key != self._task_key:
            from workbench.core.data_access import check_task_paths
            spec = self.registry.task(project.task.id)
            # data outside the project's folder that its file named is read only once confirmed
            check_task_paths(spec, project.task.params, base)
            task = spec.load()(params_from_dict(spec.params, project.task.params, "task"), base)
            task.prepare(vocab=project.vocab)
            self._task, self._task_spec, self._task_key = task, spec, key
            self._models.clear()
        return self._task

    def load(self, project: Project, base_dir: str | Path | None = None, weights: str = "current",
             device: Any = None) -> LoadedModel:
        """The model at ``weights`` on ``device`` (default: the project's), in eval mode."""
        import torch

        from workbench.core.build import build_model
        from workbench.core.device import resolve_device
        from workbench.core.training.faults import check_weights_fit
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be 'current' or 'best', not {weights!r}")
        available = available_weights(project)
        if weights not in available:
            raise ValueError("this project has no best weights yet: they are kept at the first validation of a run")
        task = self.task(project, base_dir)
        try:
            dev = device if isinstance(device, torch.device) else resolve_device(device or project.train.device)
        except ValueError as exc:
            raise TrainingError(str(exc)) from None
        model_key = (self._task_key, project.graph.content_hash(), str(dev))
        trained = bool(available["current"]["trained"])
        ckpt = project.checkpoint
        weights_key = (id(ckpt), ckpt.step if ckpt else 0, trained)
        old = self._models.get(weights)
        if old is not None and old[0] == model_key and old[1] == weights_key:
            model = old[2]
        else:
            model = old[2] if old is not None and old[0] == model_key and trained else None
            if model is None:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(project.train.seed)
                    model = build_model(project.graph, self.registry, self._task_spec, task.sizes)
            if trained:
                assert ckpt is not None
                state = ckpt.weights
                if weights == "best":
                    state = {k[5:]: v for k, v in ckpt.tensors.items() if k.startswith("best/")}
                check_weights_fit(model, state)
                try:
                    model.load_state_dict(state, strict=True)
                except RuntimeError as exc:
                    raise TrainingError(f"the saved weights do not fit this model: "
                                        f"{str(exc).splitlines()[0]}") from None
            model.to(dev).eval()
            self._models[weights] = (model_key, weights_key, model)
        step = int(available[weights].get("step") or 0) if trained else 0
        return LoadedModel(model, task, self._task_spec, dev, trained, step, weights)

    def sample_text(self, project: Project, base_dir: str | Path | None, length: int) -> str:
        """``length`` characters of the validation data (the task's ``sample_text``)."""
        text = self.task(project, base_dir).sample_text(length)
        if not text:
            raise ValueError(f"the task {project.task.id!r} has no validation text to show")
        return text


def set_cpu_threads(device: "torch.device", threads: int) -> str:
    """The CLI's one place to choose torch's threads for inference (a process of its own: global is fine); at most
    one per core.  Returns a notice when the count asked for was bounded."""
    import torch

    from workbench.core.device import bounded_threads
    if device.type == "cpu" and threads:
        threads, notice = bounded_threads(int(threads))
        torch.set_num_threads(threads)
        return notice
    return ""
