"""Sequence classification (sentiment): CSV/TSV of text and label, or generated reviews where word order matters.

Every example is one independent sequence: batches are padded and carry ``lengths``; the model ends in a pooling
block and a classifier head (``logits`` ``[B, classes]``).  Metrics: loss, accuracy, macro F1 and the confusion
matrix (rows: true class, columns: predicted class, in the order of ``task.labels``).
"""

from __future__ import annotations

import csv
import io
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F

from workbench.api import Batch, DataError, sha256_text
from workbench_plugins.text_data import (PAD, UNK, PaddedSequenceTask, build_vocab, classification_scores,
                                         file_record, last_step_logits, pack_vocab, read_text, resolve_path,
                                         unpack_vocab, update_confusion)

_TOKEN = re.compile(r"\w+(?:'\w+)?|[^\w\s]")
DELIMITERS = {"comma": ",", "tab": "\t", "semicolon": ";", "pipe": "|"}

# ---- generated reviews ---------------------------------------------------------------------------------------------

_POSITIVE = ("good", "great", "excellent", "wonderful", "brilliant", "enjoyable", "charming", "superb", "delightful",
             "moving")
_NEGATIVE = ("bad", "awful", "terrible", "boring", "dull", "poor", "weak", "horrible", "tedious", "bland")
_SUBJECTS = {"sg": ("the movie", "the film", "this movie", "the plot", "the story", "the acting", "the script",
                    "the dialogue", "the ending", "the soundtrack", "the music", "the pacing", "the direction"),
             "pl": ("the actors", "the characters", "the visuals", "the jokes", "the effects")}
_BE = {"sg": ("was", "is", "seemed", "felt"), "pl": ("were", "are", "seemed", "felt")}
_BE_NEGATED = {"sg": ("was", "is"), "pl": ("were", "are")}
_NEGATORS = ("not", "never", "hardly")
_INTENSIFIERS = ("very", "really", "extremely", "truly", "quite", "so")
_LIKE = {1: (("liked", "like"), ("enjoyed", "enjoy"), ("loved", "love"), ("admired", "admire")),
         -1: (("hated", "hate"), ("disliked", "dislike"))}
_OPENERS = ("", "", "", "", "honestly ,", "overall ,", "in the end ,", "to be fair ,", "i think", "frankly ,")


def _clause(rng: random.Random, polarity: int) -> str:
    """A clause with the given polarity; in 40% of them a negation flips the polarity of the word used."""
    negate = rng.random() < 0.4
    word = -polarity if negate else polarity
    number = "pl" if rng.random() < 0.25 else "sg"
    subject = rng.choice(_SUBJECTS[number])
    if rng.random() < 0.7:
        be = rng.choice(_BE_NEGATED[number] if negate else _BE[number])
        neg = rng.choice(_NEGATORS) + " " if negate else ""
        very = rng.choice(_INTENSIFIERS) + " " if rng.random() < 0.3 else ""
        return f"{subject} {be} {neg}{very}{rng.choice(_POSITIVE if word > 0 else _NEGATIVE)}"
    who = rng.choice(("i", "we"))
    past, base = rng.choice(_LIKE[word])
    very = "really " if rng.random() < 0.3 else ""
    if negate:
        aux = rng.choice(("did not", "didn't", "never"))
        return f"{who} {aux} {very}{past if aux == 'never' else base} {subject}"
    return f"{who} {very}{past} {subject}"


def synthetic_reviews(n: int, seed: int = 7) -> list[tuple[str, str]]:
    """``n`` short movie reviews labelled ``positive``/``negative``.

    The label depends on word order, not only on which words occur: negation flips a clause ("not good", "never
    boring"), and in two-clause reviews the connective decides which clause counts ("A , but B" and "although A ,
    B" go with B; "A , even though B" goes with A).  "the plot was good , but the acting was not good" and "the plot
    was not good , but the acting was good" have the same bag of words and opposite labels.
    """
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        label = rng.choice((1, -1))
        form = rng.random()
        if form < 0.4:
            text = _clause(rng, label)
        elif form < 0.65:
            text = f"{_clause(rng, -label)} , but {_clause(rng, label)}"
        elif form < 0.8:
            text = f"although {_clause(rng, -label)} , {_clause(rng, label)}"
        elif form < 0.9:
            text = f"{_clause(rng, label)} , even though {_clause(rng, -label)}"
        else:
            text = f"{_clause(rng, label)} and {_clause(rng, label)}"
        opener = rng.choice(_OPENERS)
        text = f"{opener} {text} {rng.choice('..!')}".strip()
        out.append((text, "positive" if label > 0 else "negative"))
    return out


# ---- reading tables ------------------------------------------------------------------------------------------------

def _column(spec: str, header: Optional[list[str]], path: Path, what: str) -> int:
    spec = spec.strip()
    if spec.isdigit():
        return int(spec)
    if header is None:
        raise DataError(f"{path}: task.header is off, so task.{what} must be a column number (0-based), "
                        f"not {spec!r}")
    names = [h.strip() for h in header]
    for candidates in (names, [h.lower() for h in names]):
        key = spec if candidates is names else spec.lower()
        if key in candidates:
            return candidates.index(key)
    raise DataError(f"{path}:1: no column {spec!r} in the header (columns: {', '.join(names)}); set task.{what}")


def read_table(path: Path, *, delimiter: str = "auto", header: bool = True, text_column: str = "text",
               label_column: str = "label", encoding: str = "utf-8") -> list[tuple[str, str, int]]:
    """``(text, label, line number)`` rows of a CSV/TSV file; :class:`DataError` naming the file and line."""
    text = read_text(path, encoding, "sentiment data file")
    if delimiter == "auto":
        suffix = path.suffix.lower()
        first = text.split("\n", 1)[0]
        delim = "\t" if suffix in (".tsv", ".tab") or (suffix != ".csv" and "\t" in first) else ","
    else:
        delim = DELIMITERS[delimiter]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    rows: list[tuple[str, str, int]] = []
    head: Optional[list[str]] = None
    width: Optional[int] = None
    t_col = l_col = 0
    line = 1
    try:
        for row in reader:
            start, line = line, reader.line_num + 1  # the line this record started on, and the next one's
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if width is None:
                if header:
                    head = row
                width = len(row)
                t_col = _column(text_column, head, path, "text_column")
                l_col = _column(label_column, head, path, "label_column")
                for col, what in ((t_col, "text_column"), (l_col, "label_column")):
                    if not 0 <= col < width:
                        has = "the header has" if header else "the first row has"
                        raise DataError(f"{path}:{start}: task.{what} is column {col} but {has} {width} fields "
                                        f"(numbered from 0)")
                if header:
                    continue
            if len(row) != width:
                like = "the header" if head is not None else "the first row"
                raise DataError(f"{path}:{start}: expected {width} fields (like {like}), found {len(row)}; check "
                                f"the delimiter (task.delimiter) and quoting")
            body, label = row[t_col].strip(), row[l_col].strip()
            if not body:
                raise DataError(f"{path}:{start}: the text is empty")
            if not label:
                raise DataError(f"{path}:{start}: the label is empty")
            rows.append((body, label, start))
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: malformed {'TSV' if delim == chr(9) else 'CSV'} ({exc})") \
            from None
    if not rows:
        raise DataError(f"{path} has no examples")
    return rows


# ---- the task -----------------------------------------------------------------------------------------------------

class SentimentTask(PaddedSequenceTask):
    """Text -> one label.  ``batch``: ``tokens [T, B]``, ``lengths [B]``, ``targets [B]``."""

    def __init__(self, params, base_dir=None):
        super().__init__(params, base_dir)
        self.labels: list[str] = []
        self._words: list[str] = []
        self._index: dict[str, int] = {}
        self._texts: dict[str, list[str]] = {}

    def tokenize(self, text: str) -> list[str]:
        return _TOKEN.findall(text.lower() if self.params.lowercase else text)

    # ---- data --------------------------------------------------------------------------------------------
    def _read(self) -> dict[str, list[tuple[str, str, str]]]:
        """Per split, ``(text, label, where)`` with ``where`` = ``file:line`` for messages."""
        p = self.params
        out: dict[str, list[tuple[str, str, str]]] = {}
        if not p.path:
            rows = [(t, lab, f"<generated review {i + 1}>") for i, (t, lab) in enumerate(synthetic_reviews(p.examples))]
            self.data_files = {"data": {"path": "<generated reviews>", "examples": len(rows),
                                        "sha256": sha256_text("\n".join(t + "\t" + lab for t, lab, _ in rows))}}
        else:
            path = resolve_path(self.base_dir, p.path)
            rows = [(t, lab, f"{path}:{n}") for t, lab, n in self._table(path)]
            self.data_files = {"train": file_record(path, self.base_dir, examples=len(rows))}
        # held-out splits: from their own files, or a fixed random share of the main data
        held = {}
        for split, given in (("valid", p.valid_path), ("test", p.test_path)):
            if given:
                path = resolve_path(self.base_dir, given)
                held[split] = [(t, lab, f"{path}:{n}") for t, lab, n in self._table(path)]
                self.data_files[split] = file_record(path, self.base_dir, examples=len(held[split]))
        order = list(range(len(rows)))
        random.Random(0).shuffle(order)
        cut = 0
        for split, fraction in (("valid", p.valid_fraction), ("test", p.test_fraction)):
            if split not in held:
                n = int(round(len(rows) * fraction))
                held[split] = [rows[i] for i in sorted(order[cut:cut + n])]
                cut += n
        taken = set(order[:cut])
        out["train"] = [r for i, r in enumerate(rows) if i not in taken]
        out.update(held)
        if not out["train"]:
            raise DataError(f"no training examples left after holding out validation and test data "
                            f"({len(rows)} rows); lower task.valid_fraction / task.test_fraction")
        return out

    def _table(self, path: Path) -> list[tuple[str, str, int]]:
        p = self.params
        return read_table(path, delimiter=p.delimiter, header=p.header, text_column=p.text_column,
                          label_column=p.label_column, encoding=p.encoding)

    def prepare(self, vocab: Optional[list[str]] = None, progress=None) -> None:
        p = self.params
        data = self._read()
        tokenized = {s: [(self.tokenize(t), lab, where) for t, lab, where in rows] for s, rows in data.items()}
        saved = unpack_vocab(vocab, ("tokens", "labels")) if vocab is not None else None
        if vocab is not None and saved is None:
            raise DataError("the project's vocabulary was not made by a sequence-classification task; start a "
                            "new project")
        if saved is None:
            counts = Counter(w for words, _, _ in tokenized["train"] for w in words)
            words = build_vocab(counts, [PAD, UNK], p.max_vocab, p.min_count)
            labels = sorted({lab for _, lab, _ in tokenized["train"]})
            if len(labels) < 2:
                where = tokenized["train"][0][2]
                raise DataError(f"the training data has only one label ({labels[0]!r}, e.g. at {where}): a "
                                f"classifier needs at least two")
        else:
            words, labels = saved["tokens"], saved["labels"]
        self.labels = list(labels)
        self._words = list(words)
        self._index = {w: i for i, w in enumerate(words)}
        label_id = {lab: i for i, lab in enumerate(labels)}
        self.vocab = pack_vocab({"tokens": list(words), "labels": list(labels)})
        self.sizes = {"vocab": len(words), "classes": len(labels)}
        unk = self._index[UNK]
        self._examples = {}
        self._texts = {}
        for split, rows in tokenized.items():
            items = []
            for words_, lab, where in rows:
                if lab not in label_id:
                    seen = "the project's classes" if saved is not None else "the labels of the training data"
                    raise DataError(f"{where}: label {lab!r} is not one of {seen} ({', '.join(labels)})")
                ids = [self._index.get(w, unk) for w in words_][:p.max_len or None] or [unk]
                items.append((ids, label_id[lab]))
            self._examples[split] = items
            self._texts[split] = [t for t, _, _ in data[split]]

    def _targets(self, items, T: int) -> torch.Tensor:
        return torch.tensor([y for _, y in items], dtype=torch.long)

    def _cut(self, item, length: int):
        ids, y = item
        return ids[:max(1, length)], y

    def encode(self, text: str) -> list[int]:
        unk = self._index.get(UNK, 1)
        return [self._index.get(w, unk) for w in self.tokenize(text)]

    def decode(self, ids) -> str:
        words = self._words
        return " ".join(words[i] if 0 <= i < len(words) else UNK for i in ids)

    # ---- loss and metrics ------------------------------------------------------------------------------
    @staticmethod
    def _logits(outputs, batch) -> torch.Tensor:
        logits = outputs["logits"]
        if logits.dim() == 3:  # the per-step path (probes): the class scores after each sequence's last token
            logits = last_step_logits(logits, batch.get("lengths"))
        return logits

    def loss(self, outputs, batch) -> torch.Tensor:
        return F.cross_entropy(self._logits(outputs, batch), batch["targets"])

    def loss_last_step(self, outputs, batch) -> torch.Tensor:
        return self.loss(outputs, batch)  # a classifier's loss is at the last step already

    def eval_update(self, acc: dict, outputs, batch: Batch) -> None:
        logits = self._logits(outputs, batch)
        n = int(batch["targets"].numel())
        acc["loss_sum"] = acc.get("loss_sum", 0.0) + float(F.cross_entropy(logits, batch["targets"])) * n
        acc["count"] = acc.get("count", 0) + n
        update_confusion(acc, len(self.labels), batch["targets"], logits.argmax(-1))

    def eval_finish(self, acc: dict) -> dict[str, Any]:
        k = len(self.labels)
        confusion = acc["confusion"].tolist() if "confusion" in acc else [[0] * k for _ in range(k)]
        return {"loss": acc.get("loss_sum", 0.0) / max(acc.get("count", 0), 1), **classification_scores(confusion),
                "confusion": confusion}

    def sample_text(self, length: int = 2000) -> str:
        texts = self._texts.get("valid") or self._texts.get("train", [])
        out, n = [], 0
        for t in texts:
            if out and n + len(t) + 1 > length:
                break
            out.append(t)
            n += len(t) + 1
        return "\n".join(out)[:length]
