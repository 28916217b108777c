"""The task contract: reading data, vocabulary, batching, loss and metrics."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterator, Optional

import torch
from torch import Tensor

Batch = dict[str, Any]


class Task:
    """Base class for tasks.  Batches are dicts of time-major tensors plus plain flags.

    Every batch has the task's input ports (e.g. ``"tokens"``) and whatever the loss needs (``"targets"``).
    A batch with ``batch["reset"] = True`` starts new sequences: the trainer drops the carried hidden state.
    """

    #: carry the hidden state from one batch to the next (language-model streams)
    stateful: bool = False
    #: the model can generate tokens with ``start``/``step`` (decoders apply)
    generative: bool = False
    #: token id that ends a generated sequence (None: generate ``max_len`` tokens)
    eos_id: int | None = None
    #: generated text continues the prompt (a language model) rather than answering it (translation, captioning)
    continues_prompt: bool = True
    #: batch layout, for sharding a batch across distributed processes: the keys whose tensors are time-major
    #: (``[T, B, ...]``, batch on dim 1); every other tensor has the batch first.  ``None``: not declared, so the
    #: task cannot be trained by more than one process (see :meth:`shard`)
    time_major: tuple[str, ...] | None = None

    def __init__(self, params: Any, base_dir: Path | str | None = None):
        self.params = params
        self.base_dir = Path(base_dir) if base_dir else Path.cwd()
        self.vocab: list[str] | None = None
        self.sizes: dict[str, int] = {}
        self.data_files: dict[str, Any] = {}

    # ---- data --------------------------------------------------------------------------------------------
    def prepare(self, vocab: Optional[list[str]] = None, progress=None) -> None:
        """Read the data (raise :class:`~workbench.schema.errors.DataError` with a clear message) and set
        ``self.vocab`` (reuse ``vocab`` when given, so a reopened project keeps its token ids) and ``self.sizes``."""
        raise NotImplementedError

    def num_batches(self, split: str, batch_size: int, chunk_len: int) -> int:
        raise NotImplementedError

    def batches(self, split: str, batch_size: int, chunk_len: int, *, epoch: int = 0, start: int = 0,
                seed: int = 0) -> Iterator[Batch]:
        """Batches of one epoch of ``split`` (``train``/``valid``/``test``), from batch index ``start``.
        Must be a pure function of its arguments so training can resume exactly."""
        raise NotImplementedError

    def shard(self, batch: Batch, index: int, count: int) -> Batch:
        """Part ``index`` of ``count`` of a batch: the rows that one of ``count`` distributed processes trains on.

        The parts are contiguous, disjoint and together the whole batch (rows ``index*B//count`` to
        ``(index+1)*B//count``); padding and sequence length stay those of the whole batch, so every process computes
        exactly what one process computes on those rows of the whole batch.  Plain values (flags) are kept.  The
        default slices by :attr:`time_major`; a task with another layout overrides this method.
        """
        from workbench.schema.errors import DataError
        if self.time_major is None:
            raise DataError(f"task {type(self).__name__} does not declare its batch layout (Task.time_major), so "
                            f"its batches cannot be split across processes; train it in one process")
        rows: dict[str, int] = {}
        for key, value in batch.items():
            if isinstance(value, Tensor) and value.dim() >= 1:
                axis = 1 if key in self.time_major else 0
                if value.dim() <= axis:
                    raise DataError(f"task {type(self).__name__}: batch entry {key!r} has shape "
                                    f"{tuple(value.shape)}, but the task declares it time-major ([T, B, ...])")
                rows[key] = value.shape[axis]
        sizes = set(rows.values())
        if len(sizes) != 1:
            raise DataError(f"task {type(self).__name__}: the batch entries disagree on the batch size ({rows}); "
                            f"check Task.time_major")
        total = sizes.pop()
        lo, hi = index * total // count, (index + 1) * total // count
        if hi <= lo:
            raise DataError(f"a batch of {total} sequences cannot give each of {count} processes a part; use a "
                            f"batch_size (and split sizes) of at least {count}")
        out: Batch = {}
        for key, value in batch.items():
            if key in rows:
                part = value[:, lo:hi] if key in self.time_major else value[lo:hi]
                out[key] = part.contiguous()
            else:
                out[key] = value
        return out

    # ---- what the data looks like (the inspector's data preview and ``seqwb data``) ----------------------
    #: what one example of :meth:`split_sizes` is, for the preview ("examples", "windows")
    example_unit: str = "examples"

    def split_sizes(self) -> dict[str, tuple[int, str]]:
        """``{split: (count, unit)}`` after :meth:`prepare`.  Default: the batches of size 1 in each split, counted
        as :attr:`example_unit`; a split that cannot be read counts 0."""
        from workbench.schema.errors import DataError
        out: dict[str, tuple[int, str]] = {}
        for split in ("train", "valid", "test"):
            try:
                out[split] = (int(self.num_batches(split, 1, 1)), self.example_unit)
            except (DataError, KeyError, ValueError):
                out[split] = (0, self.example_unit)
        return out

    def target_names(self) -> list[str] | None:
        """The names of the target ids when the targets are classes or tags (``labels`` / ``tags`` of the built-in
        classification and tagging tasks), else None: how the preview shows a target."""
        for attr in ("labels", "tags"):
            names = getattr(self, attr, None)
            if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
                return names
        return None

    def examples(self, split: str, n: int, chunk_len: int = 100) -> list[dict[str, str]]:
        """The first ``n`` examples of ``split`` as text, one ``{name: text}`` per example, read back from the
        first batch of ``n`` of :meth:`batches` (``chunk_len`` for stream tasks).  Token ids show as text through
        :meth:`decode` when the task has it, target ids as :meth:`target_names`; other values as numbers.  A task
        whose examples read better another way overrides this."""
        batch = next(iter(self.batches(split, max(1, n), chunk_len, epoch=0, start=0)), None)
        if batch is None:
            return []
        return [self._example_row(batch, b) for b in range(_batch_rows(batch, self.time_major))][:n]

    def _example_row(self, batch: Batch, b: int) -> dict[str, str]:
        names = self.target_names()
        lengths = batch.get("lengths")
        row: dict[str, str] = {}
        for key, value in batch.items():
            if not isinstance(value, Tensor) or value.dim() == 0 or key == "lengths":
                continue
            timed = key in (self.time_major or ()) or (self.time_major is None and value.dim() >= 2)
            item = value[:, b] if timed else value[b]
            if timed and isinstance(lengths, Tensor) and lengths.dim() == 1 and int(lengths[b]) <= len(item):
                item = item[:int(lengths[b])]
            row[key] = self._show_values(key, item, names, timed)
        return row

    def _show_values(self, key: str, item: Tensor, names: list[str] | None, timed: bool) -> str:
        flat = item.reshape(-1)
        if not item.dtype.is_floating_point and item.dtype != torch.bool:
            ids = [int(i) for i in flat.tolist() if int(i) != self.target_padding or key != "targets"]
            if key == "targets" and names is not None:
                return " ".join(names[i] if 0 <= i < len(names) else "·" for i in ids)
            if timed:   # a sequence of token ids; a per-example integer (a length, a count) is a number
                try:
                    # the ids the model generates read through decode; another token input (a translation's
                    # source) has its own vocabulary, which source_labels reads
                    if key in ("targets", self.input_port()):
                        return self.decode(ids)
                    labels = self.source_labels(ids)
                    return ("" if all(len(t) == 1 for t in labels) else " ").join(labels)
                except (NotImplementedError, IndexError, KeyError, ValueError, TypeError):
                    pass
            return " ".join(str(i) for i in ids[:40]) + (" …" if len(ids) > 40 else "")
        values = [float(v) for v in flat[:12].tolist()]
        return ", ".join(f"{v:.4g}" for v in values) + (" …" if flat.numel() > 12 else "")

    def probe_batch(self, batch_size: int, length: int) -> Batch:
        """A fixed batch from the validation data for the gradient-through-time probe."""
        it = self.batches("valid", batch_size, length, epoch=0, start=0)
        return next(iter(it))

    # ---- loss and metrics ------------------------------------------------------------------------------
    def loss(self, outputs: dict[str, Tensor], batch: Batch) -> Tensor:
        """Mean loss over the batch (what is backpropagated)."""
        raise NotImplementedError

    def count(self, batch: Batch) -> int:
        """How many items the mean in :meth:`loss` is over (tokens for an LM) and how many were processed."""
        raise NotImplementedError

    #: what :meth:`count` counts, for the speed readout ("tokens/s", "sequences/s")
    count_unit: str = "tokens"
    #: the target id of padded positions (cross_entropy's ``ignore_index``); a step whose targets are all padding
    #: carries no loss (see :meth:`loss_steps`)
    target_padding: int = -100

    def loss_steps(self, batch: Batch) -> int:
        """How many time steps carry a loss: what ``loss_reduction = "sum_over_time"`` multiplies the mean by.

        The default: for time-major ``targets`` (``[T, B, ...]``), the steps with at least one target that is not
        :attr:`target_padding`; otherwise 1 (one target per example, as in classification and regression).
        Multiplying the mean over tokens by it gives the sum over time of the batch mean exactly when every such
        step has the same number of targets (language-model streams, fixed-length tasks).
        """
        targets = batch.get("targets")
        if not (isinstance(targets, Tensor) and targets.dim() >= 2 and "targets" in (self.time_major or ())):
            return 1
        if targets.dtype.is_floating_point:
            return int(targets.shape[0])
        live = (targets != self.target_padding).reshape(targets.shape[0], -1).any(dim=1)
        return int(live.sum())

    def loss_last_step(self, outputs: dict[str, Tensor], batch: Batch) -> Tensor:
        """The loss at each sequence's last step only, L_T (the gradient-through-time probe's dL_T/dh_t).

        The probe calls it with what it passes to :meth:`loss`: ``outputs`` of the per-step path, every output
        stacked over time ``[T, B, ...]`` (a per-example output such as a classifier's ``logits`` too: its value
        after each step), and the probe batch.  Default: :meth:`loss` on every time-major tensor cut to each
        sequence's last step (``batch["lengths"] - 1``, or ``T - 1`` without ``lengths``), keeping a time axis of
        length 1, with ``lengths`` set to 1.  The time-major batch entries are those :attr:`time_major` names
        (when the task declares none: every ``[T, B, ...]`` tensor); the others, such as one target per example,
        are passed as they are.  A task whose ``lengths`` describe another input than the one its outputs follow
        (a seq-to-seq task's source) overrides this method.
        """
        ref = next((v for v in outputs.values() if isinstance(v, Tensor) and v.dim() >= 2), None)
        if ref is None:
            return self.loss(outputs, batch)
        T, B = int(ref.shape[0]), int(ref.shape[1])
        lengths = batch.get("lengths")
        has_lengths = isinstance(lengths, Tensor) and tuple(lengths.shape) == (B,)
        last = (lengths.long() - 1).clamp(0, T - 1) if isinstance(lengths, Tensor) and has_lengths \
            else torch.full((B,), T - 1, dtype=torch.long)

        def timed(v: Any) -> bool:
            return isinstance(v, Tensor) and v.dim() >= 2 and tuple(v.shape[:2]) == (T, B)

        def cut(v: Tensor) -> Tensor:   # [T, B, ...] -> [1, B, ...] at each sequence's last step
            return v[last.to(v.device), torch.arange(B, device=v.device)].unsqueeze(0)

        declared = self.time_major
        cut_outputs = {k: cut(v) if timed(v) else v for k, v in outputs.items()}
        cut_batch: Batch = {}
        for key, value in batch.items():
            if key == "lengths" and has_lengths:
                cut_batch[key] = torch.ones_like(value)
            elif timed(value) and (declared is None or key in declared):
                cut_batch[key] = cut(value)
            else:
                cut_batch[key] = value
        return self.loss(cut_outputs, cut_batch)

    def eval_update(self, acc: dict[str, float], outputs: dict[str, Tensor], batch: Batch) -> None:
        """Accumulate evaluation statistics for one batch.  Default: summed loss and count."""
        n = self.count(batch)
        acc["loss_sum"] = acc.get("loss_sum", 0.0) + float(self.loss(outputs, batch)) * n
        acc["count"] = acc.get("count", 0) + n

    def eval_finish(self, acc: dict[str, float]) -> dict[str, float]:
        loss = acc.get("loss_sum", 0.0) / max(acc.get("count", 0), 1)
        return {"loss": loss}

    def eval_generate(self, model, split: str, device) -> dict[str, float]:
        """Metrics that need the model to generate (e.g. BLEU on greedy decodes of ``split``); called once per
        evaluation after :meth:`eval_finish`, in eval mode without gradients.  Default: none."""
        return {}

    # ---- text helpers for generative tasks -------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: list[int]) -> str:
        raise NotImplementedError

    def encode_target(self, text: str) -> list[int]:
        """Text -> the ids the model generates (a forced prefix in the decoding view).  Default: :meth:`encode`,
        right for a language model; a task whose input and output vocabularies differ overrides it."""
        return self.encode(text)

    def source_labels(self, ids: list[int]) -> list[str]:
        """The prompt ids from :meth:`prime` as text, one per source position (the axis of attention maps)."""
        return [self.decode([i]) for i in ids]

    def sample_prompt(self) -> str:
        return ""

    def prime(self, model, prompt: str, device, batch_size: int = 1):
        """Start decoding: ``(logits for the first generated token [batch, V], state, prompt ids)``.

        The default suits language models: the prompt's tokens go through the model and the next token is
        generated.  Conditioned tasks (translation, captioning) override it to encode the input as the context
        (``model.start(batch, context={...})``) and feed their start-of-sequence token.
        """
        import torch
        ids = self.encode(prompt or self.sample_prompt() or "") or [0]
        state = model.start(batch_size)
        tokens = torch.tensor(ids, dtype=torch.long, device=device).view(-1, 1).expand(-1, batch_size)
        out, state = model({self.input_port(): tokens}, state)
        return out[self.output_port()][-1], state, ids

    def sample_text(self, length: int = 2000) -> str:
        """A stretch of validation text for the hidden-state recorder and inspection views."""
        return ""

    def input_port(self) -> str:
        """The task-input port that carries tokens for generation."""
        return "tokens"

    def output_port(self) -> str:
        return "logits"


class StreamLMTask(Task):
    """A language model over one long token stream per split (char or word level).

    Each split is cut into ``batch_size`` contiguous streams and read ``chunk_len`` tokens at a time, the hidden
    state carried from one chunk to the next (the batching of Zaremba, Sutskever & Vinyals 2014).  Subclasses
    fill ``self._splits`` (split -> 1-D long tensor) in ``prepare`` and clear ``self._cache``.
    """

    stateful = True
    generative = True
    # a distributed process trains a contiguous group of the streams (Task.shard): with batch B over N
    # processes each carries the hidden state of B/N streams, and together they read what one process reads
    time_major = ("tokens", "targets")
    #: what one token is, for messages ("characters", "words")
    stream_unit = "tokens"

    def __init__(self, params: Any, base_dir: Path | str | None = None):
        super().__init__(params, base_dir)
        self._splits: dict[str, Tensor] = {}
        self._cache: dict[tuple[str, int], Tensor] = {}

    def empty_split_hint(self, split: str) -> str:
        """What to do about an empty split, appended to the message."""
        return "; give the task more text"

    def _streams(self, split: str, batch_size: int) -> Tensor:
        """The split cut into ``batch_size`` contiguous streams: ``[n, B]``."""
        key = (split, batch_size)
        if key not in self._cache:
            from workbench.schema.errors import DataError
            data = self._splits.get(split)
            if data is None or data.numel() == 0:
                raise DataError(f"the {split} split is empty{self.empty_split_hint(split)}")
            n = data.numel() // batch_size
            if n < 2:
                raise DataError(f"the {split} split has {data.numel()} {self.stream_unit}: fewer than two per "
                                f"stream at batch size {batch_size}; use a smaller batch_size or more text")
            self._cache[key] = data[:n * batch_size].view(batch_size, n).t().contiguous()
        return self._cache[key]

    def split_sizes(self) -> dict[str, tuple[int, str]]:
        """Tokens per split (one stream each, not examples)."""
        return {split: (int(self._splits[split].numel()) if split in self._splits else 0, self.stream_unit)
                for split in ("train", "valid", "test")}

    def num_batches(self, split: str, batch_size: int, chunk_len: int) -> int:
        import math
        return math.ceil((self._streams(split, batch_size).shape[0] - 1) / chunk_len)

    def batches(self, split: str, batch_size: int, chunk_len: int, *, epoch: int = 0, start: int = 0,
                seed: int = 0) -> Iterator[Batch]:
        streams = self._streams(split, batch_size)
        n = streams.shape[0]
        for index, i in enumerate(range(0, n - 1, chunk_len)):
            if index < start:
                continue
            length = min(chunk_len, n - 1 - i)
            yield {"tokens": streams[i:i + length], "targets": streams[i + 1:i + 1 + length], "reset": index == 0}

    def probe_batch(self, batch_size: int, length: int) -> Batch:
        split = "valid" if self._splits["valid"].numel() > 2 * batch_size else "train"
        streams = self._streams(split, batch_size)
        length = min(length, streams.shape[0] - 1)
        return {"tokens": streams[:length], "targets": streams[1:length + 1], "reset": True}

    def loss(self, outputs: dict[str, Tensor], batch: Batch) -> Tensor:
        import torch.nn.functional as F
        logits = outputs["logits"]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1))

    def count(self, batch: Batch) -> int:
        return int(batch["targets"].numel())


def _batch_rows(batch: Batch, time_major: tuple[str, ...] | None) -> int:
    """How many examples a batch holds: the batch axis of its first tensor."""
    for key, value in batch.items():
        if isinstance(value, Tensor) and value.dim() >= 1:
            timed = key in (time_major or ()) or (time_major is None and value.dim() >= 2)
            return int(value.shape[1] if timed else value.shape[0])
    return 0


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def as_long(ids: list[int]) -> Tensor:
    return torch.tensor(ids, dtype=torch.long)


#: the target id of padded positions (``cross_entropy``'s default ``ignore_index``): a padded step has no loss
IGNORE = -100


def last_step(x: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
    """``[T, B, ...]`` -> ``[B, ...]``: each sequence's value at its last real step (``lengths - 1``; ``T - 1``
    without lengths).  A many-to-one task's loss applies it to what the gradient-through-time probe passes (the
    per-step path's outputs, stacked over time)."""
    if lengths is None:
        return x[-1]
    idx = (lengths.to(x.device).long() - 1).clamp(min=0, max=x.shape[0] - 1)
    return x[idx, torch.arange(x.shape[1], device=x.device)]
