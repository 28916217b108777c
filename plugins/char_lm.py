"""Character-level language model on any text file (default: the Python standard library's source)."""

from __future__ import annotations

import codecs
import math
import os
import sysconfig
import tempfile
import threading
from pathlib import Path
from typing import IO, Callable, Iterator, Optional

import numpy as np
import torch

from workbench.api import DataError, StreamLMTask, sha256_file, sha256_text
from workbench_plugins.text_data import looks_binary, open_data_file, resolve_path, text_codec

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


#: bytes read at a time when a corpus file is scanned and encoded (memory used is a small multiple of this)
CHUNK_BYTES = 4 << 20
#: corpora of at most this many characters are held in memory as one int64 tensor per split (as small corpora
#: always were); longer ones stay in a temporary file of token ids and every batch is read from it
IN_MEMORY_CHARS = 16_000_000
#: characters of each split kept as text (sample_text, the inspection views)
TEXT_PREFIX_CHARS = 200_000
#: a character takes at most this many bytes in UTF-8, UTF-16 and UTF-32: reading max_chars characters never needs
#: more than max_chars times this, so no more is read (before anything is decoded) whatever the file holds
MAX_BYTES_PER_CHAR = 4

# ASCII bytes are characters of these codecs one for one: a chunk of pure ASCII needs no decoding
_ASCII_COMPATIBLE = ("utf-8", "ascii", "latin-1", "iso8859", "cp125")

Progress = Optional[Callable[[str, int, int], None]]


def _is_ascii_compatible(encoding: str) -> bool:
    name = codecs.lookup(encoding).name
    return name.startswith(_ASCII_COMPATIBLE)


def _code_points(path: Path, encoding: str, max_chars: int, stage: str = "", progress: Progress = None,
                 chunk_bytes: int = 0) -> Iterator[np.ndarray]:
    """The code points of the first ``max_chars`` characters of ``path``, one numpy array per chunk read.

    Decoding is incremental (a character cut by a chunk boundary is completed by the next chunk); a byte that is
    not valid in ``encoding`` raises :class:`DataError` naming the file, the byte offset and the line.  A
    character cut off by the end of the file is dropped, as it always was.  ``progress(stage, bytes done, bytes
    in all)`` is called after every chunk.  Only a regular file is read (not a pipe or a device), and no more than
    ``max_chars`` characters can take (:data:`MAX_BYTES_PER_CHAR`), before decoding.
    """
    fh = open_data_file(path, "corpus")
    with fh:
        try:
            head = fh.read(4)
            fh.seek(0)
            total = os.fstat(fh.fileno()).st_size
        except OSError as exc:
            raise DataError(f"cannot read corpus {path}: {exc.strerror or exc}") from None
        codec = text_codec(encoding, head)
        try:
            decoder = codecs.getincrementaldecoder(codec)()
            fast = _is_ascii_compatible(codec)
        except LookupError:
            raise DataError(f"unknown text encoding {encoding!r} for {path}") from None
        yield from _decoded_chunks(fh, path, encoding, codec, decoder, fast, max_chars, total, stage, progress,
                                   chunk_bytes or CHUNK_BYTES)


def _decoded_chunks(fh: IO[bytes], path: Path, encoding: str, codec: str, decoder: codecs.IncrementalDecoder,
                    fast: bool, max_chars: int, total: int, stage: str, progress: Progress,
                    chunk_bytes: int) -> Iterator[np.ndarray]:
    left, offset, newlines = max_chars, 0, 0
    budget = max_chars * MAX_BYTES_PER_CHAR + 4      # + a byte-order mark
    while left > 0:
        try:
            raw = fh.read(min(chunk_bytes, budget - offset))
        except OSError as exc:
            raise DataError(f"cannot read corpus {path}: {exc.strerror or exc}") from None
        if offset == 0:
            nul = looks_binary(raw[:1 << 16], codec)
            if nul >= 0:
                raise DataError(f"corpus {path} is not text: it has a NUL byte at offset {nul} (a binary "
                                f"file?); if it is UTF-16 or UTF-32 text, set task.encoding")
        final = not raw
        if fast and raw.isascii() and not decoder.getstate()[0]:
            arr = np.frombuffer(raw, dtype=np.uint8)
        else:
            try:
                text = decoder.decode(raw, final=final)
            except UnicodeDecodeError as exc:
                if final and exc.reason.startswith("unexpected end"):
                    text = ""  # a character cut off by the end of the file
                else:
                    pending = len(exc.object) - len(raw)  # bytes of a character begun in the previous chunk
                    at = offset - pending + exc.start
                    line = newlines + raw[:max(0, exc.start - pending)].count(b"\n") + 1
                    raise DataError(
                        f"{path} is not valid {encoding}: byte 0x{exc.object[exc.start]:02x} at offset {at} "
                        f"(line {line}, {exc.reason}); set task.encoding (e.g. latin-1 or cp1252) or convert "
                        f"the file") from None
            arr = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
        if len(arr) > left:
            arr = arr[:left]
        left -= len(arr)
        offset += len(raw)
        newlines += raw.count(b"\n")
        if len(arr):
            yield arr
        if progress is not None:
            progress(stage, offset, total)
        if final:
            break
    if progress is not None and offset < total:
        progress(stage, total, total)  # stopped at max_chars (or the end of the training split): this stage is done


def _chars_present(arr: np.ndarray) -> np.ndarray:
    """The distinct code points in ``arr``."""
    if arr.dtype == np.uint8:
        return np.flatnonzero(np.bincount(arr, minlength=256))
    return np.unique(arr)


def _as_text(arr: np.ndarray) -> str:
    return arr.astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")


class DiskTokens:
    """A stretch ``[start, stop)`` of a file of token ids, read on demand (never held in memory as a whole)."""

    def __init__(self, fh: IO[bytes], dtype: np.dtype, start: int, stop: int):
        self.fh, self.dtype, self.start, self.stop = fh, np.dtype(dtype), start, stop
        self._lock = threading.Lock()  # for seek + read where os.pread is missing (Windows)

    def numel(self) -> int:
        return self.stop - self.start

    def read(self, begin: int, end: int) -> np.ndarray:
        """Token ids ``[begin, end)`` of this stretch."""
        size = self.dtype.itemsize
        count = max(0, end - begin)
        offset = (self.start + begin) * size
        if hasattr(os, "pread"):
            data = os.pread(self.fh.fileno(), count * size, offset)
        else:
            with self._lock:
                self.fh.seek(offset)
                data = self.fh.read(count * size)
        if len(data) != count * size:
            raise DataError("the temporary file of token ids was cut short (was it deleted?)")
        return np.frombuffer(data, dtype=self.dtype)


class LazyStreams:
    """``[n, B]`` streams of a :class:`DiskTokens` split, as :meth:`StreamLMTask._streams` cuts a tensor; slicing
    the time axis reads only the rows asked for (B short reads per batch)."""

    def __init__(self, tokens: DiskTokens, batch_size: int, n: int):
        self.tokens, self.batch_size, self.n = tokens, batch_size, n
        self.shape = (n, batch_size)

    def __getitem__(self, index: slice) -> torch.Tensor:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("LazyStreams supports only contiguous slices of the time axis")
        begin, end, _ = index.indices(self.n)
        end = max(begin, end)
        columns = [self.tokens.read(b * self.n + begin, b * self.n + end) for b in range(self.batch_size)]
        out = np.stack(columns, axis=1) if columns else np.zeros((end - begin, 0), dtype=np.int64)
        return torch.from_numpy(out.astype(np.int64))


def scan_corpus(path: Path, encoding: str, max_chars: int, valid_fraction: float, test_fraction: float,
                vocab: Optional[list[str]], progress: Progress = None):
    """Read a corpus file in chunks: count its characters, build the vocabulary of the training split (unless
    ``vocab`` is given) and encode every character to its id.

    Returns ``(vocab, sizes, ids, texts)``: ``sizes`` the number of characters of train/valid/test; ``ids`` one
    int64 tensor per split when the corpus is small (:data:`IN_MEMORY_CHARS`), else one :class:`DiskTokens` per
    split over an anonymous temporary file; ``texts`` the first :data:`TEXT_PREFIX_CHARS` characters of each split.
    The result is the same as decoding the whole text and splitting it, but memory stays bounded.
    """
    n = 0
    nonblank = False
    for arr in _code_points(path, encoding, max_chars, "counting characters", progress):
        n += len(arr)
        if not nonblank:
            nonblank = bool("".join(map(chr, _chars_present(arr).tolist())).strip())
    if n == 0 or not nonblank:
        raise DataError(f"corpus {path} is empty")
    n_valid = int(n * valid_fraction)
    n_test = int(n * test_fraction)
    n_train = n - n_valid - n_test
    if n_train < 2:
        raise DataError(f"the corpus has only {n} characters: too small to train on")
    bounds = {"train": (0, n_train), "valid": (n_train, n_train + n_valid), "test": (n_train + n_valid, n)}

    if vocab is None:
        present: set[int] = set()
        seen = 0
        for arr in _code_points(path, encoding, n_train, "vocabulary scan", progress):
            present.update(_chars_present(arr).tolist())
            seen += len(arr)
        vocab = [UNK] + sorted({chr(c) for c in present} - {UNK})
    vocab = list(vocab)

    # code point -> id: a sorted table searched in bulk (a character outside the vocabulary gets id 0, UNK)
    table = {}
    for i, ch in enumerate(vocab):
        if len(ch) == 1:
            table.setdefault(ord(ch), i)
    points = np.array(sorted(table), dtype=np.int64)
    out_dtype = np.uint8 if len(vocab) <= 256 else np.uint16 if len(vocab) <= 65536 else np.int32
    ids_of = np.array([table[c] for c in sorted(table)], dtype=out_dtype)
    ascii_ids = np.zeros(256, dtype=out_dtype)
    for c, i in table.items():
        if c < 256:
            ascii_ids[c] = i

    def encode(arr: np.ndarray) -> np.ndarray:
        if arr.dtype == np.uint8:
            return ascii_ids[arr]
        if not len(points):
            return np.zeros(len(arr), dtype=out_dtype)
        where = np.searchsorted(points, arr).clip(max=len(points) - 1)
        return np.where(points[where] == arr, ids_of[where], 0).astype(out_dtype, copy=False)

    in_memory = n <= IN_MEMORY_CHARS
    parts: list[np.ndarray] = []
    fh = None if in_memory else tempfile.TemporaryFile(prefix="seqwb-tokens-")
    texts = {k: [] for k in bounds}
    pos = 0
    try:
        for arr in _code_points(path, encoding, n, "encoding", progress):
            ids = encode(arr)
            if in_memory:
                parts.append(ids)
            else:
                fh.write(ids.tobytes())
            for split, (lo, hi) in bounds.items():
                a, b = max(lo, pos), min(hi, lo + TEXT_PREFIX_CHARS, pos + len(arr))
                if a < b:
                    texts[split].append(_as_text(arr[a - pos:b - pos]))
            pos += len(arr)
        if fh is not None:
            fh.flush()
    except OSError as exc:
        if fh is not None:
            fh.close()
        raise DataError(f"cannot write the temporary file of token ids for {path}: {exc.strerror or exc}") from None
    if pos != n:
        raise DataError(f"corpus {path} changed while it was read ({n} characters, then {pos})")
    if in_memory:
        every = np.concatenate(parts) if parts else np.zeros(0, dtype=out_dtype)
        splits = {k: torch.from_numpy(every[lo:hi].astype(np.int64)) for k, (lo, hi) in bounds.items()}
    else:
        splits = {k: DiskTokens(fh, out_dtype, lo, hi) for k, (lo, hi) in bounds.items()}
    sizes = {k: hi - lo for k, (lo, hi) in bounds.items()}
    return vocab, sizes, splits, {k: "".join(v) for k, v in texts.items()}


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
            path = resolve_path(self.base_dir, p.corpus)
            if not path.exists():
                raise DataError(f"corpus file not found: {path}")
            if path.is_dir():
                raise DataError(f"corpus is a folder, not a text file: {path}")
            # streamed in chunks: a corpus of any size is read with bounded memory (see scan_corpus)
            vocab, sizes, splits, texts = scan_corpus(path, p.encoding, p.max_chars, p.valid_fraction,
                                                      p.test_fraction, vocab, progress)
            try:
                rel = os.path.relpath(path, self.base_dir)
            except ValueError:  # another drive on Windows
                rel = str(path)
            self.data_files = {"corpus": {"path": rel, "sha256": sha256_file(path), "chars": sum(sizes.values())}}
            self._texts = texts
            self.vocab = list(vocab)
            self._index = {ch: i for i, ch in enumerate(self.vocab)}
            self.sizes = {"vocab": len(self.vocab)}
            self._splits = splits
            self._cache.clear()
            return
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

    def _streams(self, split: str, batch_size: int):
        data = self._splits.get(split)
        if not isinstance(data, DiskTokens):
            return super()._streams(split, batch_size)
        key = (split, batch_size)
        if key not in self._cache:
            if data.numel() == 0:
                raise DataError(f"the {split} split is empty{self.empty_split_hint(split)}")
            n = data.numel() // batch_size
            if n < 2:
                raise DataError(f"the {split} split has {data.numel()} {self.stream_unit}: fewer than two per "
                                f"stream at batch size {batch_size}; use a smaller batch_size or more text")
            self._cache[key] = LazyStreams(data, batch_size, n)
        return self._cache[key]

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
