"""The hidden-unit recorder's whole-chunk path gives the per-step path's recording.

``record_activations(path="auto")`` runs chunks of timesteps through ``SequenceModel.sequence_graph`` (each
recurrent layer's ``Cell.sequence_traced``: one fused kernel call plus the gates recomputed for the whole chunk
for the LSTM, GRU and vanilla RNN, the per-step loop for the rest) when every stepped block allows it, and steps
otherwise; ``path="steps"`` always steps.  Both must give the same layers, quantity names in the same order,
shapes, and values within 1e-5 (float32), over texts longer than a chunk.  Built-in cells, a third-party cell
(the fixture's Minimal Gated Unit, in both API styles), blocks that cannot run a chunk (the recorder falls back),
pooling, progress and Cancel, and the decoding view's ``follow_path``, which reads a hypothesis the same way.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.core.test_step_path_speedups import StepOnlyMGU  # the fixture's MGU, only step()
from workbench.core.blocks import Block
from workbench.core.build import build_model
from workbench.core.cells import Cell
from workbench.core.probes import record_activations
from workbench.core.settings import template_project

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TOL = 1e-5
VOCAB = 23
CHUNK = 256

pytestmark = pytest.mark.usefixtures("one_thread")


class CharTask:
    """What the recorder needs of a task: ``encode`` and the input port."""

    def encode(self, text: str) -> list[int]:
        return [ord(ch) % VOCAB for ch in text]

    def input_port(self) -> str:
        return "tokens"

    def output_port(self) -> str:
        return "logits"


def some_text(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice("abcdefghij  '\"()\n#:=") for _ in range(n))


TEXT = some_text(700)      # two full chunks of 256 and a partial one


def char_lm(reg, seed: int = 0, **settings) -> Any:
    values = {"layers": "1", "hidden_size": "24", "embed_size": "8"}
    values.update({k: str(v) for k, v in settings.items()})
    project, _ = template_project(reg.template("char-lm"), values, reg)
    torch.manual_seed(seed)
    return build_model(project.graph, reg, reg.task(project.task.id), {"vocab": VOCAB})


def assert_same_recording(a: dict, b: dict, tol: float = TOL) -> None:
    assert a["tokens"] == b["tokens"] and a["text"] == b["text"]
    assert list(a["layers"]) == list(b["layers"])
    for layer, qs in a["layers"].items():
        assert list(qs) == list(b["layers"][layer]), layer
        for q, want in qs.items():
            got = b["layers"][layer][q]
            assert got.shape == want.shape and got.dtype == want.dtype == np.float32, (layer, q)
            np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=f"{layer}/{q}")


def record_both(model, text: str = TEXT, task: Any = None, chunk: int = CHUNK) -> tuple[dict, dict]:
    task = task or CharTask()
    return (record_activations(model, task, text, path="steps"),
            record_activations(model, task, text, path="auto", chunk=chunk))


def takes_chunks(model) -> bool:
    ids = torch.tensor(CharTask().encode(TEXT[:5])).view(-1, 1)
    with torch.no_grad():
        return model.sequence_graph({"tokens": ids}, model.start(1), {}) is not NotImplemented


# ---- built-in cells ------------------------------------------------------------------------------------------

CELLS = [("lstm", {}), ("gru", {}), ("rnn", {}), ("rnn", {"rnn.cell.nonlinearity": "relu"}), ("irnn", {}),
         ("peephole-lstm", {}), ("mut1", {}), ("mut2", {}), ("mut3", {})]
FUSED = {"lstm", "gru", "rnn", "irnn"}


@pytest.mark.parametrize("layers,residual", [(1, False), (2, False), (2, True), (3, True)])
@pytest.mark.parametrize("cell,extra", CELLS, ids=["lstm", "gru", "rnn-tanh", "rnn-relu", "irnn", "peephole-lstm",
                                                    "mut1", "mut2", "mut3"])
def test_chunks_record_what_steps_record(reg, cell, extra, layers, residual):
    model = char_lm(reg, cell=cell, layers=layers, **{"rnn.residual": str(residual).lower()}, **extra)
    block = model.blocks["rnn"]
    assert block.residual is residual and len(block.cells) == layers
    if "rnn.cell.nonlinearity" in extra:
        assert block.cells[0].nonlinearity == "relu"
    assert takes_chunks(model)
    steps, chunks = record_both(model)
    assert list(steps["layers"]) == [f"rnn.{i}" for i in range(layers)]
    names = (*block.cells[0].state_names, *block.cells[0].gate_names)
    for qs in steps["layers"].values():
        assert tuple(qs) == names and all(v.shape == (len(TEXT), 24) for v in qs.values())
    assert_same_recording(steps, chunks)


@pytest.mark.parametrize("cell", sorted(FUSED))
def test_fused_cells_record_without_stepping(reg, cell, monkeypatch):
    """With the fused path on, a layer's chunk is one kernel call: its per-step code never runs."""
    model = char_lm(reg, cell=cell, layers=2)
    steps = record_activations(model, CharTask(), TEXT, path="steps")
    for c in model.blocks["rnn"].cells:
        def refuse(*args, **kwargs):
            raise AssertionError("stepped")
        monkeypatch.setattr(c, "step_projected", refuse)
        monkeypatch.setattr(c, "step", refuse)
    assert_same_recording(steps, record_activations(model, CharTask(), TEXT, chunk=CHUNK))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_cells_with_fused_off_step_through_the_default(reg, cell):
    model = char_lm(reg, cell=cell, layers=2, **{"rnn.cell.fused": "false"})
    assert not model.blocks["rnn"].cells[0].params.fused
    assert_same_recording(*record_both(model))


def test_an_lstm_whose_cell_states_grow_large(reg):
    """Forget gates near 1 (bias 6) make c integrate its inputs up to hundreds.  The gates still agree to 1e-5;
    h and c to a few float32 roundings of |c| (at |c| = 200 the format itself resolves c only to about 1e-5,
    and the kernel and the step path round differently)."""
    model = char_lm(reg, cell="lstm", layers=2, hidden_size=32)
    with torch.no_grad():
        for p in model.blocks["rnn"].parameters():
            p.mul_(1.5)
        for cell in model.blocks["rnn"].cells:
            cell.set_forget_bias(6.0)
    steps, chunks = record_both(model)
    for layer, qs in steps["layers"].items():
        largest = float(np.abs(qs["c"]).max())
        assert largest > 50
        for q, want in qs.items():
            tol = 2e-6 * largest if q in ("h", "c") else TOL
            np.testing.assert_allclose(chunks["layers"][layer][q], want, rtol=0, atol=tol, err_msg=f"{layer}/{q}")


def test_float64_model(reg):
    model = char_lm(reg, cell="gru", layers=2).double()
    assert_same_recording(*record_both(model))


def test_dropout_between_layers_and_before_the_head_is_off_while_recording(reg):
    model = char_lm(reg, cell="lstm", layers=2, dropout=0.5)
    assert "drop" in model.blocks and model.blocks["rnn"].dropout == 0.5
    model.train()
    steps, chunks = record_both(model)
    assert model.training, "the recorder puts the model back as it was"
    assert_same_recording(steps, chunks)


@pytest.mark.parametrize("chunk", [1, 7, 256, 699, 700, 5000])
def test_any_chunk_length(reg, chunk):
    model = char_lm(reg, cell="lstm", layers=2)
    assert_same_recording(*record_both(model, chunk=chunk))


def test_a_text_shorter_than_a_chunk(reg):
    model = char_lm(reg, cell="gru")
    assert_same_recording(*record_both(model, text="x"))
    assert_same_recording(*record_both(model, text="def f(x):\n"))


# ---- the model's chunk path: outputs and state, chunks and steps in any order ---------------------------------

@pytest.mark.parametrize("cell", ["lstm", "gru", "mut2"])
def test_sequence_graph_follows_and_is_followed_by_single_steps(reg, cell):
    """Outputs and state are step_graph's: 5 steps as a chunk, 3 single steps, 9 as a chunk equal 17 steps."""
    model = char_lm(reg, cell=cell, layers=2, **{"rnn.residual": "true"}).eval()
    ids = torch.tensor(CharTask().encode(TEXT[:17])).view(-1, 1)
    with torch.no_grad():
        state = model.start(1)
        want = []
        for t in range(17):
            out, state = model.step_graph({"tokens": ids[t]}, state)
            want.append(out["logits"])
        want_state = state

        state = model.start(1)
        got = []
        out, state = model.sequence_graph({"tokens": ids[:5]}, state)
        got.extend(out["logits"].unbind(0))
        for t in range(5, 8):
            out, state = model.step_graph({"tokens": ids[t]}, state)
            got.append(out["logits"])
        trace: dict = {}
        out, state = model.sequence_graph({"tokens": ids[8:]}, state, trace)
        got.extend(out["logits"].unbind(0))
    assert torch.allclose(torch.stack(got), torch.stack(want), atol=TOL, rtol=0)
    for (h1, *rest1), (h2, *rest2) in zip(state["rnn"], want_state["rnn"]):
        assert torch.allclose(h1, h2, atol=TOL, rtol=0)
        for a, b in zip(rest1, rest2):
            assert torch.allclose(a, b, atol=TOL, rtol=0)
    assert list(trace) == ["rnn.0", "rnn.1"] and trace["rnn.1"]["h"].shape == (9, 1, 24)


def test_a_batch_of_several_rows(reg):
    """Rows are independent in the chunk path as in the step path (the recorder uses one, decoders several)."""
    model = char_lm(reg, cell="lstm", layers=2).eval()
    ids = torch.tensor([CharTask().encode(some_text(40, seed)) for seed in range(3)]).t()     # [40, 3]
    with torch.no_grad():
        state = model.start(3)
        traces: list[dict] = []
        for t in range(40):
            traces.append({})
            _, state = model.step_graph({"tokens": ids[t]}, state, traces[-1])
        trace: dict = {}
        model.sequence_graph({"tokens": ids}, model.start(3), trace)
    for layer, qs in trace.items():
        for q, v in qs.items():
            want = torch.stack([tr[layer][q] for tr in traces])
            assert v.shape == want.shape == (40, 3, 24)
            assert torch.allclose(v, want, atol=TOL, rtol=0), (layer, q)


@pytest.mark.parametrize("mode", ["last", "mean", "max"])
def test_a_classifier_with_pooling_records_in_chunks(reg, mode):
    project, _ = template_project(reg.template("sentiment"), {"cell": "gru", "layers": "2", "hidden_size": "16",
                                                               "embed_size": "8", "pool": mode}, reg)
    torch.manual_seed(0)
    model = build_model(project.graph, reg, reg.task(project.task.id), {"vocab": VOCAB, "classes": 3}).eval()
    assert model.blocks["pool"].stateful and takes_chunks(model)
    assert_same_recording(*record_both(model, chunk=100))
    # the running pool's outputs and state carry across chunks as across steps
    ids = torch.tensor(CharTask().encode(TEXT[:30])).view(-1, 1)
    with torch.no_grad():
        state = model.start(1)
        want = []
        for t in range(30):
            out, state = model.step_graph({"tokens": ids[t]}, state)
            want.append(out["logits"])
        state, got = model.start(1), []
        for a, b in ((0, 1), (1, 12), (12, 30)):
            out, state = model.sequence_graph({"tokens": ids[a:b]}, state)
            got.append(out["logits"])
    assert torch.allclose(torch.cat(got), torch.stack(want), atol=TOL, rtol=0)


# ---- third-party cells --------------------------------------------------------------------------------------

@pytest.fixture()
def fixture_plugin(monkeypatch):
    """The fixture distribution's plugin module (a Minimal Gated Unit cell), imported from its sources."""
    monkeypatch.syspath_prepend(str(FIXTURES / "thirdparty_plugin"))
    import seqwb_fixture_cells.plugin as plugin
    yield plugin
    for name in [m for m in sys.modules if m == "seqwb_fixture_cells" or m.startswith("seqwb_fixture_cells.")]:
        del sys.modules[name]


def test_a_third_party_cell_records_through_the_default_sequence_traced(fixture_plugin):
    from workbench.plugin_system import discover
    reg = discover(extra=[("seqwb-fixture-cells", fixture_plugin)])
    model = char_lm(reg, cell="seqwb-fixture-cells.mgu", layers=2, **{"rnn.residual": "true"})
    cells = model.blocks["rnn"].cells
    assert type(cells[0]).__name__ == "MGUCell" and type(cells[0]).sequence_traced is Cell.sequence_traced
    assert takes_chunks(model)
    steps, chunks = record_both(model)
    assert list(steps["layers"]["rnn.1"]) == ["h", "f"]
    assert_same_recording(steps, chunks)
    # the one-method style (only step): stepped on the raw inputs, same numbers
    for i, cell in enumerate(cells):
        cells[i] = StepOnlyMGU(cell)
    assert not cells[0].split_step
    steps_only, chunks_only = record_both(model)
    assert_same_recording(steps, steps_only)
    assert_same_recording(steps_only, chunks_only)


def test_a_subclass_that_changes_the_step_and_declares_its_kernels_off_records_its_step(reg):
    """A cell class derived from the built-in LSTM with its own step equations, declaring the parent's kernels off
    (as the build-time check asks of it, tests/plugins/test_cell_declarations.py), records what its step
    computes."""
    from workbench_plugins.lstm import LSTMCell

    class ScaledLSTM(LSTMCell):
        has_fused = False
        traced_sequence = False

        def step_projected(self, xp_t, state, gates=None):
            h, (h, c) = super().step_projected(xp_t, state, gates)
            return 0.5 * h, (0.5 * h, c)

    model = char_lm(reg, cell="lstm", layers=2)
    block = model.blocks["rnn"]
    for i, cell in enumerate(block.cells):
        new = ScaledLSTM(cell.input_size, cell.hidden_size, cell.params)
        new.load_state_dict(cell.state_dict())
        block.cells[i] = new
    steps, chunks = record_both(model)
    assert_same_recording(steps, chunks)
    plain = char_lm(reg, cell="lstm", layers=2)
    plain.load_state_dict(model.state_dict())
    assert np.abs(record_activations(plain, CharTask(), TEXT)["layers"]["rnn.0"]["h"]
                  - steps["layers"]["rnn.0"]["h"]).max() > 0.01


# ---- blocks that cannot run a chunk: the recorder steps -------------------------------------------------------

class RunningMeanEmbedding(Block):
    """A third-party-style stateful block with a per-step path only (and its own trace entry): token embeddings
    averaged over the steps so far."""

    stateful = True

    def __init__(self, embed: torch.nn.Embedding):
        super().__init__()
        self.embed = embed

    def forward(self, inputs, state=None):
        x = self.embed(inputs["x"])
        n = torch.arange(1, x.shape[0] + 1, dtype=x.dtype).view(-1, 1, 1)
        return {"y": x.cumsum(0) / n}, None

    def step(self, inputs, state=None, trace=None):
        x = self.embed(inputs["x"])
        total, n = (x, 1) if state is None else (state[0] + x, state[1] + 1)
        if trace is not None:
            trace["embed.mean"] = {"m": total / n}
        return {"y": total / n}, (total, n)


class DoublingEmbedding(Block):
    """A third-party-style stateless block that keeps the default step: a chunk runs through its forward."""

    def __init__(self, embed: torch.nn.Embedding):
        super().__init__()
        self.embed = embed

    def forward(self, inputs, state=None):
        return {"y": 2.0 * self.embed(inputs["x"])}, None


class TracingDoublingEmbedding(DoublingEmbedding):
    """Stateless, but its own step writes a trace: forward cannot stand in for it."""

    def step(self, inputs, state=None, trace=None):
        y = 2.0 * self.embed(inputs["x"])
        if trace is not None:
            trace["embed.twice"] = {"y": y}
        return {"y": y}, None


def with_embedding_block(model, block_cls):
    """``model`` with its embedding node replaced by ``block_cls`` around the same embedding table."""
    model.blocks["embed"] = block_cls(model.blocks["embed"].embed)
    model.stateful_nodes = [nid for nid in model.order if model.blocks[nid].stateful]
    return model


def test_a_stateful_block_without_the_hook_makes_the_recorder_step(reg):
    model = with_embedding_block(char_lm(reg, cell="lstm", layers=2), RunningMeanEmbedding)
    assert not takes_chunks(model)
    steps, auto = record_both(model)
    assert list(steps["layers"]) == ["embed.mean", "rnn.0", "rnn.1"]
    assert_same_recording(steps, auto)


def test_a_stateless_block_with_the_default_step_runs_its_forward(reg):
    model = with_embedding_block(char_lm(reg, cell="gru", layers=2), DoublingEmbedding)
    assert takes_chunks(model)
    assert_same_recording(*record_both(model))


def test_a_stateless_block_with_its_own_step_makes_the_recorder_step(reg):
    model = with_embedding_block(char_lm(reg, cell="gru", layers=2), TracingDoublingEmbedding)
    assert not takes_chunks(model)
    steps, auto = record_both(model)
    assert list(steps["layers"]) == ["embed.twice", "rnn.0", "rnn.1"]
    assert_same_recording(steps, auto)


def test_a_model_with_a_context_steps(reg):
    """An encoder-decoder's stepped blocks read the encoder's output: sequence_graph declines."""
    project, _ = template_project(reg.template("seq2seq-attention"), {"hidden_size": "8", "embed_size": "4"}, reg)
    task_spec = reg.task(project.task.id)
    sizes = {p.size: 11 for p in (*task_spec.inputs, *task_spec.outputs) if p.size}
    model = build_model(project.graph, reg, task_spec, sizes).eval()
    src = torch.randint(0, 11, (6, 1))
    with torch.no_grad():
        state = model.start(1, {p: src for p in model.context_ports})
        tokens = {model.step_port: torch.randint(0, 11, (4, 1))}
        trace: dict = {}
        assert model.sequence_graph(tokens, state, trace) is NotImplemented and trace == {}


@pytest.mark.parametrize("path", ["auto", "steps"])
def test_a_bidirectional_layer_is_still_refused(reg, path):
    from workbench_plugins.blocks_impl import NoStepPath
    project, _ = template_project(reg.template("sentiment"), {"hidden_size": "8", "embed_size": "4",
                                                               "direction": "bidirectional"}, reg)
    model = build_model(project.graph, reg, reg.task(project.task.id), {"vocab": VOCAB, "classes": 2})
    with pytest.raises(NoStepPath, match="bidirectional layer needs the whole sequence"):
        record_activations(model, CharTask(), TEXT, path=path)


# ---- progress and Cancel -------------------------------------------------------------------------------------

class Cancelled(Exception):
    pass


@pytest.mark.parametrize("path", ["auto", "steps"])
def test_progress_every_256_steps_and_a_raising_callback_stops(reg, path):
    model = char_lm(reg, cell="lstm", layers=2)
    calls: list[tuple[int, int]] = []
    record_activations(model, CharTask(), TEXT, progress=lambda done, total: calls.append((done, total)), path=path)
    assert calls == [(256, 700), (512, 700), (700, 700)]

    seen: list[int] = []

    def cancel(done, total):
        seen.append(done)
        raise Cancelled

    model.train()
    with pytest.raises(Cancelled):
        record_activations(model, CharTask(), TEXT, progress=cancel, path=path)
    assert seen == [256] and model.training


def test_an_unknown_path_is_refused(reg):
    with pytest.raises(ValueError, match="path must be one of auto, steps"):
        record_activations(char_lm(reg), CharTask(), "abc", path="fused")


# ---- the decoding view reads a hypothesis the same way -------------------------------------------------------

def test_follow_path_reads_a_language_model_hypothesis_in_chunks(reg, monkeypatch):
    from workbench.core import search
    from workbench.core.tasks import Task

    class LMTask(CharTask):
        eos_id = None
        prime = Task.prime

        def decode(self, ids):
            return "".join(chr(97 + i % 26) for i in ids)

    model = char_lm(reg, cell="lstm", layers=2)
    tokens = CharTask().encode(some_text(300, seed=4))
    monkeypatch.setattr(search, "FOLLOW_CHUNK", 128)
    chunked = search.follow_path(model, LMTask(), "def ", tokens, topk=3)
    monkeypatch.setattr(model, "sequence_graph", lambda *a, **k: NotImplemented)
    stepped = search.follow_path(model, LMTask(), "def ", tokens, topk=3)
    assert chunked.tokens == stepped.tokens == tokens and chunked.attention == stepped.attention == {}
    np.testing.assert_allclose(chunked.logprobs, stepped.logprobs, rtol=0, atol=1e-5)
    assert [[t["token"] for t in top] for top in chunked.topk] == [[t["token"] for t in top] for top in stepped.topk]
