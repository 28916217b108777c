"""Generic blocks: embedding, rnn (stacked, dropout, residual, bidirectional), dropout, pool, classifier, linear,
concat; size inference; the probes on models that cannot step."""

import pytest
import torch

from workbench.core.blocks import BuildContext
from workbench.core.build import build_model
from workbench.core.graph import analyze
from workbench.core.probes import GradientThroughTimeProbe
from workbench.core.settings import template_project
from workbench.plugin_system import discover
from workbench.schema.params import params_from_dict
from workbench_plugins import architectures as arch
from workbench_plugins.blocks_impl import reverse_within_lengths


@pytest.fixture(scope="module")
def reg():
    return discover()


def make_block(reg, type_id, params=None, in_sizes=None, out_sizes=None, node_id="n"):
    spec = reg.block(type_id)
    p = params_from_dict(spec.params, params or {}, node_id)
    return spec.load()(p, in_sizes or {}, out_sizes or {}, BuildContext(reg, {}, node_id))


def padded(T=6, B=3, F=5, lengths=(6, 4, 2), fill=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, F, generator=g)
    lengths = torch.tensor(lengths)
    mask = torch.arange(T).unsqueeze(1) < lengths.unsqueeze(0)
    return x.masked_fill(~mask.unsqueeze(-1), fill), lengths


# ---- size inference ------------------------------------------------------------------------------------------------

def test_rnn_size_inference_concat_sum_forward():
    P = arch.RNNParams
    assert arch.infer_rnn(P(hidden_size=8), {"x": 5}, {}) == {"y": 8}
    assert arch.infer_rnn(P(hidden_size=8, direction="bidirectional"), {"x": 5}, {}) == {"y": 16}
    assert arch.infer_rnn(P(hidden_size=8, direction="bidirectional", merge="sum"), {"x": 5}, {}) == {"y": 8}
    assert arch.infer_concat(arch.ConcatParams(), {"a": 3, "b": 4}, {}) == {"y": 7}
    assert arch.infer_concat(arch.ConcatParams(), {"a": 3, "b": None}, {}) == {"y": None}


@pytest.mark.parametrize("merge,width", [("concat", 24), ("sum", 12)])
def test_bidirectional_sizes_flow_through_a_graph(reg, merge, width):
    project, _ = template_project(reg.template("sentiment"), {"hidden_size": "12", "direction": "bidirectional",
                                                              "rnn.merge": merge, "layers": "2"}, reg)
    sizes = {"vocab": 30, "classes": 3}
    report = analyze(project.graph, reg, reg.task("sentiment"), sizes)
    assert report.ok, report.problems
    assert report.sizes[("rnn", "y")] == width and report.sizes[("head", "y")] == 3
    model = build_model(project.graph, reg, reg.task("sentiment"), sizes)
    rnn = model.blocks["rnn"]
    assert rnn.cells[1].input_size == width and rnn.cells_bwd[1].input_size == width
    out, _ = model({"tokens": torch.randint(0, 30, (7, 2)), "lengths": torch.tensor([7, 3])})
    assert out["logits"].shape == (2, 3)


# ---- the rnn block ---------------------------------------------------------------------------------------------------

def test_reverse_within_lengths_keeps_padding_in_place():
    x = torch.arange(5).view(5, 1).repeat(1, 3).float()  # every column 0..4
    r = reverse_within_lengths(x, torch.tensor([5, 3, 1]))
    assert r[:, 0].tolist() == [4, 3, 2, 1, 0]
    assert r[:, 1].tolist() == [2, 1, 0, 3, 4]
    assert r[:, 2].tolist() == [0, 1, 2, 3, 4]
    assert torch.equal(reverse_within_lengths(r, torch.tensor([5, 3, 1])), x)  # its own inverse


@pytest.mark.parametrize("merge", ["concat", "sum"])
def test_bidirectional_valid_outputs_unchanged_by_extra_padding(reg, merge):
    torch.manual_seed(0)
    block = make_block(reg, "rnn", {"hidden_size": 7, "layers": 2, "direction": "bidirectional", "merge": merge},
                       {"x": 5})
    block.eval()
    x, lengths = padded()
    y, _ = block({"x": x, "lengths": lengths})
    assert y["y"].shape == (6, 3, 14 if merge == "concat" else 7)
    # three more padded steps full of garbage: nothing may leak into the valid positions
    garbage = torch.full((3, 3, 5), 50.0)
    x2 = torch.cat([x.masked_fill(torch.arange(6).view(6, 1, 1) >= lengths.view(1, 3, 1), -30.0), garbage])
    y2, _ = block({"x": x2, "lengths": lengths})
    for b, n in enumerate(lengths.tolist()):
        assert torch.allclose(y["y"][:n, b], y2["y"][:n, b], atol=1e-6), f"sequence {b} changed"


def test_backward_direction_reads_each_sequence_right_to_left(reg):
    torch.manual_seed(1)
    block = make_block(reg, "rnn", {"hidden_size": 4, "direction": "bidirectional"}, {"x": 5})
    x, lengths = padded()
    y, _ = block({"x": x, "lengths": lengths})
    back = block.cells_bwd[0]
    for b, n in enumerate(lengths.tolist()):
        alone, _ = back.sequence(x[:n, b:b + 1].flip(0), back.init_state(1))
        assert torch.allclose(y["y"][:n, b, 4:], alone.flip(0)[:, 0], atol=1e-6)
        fwd, _ = block.cells[0].sequence(x[:n, b:b + 1], block.cells[0].init_state(1))
        assert torch.allclose(y["y"][:n, b, :4], fwd[:, 0], atol=1e-6)


def test_bidirectional_step_raises_a_clear_error(reg):
    block = make_block(reg, "rnn", {"hidden_size": 4, "direction": "bidirectional"}, {"x": 5}, node_id="enc")
    with pytest.raises(NotImplementedError, match="enc: a bidirectional layer needs the whole sequence; it cannot "
                                                  "generate step by step"):
        block.step({"x": torch.randn(2, 5)}, None)


def test_bidirectional_layer_names_and_parameter_groups(reg):
    project, _ = template_project(reg.template("tagging"), {"hidden_size": "6", "embed_size": "4", "layers": "2"},
                                  reg)
    model = build_model(project.graph, reg, reg.task("tagging"), {"vocab": 20, "tags": 4})
    names = [n for n, _ in model.recurrent_layers()]
    assert names == ["rnn.0", "rnn.0.bwd", "rnn.1", "rnn.1.bwd"]
    groups = model.parameter_groups()
    assert {"rnn.0", "rnn.1", "rnn.0.bwd", "rnn.1.bwd"} <= set(groups)
    assert sum(p.numel() for ps in groups.values() for _, p in ps) == sum(p.numel() for p in model.parameters())


def test_forward_rnn_steps_like_it_runs(reg):
    torch.manual_seed(2)
    block = make_block(reg, "rnn", {"hidden_size": 6, "layers": 2, "residual": True}, {"x": 5})
    x = torch.randn(4, 2, 5)
    y, state = block({"x": x})
    s = None
    for t in range(4):
        h, s = block.step({"x": x[t]}, s)
        assert torch.allclose(h["y"], y["y"][t], atol=1e-5)


def test_dropout_only_between_layers(reg, monkeypatch):
    import workbench_plugins.blocks_impl as impl
    torch.manual_seed(3)
    calls = []
    real = impl.F.dropout

    def spy(x, p, training):
        calls.append((tuple(x.shape), p, training))
        return real(x, p, training)

    monkeypatch.setattr(impl.F, "dropout", spy)
    one = make_block(reg, "rnn", {"hidden_size": 6, "layers": 1, "dropout": 0.5}, {"x": 5})
    one.train()
    x = torch.randn(4, 2, 5)
    one({"x": x})
    assert calls == []  # a single layer: nothing between layers, never on the recurrent connections
    three = make_block(reg, "rnn", {"hidden_size": 6, "layers": 3, "dropout": 0.5}, {"x": 5})
    three.train()
    three({"x": x})
    assert calls == [((4, 2, 6), 0.5, True), ((4, 2, 6), 0.5, True)]  # into layer 2 and layer 3 only
    three.eval()
    a, _ = three({"x": x})
    b, _ = three({"x": x})
    assert torch.equal(a["y"], b["y"])


@pytest.mark.parametrize("residual", [False, True])
def test_residual_connections_across_layers(reg, residual):
    torch.manual_seed(4)
    block = make_block(reg, "rnn", {"hidden_size": 6, "layers": 3, "residual": residual}, {"x": 5})
    x = torch.randn(4, 2, 5)
    y, _ = block({"x": x})
    c = block.cells
    h1, _ = c[0].sequence(x, c[0].init_state(2))          # 5 -> 6: no residual into the first layer
    h2, _ = c[1].sequence(h1, c[1].init_state(2))
    x2 = h2 + h1 if residual else h2
    h3, _ = c[2].sequence(x2, c[2].init_state(2))
    expected = h3 + x2 if residual else h3
    assert torch.allclose(y["y"], expected, atol=1e-6)


# ---- stateless blocks ------------------------------------------------------------------------------------------------

def make_pool_input():
    x, lengths = padded(fill=1e6)  # padding would dominate max and mean, and be "last", if it were not ignored
    return x, lengths


@pytest.mark.parametrize("mode", ["last", "mean", "max"])
def test_pool_ignores_padding(reg, mode):
    block = make_block(reg, "pool", {"mode": mode})
    x, lengths = make_pool_input()
    y, _ = block({"x": x, "lengths": lengths})
    for b, n in enumerate(lengths.tolist()):
        valid = x[:n, b]
        want = {"last": valid[-1], "mean": valid.mean(0), "max": valid.max(0).values}[mode]
        assert torch.allclose(y["y"][b], want, atol=1e-5)
    # without lengths every step counts
    y_all, _ = block({"x": x[:, :1]})
    assert torch.allclose(y_all["y"][0], {"last": x[-1, 0], "mean": x[:, 0].mean(0),
                                          "max": x[:, 0].max(0).values}[mode], atol=1e-5)


@pytest.mark.parametrize("mode", ["last", "mean", "max"])
def test_pool_per_step_path_matches_forward_at_each_last_step(reg, mode):
    block = make_block(reg, "pool", {"mode": mode})
    x, lengths = make_pool_input()
    y, _ = block({"x": x, "lengths": lengths})
    state, outs = block.init_state(3, "cpu"), []
    for t in range(x.shape[0]):
        out, state = block.step({"x": x[t]}, state)
        outs.append(out["y"])
    for b, n in enumerate(lengths.tolist()):
        assert torch.allclose(outs[n - 1][b], y["y"][b], atol=1e-5)


def test_concat_embedding_linear_classifier_dropout(reg):
    torch.manual_seed(5)
    cat = make_block(reg, "concat")
    a, b = torch.randn(3, 2, 4), torch.randn(3, 2, 5)
    y, _ = cat({"a": a, "b": b})
    assert y["y"].shape == (3, 2, 9) and torch.equal(y["y"][..., :4], a)
    ys, _ = cat.step({"a": a[0], "b": b[0]})
    assert torch.equal(ys["y"], y["y"][0])

    emb = make_block(reg, "embedding", {"embed_size": 6}, {"x": 11})
    tokens = torch.randint(0, 11, (3, 2))
    e, _ = emb({"x": tokens})
    assert e["y"].shape == (3, 2, 6)
    assert torch.equal(emb.step({"x": tokens[1]})[0]["y"], e["y"][1])
    with pytest.raises(ValueError, match="number of token ids is unknown"):
        make_block(reg, "embedding", {}, {"x": None})

    lin = make_block(reg, "linear", {}, {"x": 6}, {"y": 4})
    assert lin({"x": e["y"]})[0]["y"].shape == (3, 2, 4)
    assert arch.infer_linear(arch.LinearParams(), {"x": 6}, {"y": 4}) == {"y": 4}
    assert arch.infer_linear(arch.LinearParams(out_features=9), {"x": 6}, {"y": 4}) == {"y": 9}

    head = make_block(reg, "classifier", {}, {"x": 6}, {"y": 3})
    assert head({"x": e["y"][-1]})[0]["y"].shape == (2, 3)

    drop = make_block(reg, "dropout", {"p": 0.5})
    ones = torch.ones(200, 50, 1)
    drop.eval()
    assert torch.equal(drop({"x": ones})[0]["y"], ones)
    drop.train()
    out = drop({"x": ones})[0]["y"]
    zeros = (out == 0).float().mean().item()
    assert 0.4 < zeros < 0.6 and torch.allclose(out[out != 0], torch.tensor(2.0))


# ---- probes on models that cannot step ----------------------------------------------------------------------------

def test_gradient_through_time_probe_on_a_bidirectional_tagger(reg):
    project, _ = template_project(reg.template("tagging"), {"hidden_size": "6", "embed_size": "4"}, reg)
    model = build_model(project.graph, reg, reg.task("tagging"), {"vocab": 20, "tags": 4})

    from workbench_plugins.tagging import TaggingTask
    task = TaggingTask.__new__(TaggingTask)  # loss and loss_last_step need no data
    batch = {"tokens": torch.randint(0, 20, (5, 2)), "lengths": torch.tensor([5, 3]),
             "targets": torch.tensor([[1, 2], [0, 1], [3, 3], [1, -100], [2, -100]])}
    gtt = GradientThroughTimeProbe(model, task, batch).run()
    assert set(gtt) == {"rnn.0", "rnn.0.bwd"}
    assert all(len(v["dLT_dh"]) == 5 and len(v["dL_dh"]) == 5 for v in gtt.values())
    # the whole loss reaches every valid step of both directions
    assert all(x > 0 for x in gtt["rnn.0"]["dL_dh"]) and all(x > 0 for x in gtt["rnn.0.bwd"]["dL_dh"])
    assert all(b.capture is None for b in model.blocks.values() if hasattr(b, "capture"))
