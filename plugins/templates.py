"""Built-in templates: pre-wired projects (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.api import TASK_INPUT, TASK_OUTPUT, Graph, TemplateSpec, hookimpl, param
from workbench_plugins import numeric_specs, seq2seq_specs, text_specs

VERSION = "1.0"


@dataclass
class CharLMTemplateParams:
    cell: str = param("lstm", ui="cell", help="recurrent cell")
    layers: int = param(2, min=1, max=16, help="stacked recurrent layers")
    hidden_size: int = param(256, min=1, max=8192, help="units per layer")
    embed_size: int = param(64, min=1, max=8192, help="character embedding size")
    dropout: float = param(0.0, min=0.0, max=0.9, help="dropout between layers and before the head")
    corpus: str = param("", ui="path", help="text file (empty: the Python standard library's source)")


def char_lm(p: CharLMTemplateParams) -> dict:
    g = Graph()
    xs = iter(range(0, 10_000, 190))  # left to right, one column per node, no gaps
    g.add_node(TASK_INPUT, id="input", pos=(next(xs), 0))
    g.add_node("embedding", {"embed_size": p.embed_size}, id="embed", pos=(next(xs), 0))
    g.add_node("rnn", {"cell": p.cell, "hidden_size": p.hidden_size, "layers": p.layers, "dropout": p.dropout},
               id="rnn", pos=(next(xs), 0))
    last = "rnn"
    if p.dropout > 0:
        g.add_node("dropout", {"p": p.dropout}, id="drop", pos=(next(xs), 0))
        g.connect("rnn", "y", "drop", "x")
        last = "drop"
    g.add_node("linear", {}, id="head", pos=(next(xs), 0))
    g.add_node(TASK_OUTPUT, id="output", pos=(next(xs), 0))
    g.connect("input", "tokens", "embed", "x")
    g.connect("embed", "y", "rnn", "x")
    g.connect(last, "y", "head", "x")
    g.connect("head", "y", "output", "logits")
    graph = g.to_json()
    return {
        "name": "Character LM",
        "graph": {"nodes": graph["nodes"], "links": graph["links"]},
        "ui": graph["ui"],
        "task": {"id": "char-lm", "params": {"corpus": p.corpus}},
        "train": {"steps": 800, "batch_size": 32, "chunk_len": 100, "optimizer": "adam", "lr": 2e-3,
                  "clip_norm": 5.0, "eval_every": 200, "eval_batches": 10, "sample_every": 200,
                  "probe_every": 100},
        "decode": {"decoder": "sample", "params": {"temperature": 0.8, "max_len": 300}, "prompt": "def "},
        "notes": "Karpathy's char-rnn on Python source: watch it learn indentation, quotes and keywords.",
    }


@hookimpl
def seqwb_templates() -> list[TemplateSpec]:
    return [
        TemplateSpec(id="char-lm", title="Character language model (LSTM)", version=VERSION,
                     params=CharLMTemplateParams, factory="workbench_plugins.templates:char_lm", task="char-lm",
                     description="Embedding → 2×LSTM 256 → linear, trained on the Python standard library's source; "
                                 "samples look like Python within a couple of minutes on a CPU."),
    ] + [spec for area in (text_specs, seq2seq_specs, numeric_specs) for spec in area.TEMPLATES]
