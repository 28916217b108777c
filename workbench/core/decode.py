"""Decoding: the result type and the search tree shared by decoders, and a runner used by CLI and GUI.

Forced prefixes ("what if the model had said this?") work with every decoder: a decoder whose factory takes a
``prefix`` keyword (the built-in beam search) feeds it itself and records it in its tree as ``forced`` nodes;
for any other decoder :func:`run_decoder` hands it a task whose ``prime`` feeds the prefix after the prompt, and
then puts the prefix in front of what the decoder returned.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from workbench.schema.params import params_from_dict


@dataclass
class TreeNode:
    id: int
    parent: int | None
    token: int
    logprob: float
    score: float
    step: int
    status: str = "kept"  # kept | pruned | finished | forced (a prefix fed before the search)
    label: str = ""                    # the token as text, for views
    normalized: float | None = None    # length-normalised score of a finished hypothesis
    # the most likely next tokens after this node, when the decoder was asked to keep them (only expanded nodes
    # have them): [{"token": id, "label": text, "prob": p}, ...], most likely first
    topk: list[dict[str, Any]] | None = None


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
        out = []
        for n in self.nodes:
            d = n.__dict__.copy()
            if d["topk"] is None:
                del d["topk"]   # most nodes are never expanded; no key keeps the file small
            out.append(d)
        return out

    @classmethod
    def from_json(cls, nodes: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> "SearchTree":
        names = set(TreeNode.__dataclass_fields__)
        tree = cls(meta=dict(meta or {}))
        for i, d in enumerate(nodes):
            node = TreeNode(**{k: v for k, v in d.items() if k in names})
            if node.id != i:
                raise ValueError(f"search tree node {i} has id {node.id}: ids must be 0, 1, 2, ... in order")
            tree.nodes.append(node)
        return tree


class LazySearchTree(SearchTree):
    """A :class:`SearchTree` whose nodes are built by ``build()`` the first time anything reads them.

    A search can keep what it needs for its tree as a few tensors per step and leave the Python objects (one
    :class:`TreeNode` per candidate, the top-k dicts) until something reads them (``to_json``, the search
    document that ``seqwb decode`` and the decoding view make): a decode whose tree nobody reads (BLEU over a
    test set through :func:`run_decoder`) then never pays for them.  Once built it is an ordinary tree, equal to
    an eager one with the same nodes and meta.
    """

    def __init__(self, meta: dict[str, Any], build):
        self.meta = meta
        self._build = build
        self._nodes: list[TreeNode] | None = None

    @property
    def nodes(self) -> list[TreeNode]:
        if self._nodes is None:
            self._nodes, self._build = self._build(), None
        return self._nodes

    @nodes.setter
    def nodes(self, value: list[TreeNode]) -> None:
        self._nodes, self._build = value, None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SearchTree):
            return NotImplemented
        return self.nodes == other.nodes and self.meta == other.meta

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it extends


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

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DecodeResult":
        tree = SearchTree.from_json(data["tree"], data.get("search")) if data.get("tree") else None
        return cls(text=str(data.get("text", "")), tokens=[int(t) for t in data.get("tokens", [])],
                   score=float(data.get("score", 0.0)), alternatives=list(data.get("alternatives") or []),
                   tree=tree)


@torch.no_grad()
def prime(model, task, prompt: str, device, batch_size: int = 1) -> tuple[torch.Tensor, Any, list[int]]:
    """Logits for the first generated token, the decoding state and the prompt ids (see ``Task.prime``)."""
    return task.prime(model, prompt, device, batch_size)


def run_decoder(spec, model, task, settings: dict[str, Any], *, prompt: str = "", device=None,
                seed: int = 0, prefix: list[int] | None = None) -> DecodeResult:
    """Run the decoder ``spec`` with ``settings``; ``prefix`` (target token ids) is forced before it searches."""
    params = params_from_dict(spec.params, settings, spec.id)
    device = device or model.device
    generator = torch.Generator(device="cpu").manual_seed(seed)
    prefix = [int(t) for t in prefix or []]
    if prefix and task.eos_id is not None and task.eos_id in prefix:
        raise ValueError("a forced prefix cannot contain the end-of-sequence token")
    was_training = model.training
    if was_training:   # eval() and train() walk every module: ~70 us a decode for the seq2seq template
        model.eval()
    try:
        fn = spec.load()
        if not prefix:
            return fn(model, task, params, prompt=prompt, device=device, generator=generator)
        if accepts_prefix(fn):
            return fn(model, task, params, prompt=prompt, device=device, generator=generator, prefix=prefix)
        # max_len counts the prefix too (as beam search does), so the forced run ends where the free one would
        max_len = getattr(params, "max_len", None)
        if isinstance(max_len, int) and dataclasses.is_dataclass(params) and not isinstance(params, type):
            prefix = prefix[:max_len]
            params = dataclasses.replace(params, max_len=max(1, max_len - len(prefix)))
        forced = PrefixedTask(task, prefix)
        if isinstance(max_len, int) and len(prefix) >= max_len:
            forced.prime(model, prompt, device, 1)
            return forced.extend(DecodeResult(text="", tokens=[], score=0.0))
        result = fn(model, forced, params, prompt=prompt, device=device, generator=generator)
        return forced.extend(result)
    finally:
        if was_training:
            model.train(True)


def accepts_prefix(fn) -> bool:
    """Whether a decoder factory feeds a forced prefix itself (a ``prefix`` keyword)."""
    try:
        return "prefix" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


@torch.no_grad()
def feed_prefix(model, task, logits: torch.Tensor, state: Any, prefix: list[int]
                ) -> tuple[torch.Tensor, Any, list[float], list[torch.Tensor]]:
    """Feed ``prefix`` to every row after ``task.prime``: (logits, state, each token's log-probability, the
    log-probabilities the model gave before each forced token, ``[V]`` of row 0)."""
    logps: list[float] = []
    dists: list[torch.Tensor] = []
    B = logits.shape[0]
    for tok in prefix:
        logp = torch.log_softmax(logits.float(), -1)
        if not 0 <= tok < logp.shape[-1]:
            raise ValueError(f"prefix token id {tok} is outside the vocabulary (0..{logp.shape[-1] - 1})")
        dists.append(logp[0])
        logps.append(float(logp[0, tok]))
        logits, state = model.step(torch.full((B,), tok, dtype=torch.long, device=logits.device), state,
                                   task.input_port(), task.output_port())
    return logits, state, logps, dists


class PrefixedTask:
    """A task whose ``prime`` also feeds a forced prefix, for decoders that know nothing about prefixes.

    Everything else is the wrapped task's.  :meth:`extend` puts the prefix in front of the decoder's result.
    """

    def __init__(self, task, prefix: list[int]):
        self._task = task
        self._prefix = list(prefix)
        self.prefix_logprobs: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)

    def prime(self, model, prompt: str, device, batch_size: int = 1):
        logits, state, ids = self._task.prime(model, prompt, device, batch_size)
        logits, state, self.prefix_logprobs, _ = feed_prefix(model, self._task, logits, state, self._prefix)
        return logits, state, ids

    def extend(self, result: DecodeResult) -> DecodeResult:
        base = sum(self.prefix_logprobs)
        P = len(self._prefix)
        alternatives = []
        for alt in result.alternatives:
            alt = dict(alt)
            if "tokens" in alt:
                alt["tokens"] = self._prefix + list(alt["tokens"])
                alt["text"] = self._task.decode(alt["tokens"])
            if "score" in alt:
                alt["score"] = float(alt["score"]) + base
            if "node" in alt and result.tree is not None:
                alt["node"] = int(alt["node"]) + P   # the forced chain replaces the root (see graft_prefix)
            alternatives.append(alt)
        tokens = self._prefix + list(result.tokens)
        tree = None
        if result.tree is not None:
            tree = graft_prefix(result.tree, self._prefix, self.prefix_logprobs,
                                [token_label(self._task, t) for t in self._prefix])
        return DecodeResult(text=self._task.decode(tokens), tokens=tokens, score=result.score + base,
                            alternatives=alternatives, tree=tree)


def token_label(task, token: int) -> str:
    """A token as text for views (``<eos>`` for the end token)."""
    if task.eos_id is not None and token == task.eos_id:
        return "<eos>"
    try:
        text = task.decode([token])
    except Exception:  # noqa: BLE001 - a label is cosmetic
        return str(token)
    if text == "":
        # decode leaves special tokens out (<pad>, <bos>, <unk>...): name them from the vocabulary instead
        vocab = getattr(task, "target_vocab", None) or getattr(task, "vocab", None)
        if isinstance(vocab, (list, tuple)) and 0 <= token < len(vocab) and isinstance(vocab[token], str):
            return vocab[token]
    return text


def graft_prefix(tree: SearchTree, prefix: list[int], logprobs: list[float], labels: list[str]) -> SearchTree:
    """A tree searched after a forced prefix, with the prefix put back in: root, one ``forced`` node per prefix
    token, then the searched nodes (steps and cumulative scores shifted by the prefix).  Node ``i`` of ``tree``
    becomes node ``i + len(prefix)``; the old root becomes the last forced node."""
    out = SearchTree(meta={**tree.meta, "prefix": list(prefix)})
    parent = out.add(None, tree.nodes[0].token if tree.nodes else -1, 0.0, 0.0, -1, "kept", label="<start>")
    score = 0.0
    for i, (tok, lp, label) in enumerate(zip(prefix, logprobs, labels)):
        score += lp
        parent = out.add(parent, tok, lp, score, i, "forced", label=label)
    P = len(prefix)
    for n in tree.nodes[1:]:
        node = TreeNode(n.id + P, n.parent + P if n.parent is not None else None, n.token, n.logprob,
                        n.score + score, n.step + P, n.status, n.label,
                        None if n.normalized is None else n.normalized, n.topk)
        out.nodes.append(node)
    if tree.nodes and tree.nodes[0].topk is not None:
        out.nodes[P].topk = tree.nodes[0].topk
    return out
