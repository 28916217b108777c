"""The templates: each returns a project document (no torch here).  The keys of a document, what ``train`` may
hold and the ``ui=`` hints of template parameters are the template format in docs/plugins.md."""

from __future__ import annotations

from workbench.api import TASK_INPUT, TASK_OUTPUT, Graph

NS = "seqwb-plugin-example"


def chain(*blocks, source: str, target: str) -> Graph:
    """The task's ``source`` port -> ``blocks`` ((node id, block type, params), each ``y`` into the next ``x``) ->
    the task's ``target`` port, left to right."""
    g = Graph()
    g.add_node(TASK_INPUT, id="input", pos=(0, 0))
    for i, (node_id, block, params) in enumerate(blocks, 1):
        g.add_node(block, params, id=node_id, pos=(220 * i, 0))
    g.add_node(TASK_OUTPUT, id="output", pos=(220 * (len(blocks) + 1), 0))
    ids = [node_id for node_id, _, _ in blocks]
    g.connect("input", source, ids[0], "x")
    for a, b in zip(ids, ids[1:]):
        g.connect(a, "y", b, "x")
    g.connect(ids[-1], "y", "output", target)
    return g


def document(name: str, g: Graph, task: str, task_params: dict, train: dict, notes: str,
             decode: dict | None = None) -> dict:
    graph = g.to_json()
    doc = {"name": name, "graph": {"nodes": graph["nodes"], "links": graph["links"]}, "ui": graph["ui"],
           "task": {"id": f"{NS}.{task}", "params": task_params},
           # every key here is a training setting (TrainConfig: what --set NAME takes); a misspelt one is refused
           "train": {"optimizer": "adam", "clip_norm": 1.0, "eval_batches": 0, "sample_every": 0, "threads": 1,
                     **train},
           "notes": notes}
    if decode is not None:
        doc["decode"] = decode
    return doc


def parity_indrnn(p) -> dict:
    g = chain(("embed", "embedding", {"embed_size": 4}),
              ("rnn", "rnn", {"cell": p.cell, "hidden_size": p.hidden_size, "layers": p.layers}),
              ("head", "linear", {}), source="tokens", target="logits")
    return document(f"Parity ({p.cell}, {p.length} bits)", g, "parity", {"length": p.length},
                    {"steps": 1500, "batch_size": 64, "lr": 3e-3, "chunk_len": p.length, "eval_every": 250,
                     "probe_every": 250, "probe_batch": 8},
                    "After each bit: is the number of 1s so far odd?  Chance is 50%.  Each IndRNN unit sees only its "
                    "own past, so one layer cannot flip a bit on every 1 (XOR); stacked layers can, and a GRU "
                    "(cell=gru) solves it within a few hundred steps.  Unit search with the running_parity feature "
                    "finds the units that keep the count.")


def majority_gru(p) -> dict:
    g = chain(("embed", "embedding", {"embed_size": 8}),
              ("rnn", "rnn", {"cell": p.cell, "hidden_size": p.hidden_size}),
              ("norm", f"{NS}.layer-norm", {}), ("pool", "pool", {"mode": "last"}), ("head", "classifier", {}),
              source="tokens", target="logits")
    return document("Majority", g, "majority", {}, {"steps": 600, "batch_size": 32, "lr": 3e-3, "eval_every": 100,
                                                    "probe_every": 100, "probe_batch": 8},
                    "More 1s than 0s?  Compare accuracy with baseline_accuracy (always the common class).")


def echo_gru(p) -> dict:
    g = chain(("embed", "embedding", {"embed_size": 8}),
              ("rnn", "rnn", {"cell": p.cell, "hidden_size": p.hidden_size}), ("head", "linear", {}),
              source="tokens", target="logits")
    return document("Delayed echo", g, "echo", {"delay": 2}, {"steps": 600, "batch_size": 32, "lr": 3e-3,
                                                              "eval_every": 100, "probe_every": 100,
                                                              "probe_batch": 8},
                    "Each label repeats the symbol two steps back: the layer must hold two symbols.")


def reverse_attention(p) -> dict:
    g = Graph()
    g.add_node(TASK_INPUT, id="input", pos=(0, 0))
    g.add_node("embedding", {"embed_size": 8}, id="embed", pos=(220, -80))
    g.add_node("encoder", {"cell": p.cell, "hidden_size": p.hidden_size}, id="encoder", pos=(440, -80))
    g.add_node("attention-decoder", {"cell": p.cell, "hidden_size": p.hidden_size, "embed_size": 8},
               id="decoder", pos=(660, 40))
    g.add_node(TASK_OUTPUT, id="output", pos=(880, 40))
    g.connect("input", "source", "embed", "x")
    g.connect("embed", "y", "encoder", "x")
    g.connect("input", "source", "encoder", "source")
    g.connect("input", "target_in", "decoder", "x")
    g.connect("encoder", "state", "decoder", "init")
    g.connect("encoder", "y", "decoder", "memory")
    g.connect("input", "source", "decoder", "source")
    g.connect("decoder", "y", "output", "logits")
    return document("Reverse", g, "reverse", {},
                    {"steps": 800, "batch_size": 32, "lr": 3e-3, "eval_every": 200, "probe_every": 200,
                     "probe_batch": 8},
                    "Write the string backwards; the attention view shows the decoder reading the source from the "
                    "end.",
                    decode={"decoder": f"{NS}.min-p", "params": {"p_base": 0.2, "max_len": 20}, "prompt": "abcdef"})


def mean_gru(p) -> dict:
    g = chain(("project", "project", {"size": 8}),
              ("rnn", "rnn", {"cell": p.cell, "hidden_size": p.hidden_size}), ("pool", "pool", {"mode": "last"}),
              ("head", "regression", {}), source="series", target="mean")
    return document("Mean", g, "mean", {}, {"steps": 600, "batch_size": 32, "lr": 3e-3, "eval_every": 100,
                                            "probe_every": 100, "probe_batch": 8},
                    "Predict the mean of a series: mse should fall well below baseline_mse (always 0).")
