"""Search documents without a model, shaped like beam search's: for tests and benchmarks of the tree view."""

from __future__ import annotations

import random
from typing import Any

from workbench.core.search import FORMAT, FORMAT_VERSION


def synthetic_document(width: int, steps: int, vocab: int = 40, topk: int = 5, seed: int = 0) -> dict[str, Any]:
    """A tree with ``2 x width`` candidates per step, ``width`` of them kept (as beam search records it), the top
    ``topk`` next tokens on every expanded node, and the ``min(3, width)`` best last beams as the n-best list."""
    rng = random.Random(seed)

    def top() -> list[dict[str, Any]]:
        return [{"token": t, "label": chr(97 + t % 26), "prob": 0.5 / (i + 1)} for i, t in enumerate(range(topk))]

    nodes: list[dict[str, Any]] = [{"id": 0, "parent": None, "token": -1, "logprob": 0.0, "score": 0.0, "step": -1,
                                    "status": "kept", "label": "<start>", "normalized": None, "topk": top()}]
    beams = [0]
    for step in range(steps):
        candidates = []
        for b in beams:
            for _ in range(2 * width // len(beams) + 1):
                lp = -rng.random() * 3
                candidates.append((nodes[b]["score"] + lp, lp, b, rng.randrange(vocab)))
        candidates.sort(key=lambda c: -c[0])
        kept = []
        for rank, (score, lp, parent, tok) in enumerate(candidates[:2 * width]):
            status = "kept" if rank < width else "pruned"
            nid = len(nodes)
            node = {"id": nid, "parent": parent, "token": tok, "logprob": lp, "score": score, "step": step,
                    "status": status, "label": chr(97 + tok % 26), "normalized": None}
            nodes.append(node)
            if status == "kept":
                kept.append(nid)
        for nid in kept if step < steps - 1 else ():
            nodes[nid]["topk"] = top()
        beams = kept
    last = sorted(beams, key=lambda n: -nodes[n]["score"])[:min(3, width)]
    alternatives = [{"text": "", "tokens": [], "score": nodes[n]["score"], "normalized_score": nodes[n]["score"],
                     "finished": False, "node": n} for n in last]
    return {"format": FORMAT, "version": FORMAT_VERSION, "project": "synthetic", "decoder": "beam",
            "settings": {"width": width, "max_len": steps}, "input": "", "prefix": [], "prefix_text": "",
            "weights": "current", "step": 0, "trained": False, "continues_prompt": True, "text": "", "tokens": [],
            "score": 0.0, "alternatives": alternatives, "search": {"width": width, "max_len": steps, "eos": None},
            "tree": nodes}
