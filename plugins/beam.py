"""Beam search over any model, through ``task.prime`` and ``model.step`` only.

Beams are the batch dimension: ``task.prime(model, prompt, device, batch_size=K)`` encodes the input once with
its context expanded to K columns; every step scores all K beams in one ``model.step`` call, and the recurrent
state follows the surviving beams with ``index_select(0, parents)`` on every tensor except the shared context
(``state["__context__"]``) and those whose rows are all equal and that the step leaves alone (an encoder memory
shared by the beams of one example).  The Python loop runs over timesteps only: a step reads back its 2K candidate
scores (and their tokens when the task has an ``<eos>``), and keeps its ``topk`` tensors for the tree, which is
built from them in bulk when something reads it (:class:`~workbench.core.decode.LazySearchTree`).

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

from workbench.api import DecodeResult, LazySearchTree, SearchTree, TreeNode, map_state, token_label

CONTEXT = "__context__"


def length_penalty(length: int, alpha: float) -> float:
    # Wu et al. 2016 (GNMT): lp(Y) = (5 + |Y|)^alpha / (5 + 1)^alpha
    return ((5.0 + length) / 6.0) ** alpha


def reorder_state(state, index: torch.Tensor, shared: dict | None = None):
    """Every block state tensor follows its beam (batch on dim 0); the context is shared and left alone.

    ``shared`` (from :func:`_row_constant`) names tensors whose rows are all equal and that the model's step
    handed back untouched (the same object, no in-place change since): picking rows of those changes nothing,
    so they are passed on as they are (an attention decoder's encoder memory, its keys and source mask)."""
    if state is None:
        return None
    shared = shared or {}
    moved: dict = {}   # the index on each other device the state lives on, moved there once

    # Runs once per search step: a walk specialised for the containers states are made of (exact types
    # first), and no device check unless index_select refuses the index (7.5 -> 5.9 us per step for the
    # seq2seq template's decoder, two of its four tensors picked; benchmarks/beam_speed.py).
    def walk(s):
        if isinstance(s, torch.Tensor):
            entry = shared.get(id(s))
            if entry is not None and entry[0] is s and s._version == entry[1]:
                return s
            idx = moved.get(s.device, index) if moved else index
            try:
                return s.index_select(0, idx)
            except RuntimeError:
                if s.device == idx.device:
                    raise
                idx = moved[s.device] = index.to(s.device)
                return s.index_select(0, idx)
        kind = type(s)
        if kind is tuple:
            return tuple([walk(x) for x in s])
        if kind is dict:
            return {k: walk(v) for k, v in s.items()}
        if kind is list:
            return [walk(x) for x in s]
        if s is None:
            return None
        # subclasses (a NamedTuple, an OrderedDict) keep their type as map_state keeps it
        return map_state(s, walk)

    return {k: (v if k == CONTEXT else walk(v)) for k, v in state.items()}


def _row_constant(state, rows: int) -> dict[int, tuple[torch.Tensor, int]]:
    """``id -> (tensor, version)`` of the state tensors (context aside) whose ``rows`` rows are all equal."""
    out: dict[int, tuple[torch.Tensor, int]] = {}
    if not state or rows < 2:
        return out

    def look(t: torch.Tensor) -> torch.Tensor:
        if t.dim() >= 1 and t.shape[0] == rows and torch.equal(t, t[:1].expand_as(t)):
            out[id(t)] = (t, t._version)
        return t

    for k, v in state.items():
        if k != CONTEXT:
            map_state(v, look)
    return out


class _Labels(dict):
    """token id -> its label for the tree, each worked out once per search.

    A step records 2K candidates and K top-k lists; asking the task to decode each token again took a quarter of a
    profiled width-10 decode of the seq2seq template (benchmarks/beam_speed.py)."""

    def __init__(self, task):
        super().__init__()
        self.task = task

    def __missing__(self, token: int) -> str:
        label = self[token] = token_label(self.task, token)
        return label


def _keep_topk(tree: SearchTree, labels: _Labels, node_ids: list[int], logp: torch.Tensor, k: int) -> None:
    """Store the ``k`` most likely next tokens of each row of ``logp [rows, V]`` on the matching tree node."""
    if k <= 0 or not node_ids:
        return
    values, index = logp[:len(node_ids)].topk(min(k, logp.shape[-1]), -1)
    for nid, vals, toks in zip(node_ids, values.exp().tolist(), index.tolist()):
        tree.nodes[nid].topk = [{"token": t, "label": labels[t], "prob": p} for t, p in zip(toks, vals)]


class _Step:
    """What one search step leaves for its tree: the step's tensors as they came out of ``topk`` (read back only
    when the tree or a hypothesis's path is wanted) and the little the search itself had to know in Python."""

    __slots__ = ("step", "top", "pos", "row_lp", "row_tok", "n_rec", "live_rows", "beam_ids", "first_id")

    def __init__(self, step, top, pos, row_lp, row_tok, n_rec, live_rows, beam_ids, first_id):
        self.step = step              # the decoding step (counting a forced prefix)
        self.top, self.pos = top, pos                      # [n_cand] scores and places in [K, m], best first
        # [K, m] each row's best log-probabilities and tokens, best first; or, when m is the whole vocabulary,
        # the row's log-probabilities [K, V] as the model gave them and row_tok None (token = place in the row)
        self.row_lp, self.row_tok = row_lp, row_tok
        self.n_rec = n_rec            # candidates recorded (up to the first non-finite score)
        self.live_rows = live_rows    # rows that hold a hypothesis (the rest are dead fillers)
        self.beam_ids = beam_ids      # row -> tree node of the hypothesis it extends
        self.first_id = first_id      # tree id of the step's best candidate; the others follow in rank order


def _grow_tree(nodes: list[TreeNode], steps: list[_Step], K: int, m: int, eos, alpha: float, topk: int,
               labels: _Labels) -> list[TreeNode]:
    """The search's tree nodes after ``nodes`` (root, forced prefix), from its step records: per step the top
    ``2K`` candidates in rank order, ``kept`` / ``finished`` / ``pruned`` as the search decided, and the top-k
    next tokens on every expanded node.  The step tensors are stacked and read back once for the whole search."""
    nodes = list(nodes)
    if not steps:
        return nodes
    S = len(steps)
    places = torch.stack([s.pos for s in steps])                  # [S, n_cand] places in each step's [K, m]
    row_lp = torch.stack([s.row_lp for s in steps])               # [S, K, m]
    cand_lp = row_lp.view(S, -1).gather(1, places).tolist()
    cand_par = places.div(m, rounding_mode="floor").tolist()
    cand_tok = _step_tokens(steps, places, m).tolist()
    tops = torch.stack([s.top for s in steps]).tolist()
    if topk > 0:
        if steps[0].row_tok is None:   # whole rows: their top-k taken here, for every step at once
            top_v, top_t = (t.tolist() for t in row_lp.topk(min(topk, m), -1))
        else:
            top_v = row_lp[..., :topk].tolist()
            top_t = torch.stack([s.row_tok for s in steps])[..., :topk].tolist()
    for k, rec in enumerate(steps):
        beam_nodes, step = rec.beam_ids, rec.step
        if topk > 0:
            for row in range(rec.live_rows):
                nodes[beam_nodes[row]].topk = [{"token": t, "label": labels[t], "prob": math.exp(v)}
                                               for t, v in zip(top_t[k][row], top_v[k][row])]
        top_l, par_l, tok_l, lp_l = tops[k], cand_par[k], cand_tok[k], cand_lp[k]
        n_kept = 0
        for rank in range(rec.n_rec):
            s, tok, lp, parent = top_l[rank], tok_l[rank], lp_l[rank], beam_nodes[par_l[rank]]
            nid = len(nodes)
            if eos is not None and tok == eos:
                if rank < K:   # a finished hypothesis left the beam
                    nodes.append(TreeNode(nid, parent, tok, lp, s, step, "finished", "<eos>",
                                          s / length_penalty(step + 1, alpha)))
                else:
                    nodes.append(TreeNode(nid, parent, tok, lp, s, step, "pruned", "<eos>"))
            elif n_kept < K:
                n_kept += 1
                nodes.append(TreeNode(nid, parent, tok, lp, s, step, "kept", labels[tok]))
            else:
                nodes.append(TreeNode(nid, parent, tok, lp, s, step, "pruned", labels[tok]))
    return nodes


def _step_tokens(steps: list[_Step], places: torch.Tensor, m: int) -> torch.Tensor:
    """The tokens at ``places [S, n]`` of each step's ``[K, m]`` table."""
    if steps[0].row_tok is None:
        return places.remainder(m)
    return torch.stack([s.row_tok for s in steps]).view(len(steps), -1).gather(1, places)


class _Paths:
    """Token paths to tree nodes, from the step records without building the tree."""

    def __init__(self, head: list[TreeNode], steps: list[_Step], m: int):
        self.head, self.steps, self.m = head, steps, m
        self._firsts = [s.first_id for s in steps]
        self._places, self._tokens = [], []
        if steps:
            places = torch.stack([s.pos for s in steps])
            self._places = places.tolist()
            self._tokens = _step_tokens(steps, places, m).tolist()

    def tokens(self, nid: int) -> list[int]:
        out: list[int] = []
        k = len(self.steps) - 1
        while nid >= len(self.head):
            while self._firsts[k] > nid:   # steps hold increasing id ranges; walk back to the one holding nid
                k -= 1
            rank = nid - self._firsts[k]
            out.append(self._tokens[k][rank])
            nid = self.steps[k].beam_ids[self._places[k][rank] // self.m]
        while nid is not None and nid > 0:   # the forced prefix (the root's token is the prompt's, not a path's)
            node = self.head[nid]
            out.append(node.token)
            nid = node.parent
        return out[::-1]


@torch.no_grad()
def beam_search(model, task, params, *, prompt: str = "", device=None, generator=None,
                prefix: list[int] | None = None) -> DecodeResult:
    K = params.width
    eos = task.eos_id
    topk = getattr(params, "topk", 0)
    prefix = [int(t) for t in prefix or []]
    labels = _Labels(task)
    in_port, out_port = task.input_port(), task.output_port()
    logits, state, prompt_ids = task.prime(model, prompt, device, K)
    device = logits.device
    V = logits.shape[-1]
    meta = {"width": K, "alpha": params.alpha, "n_best": params.n_best, "max_len": params.max_len, "eos": eos,
            "topk": topk, "prefix": prefix}
    # the root and the forced prefix are built at once (short, and a forced decode is interactive); the
    # search's own nodes are built from its step records only when the tree is read (see _grow_tree)
    head = SearchTree(meta=meta)
    root_token = prompt_ids[-1] if prompt_ids else -1
    root = head.add(None, root_token, 0.0, 0.0, -1, "kept", label="<start>")
    # the forced prefix: every row takes the same tokens, so the rows stay identical and row 0 speaks for all
    start_node, base = root, 0.0
    for i, tok in enumerate(prefix[:params.max_len]):
        logp = torch.log_softmax(logits.float(), -1)
        if not 0 <= tok < V:
            raise ValueError(f"prefix token id {tok} is outside the vocabulary (0..{V - 1})")
        if tok == eos:
            raise ValueError("a forced prefix cannot contain the end-of-sequence token")
        _keep_topk(head, labels, [start_node], logp, topk)
        lp = float(logp[0, tok])
        base += lp
        start_node = head.add(start_node, tok, lp, base, i, "forced", label=labels[tok])
        logits, state = model.step(torch.full((K,), tok, dtype=torch.long, device=device), state, in_port, out_port)
    P = min(len(prefix), params.max_len)
    # all K rows start identical: only the first may expand, or the beam would hold K copies of one hypothesis
    scores = torch.full((K, 1), float("-inf"), device=device)    # a column: it broadcasts over each row's tokens
    scores[0, 0] = base
    n_cand = min(2 * K, K * V)
    # A row can place at most n_cand candidates among the step's best n_cand, so each row's best m tokens hold
    # them all; m also covers the top-k lists kept for the tree.  (One top-k over all K x V scores is a few
    # microseconds quicker up to K x V of about 30k, but it breaks ties between equal scores in another order: an
    # untrained model's near-uniform scores do tie in float32, and the trees would no longer be the same.)
    m = min(V, max(n_cand, topk))
    # When m is the whole vocabulary (a small one: the seq2seq template's 15 symbols at width 10) the rows need
    # no sorting: the candidates come straight from the [K, V] scores, a token is its place in the row, and
    # the tree's top-k lists are taken in one call when it is built.  One top-k fewer per step (about 3 us of
    # 200); ties between equal scores may then rank in another order than through sorted rows.
    whole_rows = m == V
    lp_max = length_penalty(params.max_len, params.alpha)
    shared = _row_constant(state, K)
    steps: list[_Step] = []
    finished: list[tuple[float, float, int]] = []  # (normalised, raw score, tree node)
    next_id = len(head.nodes)                       # the id the next recorded candidate gets
    live_rows = 1
    beam_ids = [start_node] * K                     # row -> the tree node each row extends
    # the live hypotheses when the loop ends: (node, raw score, step), kept as the last step's pieces and
    # listed after the loop (listing them every step cost ~2 us a step)
    last_step: tuple | None = None
    last_nodes: list[tuple[int, float, int]] = [(start_node, base, P - 1)] if P else []
    for step in range(P, params.max_len):
        logp = torch.log_softmax(logits if logits.dtype == torch.float32 else logits.float(), -1)
        if whole_rows:
            row_lp, row_tok = logp, None
        else:
            row_lp, row_tok = logp.topk(m, -1)                    # [K, m], best first in each row
        top, pos = (row_lp + scores).view(-1).topk(n_cand)        # the best n_cand of all K x m continuations
        # The only values read back per step: the candidates' scores (and tokens when there is an <eos>).
        # Candidates are recorded in rank order up to the first non-finite score (a dead row, a -inf logit).
        top_l = top.tolist()
        if math.isfinite(top_l[-1]) and math.isfinite(top_l[0]):   # topk puts a NaN first, -inf last
            n_rec = n_cand
        else:
            n_rec = next((r for r, s in enumerate(top_l) if not math.isfinite(s)), n_cand)
        if eos is None:
            cand_tok = None
        else:                                                              # each candidate's token
            cand_tok = pos.remainder(m) if whole_rows else row_tok.take(pos)
        tok_l = cand_tok.tolist() if cand_tok is not None else None
        first_id = next_id
        next_id += n_rec
        rec = _Step(step, top, pos, row_lp, row_tok, n_rec, live_rows, beam_ids, first_id)
        steps.append(rec)
        if n_rec >= K and (tok_l is None or eos not in tok_l[:K]):
            # the usual case: the best K candidates are the new beams, in rank order
            kept = None
            live_rows = K
            best_live = top_l[0]
            last = range(K)
        else:
            kept = []
            for r in range(n_rec):
                if tok_l is not None and tok_l[r] == eos:
                    if r < K:  # a finished hypothesis leaves the beam
                        norm = top_l[r] / length_penalty(step + 1, params.alpha)
                        finished.append((norm, top_l[r], first_id + r))
                elif len(kept) < K:
                    kept.append(r)
            live_rows = len(kept)
            if not kept:
                last_step, last_nodes = None, []
                break
            best_live = top_l[kept[0]]
            last = kept
        last_step = (first_id, top_l, step, last)
        if eos is not None and len(finished) >= params.n_best:
            worst = sorted((f[0] for f in finished), reverse=True)[params.n_best - 1]
            # a live score only falls; the most it can still reach after normalisation is score / lp(max_len)
            if best_live / lp_max <= worst:
                last_step, last_nodes = None, []
                break
        if step == params.max_len - 1:
            break
        if kept is None:
            beam_ids = range(first_id, first_id + K)
            scores = top[:K].view(K, 1)
            chosen = pos[:K]
        else:
            # fewer candidates than beams (a tiny vocabulary, <eos> among the best): fill with dead rows
            pad = K - len(kept)
            beam_ids = [first_id + r for r in kept] + [first_id + kept[0]] * pad
            pick = torch.tensor(kept + [kept[0]] * pad, dtype=torch.long, device=device)
            scores = torch.tensor([top_l[r] for r in kept] + [float("-inf")] * pad, device=device).view(K, 1)
            chosen = pos.index_select(0, pick)
        # a place in the [K, m] top-k table: its row is the beam it extends, its entry the next token
        state = reorder_state(state, chosen.div(m, rounding_mode="floor"), shared)
        if cand_tok is None:
            next_tok = chosen.remainder(m) if whole_rows else row_tok.take(chosen)
        else:           # the candidates' tokens were read already (for <eos>): no second gather
            next_tok = cand_tok[:K] if kept is None else cand_tok.index_select(0, pick)
        logits, state = model.step(next_tok, state, in_port, out_port)

    tree = LazySearchTree(meta, lambda: _grow_tree(head.nodes, steps, K, m, eos, params.alpha, topk, labels))
    pool = [(norm, raw, nid, True) for norm, raw, nid in finished]
    if len(pool) < params.n_best or eos is None:
        # the search hit max_len: the live beams are answers too (unfinished)
        if last_step is not None:
            first, top_last, node_step, rows = last_step
            last_nodes = [(first + r, top_last[r], node_step) for r in rows]
        for nid, raw, node_step in last_nodes:
            pool.append((raw / length_penalty(node_step + 1, params.alpha), raw, nid, False))
    pool.sort(key=lambda item: item[0], reverse=True)
    alternatives = []
    paths = _Paths(head.nodes, steps, m) if pool else None
    for norm, raw, nid, done in pool[:params.n_best]:
        toks = paths.tokens(nid)
        if done and toks and toks[-1] == eos:
            toks = toks[:-1]
        alternatives.append({"text": task.decode(toks), "tokens": toks, "score": raw, "normalized_score": norm,
                             "finished": done, "node": nid})
    if not alternatives:
        return DecodeResult(text="", tokens=[], score=0.0, alternatives=[], tree=tree)
    best = alternatives[0]
    return DecodeResult(text=best["text"], tokens=list(best["tokens"]), score=best["score"],
                        alternatives=alternatives, tree=tree)
