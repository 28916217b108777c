"""The project: graph + task + training/decoding configs + history + checkpoint.  Qt-free and torch-free.

Tensors in a :class:`Checkpoint` are opaque here (``workbench.core.projectfile`` stores them as safetensors); everything
else is JSON-ready plain data.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Literal

from workbench.core.graph import Graph
from workbench.schema.params import param, params_from_dict, params_to_dict


@dataclass
class TrainConfig:
    """Training settings.  Every field can be changed with ``--set NAME=VALUE``."""

    steps: int = param(1000, min=0, help="stop after this many optimizer steps in total (0: use epochs)")
    epochs: int = param(0, min=0, help="stop after this many epochs in total (0: use steps)")
    batch_size: int = param(32, min=1, max=65536, help="sequences per batch")
    chunk_len: int = param(100, min=1, max=100000,
                           help="truncated BPTT: timesteps per chunk (k1 = k2); the hidden state is carried over")
    bptt_k2: int = param(0, min=0, help="truncated BPTT k2 < k1: backpropagate only the last k2 steps (0: all)")
    optimizer: Literal["sgd", "adam", "adamw", "adagrad", "rmsprop"] = param("adam", help="optimizer")
    lr: float = param(2e-3, min=0.0, help="learning rate")
    momentum: float = param(0.0, min=0.0, max=1.0, help="SGD / RMSprop momentum")
    weight_decay: float = param(0.0, min=0.0, help="L2 penalty (decoupled for AdamW)")
    loss_reduction: Literal["mean", "sum_over_time", "sum"] = param(
        "mean", help="what is backpropagated: the mean over tokens (pytorch/examples), the sum over time steps of "
                     "the batch mean (Zaremba et al. 2014, the TensorFlow PTB tutorial) or the sum over every token "
                     "(min-char-rnn); only the gradient's scale changes, so a paper's lr and clip_norm carry over. "
                     "Logged losses stay per token")
    clip_norm: float = param(5.0, min=0.0, help="clip the global gradient norm to this (0: off)")
    clip_value: float = param(0.0, min=0.0, help="clip each gradient element to [-v, v] (0: off; min-char-rnn uses 5)")
    schedule: Literal["constant", "step", "cosine", "plateau"] = param("constant", help="learning-rate schedule")
    decay_start: int = param(4, min=0, help="step schedule: first epoch after which the rate decays (Zaremba: 4)")
    decay_factor: float = param(0.5, min=0.0, max=1.0, help="step/plateau schedule: multiply the rate by this")
    decay_every: int = param(1, min=1, help="step schedule: decay every this many epochs")
    plateau_patience: int = param(2, min=0, help="plateau schedule: evaluations without improvement before decay")
    min_lr: float = param(0.0, min=0.0, help="cosine/plateau: lower bound of the learning rate")
    init: Literal["default", "uniform", "orthogonal", "identity"] = param(
        "default", help="weight init: cell defaults, uniform ±init_scale, orthogonal W_hh, identity W_hh (IRNN)")
    init_scale: float = param(0.08, min=0.0, help="uniform init: weights in [-a, a]")
    eval_every: int = param(200, min=0, help="validate every N steps (0: only at the end)")
    eval_every_epochs: int = param(0, min=0, help="also validate at the end of every N epochs (0: off)")
    eval_batches: int = param(20, min=0, help="validation batches per evaluation (0: the whole split)")
    log_every: int = param(10, min=1, help="log a line every N steps")
    sample_every: int = param(200, min=0, help="generate a sample every N steps (0: never)")
    sample_len: int = param(200, min=1, help="length of generated samples")
    checkpoint_every: int = param(0, min=0, help="keep a checkpoint every N steps: the CLI saves the file, the "
                                                 "window the document (0: only at the end; the window also "
                                                 "keeps one every 30 s)")
    seed: int = param(1234, help="random seed")
    device: str = param("auto", help="auto | cpu | cuda | cuda:N | mps")
    threads: int = param(0, min=0, help="CPU intra-op threads (0: automatic: all cores, behind the window too "
                                            "where training runs below its priority (else cores-1), fewer while "
                                            "other processes keep cores busy)")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = param(
        "fp32", help="auto: bfloat16 autocast where the CPU or GPU computes it natively, float16 with a gradient "
                     "scaler on other GPUs, else float32; the loss, softmax and optimizer state stay float32")
    probe_every: int = param(100, min=0, help="gradient-through-time / spectral probes every N steps (0: off)")
    probe_batch: int = param(8, min=1, help="sequences in the probe batch")
    probe_len: int = param(0, min=0, help="timesteps in the probe batch (0: chunk_len)")
    nan_policy: Literal["stop", "skip"] = param("stop", help="on a NaN/inf loss: stop the run, or skip the step")

    def validate(self) -> None:
        if self.bptt_k2 and self.bptt_k2 > self.chunk_len:
            raise ValueError(f"bptt_k2 ({self.bptt_k2}) must not exceed chunk_len ({self.chunk_len})")
        if self.clip_norm and self.clip_value:
            pass  # both allowed: value clipping first, then norm


@dataclass
class TaskConfig:
    id: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class DecodeConfig:
    decoder: str = "greedy"
    params: dict[str, Any] = field(default_factory=dict)
    prompt: str = ""


@dataclass
class Series:
    step: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)

    def append(self, step: int, value: float) -> None:
        self.step.append(int(step))
        self.value.append(float(value))

    def last(self) -> float | None:
        return self.value[-1] if self.value else None


@dataclass
class Run:
    """One training run: its settings and every series recorded while it went."""

    id: str
    started: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    status: str = "new"            # new | running | stopped | finished | failed
    message: str = ""
    series: dict[str, Series] = field(default_factory=dict)
    # gradient-through-time probes: [{"step": s, "layers": {layer: {"dLT_dh": [...], "dL_dh": [...]}}}]
    gtt: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)

    def log(self, name: str, step: int, value: float) -> None:
        self.series.setdefault(name, Series()).append(step, value)

    def truncate_after(self, step: int) -> None:
        """Drop everything recorded after ``step`` (training resumes from a checkpoint taken at ``step``)."""
        for s in self.series.values():
            keep = 0
            while keep < len(s.step) and s.step[keep] <= step:
                keep += 1
            del s.step[keep:], s.value[keep:]
        self.gtt = [g for g in self.gtt if g.get("step", 0) <= step]
        self.samples = [x for x in self.samples if x.get("step", 0) <= step]


@dataclass
class History:
    runs: list[Run] = field(default_factory=list)

    def new_run(self, settings: dict[str, Any]) -> Run:
        n = 1 + max((int(r.id.split("-")[-1]) for r in self.runs if r.id.split("-")[-1].isdigit()), default=0)
        run = Run(id=f"run-{n}", started=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                  settings=settings)
        self.runs.append(run)
        return run

    @property
    def current(self) -> Run | None:
        return self.runs[-1] if self.runs else None


@dataclass
class Checkpoint:
    """Weights and everything needed to continue training exactly where it stopped."""

    weights: dict[str, Any]                                    # name -> tensor (model state_dict)
    graph_hash: str                                            # the graph these weights belong to
    step: int = 0
    epoch: int = 0
    optimizer: dict[str, Any] = field(default_factory=dict)    # name -> tensor (flattened optimizer state)
    optimizer_meta: dict[str, Any] = field(default_factory=dict)  # the JSON part of the optimizer state
    trainer_state: dict[str, Any] = field(default_factory=dict)   # position, schedule, best metric, RNG (JSON)
    tensors: dict[str, Any] = field(default_factory=dict)      # name -> tensor: carried hidden state, RNG states


@dataclass
class Project:
    name: str
    graph: Graph
    task: TaskConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    history: History = field(default_factory=History)
    checkpoint: Checkpoint | None = None
    vocab: list[str] | None = None
    data: dict[str, Any] = field(default_factory=dict)  # {"files": {key: {"path": rel, "sha256": ...}}}
    notes: str = ""
    #: what the window's views last showed, by view ({"hidden_units": {"source": "valid", "layer": "rnn.1", ...}}):
    #: plain JSON that never affects the model, written only when there is some (older files load without it)
    views: dict[str, Any] = field(default_factory=dict)

    # ---- JSON (project.json) -------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        graph = self.graph.to_json()
        return {
            "name": self.name,
            "graph": {"nodes": graph["nodes"], "links": graph["links"]},
            "ui": graph["ui"],
            "task": {"id": self.task.id, "params": dict(self.task.params)},
            "train": params_to_dict(self.train),
            "decode": {"decoder": self.decode.decoder, "params": dict(self.decode.params),
                       "prompt": self.decode.prompt},
            "data": copy.deepcopy(self.data),
            "notes": self.notes,
            **({"views": copy.deepcopy(self.views)} if self.views else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Project":
        graph = Graph.from_json({**data.get("graph", {}), "ui": data.get("ui", {})})
        task = data.get("task") or {}
        if not isinstance(task, dict) or not isinstance(task.get("id"), str):
            raise ValueError("project has no task id")
        decode = data.get("decode") or {}
        return cls(
            name=str(data.get("name", "untitled")),
            graph=graph,
            task=TaskConfig(id=task["id"], params=dict(task.get("params") or {})),
            train=params_from_dict(TrainConfig, _legacy_train(data.get("train") or {}), "train",
                                   ignore_unknown=True),
            decode=DecodeConfig(decoder=str(decode.get("decoder", "greedy")),
                                params=dict(decode.get("params") or {}), prompt=str(decode.get("prompt", ""))),
            data=dict(data.get("data") or {}),
            notes=str(data.get("notes", "")),
            views={str(k): v for k, v in views.items() if isinstance(v, dict)}
            if isinstance(views := data.get("views"), dict) else {},
        )

    def copy_without_state(self) -> "Project":
        """The same design (graph, task, configs) with no weights and no history."""
        return dataclasses.replace(Project.from_json(self.to_json()), vocab=self.vocab)


def _legacy_train(train: Any) -> Any:
    """Training settings of files written before ``precision``: ``amp: true`` was float16 autocast on CUDA."""
    if isinstance(train, dict) and "amp" in train and "precision" not in train:
        amp = train["amp"]
        train = {k: v for k, v in train.items() if k != "amp"}
        train["precision"] = "fp16" if amp is True else "fp32"
    return train


def available_weights(project: Project) -> dict[str, dict[str, Any]]:
    """``{"current": {...}, "best": {...}}``: the weights a project can be recorded or decoded at (best only once a
    validation kept them).  Each entry has the ``step`` and whether the weights fit the current graph
    (``trained``).  Torch-free: only the checkpoint's metadata and tensor names are read."""
    ckpt = project.checkpoint
    fits = bool(ckpt is not None and ckpt.weights and ckpt.graph_hash == project.graph.content_hash())
    out: dict[str, dict[str, Any]] = {"current": {"step": ckpt.step if ckpt else 0, "trained": fits}}
    if fits and ckpt is not None and any(k.startswith("best/") for k in (ckpt.tensors or {})):
        best = dict((ckpt.trainer_state or {}).get("best") or {})
        out["best"] = {"step": best.get("step"), "trained": True, "metric": best.get("metric"),
                       "value": best.get("value")}
    return out
