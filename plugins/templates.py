"""Built-in templates: pre-wired projects (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.api import TemplateSpec, hookimpl, param
from workbench_plugins._wiring import chain, project
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
    drop = [("drop", "dropout", {"p": p.dropout})] if p.dropout > 0 else []
    g = chain(("embed", "embedding", {"embed_size": p.embed_size}),
              ("rnn", "rnn", {"cell": p.cell, "hidden_size": p.hidden_size, "layers": p.layers, "dropout": p.dropout}),
              *drop, ("head", "linear", {}))
    return project(
        "Character LM", g, {"id": "char-lm", "params": {"corpus": p.corpus}},
        {"steps": 800, "batch_size": 32, "chunk_len": 100, "optimizer": "adam", "lr": 2e-3, "clip_norm": 5.0,
         "eval_every": 200, "eval_batches": 10, "sample_every": 200, "probe_every": 100,
         # bfloat16 where the CPU or GPU computes it natively: the same validation loss as float32 within the seed
         # noise (benchmarks/precision_safety.py)
         "precision": "auto"},
        "Karpathy's char-rnn on Python source: watch it learn indentation, quotes and keywords.",
        {"decoder": "sample", "params": {"temperature": 0.8, "max_len": 300}, "prompt": "def "})


@hookimpl
def seqwb_templates() -> list[TemplateSpec]:
    return [
        TemplateSpec(id="char-lm", title="Character language model (LSTM)", version=VERSION,
                     params=CharLMTemplateParams, factory="workbench_plugins.templates:char_lm", task="char-lm",
                     description="Embedding → 2×LSTM 256 → linear, trained on the Python standard library's source; "
                                 "samples look like Python within a couple of minutes on a CPU."),
    ] + [spec for area in (text_specs, seq2seq_specs, numeric_specs) for spec in area.TEMPLATES]
