"""The char-LM actually learns: it beats the best context-free model (unigram frequencies) on held-out text.

A model that ignored its input could at best learn the unigram distribution; beating that bound by a margin
means it uses what came before.  Small enough for CI (a few seconds on two cores).
"""

import collections
import math

import pytest

from tests.helpers import small_project, with_train
from workbench.core.training.trainer import Trainer
from workbench.plugin_system import discover


def unigram_bpc(train: str, valid: str) -> float:
    counts = collections.Counter(train)
    total = sum(counts.values())
    vocab = len(counts) + 1  # add-one smoothing for characters unseen in training
    bits = 0.0
    for ch in valid:
        bits -= math.log2((counts.get(ch, 0) + 1) / (total + vocab))
    return bits / len(valid)


@pytest.mark.slow
def test_char_lm_beats_unigram_on_python_source():
    reg = discover()
    project = small_project(reg, hidden_size=96, layers=1, embed_size=32, **{"task.max_chars": "300000"})
    project = with_train(project, batch_size=16, chunk_len=50, lr=5e-3, eval_batches=20)
    trainer = Trainer(project, reg)
    trainer.setup()
    baseline = unigram_bpc(trainer.task._texts["train"], trainer.task._texts["valid"])
    random_bpc = math.log2(len(trainer.task.vocab))
    trainer.fit(steps=250)
    bpc = trainer.evaluate("valid", 20)["bpc"]
    assert baseline < random_bpc
    assert bpc < baseline - 0.75, f"valid bpc {bpc:.3f} vs unigram {baseline:.3f} (uniform {random_bpc:.3f})"
