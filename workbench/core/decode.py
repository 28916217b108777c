"""Decoding: the result type and the search tree shared by decoders, and a runner used by CLI and GUI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from workbench.plugin_system.params import params_from_dict


@dataclass
class TreeNode:
    id: int
    parent: int | None
    token: int
    logprob: float
    score: float
    step: int
    status: str = "kept"  # kept | pruned | finished
    label: str = ""                    # the token as text, for views
    normalized: float | None = None    # length-normalised score of a finished hypothesis


@dataclass
class SearchTree:
    """Every node a search expanded: parent, token, log-probability, cumulative score, step and fate.

    A root node (``parent=None``, ``step=-1``) stands for the prompt; its token is not part of any path.
    ``meta`` holds the search settings (width, alpha, ...) for views.
    """

    nodes: list[TreeNode] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def add(self, parent: int | None, token: int, logprob: float, score: float, step: int,
            status: str = "kept", *, label: str = "", normalized: float | None = None) -> int:
        node = TreeNode(len(self.nodes), parent, int(token), float(logprob), float(score), int(step), status,
                        label, None if normalized is None else float(normalized))
        self.nodes.append(node)
        return node.id

    def children(self, node_id: int) -> list[int]:
        return [n.id for n in self.nodes if n.parent == node_id]

    def path(self, node_id: int) -> list[int]:
        out = []
        cur: int | None = node_id
        while cur is not None:
            n = self.nodes[cur]
            if n.parent is not None or n.step >= 0:
                out.append(n.token)
            cur = n.parent
        return out[::-1]

    def to_json(self) -> list[dict[str, Any]]:
        return [n.__dict__.copy() for n in self.nodes]


@dataclass
class DecodeResult:
    text: str
    tokens: list[int]
    score: float = 0.0               # sum of log-probabilities of the generated tokens
    alternatives: list[dict[str, Any]] = field(default_factory=list)  # n-best: {"text", "tokens", "score"}
    tree: Optional[SearchTree] = None

    def to_json(self) -> dict[str, Any]:
        out = {"text": self.text, "tokens": self.tokens, "score": self.score, "alternatives": self.alternatives}
        if self.tree is not None:
            out["tree"] = self.tree.to_json()
            if self.tree.meta:
                out["search"] = dict(self.tree.meta)
        return out


@torch.no_grad()
def prime(model, task, prompt: str, device, batch_size: int = 1) -> tuple[torch.Tensor, Any, list[int]]:
    """Logits for the first generated token, the decoding state and the prompt ids (see ``Task.prime``)."""
    return task.prime(model, prompt, device, batch_size)


def run_decoder(spec, model, task, settings: dict[str, Any], *, prompt: str = "", device=None,
                seed: int = 0) -> DecodeResult:
    params = params_from_dict(spec.params, settings, spec.id)
    device = device or model.device
    generator = torch.Generator(device="cpu").manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        return spec.load()(model, task, params, prompt=prompt, device=device, generator=generator)
    finally:
        model.train(was_training)
