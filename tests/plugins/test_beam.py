"""Beam search: greedy at width 1, tree structure, n-best order, beating greedy on a hand-built model, CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from tests.helpers import small_project, write_corpus
from workbench.core.build import build_model
from workbench.core.decode import SearchTree, run_decoder
from workbench.core.settings import template_project
from workbench.schema.params import ParamError, params_from_dict
from workbench_plugins.beam import length_penalty, reorder_state

SEQ2SEQ_TINY = {"task.demo_train": "200", "task.demo_valid": "10", "task.demo_test": "10", "hidden_size": "16",
                "embed_size": "8", "threads": "1"}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def charlm(reg, tmp_path_factory):
    folder = tmp_path_factory.mktemp("charlm")
    corpus = write_corpus(folder)
    project = small_project(reg, hidden_size=16, layers=1, **{"task.corpus": str(corpus)})
    spec = reg.task("char-lm")
    task = spec.load()(params_from_dict(spec.params, project.task.params, "task"), folder)
    task.prepare()
    torch.manual_seed(0)
    model = build_model(project.graph, reg, spec, task.sizes).eval()
    return model, task


@pytest.fixture(scope="module")
def seq2seq(reg):
    project, _ = template_project(reg.template("seq2seq-attention"), SEQ2SEQ_TINY, reg)
    spec = reg.task("seq2seq")
    task = spec.load()(params_from_dict(spec.params, project.task.params, "task"), None)
    task.prepare()
    torch.manual_seed(0)
    model = build_model(project.graph, reg, spec, task.sizes)
    # a few quick steps so that the decodes end with <eos> instead of running to max_len
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(4):
        for batch in task.batches("train", 32, 0, epoch=epoch):
            opt.zero_grad()
            task.loss(model(batch)[0], batch).backward()
            opt.step()
    return model.eval(), task


def decode(reg, model, task, decoder, prompt, **settings):
    return run_decoder(reg.decoder(decoder), model, task, settings, prompt=prompt)


# ---- width 1 is greedy ----------------------------------------------------------------------------------------

def test_width_one_is_greedy_for_the_char_lm(reg, charlm):
    model, task = charlm
    for prompt in ("def ", "x"):
        greedy = decode(reg, model, task, "greedy", prompt, max_len=30)
        beam = decode(reg, model, task, "beam", prompt, width=1, max_len=30, alpha=0.6)
        assert beam.tokens == greedy.tokens and len(beam.tokens) == 30
        assert beam.score == pytest.approx(greedy.score, abs=1e-4)


def test_width_one_is_greedy_for_seq2seq(reg, seq2seq):
    model, task = seq2seq
    ended = 0
    for source, _ in task.pairs("valid")[:6]:
        greedy = decode(reg, model, task, "greedy", source, max_len=20)
        beam = decode(reg, model, task, "beam", source, width=1, alpha=0.0, max_len=20)
        assert beam.tokens == greedy.tokens, source
        assert beam.score == pytest.approx(greedy.score, abs=1e-4)
        ended += beam.alternatives[0]["finished"]
    assert ended, "the tiny model should finish some decodes with <eos>"


# ---- the tree ---------------------------------------------------------------------------------------------------

def check_tree(result, width):
    nodes = result.tree.nodes
    assert nodes[0].parent is None and nodes[0].step == -1
    by_step: dict[int, list] = {}
    for n in nodes[1:]:
        parent = nodes[n.parent]
        assert n.parent < n.id and parent.step == n.step - 1, "parents exist and come one step earlier"
        assert parent.status == "kept", "only live hypotheses are expanded"
        assert n.status in ("kept", "pruned", "finished")
        assert n.score == pytest.approx(parent.score + n.logprob, abs=1e-4)
        by_step.setdefault(n.step, []).append(n)
    steps = sorted(by_step)
    assert steps == list(range(len(steps)))
    for s in steps:
        kept = [n for n in by_step[s] if n.status == "kept"]
        assert len(kept) == width, f"step {s}: {len(kept)} kept"
        assert len(by_step[s]) == 2 * width, "the top 2K candidates of every step are recorded"
        # kept ones are the best non-finished candidates
        assert min(n.score for n in kept) >= max((n.score for n in by_step[s] if n.status == "pruned"
                                                  and n.label != "<eos>"), default=-math.inf)
    return by_step


def test_tree_structure_and_nbest_for_seq2seq(reg, seq2seq):
    model, task = seq2seq
    source = task.pairs("valid")[0][0]
    result = decode(reg, model, task, "beam", source, width=3, n_best=3, alpha=0.6, max_len=20)
    by_step = check_tree(result, 3)
    finished = [n for n in result.tree.nodes if n.status == "finished"]
    assert finished and all(n.token == task.eos_id for n in finished)
    # n-best: sorted by length-normalised score, each the path to a finished node
    alts = result.alternatives
    assert len(alts) == 3
    assert [a["normalized_score"] for a in alts] == sorted((a["normalized_score"] for a in alts), reverse=True)
    for a in alts:
        node = result.tree.nodes[a["node"]]
        assert a["finished"] and node.status == "finished"
        assert a["tokens"] == result.tree.path(node.id)[:-1]
        assert a["normalized_score"] == pytest.approx(a["score"] / length_penalty(len(a["tokens"]) + 1, 0.6))
        assert a["text"] == task.decode(a["tokens"])
    assert result.tokens == alts[0]["tokens"] and result.text == alts[0]["text"]
    # stopping: no live hypothesis at the last step could still beat the n-th best finished one
    last = max(by_step)
    live = [n.score for n in by_step[last] if n.status == "kept"]
    if last < 19:
        assert max(live) / length_penalty(20, 0.6) <= alts[-1]["normalized_score"] + 1e-9
    data = result.to_json()
    assert data["tree"][1]["label"] and data["search"]["width"] == 3


def test_char_lm_beam_runs_to_max_len(reg, charlm):
    model, task = charlm
    result = decode(reg, model, task, "beam", "def ", width=4, n_best=4, max_len=12)
    check_tree(result, 4)
    assert [len(a["tokens"]) for a in result.alternatives] == [12] * 4
    scores = [a["score"] for a in result.alternatives]
    assert scores == sorted(scores, reverse=True) and len({tuple(a["tokens"]) for a in result.alternatives}) == 4
    assert not any(a["finished"] for a in result.alternatives)
    greedy = decode(reg, model, task, "greedy", "def ", max_len=12)
    assert result.score >= greedy.score - 1e-5, "the best of 4 beams is at least as likely as greedy"


def test_params_are_checked(reg):
    spec = reg.decoder("beam")
    with pytest.raises(ParamError, match="n_best"):
        params_from_dict(spec.params, {"width": 2, "n_best": 3}, "beam")


# ---- a hand-built model where greedy is provably suboptimal ---------------------------------------------------

START, A, B, EOS = 0, 1, 2, 3
# P(next | last): from the start a is likelier than b, but after a nothing is likely, while b ends almost surely.
TABLE = torch.tensor([
    [0.00, 0.55, 0.45, 0.00],   # start
    [0.00, 0.34, 0.33, 0.33],   # after a
    [0.00, 0.05, 0.05, 0.90],   # after b
    [0.00, 0.00, 0.00, 1.00],   # after eos
]).clamp_min(1e-12).log()


class TableModel:
    """A Markov chain over 4 tokens with the ``start``/``step`` interface of a SequenceModel."""

    def __init__(self):
        self.calls = []

    def step(self, tokens, state, port=None, out_port=None):
        self.calls.append(tokens.shape[0])
        return TABLE[tokens], {"chain": {"last": tokens}, "__context__": state["__context__"]}

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    training = False
    device = torch.device("cpu")


class TableTask:
    eos_id = EOS

    def prime(self, model, prompt, device, batch_size=1):
        state = {"chain": {"last": torch.zeros(batch_size, dtype=torch.long)}, "__context__": {"shared": 1}}
        return TABLE[torch.zeros(batch_size, dtype=torch.long)], state, [START]

    def decode(self, ids):
        return "".join(" ab."[i] for i in ids)

    def input_port(self):
        return "tokens"

    def output_port(self):
        return "logits"


def test_beam_finds_the_better_sequence_greedy_misses(reg):
    model, task = TableModel(), TableTask()
    greedy = decode(reg, model, task, "greedy", "", max_len=6)
    assert greedy.text == "aaaaaa"                       # always a: 0.55 * 0.34^5, never ends
    model.calls.clear()
    beam = decode(reg, model, task, "beam", "", width=2, alpha=0.0, max_len=6)
    assert beam.text == "b" and beam.alternatives[0]["finished"]
    assert beam.score == pytest.approx(math.log(0.45 * 0.90), abs=1e-6)
    assert beam.score > greedy.score
    assert set(model.calls) == {2}, "beams are one batch of width 2 at every step"
    check_tree(beam, 2)
    # width 1 on the same model is greedy again
    one = decode(reg, model, task, "beam", "", width=1, alpha=0.0, max_len=6)
    assert one.tokens == greedy.tokens


def test_reorder_state_moves_beams_but_not_the_context():
    state = {"dec": {"cells": ((torch.arange(3.0).view(3, 1), torch.arange(3.0).view(3, 1) * 10),),
                     "mask": torch.tensor([[True], [False], [True]])},
             "__context__": {("input", "source"): torch.arange(6).view(2, 3)}}
    out = reorder_state(state, torch.tensor([2, 2, 0]))
    assert out["dec"]["cells"][0][0].view(-1).tolist() == [2.0, 2.0, 0.0]
    assert out["dec"]["cells"][0][1].view(-1).tolist() == [20.0, 20.0, 0.0]
    assert out["dec"]["mask"].view(-1).tolist() == [True, True, True]
    assert out["__context__"] is state["__context__"]


# ---- CLI ------------------------------------------------------------------------------------------------------

def test_cli_decode_beam_prints_the_tree(tmp_path, subprocess_env):
    env = subprocess_env()
    path = tmp_path / "p.seqwb"
    sets = [x for k, v in SEQ2SEQ_TINY.items() for x in ("--set", f"{k}={v}")]
    subprocess.run([sys.executable, "-m", "workbench", "new", "seq2seq-attention", "-o", str(path), *sets],
                   check=True, capture_output=True, env=env, cwd=tmp_path)
    out = subprocess.run([sys.executable, "-m", "workbench", "decode", str(path), "--decoder", "beam", "--json",
                          "--input", "3 March 2021", "--set", "width=3", "--set", "n_best=2", "--set", "max_len=8"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["decoder"] == "beam" and data["prompt"] == "3 March 2021"
    assert len(data["alternatives"]) == 2 and data["search"]["width"] == 3
    tree = data["tree"]
    assert tree[0]["parent"] is None and {"id", "parent", "token", "logprob", "score", "step", "status",
                                          "label"} <= set(tree[1])
    assert sum(1 for n in tree if n["step"] == 0 and n["status"] == "kept") == 3


# ---- the batched search grows the tree a straightforward search grows ----------------------------------------

class _TinyRNN(torch.nn.Module):
    """A hand-made recurrent scorer: beams diverge, and an encoder-like ``memory`` rides along in the state."""

    def __init__(self, vocab: int, seed: int, masked: int | None = None):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.E = torch.randn(vocab, 6, generator=g)
        self.U = torch.randn(6, 6, generator=g) * 0.5
        self.O = torch.randn(6, vocab, generator=g) * 2
        self.masked = masked

    @property
    def device(self):
        return torch.device("cpu")

    def step(self, tokens, state, port=None, out_port="logits"):
        h = torch.tanh(self.E[tokens] + state["dec"]["h"] @ self.U + state["dec"]["memory"])
        logits = h @ self.O
        if self.masked is not None:
            logits[:, self.masked] = float("-inf")   # a token the model never allows
        return logits, {"dec": {"h": h, "memory": state["dec"]["memory"]}}


class _TinyTask:
    def __init__(self, eos):
        self.eos_id = eos

    def prime(self, model, prompt, device, batch_size=1):
        state = {"dec": {"h": torch.zeros(batch_size, 6), "memory": torch.full((batch_size, 6), 0.1)}}
        return model.step(torch.zeros(batch_size, dtype=torch.long), state)[0], state, [0]

    def input_port(self):
        return "x"

    def output_port(self):
        return "logits"

    def decode(self, tokens):
        return " ".join(map(str, tokens))


def reference_tree(model, task, K, n_best, max_len, alpha, topk):
    """The tree by the letter of the beam module's docstring: one hypothesis at a time, every continuation
    scored in Python, the top 2K of each step recorded in rank order (no ties with these random weights)."""
    eos = task.eos_id
    nodes = [dict(id=0, parent=None, token=0, logprob=0.0, score=0.0, step=-1, status="kept", label="<start>",
                  normalized=None)]
    logits, state, _ = task.prime(model, "", None, 1)
    beams = [(0, torch.zeros(1), state, logits)]        # (node, score as a float32 tensor, state, logits)
    finished = []
    for step in range(max_len):
        cands = []
        for node, score, st, lg in beams:
            logp = torch.log_softmax(lg[0], -1)
            if topk:
                vals, toks = logp.topk(min(max(2 * K, topk), logp.shape[-1]))
                nodes[node]["topk"] = [{"token": t, "label": str(t) if t != eos else "<eos>", "prob": math.exp(v)}
                                       for t, v in zip(toks.tolist()[:topk], vals.tolist()[:topk])]
            for tok, (s, lp) in enumerate(zip((logp + score).tolist(), logp.tolist())):
                if math.isfinite(s):
                    cands.append((s, node, tok, lp, st))
        cands.sort(key=lambda c: -c[0])
        new_beams = []
        for rank, (s, parent, tok, lp, st) in enumerate(cands[:2 * K]):
            nid = len(nodes)
            nd = dict(id=nid, parent=parent, token=tok, logprob=lp, score=s, step=step, status="pruned",
                      label="<eos>" if tok == eos else str(tok), normalized=None)
            nodes.append(nd)
            if tok == eos:
                if rank < K:
                    nd.update(status="finished", normalized=s / length_penalty(step + 1, alpha))
                    finished.append(nd["normalized"])
            elif len(new_beams) < K:
                nd["status"] = "kept"
                new_beams.append((nid, torch.tensor([s]), st, tok))
        if not new_beams or step == max_len - 1:
            break
        if eos is not None and len(finished) >= n_best:
            if max(b[1].item() for b in new_beams) / length_penalty(max_len, alpha) <= \
                    sorted(finished, reverse=True)[n_best - 1]:
                break
        beams = []
        for nid, score, st, tok in new_beams:
            lg, st = model.step(torch.tensor([tok]), st)
            beams.append((nid, score, st, lg))
    return nodes


# vocab <= 2 x width (and >= topk) takes the whole rows without sorting them (3/5, 8/4, 6/3), the others the
# sorted per-row tables
@pytest.mark.parametrize("vocab,width,eos,masked", [(12, 4, None, None), (12, 4, 3, None), (7, 3, 0, 5),
                                                    (3, 5, 1, None), (12, 1, 2, None), (8, 4, 2, None),
                                                    (6, 3, None, 4)])
def test_batched_tree_equals_the_straightforward_search(reg, vocab, width, eos, masked):
    for seed in range(3):
        model, task = _TinyRNN(vocab, seed, masked), _TinyTask(eos)
        settings = dict(width=width, n_best=min(2, width), max_len=8, alpha=0.6, topk=3)
        result = decode(reg, model, task, "beam", "", **settings)
        assert result.tree._nodes is None, "nothing builds the tree before it is read"
        want = reference_tree(model, task, width, settings["n_best"], settings["max_len"], 0.6, 3)
        got = result.tree.to_json()
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert {k: g.get(k) for k in w if k not in ("logprob", "score", "normalized", "topk")} == \
                   {k: w[k] for k in w if k not in ("logprob", "score", "normalized", "topk")}, (seed, g, w)
            assert g["score"] == pytest.approx(w["score"], abs=1e-5)
            assert g["logprob"] == pytest.approx(w["logprob"], abs=1e-5)
            assert (g["normalized"] is None) == (w["normalized"] is None)
            assert [t["token"] for t in g.get("topk", [])] == [t["token"] for t in w.get("topk", [])]
        # the hypotheses point at their tree nodes, whose paths are their tokens
        for alt in result.alternatives:
            path = result.tree.path(alt["node"])
            assert alt["tokens"] == (path[:-1] if alt["finished"] else path)
        # a built tree is an ordinary one: it survives JSON and compares equal to its copy
        copy = SearchTree.from_json(got, result.tree.meta)
        assert result.tree == copy and copy == result.tree


def test_reorder_state_passes_on_row_constant_tensors_the_step_left_alone():
    from workbench_plugins.beam import _row_constant
    memory = torch.ones(3, 4)
    h = torch.arange(3.0).view(3, 1)
    state = {"dec": {"h": h, "memory": memory}}
    shared = _row_constant(state, 3)
    out = reorder_state(state, torch.tensor([2, 2, 0]), shared)
    assert out["dec"]["memory"] is memory, "equal rows need no reordering"
    assert out["dec"]["h"].view(-1).tolist() == [2.0, 2.0, 0.0]
    memory[0] += 1.0   # changed in place: the rows differ now, and the tensor is reordered like any other
    out = reorder_state(state, torch.tensor([1, 1, 0]), shared)
    assert out["dec"]["memory"] is not memory and out["dec"]["memory"][:, 0].tolist() == [1.0, 1.0, 2.0]


def test_lstm_decode_step_follows_the_weights():
    """The no-gradient step (cached transposed weights) gives the training step's numbers, also after the weights
    change in place (an optimizer step), are loaded, or the cell runs with gradients again."""
    from types import SimpleNamespace

    from workbench_plugins.lstm import LSTMCell
    torch.manual_seed(0)
    cell = LSTMCell(5, 8, SimpleNamespace(forget_bias=1.0, fused=True))
    x, state = torch.randn(3, 5), (torch.randn(3, 8), torch.randn(3, 8))   # several rows: the cached path

    def check():
        with torch.no_grad():
            h, (h2, c) = cell.step(x, state)
            ref_h, (_, ref_c) = cell.step_projected(cell.input_projection(x), state)
        assert torch.allclose(h, ref_h, atol=1e-6) and torch.allclose(c, ref_c, atol=1e-6) and h2 is h

    check()
    opt = torch.optim.SGD(cell.parameters(), lr=0.5)
    cell.step(x, state)[0].sum().backward()          # with gradients: autograd reaches the parameters
    assert cell.rnn.weight_hh_l0.grad is not None and cell.rnn.weight_ih_l0.grad.abs().sum() > 0
    with torch.no_grad():
        before = cell.step(x, state)[0]
    opt.step()
    check()
    with torch.no_grad():
        assert not torch.allclose(cell.step(x, state)[0], before), "the step saw the updated weights"
    other = LSTMCell(5, 8, SimpleNamespace(forget_bias=1.0, fused=True))
    cell.load_state_dict(other.state_dict())
    check()


def test_attention_decoder_shares_one_source_across_beams(seq2seq):
    """Beams of one example share the encoder memory (kept once, broadcast); each step then attends with one
    product.  The numbers are those of the per-row path."""
    model, task = seq2seq
    source = task.pairs("valid")[0][0]
    with torch.no_grad():
        logits1, _, _ = task.prime(model, source, None, 1)
        logits, state, _ = task.prime(model, source, None, 3)
        dec = next(v for k, v in state.items() if k != "__context__" and isinstance(v, dict) and "memory" in v)
        assert dec["memory"].stride(0) == 0 and dec["keys"].stride(0) == 0
        assert torch.allclose(logits, logits1.expand(3, -1), atol=1e-5)
        tokens = torch.tensor([4, 5, 6])
        shared_out, _ = model.step(tokens, state, task.input_port(), task.output_port())
        per_row = {k: v for k, v in state.items()}
        key = next(k for k, v in state.items() if v is dec)
        per_row[key] = {**dec, "memory": dec["memory"].contiguous(), "keys": dec["keys"].contiguous()}
        row_out, _ = model.step(tokens, per_row, task.input_port(), task.output_port())
    assert torch.allclose(shared_out, row_out, atol=1e-5)
    assert not torch.allclose(shared_out[0], shared_out[1]), "the rows took different tokens"


def test_start_encodes_one_example_once_for_all_beams(seq2seq):
    """A context broadcast to every row (what task.prime gives the beams of one input) is encoded on one row and
    broadcast back, when decoding; the values are those of encoding every row."""
    model, task = seq2seq
    ids = task.encode(task.pairs("valid")[0][0])
    column = torch.tensor(ids, dtype=torch.long).view(-1, 1)
    with torch.no_grad():
        shared = model.start(4, {"source": column.expand(-1, 4)})["__context__"]
        full = model.start(4, {"source": column.repeat(1, 4)})["__context__"]   # real copies: encoded per row
    assert shared.keys() == full.keys()
    broadcast = 0
    for key, value in shared.items():
        d = model.batch_dims[key]
        flat_s, flat_f = map_state_list(value), map_state_list(full[key])
        for s, f in zip(flat_s, flat_f):
            assert s.shape == f.shape and torch.allclose(s, f, atol=1e-6), key
            broadcast += s.stride(d if s.dim() > d else 0) == 0
    assert broadcast >= 2, "the encoder's outputs are broadcast, not copied"
    with torch.enable_grad():   # training never takes the shortcut
        ctx = model.start(4, {"source": column.expand(-1, 4)})["__context__"]
    assert all(t.stride(model.batch_dims[k]) != 0 for k, t in ctx.items() if isinstance(t, torch.Tensor)
               and k[0] != model.in_node)


def map_state_list(value):
    from workbench.core.blocks import flatten_state
    return list(flatten_state(value).values()) if not isinstance(value, torch.Tensor) else [value]
