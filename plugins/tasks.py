"""Built-in tasks (registration only: no torch here)."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.api import PortSpec, TaskSpec, hookimpl, param
from workbench_plugins import numeric_specs, seq2seq_specs, text_specs

VERSION = "1.0"


@dataclass
class CharLMParams:
    corpus: str = param("", ui="path", help="a text file, relative to the project file; empty: the Python standard "
                                            "library's own source code, read from this interpreter")
    encoding: str = param("utf-8", help="text encoding of the corpus (e.g. utf-8, latin-1, cp1252)")
    max_chars: int = param(3_000_000, min=100, help="read at most this many characters")
    valid_fraction: float = param(0.05, min=0.0, max=0.5, help="share of the text held out for validation")
    test_fraction: float = param(0.05, min=0.0, max=0.5, help="share of the text held out for testing")

    def validate(self) -> None:
        if self.valid_fraction + self.test_fraction >= 0.9:
            raise ValueError("valid_fraction + test_fraction must leave text to train on")


@hookimpl
def seqwb_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            id="char-lm", title="Character language model", version=VERSION, params=CharLMParams,
            factory="workbench_plugins.char_lm:CharLMTask",
            description="Predict the next character of a text (Karpathy's char-rnn). Loss in nats, bits per "
                        "character and perplexity; samples as it trains.",
            inputs=(PortSpec("tokens", "tokens[T]", size="vocab", doc="character ids"),),
            outputs=(PortSpec("logits", "logits[T]", size="vocab", doc="scores for the next character"),),
            metrics=("loss", "bpc", "ppl"), generative=True,
        ),
    ] + [spec for area in (text_specs, seq2seq_specs, numeric_specs) for spec in area.TASKS]
