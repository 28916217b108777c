"""Built-in decoders (registration only: no torch here)."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.api import DecoderSpec, hookimpl, param
from workbench_plugins import numeric_specs, seq2seq_specs, text_specs

VERSION = "1.0"


@dataclass
class GreedyParams:
    max_len: int = param(200, min=1, max=100000, help="tokens to generate")


@dataclass
class SamplingParams:
    max_len: int = param(200, min=1, max=100000, help="tokens to generate")
    temperature: float = param(1.0, min=1e-3, max=100.0, help="divide the logits by this (<1: safer, >1: wilder)")
    top_k: int = param(0, min=0, help="sample among the k most likely tokens (0: all)")
    top_p: float = param(1.0, min=0.0, max=1.0, help="nucleus sampling: smallest set with this much probability")


@hookimpl
def seqwb_decoders() -> list[DecoderSpec]:
    return [
        DecoderSpec(id="greedy", title="Greedy", version=VERSION, params=GreedyParams,
                    factory="workbench_plugins.decoders_impl:greedy",
                    description="Always take the most likely next token."),
        DecoderSpec(id="sample", title="Sampling", version=VERSION, params=SamplingParams,
                    factory="workbench_plugins.decoders_impl:sample",
                    description="Draw each next token from the model's distribution, with temperature, "
                                "top-k and top-p (nucleus) truncation."),
    ] + [spec for area in (text_specs, seq2seq_specs, numeric_specs) for spec in area.DECODERS]
