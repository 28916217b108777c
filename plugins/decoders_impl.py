"""Greedy and sampling decoders.  They only use ``model.start`` / ``model.step`` (through ``prime``)."""

from __future__ import annotations

import torch

from workbench.api import DecodeResult, prime


@torch.no_grad()
def greedy(model, task, params, *, prompt: str = "", device=None, generator=None) -> DecodeResult:
    logits, state, _ = prime(model, task, prompt, device)
    out: list[int] = []
    score = 0.0
    for _ in range(params.max_len):
        logp = torch.log_softmax(logits.float(), -1)[0]
        tok = int(torch.argmax(logp))
        score += float(logp[tok])
        if tok == task.eos_id:
            break
        out.append(tok)
        logits, state = model.step(torch.tensor([tok], device=logits.device), state,
                                   task.input_port(), task.output_port())
    return DecodeResult(text=task.decode(out), tokens=out, score=score)


def filter_logits(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """Temperature, then top-k, then nucleus (Holtzman et al. 2020) truncation; returns log-probabilities."""
    logits = logits.float() / temperature
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    logp = torch.log_softmax(logits, -1)
    if top_p < 1.0:
        sorted_logp, order = torch.sort(logp, descending=True, dim=-1)
        cum = sorted_logp.exp().cumsum(-1)
        # keep the smallest prefix whose mass reaches top_p (always at least the best token)
        drop = (cum - sorted_logp.exp()) >= top_p
        sorted_logp = sorted_logp.masked_fill(drop, float("-inf"))
        logp = torch.full_like(logp, float("-inf")).scatter(-1, order, sorted_logp)
        logp = torch.log_softmax(logp, -1)
    return logp


@torch.no_grad()
def sample(model, task, params, *, prompt: str = "", device=None, generator=None) -> DecodeResult:
    logits, state, _ = prime(model, task, prompt, device)
    out: list[int] = []
    score = 0.0
    for _ in range(params.max_len):
        logp = filter_logits(logits[0], params.temperature, params.top_k, params.top_p)
        probs = logp.exp().cpu()
        tok = int(torch.multinomial(probs, 1, generator=generator))
        score += float(logp[tok])
        if tok == task.eos_id:
            break
        out.append(tok)
        logits, state = model.step(torch.tensor([tok], device=logits.device), state,
                                   task.input_port(), task.output_port())
    return DecodeResult(text=task.decode(out), tokens=out, score=score)
