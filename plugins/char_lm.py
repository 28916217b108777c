"""Character-level language model on any text file (default: the Python standard library's source)."""

from __future__ import annotations

import math
import os
import sysconfig
from pathlib import Path
from typing import Optional

import torch

from workbench.core.errors import DataError
from workbench.core.tasks import StreamLMTask, sha256_file, sha256_text

UNK = "\ufffd"  # id 0: any character the vocabulary has not seen


def stdlib_corpus(max_chars: int) -> str:
    """The ``.py`` files of this interpreter's standard library, in a fixed order, up to ``max_chars``."""
    root = Path(sysconfig.get_paths()["stdlib"])
    parts: list[str] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "__pycache__", "dist-packages"))
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            try:
                text = (Path(dirpath) / name).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            parts.append(text)
            total += len(text) + 1
            if total >= max_chars:
                return "\n".join(parts)[:max_chars]
    if not parts:
        raise DataError(f"no Python source found in the standard library folder {root}")
    return "\n".join(parts)[:max_chars]


def read_text_file(path: Path, encoding: str, max_chars: int) -> str:
    if not path.exists():
        raise DataError(f"corpus file not found: {path}")
    if path.is_dir():
        raise DataError(f"corpus is a folder, not a text file: {path}")
    try:
        with open(path, "rb") as fh:
            # max_chars characters need at most 4 bytes each in UTF-8
            raw = fh.read(max_chars * 4 if encoding.lower().replace("-", "") == "utf8" else max_chars)
    except OSError as exc:
        raise DataError(f"cannot read corpus {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode(encoding)
    except LookupError:
        raise DataError(f"unknown text encoding {encoding!r} for {path}") from None
    except UnicodeDecodeError as exc:
        if exc.end >= len(raw) - 3 and exc.reason.startswith("unexpected end"):
            text = raw[:exc.start].decode(encoding)  # we cut a multi-byte character in half
        else:
            raise DataError(
                f"{path} is not valid {encoding}: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
                f"({exc.reason}); set task.encoding (e.g. latin-1 or cp1252) or convert the file") from None
    text = text[:max_chars]
    if not text.strip():
        raise DataError(f"corpus {path} is empty")
    return text


class CharLMTask(StreamLMTask):
    stream_unit = "characters"

    def empty_split_hint(self, split: str) -> str:
        return "; give the corpus more text or change the fractions"

    def __init__(self, params, base_dir=None):
        super().__init__(params, base_dir)
        self._texts: dict[str, str] = {}
        self._index: dict[str, int] = {}

    # ---- data --------------------------------------------------------------------------------------------
    def prepare(self, vocab: Optional[list[str]] = None, progress=None) -> None:
        p = self.params
        if p.corpus:
            path = Path(p.corpus)
            if not path.is_absolute():
                path = self.base_dir / path
            text = read_text_file(path, p.encoding, p.max_chars)
            try:
                rel = os.path.relpath(path, self.base_dir)
            except ValueError:  # another drive on Windows
                rel = str(path)
            self.data_files = {"corpus": {"path": rel, "sha256": sha256_file(path), "chars": len(text)}}
        else:
            text = stdlib_corpus(p.max_chars)
            self.data_files = {"corpus": {"path": "<python-stdlib>", "sha256": sha256_text(text),
                                          "chars": len(text)}}
        n = len(text)
        n_valid = int(n * p.valid_fraction)
        n_test = int(n * p.test_fraction)
        n_train = n - n_valid - n_test
        if n_train < 2:
            raise DataError(f"the corpus has only {n} characters: too small to train on")
        self._texts = {"train": text[:n_train], "valid": text[n_train:n_train + n_valid],
                       "test": text[n_train + n_valid:]}
        if vocab is None:
            vocab = [UNK] + sorted(set(self._texts["train"]) - {UNK})
        self.vocab = list(vocab)
        self._index = {ch: i for i, ch in enumerate(self.vocab)}
        self.sizes = {"vocab": len(self.vocab)}
        self._splits = {k: torch.tensor(self.encode(v), dtype=torch.long) for k, v in self._texts.items()}
        self._cache.clear()

    def encode(self, text: str) -> list[int]:
        get = self._index.get
        return [get(ch, 0) for ch in text]

    def decode(self, ids) -> str:
        v = self.vocab or []
        return "".join(v[i] if 0 <= i < len(v) else UNK for i in ids)

    # ---- loss and metrics ------------------------------------------------------------------------------
    def eval_finish(self, acc: dict) -> dict:
        loss = acc.get("loss_sum", 0.0) / max(acc.get("count", 0), 1)
        return {"loss": loss, "bpc": loss / math.log(2), "ppl": math.exp(min(loss, 50.0))}

    # ---- text ----------------------------------------------------------------------------------------------
    def sample_prompt(self) -> str:
        return "\n"

    def sample_text(self, length: int = 2000) -> str:
        text = self._texts.get("valid") or self._texts.get("train", "")
        return text[:length]
