"""Model graph: validation messages, type checks, cycles, size inference, stable ids, JSON round trip."""

import pytest

from workbench.schema.errors import GraphError
from workbench.core.graph import TASK_INPUT, TASK_OUTPUT, Graph, analyze, check_link
from workbench.plugin_system import discover


@pytest.fixture(scope="module")
def reg():
    return discover()


def lm_graph() -> Graph:
    g = Graph()
    g.add_node(TASK_INPUT, id="input")
    g.add_node("embedding", {"embed_size": 8}, id="embed")
    g.add_node("rnn", {"hidden_size": 12, "layers": 2}, id="rnn")
    g.add_node("linear", {}, id="head")
    g.add_node(TASK_OUTPUT, id="output")
    g.connect("input", "tokens", "embed", "x")
    g.connect("embed", "y", "rnn", "x")
    g.connect("rnn", "y", "head", "x")
    g.connect("head", "y", "output", "logits")
    return g


def test_valid_graph_and_size_inference(reg):
    report = analyze(lm_graph(), reg, reg.task("char-lm"), {"vocab": 50})
    assert report.ok, report.problems
    assert report.sizes[("input", "tokens")] == 50
    assert report.sizes[("embed", "y")] == 8
    assert report.sizes[("rnn", "y")] == 12
    # the head's output size is inferred from what the task needs: set once, nowhere else
    assert report.sizes[("head", "y")] == 50


def test_unconnected_required_port_is_named(reg):
    g = lm_graph()
    g.disconnect(next(ln for ln in g.links if ln.dst == "rnn"))
    report = analyze(g, reg, reg.task("char-lm"), {"vocab": 50})
    assert any("node rnn: required input 'x' (vectors[T]) is not connected" in p for p in report.problems)


def test_type_mismatch_is_refused_with_reason(reg):
    g = lm_graph()
    reason = check_link(g, "input", "tokens", "rnn", "x", reg, reg.task("char-lm"))
    assert reason is not None and "type mismatch" in reason and "tokens[T]" in reason and "vectors[T]" in reason
    g.links.append(type(g.links[0])("input", "tokens", "head", "x"))
    report = analyze(g, reg, reg.task("char-lm"), {"vocab": 50})
    assert any("type mismatch" in p for p in report.problems)


def test_cycle_is_reported(reg):
    g = lm_graph()
    g.add_node("dropout", {"p": 0.1}, id="drop")
    g.connect("rnn", "y", "drop", "x")
    assert check_link(g, "drop", "y", "rnn", "x", reg, reg.task("char-lm")) == "linking drop to rnn would make a cycle"
    g.links.append(type(g.links[0])("drop", "y", "rnn", "x"))
    with pytest.raises(GraphError, match="cycle"):
        g.topo_order()
    report = analyze(g, reg, reg.task("char-lm"), {"vocab": 50})
    assert any("cycle" in p for p in report.problems)


def test_unknown_block_and_cell_and_bad_param(reg):
    g = lm_graph()
    g.nodes["rnn"].params["cell"] = "lstn"
    g.nodes["embed"].params["embed_size"] = -3
    g.add_node("transformer", {}, id="tf")
    problems = analyze(g, reg, reg.task("char-lm"), {"vocab": 50}).problems
    text = "\n".join(problems)
    assert "unknown cell 'lstn' (did you mean 'lstm'?)" in text
    assert "embed.embed_size: -3 is below the minimum 1" in text
    assert "unknown architecture 'transformer'" in text


def test_size_mismatch_with_task(reg):
    g = lm_graph()
    g.nodes["head"].params["out_features"] = 7
    problems = analyze(g, reg, reg.task("char-lm"), {"vocab": 50}).problems
    assert any("gives size 7 but the task's 'logits' needs 50" in p for p in problems)


def test_io_nodes_required(reg):
    g = lm_graph()
    g.remove_node("output")
    problems = analyze(g, reg, reg.task("char-lm"), {"vocab": 5}).problems
    assert "the graph needs exactly one task-output node (has 0)" in problems


def test_stable_ids_and_json_round_trip():
    g = Graph()
    a = g.add_node("rnn")
    b = g.add_node("rnn")
    assert (a.id, b.id) == ("rnn1", "rnn2")
    g.remove_node("rnn1")
    assert g.add_node("rnn").id == "rnn1"
    g.ui["rnn2"] = {"x": 3.0, "y": 4.0}
    g2 = Graph.from_json(g.to_json())
    assert g2.to_json() == g.to_json()
    # layout does not change what the model is
    h = g.content_hash()
    g.ui["rnn2"] = {"x": 99.0, "y": 0.0}
    assert g.content_hash() == h
    g.nodes["rnn2"].params["hidden_size"] = 3
    assert g.content_hash() != h


def test_one_link_per_input_replaces():
    g = lm_graph()
    g.add_node("dropout", {}, id="drop")
    g.connect("embed", "y", "drop", "x")
    g.connect("drop", "y", "rnn", "x")
    assert [ln.src for ln in g.links if ln.dst == "rnn"] == ["drop"]


@pytest.mark.parametrize("bad", [{"nodes": [{"id": 3}]}, {"nodes": [], "links": [["a", "b"]]}, "nope"])
def test_malformed_json(bad):
    with pytest.raises(ValueError):
        Graph.from_json(bad)
