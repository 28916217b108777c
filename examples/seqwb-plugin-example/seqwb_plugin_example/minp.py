"""The min-p sampling decoder (Nguyen et al. 2024, "Turning up the heat: min-p sampling for creative and
coherent LLM outputs"): at every step, keep the tokens at least ``p_base`` times as likely as the most likely
one, and sample among them.

A decoder is a function ``factory(model, task, params, *, prompt, device, generator) -> DecodeResult`` that uses
three things only, so it works with every generative model:

- ``prime(model, task, prompt, device, batch_size=1)`` -> ``(logits [batch, V], state, prompt ids)``: the scores
  for the first token to generate (the task decides what the prompt is: text to continue, or a source to encode);
- ``model.step(tokens [batch], state, task.input_port(), task.output_port())`` -> ``(logits [batch, V], state)``;
- ``task.eos_id`` (None: generate ``max_len`` tokens) and ``task.decode(ids)``.
"""

from __future__ import annotations

import torch

from workbench.api import DecodeResult, SearchTree, prime, token_label


@torch.no_grad()
def min_p_sampling(model, task, params, *, prompt: str = "", device=None, generator=None) -> DecodeResult:
    logits, state, prompt_ids = prime(model, task, prompt, device)
    # The search tree: a root for the prompt, then at every step the chosen token ("kept") and up to tree_width
    # other candidates of the min-p pool ("pruned"); the end token, when chosen, is "finished".
    tree = SearchTree(meta={"p_base": params.p_base, "temperature": params.temperature, "max_len": params.max_len,
                            "eos": task.eos_id})
    node = tree.add(None, prompt_ids[-1] if prompt_ids else -1, 0.0, 0.0, -1, label="<start>")
    tokens: list[int] = []
    score, finished = 0.0, False
    for step in range(params.max_len):
        logp = torch.log_softmax(logits[0].float(), -1)           # the model's own log-probabilities
        probs = torch.softmax(logits[0].float() / params.temperature, -1)
        probs = torch.where(probs >= params.p_base * probs.max(), probs, torch.zeros_like(probs))
        tok = int(torch.multinomial(probs / probs.sum(), 1, generator=generator))
        score += float(logp[tok])
        for other in [int(t) for t in probs.argsort(descending=True)[:params.tree_width + 1] if int(t) != tok]:
            if probs[other] > 0:
                tree.add(node, other, float(logp[other]), score - float(logp[tok]) + float(logp[other]), step,
                         "pruned", label=token_label(task, other))
        if tok == task.eos_id:
            node = tree.add(node, tok, float(logp[tok]), score, step, "finished", label="<eos>")
            finished = True
            break
        node = tree.add(node, tok, float(logp[tok]), score, step, "kept", label=token_label(task, tok))
        tokens.append(tok)
        logits, state = model.step(torch.tensor([tok], device=logits.device), state, task.input_port(),
                                   task.output_port())
    text = task.decode(tokens)
    # alternatives: the n-best list; "node" is the tree node of the last token (the end token when finished)
    return DecodeResult(text=text, tokens=tokens, score=score, tree=tree,
                        alternatives=[{"text": text, "tokens": tokens, "score": score, "finished": finished,
                                       "node": node}])
