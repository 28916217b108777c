"""Beam search over any model, through ``task.prime`` and ``model.step`` only.

Beams are the batch dimension: ``task.prime(model, prompt, device, batch_size=K)`` encodes the input once with
its context expanded to K columns; every step scores all K beams in one ``model.step`` call, and the recurrent
state follows the surviving beams with ``index_select(0, parents)`` on every tensor except the shared context
(``state["__context__"]``).  The Python loop runs over timesteps and over the 2K candidates of a step (to record
them in the tree), never over model calls per hypothesis.

Scoring: live hypotheses compete on their summed log-probability; finished ones (``<eos>`` chosen among the
top K candidates) leave the beam and are ranked by ``score / lp(len)`` with ``lp(len) = ((5 + len) / 6)^alpha``
(Wu et al. 2016), ``len`` counting the generated tokens including ``<eos>``.  The search stops once ``n_best``
hypotheses have finished and no live one can still beat the worst of them: a live score can only fall, so its
best possible normalised score is ``score / lp(max_len)``.  At ``max_len`` the live beams are returned too
(marked unfinished).  A task without ``eos_id`` (a language model) always runs to ``max_len``.  With width 1 and
alpha 0 the search is exactly greedy decoding.

The tree records, at every step, the top 2K candidates: K ``kept`` (the new beams), ``finished`` for an
``<eos>`` among the top K, and ``pruned`` for the rest.  With ``topk`` > 0 every expanded node (the root and each
live beam) also keeps the ``topk`` most likely next tokens with their probabilities, for views.

A forced ``prefix`` (target token ids) is fed to every beam after the prompt and recorded as a chain of ``forced``
nodes; the search then continues from its end, scores and lengths counting the prefix, so the result is the
search of the full tree restricted to continuations of the prefix.  Forcing a prefix of the unforced best
hypothesis finds that hypothesis again (at each step it ranks at least as high among fewer candidates).
"""

from __future__ import annotations

import math

import torch

from workbench.core.blocks import map_state
from workbench.core.decode import DecodeResult, SearchTree, token_label

CONTEXT = "__context__"


def length_penalty(length: int, alpha: float) -> float:
    # Wu et al. 2016 (GNMT): lp(Y) = (5 + |Y|)^alpha / (5 + 1)^alpha
    return ((5.0 + length) / 6.0) ** alpha


def reorder_state(state, index: torch.Tensor):
    """Every block state tensor follows its beam (batch on dim 0); the context is shared and left alone."""
    if state is None:
        return None
    return {k: (v if k == CONTEXT else map_state(v, lambda t: t.index_select(0, index.to(t.device))))
            for k, v in state.items()}


_label = token_label


def _keep_topk(tree: SearchTree, task, node_ids: list[int], logp: torch.Tensor, k: int) -> None:
    """Store the ``k`` most likely next tokens of each row of ``logp [rows, V]`` on the matching tree node."""
    if k <= 0 or not node_ids:
        return
    values, index = logp[:len(node_ids)].topk(min(k, logp.shape[-1]), -1)
    for nid, vals, toks in zip(node_ids, values.exp().tolist(), index.tolist()):
        tree.nodes[nid].topk = [{"token": t, "label": _label(task, t), "prob": p} for t, p in zip(toks, vals)]


@torch.no_grad()
def beam_search(model, task, params, *, prompt: str = "", device=None, generator=None,
                prefix: list[int] | None = None) -> DecodeResult:
    K = params.width
    eos = task.eos_id
    topk = getattr(params, "topk", 0)
    prefix = [int(t) for t in prefix or []]
    logits, state, prompt_ids = task.prime(model, prompt, device, K)
    device = logits.device
    V = logits.shape[-1]
    tree = SearchTree(meta={"width": K, "alpha": params.alpha, "n_best": params.n_best, "max_len": params.max_len,
                            "eos": eos, "topk": topk, "prefix": prefix})
    root_token = prompt_ids[-1] if prompt_ids else -1
    root = tree.add(None, root_token, 0.0, 0.0, -1, "kept", label="<start>")
    # the forced prefix: every row takes the same tokens, so the rows stay identical and row 0 speaks for all
    start_node, base = root, 0.0
    for i, tok in enumerate(prefix[:params.max_len]):
        logp = torch.log_softmax(logits.float(), -1)
        if not 0 <= tok < V:
            raise ValueError(f"prefix token id {tok} is outside the vocabulary (0..{V - 1})")
        if tok == eos:
            raise ValueError("a forced prefix cannot contain the end-of-sequence token")
        _keep_topk(tree, task, [start_node], logp, topk)
        lp = float(logp[0, tok])
        base += lp
        start_node = tree.add(start_node, tok, lp, base, i, "forced", label=_label(task, tok))
        logits, state = model.step(torch.full((K,), tok, dtype=torch.long, device=device), state,
                                   task.input_port(), task.output_port())
    P = min(len(prefix), params.max_len)
    # all K rows start identical: only the first may expand, or the beam would hold K copies of one hypothesis
    scores = torch.full((K,), float("-inf"), device=device)
    scores[0] = base
    beam_nodes = [start_node] * K
    live_rows = 1
    finished: list[tuple[float, float, int]] = []  # (normalised, raw score, tree node)
    lp_max = length_penalty(params.max_len, params.alpha)
    n_cand = min(2 * K, K * V)
    last_step_nodes: list[tuple[int, float]] = [(start_node, base)] if P else []
    for step in range(P, params.max_len):
        logp = torch.log_softmax(logits.float(), -1)
        _keep_topk(tree, task, beam_nodes[:live_rows], logp, topk)
        total = scores.unsqueeze(1) + logp                        # [K, V]
        top, flat = total.view(-1).topk(n_cand)
        parents, tokens = flat // V, flat % V
        cand_logp = logp[parents, tokens]
        kept_rows: list[int] = []
        kept_tokens: list[int] = []
        kept_scores: list[float] = []
        kept_nodes: list[int] = []
        for rank, (s, par, tok, lp) in enumerate(zip(top.tolist(), parents.tolist(), tokens.tolist(),
                                                     cand_logp.tolist())):
            if not math.isfinite(s):
                break
            parent_node = beam_nodes[par]
            if eos is not None and tok == eos:
                if rank < K:  # a finished hypothesis leaves the beam
                    norm = s / length_penalty(step + 1, params.alpha)
                    nid = tree.add(parent_node, tok, lp, s, step, "finished", label="<eos>", normalized=norm)
                    finished.append((norm, s, nid))
                else:
                    tree.add(parent_node, tok, lp, s, step, "pruned", label="<eos>")
            elif len(kept_rows) < K:
                nid = tree.add(parent_node, tok, lp, s, step, "kept", label=_label(task, tok))
                kept_rows.append(par)
                kept_tokens.append(tok)
                kept_scores.append(s)
                kept_nodes.append(nid)
            else:
                tree.add(parent_node, tok, lp, s, step, "pruned", label=_label(task, tok))
        last_step_nodes = list(zip(kept_nodes, kept_scores))
        live_rows = len(kept_rows)
        if not kept_rows:
            break
        if eos is not None and len(finished) >= params.n_best:
            worst = sorted((f[0] for f in finished), reverse=True)[params.n_best - 1]
            # a live score only falls; the most it can still reach after normalisation is score / lp(max_len)
            if max(kept_scores) / lp_max <= worst:
                last_step_nodes = []
                break
        if step == params.max_len - 1:
            break
        # fewer candidates than beams (a tiny vocabulary): fill with dead rows
        pad = K - len(kept_rows)
        rows = torch.tensor(kept_rows + [kept_rows[0]] * pad, dtype=torch.long, device=device)
        next_tokens = torch.tensor(kept_tokens + [kept_tokens[0]] * pad, dtype=torch.long, device=device)
        scores = torch.tensor(kept_scores + [float("-inf")] * pad, device=device)
        beam_nodes = kept_nodes + [kept_nodes[0]] * pad
        state = reorder_state(state, rows)
        logits, state = model.step(next_tokens, state, task.input_port(), task.output_port())

    pool = [(norm, raw, nid, True) for norm, raw, nid in finished]
    if len(pool) < params.n_best or eos is None:
        # the search hit max_len: the live beams are answers too (unfinished)
        for nid, raw in last_step_nodes:
            length = tree.nodes[nid].step + 1
            pool.append((raw / length_penalty(length, params.alpha), raw, nid, False))
    pool.sort(key=lambda item: item[0], reverse=True)
    alternatives = []
    for norm, raw, nid, done in pool[:params.n_best]:
        toks = tree.path(nid)
        if done and toks and toks[-1] == eos:
            toks = toks[:-1]
        alternatives.append({"text": task.decode(toks), "tokens": toks, "score": raw, "normalized_score": norm,
                             "finished": done, "node": nid})
    if not alternatives:
        return DecodeResult(text="", tokens=[], score=0.0, alternatives=[], tree=tree)
    best = alternatives[0]
    return DecodeResult(text=best["text"], tokens=list(best["tokens"]), score=best["score"],
                        alternatives=alternatives, tree=tree)
