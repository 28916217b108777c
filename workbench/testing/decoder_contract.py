"""The decoder contract, run on a toy model whose greedy path and end are known exactly: the result's fields,
the end token, width 1 against greedy decoding, determinism and the search tree (:func:`check_decoder_spec`)."""

from __future__ import annotations

import math
from typing import Any, Optional

import torch

from workbench.testing.contract_base import fail as _fail
from workbench.testing.contract_base import who_is as _who


class _ToyModel(torch.nn.Module):
    """What decoders see of a model (``start``, ``step``, ``forward``): a fixed Markov chain over 12 tokens whose
    end token becomes certain after ``eos_after`` generated tokens.  Its greedy path is known exactly."""

    V = 12

    def __init__(self, eos_id: int | None, eos_after: int):
        super().__init__()
        g = torch.Generator().manual_seed(1234)
        self.register_buffer("table", torch.randn(self.V, self.V, generator=g) * 3.0)
        self.eos_id, self.eos_after = eos_id, eos_after
        self.anchor = torch.nn.Parameter(torch.zeros(()))   # so that the model has a device and parameters

    def start(self, batch_size: int = 1, context: Any = None) -> dict[str, Any]:
        zeros = torch.zeros(batch_size, dtype=torch.long)
        return {"toy": (zeros, zeros)}      # (the previous token, how many generated tokens were fed back)

    def _logits(self, prev: torch.Tensor, made: torch.Tensor) -> torch.Tensor:
        logits = self.table[prev].clone()
        if self.eos_id is not None:
            ready = (made >= self.eos_after).unsqueeze(1)
            logits[:, self.eos_id] = torch.where(ready.squeeze(1), torch.full_like(prev, 50, dtype=logits.dtype),
                                                 torch.full_like(prev, -50, dtype=logits.dtype))
        return logits

    def step(self, tokens: torch.Tensor, state: dict[str, Any], port: str | None = None,
             out_port: str = "logits") -> tuple[torch.Tensor, dict[str, Any]]:
        _, made = state["toy"]
        made = made + 1
        return self._logits(tokens, made), {"toy": (tokens, made)}

    def forward(self, batch: dict[str, Any], state: Optional[dict[str, Any]] = None):
        tokens = batch["tokens"]
        state = state or self.start(tokens.shape[1])
        prev, made = state["toy"]
        outs = []
        for t in range(tokens.shape[0]):
            prev = tokens[t]
            outs.append(self._logits(prev, made))   # priming: the prompt does not count as generated
        return {"logits": torch.stack(outs)}, {"toy": (prev, made)}

    @property
    def device(self) -> torch.device:
        return self.anchor.device


def _toy_task(eos_id: int | None) -> Any:
    from workbench.core.tasks import Task

    class ToyTask(Task):
        generative = True

        def __init__(self) -> None:
            super().__init__(None)
            self.vocab = [chr(ord("a") + i) for i in range(_ToyModel.V)]
            self.sizes = {"vocab": _ToyModel.V}
            self.eos_id = eos_id

        def encode(self, text: str) -> list[int]:
            return [self.vocab.index(c) for c in text if c in self.vocab]

        def decode(self, ids: list[int]) -> str:
            return "".join(self.vocab[i] for i in ids if 0 <= i < len(self.vocab) and i != self.eos_id)

    return ToyTask()


def _greedy_reference(model: _ToyModel, task: Any, max_len: int) -> list[int]:
    with torch.no_grad():
        logits, state, _ = task.prime(model, "", torch.device("cpu"), 1)
        out: list[int] = []
        for _ in range(max_len):
            tok = int(logits[0].argmax())
            if tok == task.eos_id:
                break
            out.append(tok)
            logits, state = model.step(torch.tensor([tok]), state)
    return out


def check_decoder_spec(spec, settings: Optional[dict[str, Any]] = None) -> None:
    """The decoder contract, on a toy model whose greedy path and end are known (``settings`` override the
    decoder's parameter defaults)."""
    from workbench.core.decode import DecodeResult, run_decoder
    from workbench.schema.params import field_info
    who = _who("decoder", spec)
    fields = {f.name for f in field_info(spec.params)}
    base = dict(settings or {})
    if "max_len" in fields:
        base.setdefault("max_len", 8)
    max_len = int(base.get("max_len", 8))
    eos_after = 4

    def decode(eos_id: int | None, extra: dict[str, Any], seed: int = 0) -> Any:
        model, task = _ToyModel(eos_id, eos_after), _toy_task(eos_id)
        try:
            result = run_decoder(spec, model, task, {**base, **extra}, prompt="", device=torch.device("cpu"),
                                 seed=seed)
        except Exception as exc:  # noqa: BLE001
            raise _fail(who, "decoder.result", f"decoding raised {type(exc).__name__}: {exc}",
                        "a decoder is factory(model, task, params, *, prompt, device, generator) and uses only "
                        "task.prime, model.step and task.decode") from exc
        if not isinstance(result, DecodeResult):
            raise _fail(who, "decoder.result", f"the decoder returned {type(result).__name__}",
                        "return a workbench.api.DecodeResult")
        bad = [t for t in result.tokens if not (isinstance(t, int) and 0 <= t < _ToyModel.V)]
        if bad:
            raise _fail(who, "decoder.result", f"tokens {bad[:3]} are not ids of the vocabulary",
                        "tokens are the generated ids, as ints")
        if result.text != task.decode(result.tokens):
            raise _fail(who, "decoder.result", f"text {result.text!r} is not task.decode(tokens) = "
                                               f"{task.decode(result.tokens)!r}", "text = task.decode(tokens)")
        if not math.isfinite(float(result.score)):
            raise _fail(who, "decoder.result", f"score {result.score!r} is not finite",
                        "score is the sum of the log-probabilities of the generated tokens")
        return result, model, task

    with_eos, _, _ = decode(2, {})
    if 2 in with_eos.tokens:
        raise _fail(who, "decoder.eos", f"the result holds the end token: {with_eos.tokens}",
                    "stop at task.eos_id and leave it out of tokens")
    if max_len >= eos_after and len(with_eos.tokens) != eos_after:
        raise _fail(who, "decoder.eos", f"{len(with_eos.tokens)} tokens generated where the end was certain after "
                                        f"{eos_after}", "stop when the end token is generated")
    without, _, _ = decode(None, {})
    if "max_len" in fields and len(without.tokens) != max_len:
        raise _fail(who, "decoder.eos", f"without an end token, {len(without.tokens)} tokens were generated with "
                                        f"max_len {max_len}", "a task with eos_id None generates max_len tokens")
    if "width" in fields:
        for eos_id in (2, None):
            result, model, task = decode(eos_id, {"width": 1, **({"n_best": 1} if "n_best" in fields else {})})
            want = _greedy_reference(model, task, max_len)
            if result.tokens != want:
                raise _fail(who, "decoder.greedy-width-1", f"width 1 gives {result.tokens}, greedy decoding {want} "
                                                           f"(eos {'on' if eos_id is not None else 'off'})",
                            "with one hypothesis, keep the best continuation at every step")
    again, _, _ = decode(2, {})
    first, _, _ = decode(2, {})
    if again.tokens != first.tokens or again.text != first.text:
        raise _fail(who, "decoder.deterministic", "two runs with the same seed differ",
                    "draw random numbers from the generator argument only")
    for result, eos_id in ((with_eos, 2), (without, None)):
        if result.tree is not None:
            _check_tree(result, who, eos_id)


def _check_tree(result: Any, who: str, eos: int | None) -> None:
    fix = "add nodes with SearchTree.add(parent, token, logprob, score, step, status): the root first, parents first"
    nodes = result.tree.nodes
    if not nodes or nodes[0].parent is not None or nodes[0].step != -1:
        raise _fail(who, "decoder.tree", "node 0 is not the root (parent None, step -1)", fix)
    statuses = {"kept", "pruned", "finished", "forced"}
    for i, n in enumerate(nodes):
        if n.id != i:
            raise _fail(who, "decoder.tree", f"node {i} has id {n.id}", fix)
        if i and (n.parent is None or not 0 <= n.parent < i):
            raise _fail(who, "decoder.tree", f"node {i} has parent {n.parent} (a root, or not before it)", fix)
        if i and n.step != nodes[n.parent].step + 1:
            raise _fail(who, "decoder.tree", f"node {i} is at step {n.step}, its parent at {nodes[n.parent].step}",
                        fix)
        if n.status not in statuses:
            raise _fail(who, "decoder.tree", f"node {i} has status {n.status!r}, not one of {sorted(statuses)}", fix)
        if i and nodes[n.parent].status in ("pruned", "finished"):
            raise _fail(who, "decoder.tree", f"node {i} extends node {n.parent}, which was {nodes[n.parent].status}",
                        fix)
    for alt in result.alternatives:
        if "node" not in alt:
            continue
        path = result.tree.path(int(alt["node"]))
        tokens = list(alt.get("tokens", []))
        # a finished hypothesis's node is its end token, which is not part of its tokens
        if tokens != path and not (alt.get("finished") and path[-1:] == [eos] and tokens == path[:-1]):
            raise _fail(who, "decoder.tree", f"alternative {tokens} points at node {alt['node']}, whose path is "
                                             f"{path}", "an alternative's node is its last token (or its end token)")

