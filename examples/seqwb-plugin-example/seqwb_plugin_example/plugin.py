"""Registration only: plain-data specs.  No torch and no numpy here; each contribution's code is named by a
"module:attr" string and imported when it is first used."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.core.graph import TASK_INPUT, TASK_OUTPUT, Graph
from workbench.hookspecs import hookimpl
from workbench.schema.params import param
from workbench.schema.specs import CellSpec, FeatureTrackSpec, NoParams, PortSpec, TaskSpec, TemplateSpec

#: the plugin-API versions this plugin is written for (Sequence Workbench checks it before loading us)
SEQWB_API = ">=1.0,<2"
VERSION = "0.1.0"


@dataclass
class IndRNNParams:
    activation: str = param("relu", choices=("relu", "tanh"), help="the nonlinearity sigma")
    recurrent_max: float = param(1.0, min=0.0, max=10.0,
                                 help="initial recurrent weights u are drawn from [0, recurrent_max]; 1.0 lets a "
                                      "ReLU unit keep its value over many steps")


@dataclass
class ParityParams:
    length: int = param(16, min=1, max=10_000, help="bits per sequence")
    train_size: int = param(4096, min=1, max=100_000_000, help="training sequences per epoch (fresh each epoch)")
    valid_size: int = param(512, min=1, max=1_000_000, help="sequences in the fixed validation set")
    test_size: int = param(512, min=1, max=1_000_000, help="sequences in the fixed test set")
    data_seed: int = param(0, min=0, help="seed of the fixed validation and test sets")


@dataclass
class ParityTemplateParams:
    cell: str = param("indrnn", ui="cell", help="recurrent cell")
    hidden_size: int = param(32, min=1, max=8192, help="units per recurrent layer")
    layers: int = param(3, min=1, max=16, help="stacked recurrent layers (one IndRNN layer cannot compute XOR)")
    length: int = param(16, min=1, max=10_000, help="bits per sequence")


def parity_template(p: ParityTemplateParams) -> dict:
    g = Graph()
    g.add_node(TASK_INPUT, id="input", pos=(0, 0))
    g.add_node("embedding", {"embed_size": 4}, id="embed", pos=(220, 0))
    g.add_node("rnn", {"cell": p.cell, "hidden_size": p.hidden_size, "layers": p.layers}, id="rnn", pos=(440, 0))
    g.add_node("linear", {}, id="head", pos=(660, 0))
    g.add_node(TASK_OUTPUT, id="output", pos=(880, 0))
    g.connect("input", "tokens", "embed", "x")
    g.connect("embed", "y", "rnn", "x")
    g.connect("rnn", "y", "head", "x")
    g.connect("head", "y", "output", "logits")
    graph = g.to_json()
    return {"name": f"Parity ({p.cell}, {p.length} bits)",
            "graph": {"nodes": graph["nodes"], "links": graph["links"]}, "ui": graph["ui"],
            "task": {"id": "parity", "params": {"length": p.length}},
            "train": {"steps": 1500, "batch_size": 64, "optimizer": "adam", "lr": 3e-3, "clip_norm": 1.0,
                      "chunk_len": p.length, "eval_every": 250, "eval_batches": 0, "sample_every": 0,
                      "probe_every": 250, "probe_batch": 8, "threads": 1},
            "notes": "After each bit: is the number of 1s so far odd?  Chance is 50%.  Each IndRNN unit sees only "
                     "its own past, so one layer cannot flip a bit on every 1 (XOR); stacked layers can, and a GRU "
                     "(cell=gru) solves it within a few hundred steps.  Unit search with the 'running_parity' "
                     "feature finds the units that keep the count."}


@hookimpl
def seqwb_cells() -> list[CellSpec]:
    return [CellSpec(
        id="indrnn", title="IndRNN", version=VERSION, params=IndRNNParams,
        factory="seqwb_plugin_example.indrnn:IndRNNCell", gates=(), state_names=("h",),
        description="Independently recurrent units: h = sigma(W x + u * h_prev + b), one recurrent weight per unit.",
        paper="Li, Li, Cook, Zhu & Gao 2018, Independently Recurrent Neural Network (IndRNN)")]


@hookimpl
def seqwb_tasks() -> list[TaskSpec]:
    return [TaskSpec(
        id="parity", title="Running parity of a bit string", version=VERSION, params=ParityParams,
        factory="seqwb_plugin_example.parity:ParityTask",
        description="Random strings of 0 and 1, generated on the fly; after each bit, classify whether the number "
                    "of 1s so far is odd. Chance is 50% accuracy; final_accuracy is the whole string's parity.",
        inputs=(PortSpec("tokens", "tokens[T]", size="vocab", doc="the bits, one token per step"),),
        outputs=(PortSpec("logits", "logits[T]", size="classes", doc="scores for even and odd, every step"),),
        metrics=("loss", "accuracy", "final_accuracy"))]


@hookimpl
def seqwb_templates() -> list[TemplateSpec]:
    return [TemplateSpec(
        id="parity-indrnn", title="Parity, IndRNN", version=VERSION, params=ParityTemplateParams,
        factory="seqwb_plugin_example.plugin:parity_template", task="parity",
        description="Embedding -> 3 x IndRNN 32 -> linear, on the running parity of 16-bit strings.")]


@hookimpl
def seqwb_feature_tracks() -> list[FeatureTrackSpec]:
    return [FeatureTrackSpec(
        id="running_parity", title="Running parity of 1s", version=VERSION, params=NoParams,
        factory="seqwb_plugin_example.tracks:running_parity",
        description="1 where an odd number of '1' characters has been read so far, 0 where an even number.")]
