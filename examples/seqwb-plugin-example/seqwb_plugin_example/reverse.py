"""A sequence-to-sequence task: read a string of a-h, write it backwards; a decoder generates the answer.

Batch keys (one vocabulary for both sides: 0 <pad>, 1 <bos>, 2 <eos>, then a-h):

- ``source`` ``[S, B]``: the strings, padded with 0 (the encoder and the attention skip id 0);
- ``lengths`` ``[B]``: the source lengths, what blocks read for padding when ``source`` is not connected to them;
- ``target_in`` ``[T, B]``: ``<bos>`` and the reversed string, padded with 0: the decoder's input, one step at a
  time when generating (the spec's ``step_input``);
- ``targets`` ``[T, B]``: the reversed string and ``<eos>``, padded with ``IGNORE``;
- ``target_lengths`` ``[B]``: the string length + 1 (the ``<eos>``).

The outputs follow ``target_in``, but ``lengths`` are the source's, so this task writes its own
``loss_last_step`` (the default cuts at ``lengths - 1``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from seqwb_plugin_example.generated import GeneratedTask, pad
from workbench.api import IGNORE, last_step

PAD, BOS, EOS = 0, 1, 2


class ReverseTask(GeneratedTask):
    time_major = ("source", "target_in", "targets")
    generative = True          # decoders apply: prime() + model.step
    continues_prompt = False   # the answer does not continue the prompt: a decoder's text is the answer alone
    eos_id = EOS
    SYMBOLS = "abcdefgh"
    VOCAB = ["<pad>", "<bos>", "<eos>", *SYMBOLS]

    def prepare(self, vocab=None, progress=None) -> None:
        super().prepare(vocab, progress)
        self.vocab = list(self.VOCAB)
        self.sizes = {"vocab": len(self.VOCAB)}

    def generate(self, rng: np.random.Generator, n: int):
        lengths = self.lengths(rng, n)
        strings = [list(rng.integers(3, len(self.VOCAB), length)) for length in lengths]
        answers = [s[::-1] for s in strings]
        return {"source": pad(strings), "lengths": torch.from_numpy(lengths),
                "target_in": pad([[BOS, *a] for a in answers]), "targets": pad([[*a, EOS] for a in answers], IGNORE),
                "target_lengths": torch.from_numpy(lengths + 1)}

    # ---- loss and metrics ---------------------------------------------------------------------------------
    def loss(self, outputs, batch) -> torch.Tensor:
        logits = outputs["logits"]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1),
                               ignore_index=IGNORE)

    def loss_last_step(self, outputs, batch) -> torch.Tensor:
        # L_T: each answer's last step, its <eos> (batch["lengths"] are the source's, so not the default)
        return F.cross_entropy(last_step(outputs["logits"], batch["target_lengths"]),
                               last_step(batch["targets"], batch["target_lengths"]))

    def count(self, batch) -> int:
        return int((batch["targets"] != IGNORE).sum())

    def eval_update(self, acc, outputs, batch) -> None:
        logits, y = outputs["logits"].float(), batch["targets"]
        labelled = y != IGNORE
        right = (logits.argmax(-1) == y) | ~labelled
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE,
                             reduction="sum")
        acc["loss_sum"] = acc.get("loss_sum", 0.0) + float(ce)
        acc["hits"] = acc.get("hits", 0.0) + float((right & labelled).sum())
        acc["exact"] = acc.get("exact", 0.0) + float(right.all(0).sum())   # every step of an answer right
        acc["count"] = acc.get("count", 0) + int(labelled.sum())
        acc["answers"] = acc.get("answers", 0) + int(y.shape[1])

    def eval_finish(self, acc) -> dict:
        n = max(acc.get("count", 0), 1)
        return {"loss": acc.get("loss_sum", 0.0) / n, "accuracy": acc.get("hits", 0.0) / n,
                "exact": acc.get("exact", 0.0) / max(acc.get("answers", 0), 1)}

    # ---- decoding --------------------------------------------------------------------------------------------
    def input_port(self) -> str:
        return "target_in"          # what a decoder feeds one token at a time

    def encode(self, text: str) -> list[int]:
        return [self.VOCAB.index(ch) for ch in text if ch in self.SYMBOLS]

    def decode(self, ids) -> str:
        return "".join(self.VOCAB[i] for i in ids if 3 <= i < len(self.VOCAB))

    def sample_prompt(self) -> str:
        return "abcdef"

    def prime(self, model, prompt: str, device, batch_size: int = 1):
        """The prompt is the source: encoded once as the model's context, then ``<bos>`` is fed."""
        ids = self.encode(prompt or self.sample_prompt()) or [3]
        source = torch.tensor(ids, dtype=torch.long, device=device).view(-1, 1).expand(-1, batch_size)
        state = model.start(batch_size, context={"source": source})
        bos = torch.full((batch_size,), BOS, dtype=torch.long, device=device)
        logits, state = model.step(bos, state, self.input_port(), self.output_port())
        return logits, state, ids
