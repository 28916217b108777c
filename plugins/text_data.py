"""Shared pieces of the text tasks (word LM, sentiment, tagging): reading files with clear errors, vocabularies,
padded batches of independent sequences, classification metrics and the Python standard library as a corpus.

Imported only by the task implementations (it imports torch).
"""

from __future__ import annotations

import codecs
import math
import os
import random
import stat
import sysconfig
from collections import Counter
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Optional, Sequence

import torch
import torch.nn.functional as F

from workbench.api import Batch, DataError, Task, sha256_file

PAD = "<pad>"
UNK = "<unk>"
#: word signatures for words outside the vocabulary (a rare number still looks like a number)
UNK_SIGNATURES = ("<unk-num>", "<unk-quote>", "<unk-punct>", "<unk-cap>")
IGNORE = -100  # target id of padded positions (cross_entropy's ignore_index)

#: marks the start of a section in a packed vocabulary list (see :func:`pack_vocab`); never a token
SECTION = "\x00"


# ---- files ------------------------------------------------------------------------------------------------------

def resolve_path(base_dir: Path, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_dir / p


def relative(path: Path, base_dir: Path) -> str:
    try:
        return os.path.relpath(path, base_dir)
    except ValueError:  # another drive on Windows
        return str(path)


#: the most a text task reads of one file whole into memory: its words and examples are then held as Python
#: objects, several times the file's size (the character LM streams its corpus instead: char_lm.scan_corpus)
MAX_TEXT_BYTES = 1 << 30

_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def open_data_file(path: Path, what: str = "data file") -> BinaryIO:
    """``path`` opened for reading, if it is a regular file; otherwise one :class:`DataError` that says what it is.

    A named pipe would block until someone writes to it, and a device such as ``/dev/zero`` never ends: neither
    is read.  The file is opened without blocking and checked on the open descriptor, so nothing can swap it
    between the check and the read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise DataError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise DataError(f"{what} is a folder, not a file: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise DataError(f"{what} is a folder, not a file: {path}")
        if not stat.S_ISREG(mode):
            kind = next((words for test, words in _KINDS if test(mode)), "not a regular file")
            raise DataError(f"{what} {path} is {kind}, not a regular file: only files on a disk are read as data")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def text_codec(encoding: str, head: bytes) -> str:
    """The codec to read a file with: ``encoding``, except that a UTF-8 file may start with a byte-order mark
    (``utf-8-sig`` drops it: it is not part of the first word), and a file the user left at the default UTF-8 that
    starts with a UTF-16 or UTF-32 byte-order mark is read as what the mark says (it cannot be UTF-8)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return encoding          # the read says "unknown text encoding"
    if name not in ("utf-8", "utf-8-sig"):
        return encoding
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8-sig"


def looks_binary(head: bytes, codec: str) -> int:
    """The offset of a NUL byte in ``head`` when the codec is one where text never has one (UTF-8, Latin-1, the
    Windows code pages); -1 otherwise.  A NUL in such a file means it is not text (an image, an archive...)."""
    if codecs.lookup(codec).name.startswith(("utf-16", "utf-32")):
        return -1
    return head.find(b"\x00")


def read_text(path: Path, encoding: str = "utf-8", what: str = "data file", max_bytes: int = 0) -> str:
    """The whole file as text; :class:`DataError` naming the file (and the byte offset of a bad byte).

    Only a regular file is read (:func:`open_data_file`), and at most ``max_bytes`` of it (default
    :data:`MAX_TEXT_BYTES`): a larger file is refused before anything is decoded."""
    limit = max_bytes or MAX_TEXT_BYTES
    with open_data_file(path, what) as fh:
        try:
            raw = fh.read(limit + 1)
        except OSError as exc:
            raise DataError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise DataError(f"{what} {path} is larger than {limit / 1e6:,.0f} MB, the most this task reads into memory; "
                        f"use a smaller file")
    codec = text_codec(encoding, raw[:4])
    nul = looks_binary(raw[:1 << 16], codec)
    if nul >= 0:
        raise DataError(f"{path} is not text: it has a NUL byte at offset {nul} (a binary file?); if it is UTF-16 or "
                        f"UTF-32 text, set task.encoding")
    try:
        return raw.decode(codec)
    except LookupError:
        raise DataError(f"unknown text encoding {encoding!r} for {path}") from None
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path} is not valid {encoding}: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
                        f"(line {line}, {exc.reason}); set task.encoding (e.g. latin-1 or cp1252) or convert the "
                        f"file") from None


def file_record(path: Path, base_dir: Path, **extra: Any) -> dict[str, Any]:
    return {"path": relative(path, base_dir), "sha256": sha256_file(path), **extra}


# ---- vocabularies -------------------------------------------------------------------------------------------------

def build_vocab(counts: Counter, specials: Sequence[str], max_vocab: int = 0, min_count: int = 1) -> list[str]:
    """``specials`` first, then words by falling frequency (ties alphabetical), at least ``min_count`` times,
    at most ``max_vocab`` entries in all (0: no limit)."""
    words = sorted((w for w, n in counts.items() if n >= min_count and w not in specials),
                   key=lambda w: (-counts[w], w))
    vocab = list(specials) + words
    if max_vocab:
        vocab = vocab[:max(max_vocab, len(specials))]
    return vocab


def unk_signature(word: str) -> str:
    """Which unknown-word id a word outside the vocabulary gets, from its shape."""
    if not word:
        return UNK
    c = word[0]
    if c.isdigit():
        return "<unk-num>"
    if "'" in word or '"' in word:
        return "<unk-quote>"
    if not c.isalnum() and c != "_":
        return "<unk-punct>"
    if c.isupper():
        return "<unk-cap>"
    return UNK


def pack_vocab(sections: dict[str, list[str]]) -> list[str]:
    """Several vocabularies in the one list of strings a project file keeps (tokens, then labels...)."""
    out: list[str] = []
    for name, items in sections.items():
        out.append(SECTION + name)
        out.extend(items)
    return out


def unpack_vocab(packed: Optional[list[str]], names: Sequence[str]) -> Optional[dict[str, list[str]]]:
    """Inverse of :func:`pack_vocab`; None when ``packed`` is None or is not a packed list with those sections."""
    if not packed or not packed[0].startswith(SECTION):
        return None
    out: dict[str, list[str]] = {}
    current: Optional[list[str]] = None
    for item in packed:
        if item.startswith(SECTION):
            current = out.setdefault(item[len(SECTION):], [])
        else:
            current.append(item)  # type: ignore[union-attr]
    return out if all(n in out for n in names) else None


# ---- padded batches of independent sequences ------------------------------------------------------------------

def batch_plan(lengths: Sequence[int], batch_size: int, shuffle: bool, epoch: int, seed: int) -> list[list[int]]:
    """Example indices per batch.  Training: shuffled per (seed, epoch), then sorted by length within pools of 50
    batches so that little padding is wasted, then the batches shuffled.  Evaluation: in order.  A pure function
    of its arguments (training resumes exactly)."""
    n = len(lengths)
    order = list(range(n))
    if not shuffle:
        return [order[i:i + batch_size] for i in range(0, n, batch_size)]
    rng = random.Random(seed * 1_000_003 + epoch)
    rng.shuffle(order)
    pool = 50 * batch_size
    batches: list[list[int]] = []
    for i in range(0, n, pool):
        chunk = sorted(order[i:i + pool], key=lambda j: lengths[j])
        batches.extend(chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def pad_tokens(seqs: Sequence[Sequence[int]], pad: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``[T, B]`` token ids padded with ``pad``, and the lengths ``[B]``."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    T = int(lengths.max()) if len(seqs) else 0
    out = torch.full((T, len(seqs)), pad, dtype=torch.long)
    for b, s in enumerate(seqs):
        out[:len(s), b] = torch.as_tensor(s, dtype=torch.long)
    return out, lengths


def last_step_logits(logits: torch.Tensor, lengths: Optional[torch.Tensor]) -> torch.Tensor:
    """``[T, B, C]`` -> ``[B, C]`` at each sequence's last valid step (the per-step path of a classifier)."""
    if lengths is None:
        return logits[-1]
    idx = (lengths.to(logits.device).long() - 1).clamp(min=0, max=logits.shape[0] - 1)
    return logits[idx, torch.arange(logits.shape[1], device=logits.device)]


class PaddedSequenceTask(Task):
    """Independent sequences, padded per batch: ``tokens [T, B]``, ``lengths [B]`` and the task's ``targets``.

    Subclasses fill ``self._examples[split]`` with ``(token ids, target)`` pairs and implement :meth:`_targets`.
    ``chunk_len`` does not apply: every batch holds whole sequences.
    """

    stateful = False
    generative = False
    time_major = ("tokens",)   # targets [B] here; a task with per-token targets adds "targets"
    count_unit = "sequences"   # one target per sequence; a task with per-token targets counts tokens

    def __init__(self, params, base_dir=None):
        super().__init__(params, base_dir)
        self._examples: dict[str, list[tuple[list[int], Any]]] = {}

    def _split(self, split: str) -> list[tuple[list[int], Any]]:
        data = self._examples.get(split)
        if not data:
            raise DataError(f"the {split} split is empty: give the task {split} data (or a larger file)")
        return data

    def num_batches(self, split: str, batch_size: int, chunk_len: int) -> int:
        return math.ceil(len(self._split(split)) / batch_size)

    def _targets(self, items: list[tuple[list[int], Any]], T: int) -> torch.Tensor:
        raise NotImplementedError

    def make_batch(self, items: list[tuple[list[int], Any]]) -> Batch:
        tokens, lengths = pad_tokens([ids for ids, _ in items])
        return {"tokens": tokens, "lengths": lengths, "targets": self._targets(items, tokens.shape[0])}

    def batches(self, split: str, batch_size: int, chunk_len: int, *, epoch: int = 0, start: int = 0,
                seed: int = 0) -> Iterator[Batch]:
        data = self._split(split)
        plan = batch_plan([len(ids) for ids, _ in data], batch_size, split == "train", epoch, seed)
        for index in range(start, len(plan)):
            yield self.make_batch([data[i] for i in plan[index]])

    def probe_batch(self, batch_size: int, length: int) -> Batch:
        """The first ``batch_size`` validation sequences, cut to their first ``length`` tokens."""
        data = self._examples.get("valid") or self._split("train")
        return self.make_batch([self._cut(item, max(1, length)) for item in data[:batch_size]])

    def _cut(self, item: tuple[list[int], Any], length: int) -> tuple[list[int], Any]:
        """An example shortened to its first ``length`` tokens."""
        raise NotImplementedError

    def count(self, batch) -> int:
        return int(batch["lengths"].numel())


# ---- classification metrics ---------------------------------------------------------------------------------------

def update_confusion(acc: dict, n_classes: int, targets: torch.Tensor, predictions: torch.Tensor) -> None:
    """Add ``(target, prediction)`` pairs (padding already removed) to ``acc["confusion"]`` ([true][predicted])."""
    flat = (targets.long() * n_classes + predictions.long()).cpu()
    counts = torch.bincount(flat, minlength=n_classes * n_classes).view(n_classes, n_classes)
    if "confusion" in acc:
        acc["confusion"] = acc["confusion"] + counts
    else:
        acc["confusion"] = counts


def classification_scores(confusion: Sequence[Sequence[int]]) -> dict[str, float]:
    """Accuracy and macro F1 of a confusion matrix (rows: true class, columns: predicted class).

    F1 per class is 2·TP / (2·TP + FP + FN); the macro average is over the classes that occur as a target or as a
    prediction (a class absent from both has no F1 to average).
    """
    k = len(confusion)
    total = sum(sum(row) for row in confusion)
    correct = sum(confusion[i][i] for i in range(k))
    f1s = []
    for c in range(k):
        tp = confusion[c][c]
        fn = sum(confusion[c]) - tp
        fp = sum(confusion[r][c] for r in range(k)) - tp
        if 2 * tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    return {"accuracy": correct / total if total else 0.0, "macro_f1": sum(f1s) / len(f1s) if f1s else 0.0}


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the targets that are not :data:`IGNORE`."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE)


# ---- the Python standard library as a corpus ---------------------------------------------------------------------

_SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__", "test", "tests", "idle_test"}


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_sources() -> Iterator[tuple[str, str]]:
    """``(relative path, source)`` of this interpreter's standard-library ``.py`` files (tests left out), in a
    fixed order; files that are not UTF-8 are skipped."""
    root = stdlib_root()
    found = False
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            path = Path(dirpath) / name
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            found = True
            yield relative(path, root).replace(os.sep, "/"), text
    if not found:
        raise DataError(f"no Python source found in the standard library folder {root}")


def split_of(name: str, valid_fraction: float, test_fraction: float) -> str:
    """A stable train/valid/test assignment of a source file by a hash of its name (whole files per split)."""
    import zlib
    u = (zlib.crc32(name.encode("utf-8")) % 10_000) / 10_000
    if u < valid_fraction:
        return "valid"
    if u < valid_fraction + test_fraction:
        return "test"
    return "train"
