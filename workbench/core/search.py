"""Looking inside decoding: search-tree documents, their layout, forced prefixes, attention along a hypothesis.

What the decoding view and ``seqwb decode --tree / --prefix / --best / --attention`` share (the GUI draws what this
module computes; nothing here imports Qt):

- :class:`DecodeSession` loads a project's model at its current or best weights (kept between calls) and decodes
  an input with any decoder, optionally after a forced prefix, into a *search document*: a plain JSON dict with
  the settings, the result, the n-best list and the search tree (see :func:`search_document`).  A decoder that
  grows no tree (greedy, sampling) gets a one-path tree whose log-probabilities and top-k lists come from
  re-running the model along its output (:func:`follow_path`), so every decoder can be drawn.
- :func:`follow_path` re-runs the model along one hypothesis, collecting each token's log-probability, the top-k
  next tokens and, for models with attention, the attention weights: ``[target_len, source_len]``, one row per
  generated token (the ``<eos>`` of a finished hypothesis included).  A model whose stepped blocks can all run a
  chunk at once (a language model) reads the hypothesis through ``sequence_graph``, 256 tokens a call; the others
  (attention decoders) step with a trace.
- :func:`layout_tree` places a document's tree left to right for drawing: one column per step, and in every
  column the nodes ordered by their parent's row, then by score, so edges between neighbouring columns never
  cross and the height is at most the number of candidates a step records (2 x width for beam search).

Like the hidden-unit recorder, the session never reseeds torch's global generator and never changes its thread
count: in the window a training run may be going on in another thread, and both are process-wide.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from workbench.schema.registry import Registry

FORMAT = "seqwb-search-tree"
FORMAT_VERSION = 1
WEIGHTS = ("current", "best")

#: tokens per chunk when :func:`follow_path` reads a hypothesis through ``sequence_graph`` (bounds the logits held
#: at once: a chunk of a 10,000-word vocabulary is 10 MB)
FOLLOW_CHUNK = 256

#: node kinds of a laid-out tree, from the most to the least prominent
KINDS = ("root", "forced", "best", "nbest", "finished", "kept", "dead", "pruned")


# ---- following one hypothesis -------------------------------------------------------------------------------

class _TracingModel:
    """A model whose ``step`` records every layer's trace (attention weights included); all else is the model's."""

    def __init__(self, model: Any):
        self._model = model
        self.traces: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._model(*args, **kwargs)

    def step(self, tokens, state, port=None, out_port: str = "logits"):
        trace: dict[str, Any] = {}
        out, state = self._model.step_graph({port or self._model.step_port: tokens}, state, trace)
        self.traces.append(trace)
        return out[out_port], state


@dataclass
class PathTrace:
    """What the model said along one hypothesis (see :func:`follow_path`)."""

    tokens: list[int]                       # the tokens scored: the hypothesis, then <eos> when finished
    logprobs: list[float]                   # log P(token_t | prompt, tokens_<t)
    topk: list[list[dict[str, Any]]]        # before each token: the k most likely next tokens
    attention: dict[str, Any] = field(default_factory=dict)   # node -> numpy [len(tokens), source_len]
    source_ids: list[int] = field(default_factory=list)


def follow_path(model: Any, task: Any, prompt: str, tokens: list[int], *, finished: bool = False, topk: int = 0,
                device: Any = None) -> PathTrace:
    """Re-run ``model`` along ``tokens`` after ``prompt`` (through ``task.prime``, then ``model.sequence_graph`` or
    else ``model.step`` with a trace): each token's log-probability, the ``topk`` next tokens before it, and the
    attention weights of every attention block, one row per scored token.  ``finished`` adds the ``<eos>`` after
    the tokens."""
    import numpy as np
    import torch

    from workbench.core.decode import token_label
    device = device if device is not None else model.device
    scored = list(tokens) + ([task.eos_id] if finished and task.eos_id is not None else [])
    traced = _TracingModel(model) if hasattr(model, "step_graph") else model
    was_training = model.training
    model.eval()
    logprobs: list[float] = []
    tops: list[list[dict[str, Any]]] = []
    try:
        with torch.no_grad():
            logits, state, source_ids = task.prime(traced, prompt, device, 1)

            def score(tok: int, row: Any) -> None:
                """Token ``tok`` against the logits ``row [V]`` the model gave before it."""
                logp = torch.log_softmax(row.float(), -1)
                logprobs.append(float(logp[tok]))
                if topk > 0:
                    vals, idx = logp.topk(min(topk, logp.shape[-1]))
                    tops.append([{"token": t, "label": token_label(task, t), "prob": p}
                                 for t, p in zip(idx.tolist(), vals.exp().tolist())])
                else:
                    tops.append([])

            if scored:
                score(scored[0], logits[0])
            # then token i is scored against the logits after token i - 1: a chunk at a time where the model can
            # (a language model: its recurrent layers' fused kernels), else one step at a time with a trace.  The
            # trace only serves the attention maps, and a model with an attention block always steps (the block
            # reads its encoder's context, so sequence_graph declines)
            chunked = hasattr(model, "sequence_graph")
            i = 1
            while i < len(scored):
                if chunked:
                    n = min(FOLLOW_CHUNK, len(scored) - i)
                    fed = torch.tensor(scored[i - 1:i - 1 + n], dtype=torch.long, device=logits.device).view(n, 1)
                    result = model.sequence_graph({task.input_port(): fed}, state)
                    if result is NotImplemented:
                        chunked = False
                        continue
                    out, state = result
                    for tok, row in zip(scored[i:i + n], out[task.output_port()][:, 0].unbind(0)):
                        score(tok, row)
                    i += n
                    continue
                logits, state = traced.step(torch.tensor([scored[i - 1]], dtype=torch.long, device=logits.device),
                                            state, task.input_port(), task.output_port())
                score(scored[i], logits[0])
                i += 1
    finally:
        model.train(was_training)
    attention: dict[str, Any] = {}
    traces = getattr(traced, "traces", [])
    for key in (traces[0] if traces else {}):
        if key.endswith(".attention") and isinstance(traces[0][key], dict) and "weights" in traces[0][key]:
            rows = [t[key]["weights"][0].detach().float().cpu().numpy() for t in traces[:len(scored)]]
            if len(rows) == len(scored):
                attention[key[:-len(".attention")]] = np.stack(rows, 0) if rows else np.zeros((0, 0), np.float32)
    return PathTrace(scored, logprobs, tops, attention, list(source_ids or []))


# ---- documents ----------------------------------------------------------------------------------------------

def chain_tree(result: Any, trace: PathTrace, eos: Optional[int], labels: list[str]) -> Any:
    """A one-path search tree for a decoder that grows none: root, then one node per token (``finished`` for an
    ``<eos>`` at the end), with the log-probabilities and top-k lists of ``trace``."""
    from workbench.core.decode import SearchTree
    tree = SearchTree(meta={"synthesized": True, "eos": eos})
    node = tree.add(None, -1, 0.0, 0.0, -1, "kept", label="<start>")
    score = 0.0
    for i, (tok, lp) in enumerate(zip(trace.tokens, trace.logprobs)):
        tree.nodes[node].topk = trace.topk[i] or None
        score += lp
        done = eos is not None and tok == eos and i == len(trace.tokens) - 1
        node = tree.add(node, tok, lp, score, i, "finished" if done else "kept", label=labels[i],
                        normalized=score if done else None)
    return tree


def search_document(result: Any, *, decoder: str, settings: dict[str, Any], prompt: str,
                    prefix: list[int], prefix_text: str, weights: str, step: int, trained: bool,
                    continues_prompt: bool, project: str = "") -> dict[str, Any]:
    """The JSON document of one decode: what ``seqwb decode --tree`` writes and the decoding view draws."""
    data = result.to_json()
    return {
        "format": FORMAT, "version": FORMAT_VERSION, "project": project,
        "decoder": decoder, "settings": dict(settings), "input": prompt,
        "prefix": list(prefix), "prefix_text": prefix_text,
        "weights": weights, "step": int(step), "trained": bool(trained), "continues_prompt": bool(continues_prompt),
        "text": data["text"], "tokens": data["tokens"], "score": data["score"],
        "alternatives": data["alternatives"], "search": data.get("search", {}), "tree": data.get("tree", []),
    }


def check_document(doc: Any) -> dict[str, Any]:
    """``doc`` if it is a search document this version reads; otherwise ValueError with the reason."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("not a search-tree file (written by 'seqwb decode --tree' or the decoding view)")
    if int(doc.get("version", 0)) > FORMAT_VERSION:
        raise ValueError(f"this search-tree file is version {doc.get('version')}; this Sequence Workbench reads "
                         f"version {FORMAT_VERSION} and older")
    tree = doc.get("tree")
    if not isinstance(tree, list) or not tree:
        raise ValueError("the search-tree file has no tree")
    for i, node in enumerate(tree):
        if not isinstance(node, dict) or node.get("id") != i:
            raise ValueError(f"search tree node {i} is damaged")
        parent = node.get("parent")
        if (parent is None) != (i == 0) or (parent is not None and not 0 <= parent < i):
            raise ValueError(f"search tree node {i} has a bad parent {parent!r}")
    return doc


def write_document(doc: dict[str, Any], path: str | Path) -> None:
    """Write ``doc`` as JSON, all or nothing."""
    from workbench.atomic import atomic_write
    text = json.dumps(doc, indent=1, allow_nan=False, default=_json_default)
    with atomic_write(path, "w") as fh:
        fh.write(text + "\n")


def read_document(path: str | Path) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a search-tree file: {exc}") from None
    return check_document(doc)


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def finite_json(doc: Any) -> Any:
    """``doc`` with every non-finite float as None (JSON has no -inf; a pruned token can score -inf)."""
    if isinstance(doc, float):
        return doc if math.isfinite(doc) else None
    if isinstance(doc, dict):
        return {k: finite_json(v) for k, v in doc.items()}
    if isinstance(doc, (list, tuple)):
        return [finite_json(v) for v in doc]
    return doc


def write_attention(path: str | Path, attention: dict[str, Any]) -> None:
    """An ``.npz`` with ``weights [target, source]`` (the first attention block), ``source`` and ``target``
    token labels and ids, ``node``, and ``weights/<node>`` for every attention block."""
    import numpy as np

    from workbench.atomic import atomic_write
    arrays: dict[str, Any] = {"weights": np.asarray(attention["weights"], dtype=np.float32),
              "source": np.asarray(attention["source"], dtype=str),
              "target": np.asarray(attention["target"], dtype=str),
              "source_ids": np.asarray(attention["source_ids"], dtype=np.int64),
              "target_ids": np.asarray(attention["target_ids"], dtype=np.int64),
              "node": np.asarray(attention["node"])}
    for node, w in attention["blocks"].items():
        arrays[f"weights/{node}"] = np.asarray(w, dtype=np.float32)
    with atomic_write(path) as fh:
        np.savez_compressed(fh, **arrays)


# ---- layout ---------------------------------------------------------------------------------------------------

@dataclass
class TreeLayout:
    """Where every visible node of a search tree goes: ``pos[id] = (column, row)`` (column = step + 1, the root
    in column 0), its ``kind`` (see :data:`KINDS`), the edges ``(parent, child)``, and for nodes with hidden
    children how many nodes are hidden below them (``hidden``)."""

    pos: dict[int, tuple[int, int]]
    kind: dict[int, str]
    edges: list[tuple[int, int]]
    hidden: dict[int, int]
    best_path: list[int]
    rank: dict[int, int]           # node -> 0-based place in the n-best list (the node ending each hypothesis)
    columns: int
    rows: int

    def to_json(self) -> dict[str, Any]:
        return {"pos": {str(k): list(v) for k, v in sorted(self.pos.items())},
                "kind": {str(k): v for k, v in sorted(self.kind.items())},
                "edges": [list(e) for e in self.edges], "hidden": {str(k): v for k, v in sorted(self.hidden.items())},
                "best_path": list(self.best_path), "rank": {str(k): v for k, v in sorted(self.rank.items())},
                "columns": self.columns, "rows": self.rows}


def node_kinds(doc: dict[str, Any]) -> tuple[dict[int, str], list[int], dict[int, int]]:
    """Each node's kind, the node ids of the best hypothesis (root excluded), and the n-best ranks.

    ``best``: on the best hypothesis; ``nbest``: on another returned hypothesis; ``finished``: another
    ``<eos>``; ``kept``: a live beam with a descendant among the finished ones or the last step's beams;
    ``dead``: a beam whose line was out-scored later; ``pruned``: a candidate that never made the beam."""
    nodes = doc["tree"]
    n = len(nodes)
    parent = [nd["parent"] for nd in nodes]
    status = [nd.get("status", "kept") for nd in nodes]

    def path(nid: int) -> list[int]:
        out = []
        cur: Optional[int] = nid
        while cur is not None and cur != 0:
            out.append(cur)
            cur = parent[cur]
        return out[::-1]

    rank: dict[int, int] = {}
    on_alt: dict[int, int] = {}
    for r, alt in enumerate(doc.get("alternatives") or []):
        nid = alt.get("node")
        if isinstance(nid, int) and 0 <= nid < n:
            rank[nid] = r
            for p in path(nid):
                on_alt[p] = min(on_alt.get(p, r), r)
    best_path = path(min(rank, key=lambda nid: rank[nid])) if rank else []
    # survivors: ancestors of the finished nodes and of the last step's beams
    last_step = max((nd["step"] for nd, s in zip(nodes, status) if s in ("kept", "forced")), default=-1)
    alive = [False] * n
    for i in range(n - 1, -1, -1):
        nd = nodes[i]
        if status[i] == "finished" or (status[i] in ("kept", "forced") and nd["step"] == last_step) or i in rank:
            alive[i] = True
        if alive[i] and parent[i] is not None:
            alive[parent[i]] = True
    kinds: dict[int, str] = {}
    for i in range(n):
        if i == 0:
            kinds[i] = "root"
        elif status[i] == "forced":
            kinds[i] = "forced"
        elif i in on_alt:
            kinds[i] = "best" if on_alt[i] == 0 else "nbest"
        elif status[i] == "finished":
            kinds[i] = "finished"
        elif status[i] == "pruned":
            kinds[i] = "pruned"
        else:
            kinds[i] = "kept" if alive[i] else "dead"
    return kinds, best_path, rank


def layout_tree(doc: dict[str, Any], *, show_pruned: bool = True, fold_dead: bool = False,
                folded: Iterable[int] = (), expanded: Iterable[int] = ()) -> TreeLayout:
    """Lay out ``doc``'s tree for drawing (see the module docstring).

    ``show_pruned=False`` hides pruned candidates and ``fold_dead=True`` hides the lines of beams that died out;
    a node in ``expanded`` shows its children anyway.  A node in ``folded`` hides everything below it."""
    nodes = doc["tree"]
    kinds, best_path, rank = node_kinds(doc)
    folded_set, expanded_set = set(folded), set(expanded)
    children: dict[int, list[int]] = {}
    for nd in nodes[1:]:
        children.setdefault(nd["parent"], []).append(nd["id"])
    visible: set[int] = set()
    hidden: dict[int, int] = {}

    def count(nid: int) -> int:
        total, stack = 0, [nid]
        while stack:
            cur = stack.pop()
            total += 1
            stack.extend(children.get(cur, ()))
        return total

    # parents come before children (ids grow with steps), so one pass in id order sees every parent first
    visible.add(0)
    for nd in nodes[1:]:
        nid, par = nd["id"], nd["parent"]
        if par not in visible:
            continue
        kind, pkind = kinds[nid], kinds[par]
        hide = par in folded_set
        if not hide and par not in expanded_set:
            hide = (kind == "pruned" and not show_pruned) or (fold_dead and kind == "dead" and pkind != "dead")
        if hide:
            hidden[par] = hidden.get(par, 0) + count(nid)
        else:
            visible.add(nid)
    # columns left to right; in each, by the parent's row, then the better score first (planar, compact)
    column: dict[int, list[int]] = {}
    step_of = {nd["id"]: nd["step"] for nd in nodes}
    for nid in visible:
        column.setdefault(step_of[nid] + 1, []).append(nid)
    pos: dict[int, tuple[int, int]] = {}
    for col in sorted(column):
        members = column[col]
        members.sort(key=lambda i: (pos[nodes[i]["parent"]][1] if nodes[i]["parent"] is not None else 0,
                                    -_score(nodes[i]), i))
        for row, nid in enumerate(members):
            pos[nid] = (col, row)
    edges = [(nodes[i]["parent"], i) for i in sorted(visible) if nodes[i]["parent"] is not None]
    return TreeLayout(pos=pos, kind={i: kinds[i] for i in visible}, edges=edges, hidden=hidden,
                      best_path=best_path, rank=rank, columns=(max(column) + 1) if column else 0,
                      rows=max((len(m) for m in column.values()), default=0))


def _score(node: dict[str, Any]) -> float:
    s = node.get("score")
    return s if isinstance(s, (int, float)) and math.isfinite(s) else -math.inf


def prefix_of(doc: dict[str, Any], node_id: int) -> list[int]:
    """The tokens from the root to ``node_id`` (an ``<eos>`` at the end left out): the prefix to force."""
    nodes = doc["tree"]
    eos = (doc.get("search") or {}).get("eos")
    out = []
    cur: Optional[int] = node_id
    while cur is not None and cur != 0:
        out.append(int(nodes[cur]["token"]))
        cur = nodes[cur]["parent"]
    out.reverse()
    if out and eos is not None and out[-1] == eos:
        out.pop()
    return out


def hypothesis_at(doc: dict[str, Any], node_id: int) -> tuple[list[int], bool]:
    """``(tokens, finished)`` of the hypothesis ending at ``node_id`` (for its attention map)."""
    nodes = doc["tree"]
    finished = nodes[node_id].get("status") == "finished"
    return prefix_of(doc, node_id), finished


# ---- the session ----------------------------------------------------------------------------------------------

class DecodeSession:
    """A project's models for decoding, from a :class:`~workbench.core.training.session.ModelSession` kept between
    calls.  Use one session from one thread at a time."""

    def __init__(self, registry: Registry):
        from workbench.core.training.session import ModelSession
        self.registry = registry
        self.models = ModelSession(registry)

    def task(self, project: Any, base_dir: str | Path | None = None) -> Any:
        return self.models.task(project, base_dir)

    def _load(self, project: Any, base_dir: str | Path | None, weights: str, device: Any) -> Any:
        """The session's model at ``weights``; a task that does not generate tokens is refused."""
        task = self.models.task(project, base_dir)
        if not getattr(task, "generative", False):
            raise ValueError(f"the task {project.task.id!r} does not generate tokens; decoders do not apply")
        return self.models.load(project, base_dir, weights, device)

    # ---- what the input is -------------------------------------------------------------------------------------
    def input_info(self, project: Any, base_dir: str | Path | None = None, examples: int = 12) -> dict[str, Any]:
        """How to ask for an input: ``kind`` (``prime`` for a language model, ``source`` for sequence to sequence,
        ``example`` for an example index), a label and hint, a default, and some examples with references."""
        return describe_input(self.task(project, base_dir), examples)

    # ---- decoding --------------------------------------------------------------------------------------------
    def decode(self, project: Any, base_dir: str | Path | None, decoder: str, settings: dict[str, Any], prompt: str,
               *, prefix: Optional[list[int]] = None, prefix_text: str = "", weights: str = "current",
               device: Any = None, seed: int = 0) -> dict[str, Any]:
        """Decode ``prompt`` into a search document (``prefix`` ids, or else ``prefix_text``, forced first)."""
        from workbench.core.decode import run_decoder, token_label
        from workbench.schema.params import params_from_dict, params_to_dict
        spec = self.registry.decoder(decoder)
        params = params_from_dict(spec.params, settings, spec.id)
        loaded = self._load(project, base_dir, weights, device)
        task = loaded.task
        prompt = prompt if prompt else (project.decode.prompt or task.sample_prompt() or "")
        if prefix is None:
            prefix = encode_target(task, prefix_text) if prefix_text else []
        if prefix:
            prefix_text = task.decode(prefix)
        result = run_decoder(spec, loaded.model, task, params_to_dict(params), prompt=prompt, device=loaded.device,
                             seed=seed, prefix=prefix)
        if result.tree is None:
            topk = int(getattr(params, "topk", 5) or 5)
            # a decoder without a tree stops at <eos> (left out of its tokens) or after max_len new tokens
            finished = task.eos_id is not None and len(result.tokens) - len(prefix) < getattr(params, "max_len",
                                                                                               math.inf)
            trace = follow_path(loaded.model, task, prompt, result.tokens, finished=finished, topk=topk,
                                device=loaded.device)
            result.tree = chain_tree(result, trace, task.eos_id, [token_label(task, t) for t in trace.tokens])
            last = len(result.tree.nodes) - 1
            result.alternatives = [{"text": result.text, "tokens": list(result.tokens), "score": result.score,
                                    "normalized_score": result.score, "finished": finished, "node": last}]
            for i in range(1, len(prefix) + 1):
                result.tree.nodes[i].status = "forced"
        doc = search_document(result, decoder=spec.id, settings=params_to_dict(params), prompt=prompt,
                              prefix=prefix, prefix_text=prefix_text, weights=weights, step=loaded.step,
                              trained=loaded.trained, continues_prompt=getattr(task, "continues_prompt", True),
                              project=getattr(project, "name", ""))
        return finite_json(doc)

    def attention(self, project: Any, base_dir: str | Path | None, prompt: str, tokens: list[int],
                  finished: bool, *, weights: str = "current", device: Any = None) -> Optional[dict[str, Any]]:
        """The attention map of one hypothesis (None for a model without attention): ``weights`` ``[T, S]`` of the
        first attention block (``blocks`` has all), with ``source`` / ``target`` labels and ids."""
        from workbench.core.decode import token_label
        loaded = self._load(project, base_dir, weights, device)
        task = loaded.task
        prompt = prompt if prompt else (project.decode.prompt or task.sample_prompt() or "")
        trace = follow_path(loaded.model, task, prompt, list(tokens), finished=finished, device=loaded.device)
        if not trace.attention:
            return None
        node = next(iter(trace.attention))
        labels = getattr(task, "source_labels", None)
        source = labels(trace.source_ids) if callable(labels) else [str(i) for i in trace.source_ids]
        return {"node": node, "weights": trace.attention[node], "blocks": dict(trace.attention),
                "source": list(source), "source_ids": list(trace.source_ids),
                "target": [token_label(task, t) for t in trace.tokens], "target_ids": list(trace.tokens),
                "weights_name": weights, "finished": finished}

    def image(self, project: Any, base_dir: str | Path | None, prompt: str) -> Any:
        """The input picture of a captioning example (``[H, W, 3]`` floats in 0..1), or None."""
        task = self.task(project, base_dir)
        fn = getattr(task, "image", None)
        if not callable(fn):
            return None
        try:
            return fn(prompt)
        except ValueError:
            return None


def encode_target(task: Any, text: str) -> list[int]:
    fn = getattr(task, "encode_target", None)
    return list(fn(text) if callable(fn) else task.encode(text))


def describe_input(task: Any, examples: int = 12) -> dict[str, Any]:
    """See :meth:`DecodeSession.input_info`."""
    info: dict[str, Any] = {"default": task.sample_prompt() or "", "examples": [],
                            "generative": bool(getattr(task, "generative", False))}
    if callable(getattr(task, "example", None)):
        info.update(kind="example", label="Example",
                    hint="the index of an example: 12 (validation), test:3 or train:0")
        ref = getattr(task, "reference", None)
        for i in range(examples):
            try:
                info["examples"].append([str(i), ref(str(i)) if callable(ref) else ""])
            except (ValueError, IndexError):
                break
    elif getattr(task, "continues_prompt", True):
        info.update(kind="prime", label="Prime text", hint="text the language model reads before it generates")
    else:
        info.update(kind="source", label="Source", hint="the input sentence to translate or transform")
        pairs = getattr(task, "pairs", None)
        if callable(pairs):
            for split in ("valid", "test"):
                for source, target in pairs(split)[:examples - len(info["examples"])]:
                    info["examples"].append([source, target])
    image = getattr(task, "image", None)
    try:
        info["image"] = callable(image) and image(info["default"]) is not None
    except ValueError:
        info["image"] = False
    return info
