"""Sequence-to-sequence task: TSV ``source<TAB>target`` pairs, or generated date normalisation.

Batches (time-major, padded with id 0): ``source [S, B]``, ``target_in [T, B]`` (``<bos>`` + target),
``targets [T, B]`` (target + ``<eos>``), ``source_lengths``, ``target_lengths`` and ``lengths`` ``[B]``.
``lengths`` is the *source* lengths: the blocks that need lengths (pooling, bidirectional layers, the encoder)
read the source; on the target side every block is causal, so padding at the end cannot reach the real
positions, and the loss ignores the pad id.

The project keeps one vocabulary list (``vocab.json``); this task stores its two vocabularies in it as sections:
``["\\x1esource", <source tokens>..., "\\x1etarget", <target tokens>...]``, each starting with
``<pad>=0, <bos>=1, <eos>=2, <unk>=3``.

BLEU is sacrebleu's ``corpus_bleu`` on greedy decodes of the first ``bleu_sentences`` sentences of the split,
decoded in groups of equal source length so that no graph ever sees padding while decoding.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import os
import random
from collections import Counter
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F

from workbench.api import Batch, DataError, Task, sha256_file, sha256_text

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
SOURCE_SECTION = "\x1esource"
TARGET_SECTION = "\x1etarget"


# ---- shared helpers (also used by the captioning task) -------------------------------------------------------

def read_lines(path: Path, encoding: str, what: str) -> list[str]:
    """The lines of a text file; a clear :class:`DataError` for a missing file or undecodable bytes."""
    if not path.exists():
        raise DataError(f"{what} not found: {path}")
    if path.is_dir():
        raise DataError(f"{what} is a folder, not a file: {path}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode(encoding)
    except LookupError:
        raise DataError(f"unknown text encoding {encoding!r} for {path}") from None
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}, line {line}: not valid {encoding}: byte 0x{raw[exc.start]:02x} at offset "
                        f"{exc.start} ({exc.reason}); set task.encoding or convert the file") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]


def build_vocab(sequences, min_count: int) -> list[str]:
    counts = Counter(tok for seq in sequences for tok in seq)
    return SPECIALS + sorted(tok for tok, n in counts.items() if n >= min_count and tok not in SPECIALS)


def pad_array(seqs: list[list[int]], extra: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sequences -> ``([N, max_len + extra] int64 padded with 0, lengths [N])``."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    out = np.zeros((len(seqs), (int(lengths.max()) if len(seqs) else 0) + extra), dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out, lengths


def decoder_arrays(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(target_in = <bos> + seq, targets = seq + <eos>, lengths = len + 1)``, each ``[N, max + 1]``."""
    body, lengths = pad_array(seqs, extra=1)
    target_in = np.zeros_like(body)
    target_in[:, 0] = BOS
    target_in[:, 1:] = body[:, :-1]
    targets = body.copy()
    targets[np.arange(len(seqs)), lengths] = EOS
    return target_in, targets, lengths + 1


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, epoch & 0xFFFFFFFF, 0x5E0])
                                 ).permutation(n)


def seq_loss(outputs, batch) -> torch.Tensor:
    logits = outputs["logits"]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), batch["targets"].reshape(-1),
                           ignore_index=PAD)


def seq_loss_last_step(outputs, batch, lengths_key: str) -> torch.Tensor:
    """The loss at each sequence's last real target (its ``<eos>``): what dL_T/dh_t is measured from."""
    logits, targets = outputs["logits"], batch["targets"]
    last = (batch[lengths_key].to(logits.device) - 1).clamp(min=0)
    cols = torch.arange(logits.shape[1], device=logits.device)
    return F.cross_entropy(logits[last, cols].float(), targets[last, cols])


@torch.no_grad()
def greedy_batch(model, context: dict[str, torch.Tensor], batch_size: int, max_len: int, step_port: str,
                 out_port: str = "logits") -> list[list[int]]:
    """Greedy decodes of a batch (``<bos>`` first, stops at ``<eos>``, which is not included)."""
    state = model.start(batch_size, context=context)
    device = next(iter(context.values())).device
    tokens = torch.full((batch_size,), BOS, dtype=torch.long, device=device)
    done = torch.zeros(batch_size, dtype=torch.bool, device=device)
    steps = []
    for _ in range(max_len):
        logits, state = model.step(tokens, state, step_port, out_port)
        tokens = logits.argmax(-1)
        steps.append(tokens)
        done |= tokens == EOS
        if bool(done.all()):
            break
    rows = torch.stack(steps, 1).tolist() if steps else [[] for _ in range(batch_size)]
    return [row[:row.index(EOS)] if EOS in row else row for row in rows]


def bleu_and_exact(hyps: list[str], refs: list[str], tokenize: str) -> dict[str, float]:
    import sacrebleu  # imported when first scoring: it is not needed to train
    if not hyps:
        return {}
    bleu = sacrebleu.corpus_bleu(hyps, [refs], tokenize=tokenize)
    exact = sum(h == r for h, r in zip(hyps, refs)) / len(hyps)
    return {"bleu": float(bleu.score), "exact": float(exact)}


def relpath(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path, base)
    except ValueError:  # another drive on Windows
        return str(path)


# ---- generated data: date normalisation ----------------------------------------------------------------------

MONTHS = [calendar.month_name[i] for i in range(1, 13)]
MONTHS_ABBR = [calendar.month_abbr[i] for i in range(1, 13)]
WEEKDAYS = [calendar.day_name[i] for i in range(7)]
FIRST_DAY = dt.date(1950, 1, 1).toordinal()
LAST_DAY = dt.date(2049, 12, 31).toordinal()


def _ordinal(d: int) -> str:
    suffix = "th" if 10 <= d % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
    return f"{d}{suffix}"


def format_date(date: dt.date, style: int) -> str:
    d, m, y = date.day, date.month, date.year
    month, mon, wd = MONTHS[m - 1], MONTHS_ABBR[m - 1], WEEKDAYS[date.weekday()]
    forms = (
        f"{d} {month} {y}",              # 3 March 2021
        f"{month} {d}, {y}",             # March 3, 2021
        f"{d:02d}/{m:02d}/{y}",          # 03/03/2021 (day first)
        f"{d} {mon} {y}",                # 3 Mar 2021
        f"{mon} {d}, {y}",               # Mar 3, 2021
        f"{d:02d}.{m:02d}.{y}",          # 03.03.2021
        f"{wd}, {d} {month} {y}",        # Wednesday, 3 March 2021
        f"{wd}, {month} {d}, {y}",       # Wednesday, March 3, 2021
        f"{_ordinal(d)} of {month} {y}",  # 3rd of March 2021
        f"{d:02d}-{mon}-{y}",            # 03-Mar-2021
        f"{month} {_ordinal(d)}, {y}",   # March 3rd, 2021
        f"{y}/{m:02d}/{d:02d}",          # 2021/03/03
    )
    return forms[style % len(forms)]


N_STYLES = 12


def generate_dates(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` distinct ``(human-readable date, ISO date)`` pairs, seeded."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 20 * n + 1000:
            raise DataError(f"cannot generate {n} distinct dates; ask for fewer")
        date = dt.date.fromordinal(rng.randint(FIRST_DAY, LAST_DAY))
        text = format_date(date, rng.randrange(N_STYLES))
        case = rng.random()
        if case < 0.2:
            text = text.lower()
        elif case < 0.25:
            text = text.upper()
        if text in seen:
            continue
        seen.add(text)
        out.append((text, date.isoformat()))
    return out


# ---- the task -----------------------------------------------------------------------------------------------

class Seq2SeqTask(Task):
    stateful = False
    generative = True
    continues_prompt = False
    eos_id = EOS
    time_major = ("source", "target_in", "targets")   # the lengths [B] have the batch first
    target_padding = PAD

    def __init__(self, params, base_dir=None):
        super().__init__(params, base_dir)
        self.source_vocab: list[str] = []
        self.target_vocab: list[str] = []
        self._src_index: dict[str, int] = {}
        self._tgt_index: dict[str, int] = {}
        self._pairs: dict[str, list[tuple[str, str]]] = {}
        self._arrays: dict[str, dict[str, np.ndarray]] = {}

    # ---- data --------------------------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        path = Path(name)
        return path if path.is_absolute() else self.base_dir / path

    def _read_tsv(self, name: str) -> list[tuple[str, str]]:
        path = self._path(name)
        pairs = []
        for number, line in enumerate(read_lines(path, self.params.encoding, "TSV file"), 1):
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 2:
                raise DataError(f"{path}, line {number}: expected 'source<TAB>target', found no tab")
            source, target = fields[0].strip(), fields[1].strip()
            if not source or not target:
                side = "source" if not source else "target"
                raise DataError(f"{path}, line {number}: the {side} is empty")
            pairs.append((source, target))
        if not pairs:
            raise DataError(f"{path} has no 'source<TAB>target' pairs")
        return pairs

    def _load_pairs(self) -> dict[str, list[tuple[str, str]]]:
        p = self.params
        if not p.train_file:
            pairs = generate_dates(p.demo_train + p.demo_valid + p.demo_test, p.demo_seed)
            a, b = p.demo_train, p.demo_train + p.demo_valid
            text = "\n".join(f"{s}\t{t}" for s, t in pairs)
            self.data_files = {"train": {"path": f"<generated dates, seed {p.demo_seed}>",
                                         "sha256": sha256_text(text), "pairs": len(pairs)}}
            return {"train": pairs[:a], "valid": pairs[a:b], "test": pairs[b:]}
        train = self._read_tsv(p.train_file)
        files = {"train": p.train_file}
        n = len(train)
        n_valid = 0 if p.valid_file else int(n * p.valid_fraction)
        n_test = 0 if p.test_file else int(n * p.test_fraction)
        splits = {"train": train[:n - n_valid - n_test], "valid": train[n - n_valid - n_test:n - n_test],
                  "test": train[n - n_test:]}
        for split, name in (("valid", p.valid_file), ("test", p.test_file)):
            if name:
                splits[split] = self._read_tsv(name)
                files[split] = name
        if not splits["train"]:
            raise DataError(f"{self._path(p.train_file)}: no pairs left to train on after holding out "
                            f"validation and test pairs")
        self.data_files = {}
        for split, name in files.items():
            path = self._path(name)
            self.data_files[split] = {"path": relpath(path, self.base_dir), "sha256": sha256_file(path),
                                      "pairs": len(splits[split])}
        return splits

    def tokenize(self, text: str) -> list[str]:
        if self.params.lowercase:
            text = text.lower()
        return list(text) if self.params.level == "char" else text.split()

    def detokenize(self, tokens: list[str]) -> str:
        return "".join(tokens) if self.params.level == "char" else " ".join(tokens)

    def prepare(self, vocab: Optional[list[str]] = None, progress=None) -> None:
        p = self.params
        splits = self._load_pairs()
        tokenized = {k: [(self.tokenize(s), self.tokenize(t)) for s, t in v] for k, v in splits.items()}
        if p.max_length:
            tokenized = {k: [(s, t) for s, t in v if len(s) <= p.max_length and len(t) <= p.max_length]
                         for k, v in tokenized.items()}
            splits = {k: [(self.detokenize(s), self.detokenize(t)) for s, t in v] for k, v in tokenized.items()}
            if not tokenized["train"]:
                raise DataError(f"no training pair is at most max_length={p.max_length} tokens long")
        if vocab is not None:
            self.source_vocab, self.target_vocab = self._split_vocab(vocab)
        else:
            self.source_vocab = build_vocab((s for s, _ in tokenized["train"]), p.min_count)
            self.target_vocab = build_vocab((t for _, t in tokenized["train"]), p.min_count)
        self.vocab = [SOURCE_SECTION, *self.source_vocab, TARGET_SECTION, *self.target_vocab]
        self._src_index = {tok: i for i, tok in enumerate(self.source_vocab)}
        self._tgt_index = {tok: i for i, tok in enumerate(self.target_vocab)}
        self.sizes = {"source_vocab": len(self.source_vocab), "target_vocab": len(self.target_vocab)}
        # references for BLEU are the detokenised targets, so lowercasing applies to them as well
        self._pairs = {k: [(s, self.detokenize(t)) for (s, _), (_, t) in zip(splits[k], tokenized[k])]
                       for k in splits}
        self._arrays = {}
        for split, pairs in tokenized.items():
            if not pairs:
                continue
            src, src_len = pad_array([[self._src_index.get(t, UNK) for t in s] for s, _ in pairs])
            tin, tout, tgt_len = decoder_arrays([[self._tgt_index.get(t, UNK) for t in t_] for _, t_ in pairs])
            self._arrays[split] = {"source": src, "source_lengths": src_len, "target_in": tin, "targets": tout,
                                   "target_lengths": tgt_len}

    @staticmethod
    def _split_vocab(vocab: list[str]) -> tuple[list[str], list[str]]:
        if len(vocab) < 2 or vocab[0] != SOURCE_SECTION or TARGET_SECTION not in vocab:
            raise DataError("the vocabulary saved with this project is not a seq2seq vocabulary (source and target "
                            "sections); start a new run or remove vocab.json")
        cut = vocab.index(TARGET_SECTION)
        src, tgt = list(vocab[1:cut]), list(vocab[cut + 1:])
        if src[:4] != SPECIALS or tgt[:4] != SPECIALS:
            raise DataError("the vocabulary saved with this project does not start with <pad>, <bos>, <eos>, <unk>")
        return src, tgt

    def _split(self, split: str) -> dict[str, np.ndarray]:
        arrays = self._arrays.get(split)
        if arrays is None:
            raise DataError(f"the {split} split is empty; give it pairs (a file or a larger fraction)")
        return arrays

    def num_batches(self, split: str, batch_size: int, chunk_len: int) -> int:
        return math.ceil(len(self._split(split)["source"]) / batch_size)

    def _batch(self, split: str, idx: np.ndarray) -> Batch:
        a = self._split(split)
        S = int(a["source_lengths"][idx].max())
        T = int(a["target_lengths"][idx].max())
        src_len = torch.from_numpy(a["source_lengths"][idx])
        return {
            "source": torch.from_numpy(np.ascontiguousarray(a["source"][idx, :S].T)),
            "target_in": torch.from_numpy(np.ascontiguousarray(a["target_in"][idx, :T].T)),
            "targets": torch.from_numpy(np.ascontiguousarray(a["targets"][idx, :T].T)),
            "source_lengths": src_len,
            "target_lengths": torch.from_numpy(a["target_lengths"][idx]),
            "lengths": src_len,
            "reset": True,
        }

    def batches(self, split: str, batch_size: int, chunk_len: int, *, epoch: int = 0, start: int = 0,
                seed: int = 0) -> Iterator[Batch]:
        n = len(self._split(split)["source"])
        order = epoch_order(n, seed, epoch) if split == "train" else np.arange(n)
        for index in range(start, math.ceil(n / batch_size)):
            yield self._batch(split, order[index * batch_size:(index + 1) * batch_size])

    def probe_batch(self, batch_size: int, length: int) -> Batch:
        split = "valid" if "valid" in self._arrays else "train"
        n = len(self._arrays[split]["source"])
        return self._batch(split, np.arange(min(batch_size, n)))

    # ---- loss and metrics ------------------------------------------------------------------------------
    def loss(self, outputs, batch) -> torch.Tensor:
        return seq_loss(outputs, batch)

    def loss_last_step(self, outputs, batch) -> torch.Tensor:
        return seq_loss_last_step(outputs, batch, "target_lengths")

    def count(self, batch) -> int:
        return int((batch["targets"] != PAD).sum())

    def eval_finish(self, acc: dict) -> dict:
        loss = acc.get("loss_sum", 0.0) / max(acc.get("count", 0), 1)
        return {"loss": loss, "ppl": math.exp(min(loss, 50.0))}

    def bleu_tokenizer(self) -> str:
        tok = self.params.bleu_tokenize
        if tok == "auto":
            return "char" if self.params.level == "char" else "13a"
        return tok

    def max_decode_len(self) -> int:
        if self.params.max_decode_len:
            return self.params.max_decode_len
        return max(int(a["target_lengths"].max()) for a in self._arrays.values()) + 10

    @torch.no_grad()
    def eval_generate(self, model, split: str, device) -> dict[str, float]:
        n = min(self.params.bleu_sentences, len(self._arrays.get(split, {}).get("source", ())))
        if n <= 0:
            return {}
        a = self._arrays[split]
        hyps: list[str] = [""] * n
        lengths = a["source_lengths"][:n]
        max_len = self.max_decode_len()
        for L in sorted(set(lengths.tolist())):
            rows = np.nonzero(lengths == L)[0]
            for i in range(0, len(rows), 256):
                chunk = rows[i:i + 256]
                src = torch.from_numpy(np.ascontiguousarray(a["source"][chunk, :L].T)).to(device)
                for row, ids in zip(chunk, greedy_batch(model, {"source": src}, len(chunk), max_len,
                                                        self.input_port(), self.output_port())):
                    hyps[row] = self.decode(ids)
        refs = [t for _, t in self._pairs[split][:n]]
        return bleu_and_exact(hyps, refs, self.bleu_tokenizer())

    # ---- text ----------------------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Source text -> source ids (the prompt of a decoder is a source sentence)."""
        get = self._src_index.get
        return [get(tok, UNK) for tok in self.tokenize(text)]

    def decode(self, ids) -> str:
        """Target ids -> target text (special tokens left out)."""
        v = self.target_vocab
        return self.detokenize([v[i] if 0 <= i < len(v) else SPECIALS[UNK] for i in ids
                                if i not in (PAD, BOS, EOS)])

    def encode_target(self, text: str) -> list[int]:
        """Target text -> target ids (a forced prefix of the output)."""
        get = self._tgt_index.get
        return [get(tok, UNK) for tok in self.tokenize(text)]

    def source_labels(self, ids) -> list[str]:
        v = self.source_vocab
        return [v[i] if 0 <= i < len(v) else SPECIALS[UNK] for i in ids]

    def sample_prompt(self) -> str:
        for split in ("valid", "test", "train"):
            if self._pairs.get(split):
                return self._pairs[split][0][0]
        return ""

    def input_port(self) -> str:
        return "target_in"

    def prime(self, model, prompt: str, device, batch_size: int = 1):
        """Encode ``prompt`` as the source (once, expanded to ``batch_size`` columns) and feed ``<bos>``."""
        ids = self.encode(prompt or self.sample_prompt()) or [UNK]
        source = torch.tensor(ids, dtype=torch.long, device=device).view(-1, 1).expand(-1, batch_size)
        state = model.start(batch_size, context={"source": source})
        bos = torch.full((batch_size,), BOS, dtype=torch.long, device=device)
        logits, state = model.step(bos, state, self.input_port(), self.output_port())
        return logits, state, ids

    def pairs(self, split: str) -> list[tuple[str, str]]:
        """``(source text, reference target text)`` of a split (for views and tests)."""
        return list(self._pairs.get(split, []))
