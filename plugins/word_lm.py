"""Word-level language model on Penn-Treebank-format files, or on English read from this machine.

PTB format (Mikolov's ``simple-examples/data``): ``*.train.txt``, ``*.valid.txt``, ``*.test.txt``, one sentence per
line, words separated by spaces, rare words already written as ``<unk>``.  An ``<eos>`` token ends every line.
The vocabulary comes from the training file; words outside it read as ``<unk>``.  Nothing is ever downloaded.

The ``python-docs`` source builds such a corpus from the docstrings and comments of the Python standard library
installed here (:func:`python_docs_sentences`): lower-cased, punctuation split off, numbers written ``N`` (as in
PTB), whole files per split.  :func:`write_ptb_files` writes it out as PTB-format files.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Iterator, Optional

import torch

from workbench.api import DataError, StreamLMTask, sha256_text
from workbench_plugins.text_data import (UNK, build_vocab, file_record, read_text, resolve_path, split_of,
                                         stdlib_sources)

EOS = "<eos>"
SPLITS = ("train", "valid", "test")

# ---- English from the standard library's docstrings and comments ---------------------------------------------

# Comments and string literals in source order, so that a '#' inside a string or a quote inside a comment is
# never mistaken for the other.  Triple-quoted strings that start a line are docstrings (or string statements).
_LITERALS = re.compile(
    r'(?P<comment>#[^\n]*)'
    r'|(?P<prefix>[rRbBuUfF]{0,2})(?P<q>"""|\'\'\')(?P<body>(?:\\.|(?!(?P=q)).)*)(?P=q)'
    r'|"(?:\\.|[^"\\\n])*"'
    r"|'(?:\\.|[^'\\\n])*'", re.S)
_WORD = re.compile(r"[a-z_][a-z0-9_]*(?:'[a-z]+)?|\d+(?:[.,]\d+)*|[^\sa-z0-9_]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Za-z])")


def doc_paragraphs(source: str) -> list[str]:
    """Docstrings and blocks of whole-line comments of one Python source file, as paragraphs of text."""
    out: list[str] = []
    block: list[str] = []
    block_end = -1          # line number of the last comment in ``block``
    line, pos = 1, 0
    for m in _LITERALS.finditer(source):
        line += source.count("\n", pos, m.start())
        pos = m.start()
        head = source[source.rfind("\n", 0, m.start()) + 1:m.start()]
        at_line_start = not head.strip()
        if m.group("comment") is not None:
            text = m.group("comment").lstrip("#").strip()
            if at_line_start and not text.startswith(("!", "-*-")):
                if block and line != block_end + 1:
                    out.append(" ".join(block))
                    block = []
                if text:
                    block.append(text)
                block_end = line
        elif m.group("q") and at_line_start and "b" not in m.group("prefix").lower():
            if block:
                out.append(" ".join(block))
                block = []
            out.append(m.group("body"))
    if block:
        out.append(" ".join(block))
    return out


def normalize(text: str) -> list[str]:
    """PTB-style words: lower case, punctuation split off, numbers written ``N``."""
    return ["N" if w[0].isdigit() else w for w in _WORD.findall(text.lower())]


def paragraph_sentences(paragraph: str) -> Iterator[list[str]]:
    """Sentences of a docstring or comment block; doctest lines and code-like fragments are left out."""
    lines = [ln for ln in paragraph.splitlines() if not ln.strip().startswith((">>>", "..."))]
    text = " ".join(" ".join(lines).split())
    for sentence in _SENTENCE_END.split(text):
        words = normalize(sentence)
        if not 3 <= len(words) <= 50:
            continue
        if sum(w[0].isalpha() for w in words) < 0.6 * len(words):  # mostly symbols: code, not prose
            continue
        yield words


def python_docs_sentences(max_words: int, valid_fraction: float = 0.05,
                          test_fraction: float = 0.05) -> dict[str, list[list[str]]]:
    """Sentences from the standard library's docstrings and comments, split by file, up to ``max_words`` words
    (counting one ``<eos>`` per sentence)."""
    out: dict[str, list[list[str]]] = {s: [] for s in SPLITS}
    total = 0
    for name, source in stdlib_sources():
        split = split_of(name, valid_fraction, test_fraction)
        for paragraph in doc_paragraphs(source):
            for words in paragraph_sentences(paragraph):
                out[split].append(words)
                total += len(words) + 1
        if total >= max_words:
            break
    for split, fraction in (("valid", valid_fraction), ("test", test_fraction)):
        if not out[split]:  # a small corpus may have no file that hashes into this split: use train's tail
            n = max(1, int(len(out["train"]) * fraction))
            out[split], out["train"] = out["train"][-n:], out["train"][:-n]
    if len(out["train"]) < 10:
        raise DataError("too little text in the standard library's docstrings: raise task.max_words")
    return out


def write_ptb_files(folder: Path | str, prefix: str = "python-docs", max_words: int = 500_000,
                    max_vocab: int = 10_000) -> dict[str, Path]:
    """Write the ``python-docs`` corpus as PTB-format files ``{prefix}.train.txt`` ... in ``folder``, with the
    words outside the ``max_vocab`` most frequent training words written as ``<unk>`` (as in PTB)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sents = python_docs_sentences(max_words)
    counts = Counter(w for s in sents["train"] for w in s)
    keep = set(build_vocab(counts, [UNK, EOS], max_vocab))
    paths = {}
    for split, rows in sents.items():
        path = folder / f"{prefix}.{split}.txt"
        path.write_text("".join(" " + " ".join(w if w in keep else UNK for w in s) + " \n" for s in rows),
                        encoding="utf-8")
        paths[split] = path
    return paths


# ---- reading PTB-format files ------------------------------------------------------------------------------------

def read_ptb(path: Path, encoding: str = "utf-8") -> list[str]:
    """The words of a PTB-format file with ``<eos>`` after every line."""
    text = read_text(path, encoding, "word-lm data file")
    words: list[str] = []
    for line in text.splitlines():
        words.extend(line.split())
        words.append(EOS)
    if not any(w != EOS for w in words):
        raise DataError(f"{path} has no words")
    return words


def find_ptb_files(folder: Path, explicit: dict[str, str], base_dir: Path) -> dict[str, Path]:
    """The three files: explicit paths where given, else the one ``*.{split}.txt`` in ``folder``."""
    found: dict[str, Path] = {}
    for split in SPLITS:
        if explicit.get(split):
            found[split] = resolve_path(base_dir, explicit[split])
            continue
        matches = sorted(folder.glob(f"*.{split}.txt")) if folder.is_dir() else []
        if len(matches) > 1:
            names = ", ".join(m.name for m in matches)
            raise DataError(f"several files match *.{split}.txt in {folder}: {names}; set task.{split} to the one "
                            f"you mean")
        if matches:
            found[split] = matches[0]
    missing = [s for s in ("train", "valid") if s not in found]
    if missing:
        where = f"{folder}" if folder.is_dir() else f"{folder} (no such folder)"
        raise DataError(
            f"no word-LM data: looked for *.train.txt, *.valid.txt and *.test.txt in {where} and found no "
            f"{' or '.join('*.' + s + '.txt' for s in missing)}. Nothing is downloaded: point task.data_dir at the "
            f"folder holding your own copy of the PTB files (ptb.train.txt, ptb.valid.txt, ptb.test.txt), or set "
            f"task.train / task.valid / task.test, or use task.source=python-docs")
    return found


# ---- the task ----------------------------------------------------------------------------------------------------

class WordLMTask(StreamLMTask):
    stream_unit = "words"

    def empty_split_hint(self, split: str) -> str:
        return f": give word-lm a *.{split}.txt file (task.{split})"

    def __init__(self, params, base_dir=None):
        super().__init__(params, base_dir)
        self._words: dict[str, list[str]] = {}
        self._index: dict[str, int] = {}

    # ---- data --------------------------------------------------------------------------------------------
    def prepare(self, vocab: Optional[list[str]] = None, progress=None) -> None:
        p = self.params
        if p.source == "python-docs":
            sents = python_docs_sentences(p.max_words)
            self._words = {s: [w for sent in rows for w in (*sent, EOS)] for s, rows in sents.items()}
            self.data_files = {s: {"path": f"<python-stdlib-docs:{s}>", "sha256": sha256_text(" ".join(w)),
                                   "words": len(w)} for s, w in self._words.items()}
        else:
            folder = resolve_path(self.base_dir, p.data_dir or ".")
            files = find_ptb_files(folder, {"train": p.train, "valid": p.valid, "test": p.test}, self.base_dir)
            self._words = {s: read_ptb(path, p.encoding) for s, path in files.items()}
            self._words.setdefault("test", [])
            self.data_files = {s: file_record(path, self.base_dir, words=len(self._words[s]))
                               for s, path in files.items()}
        if vocab is None:
            vocab = build_vocab(Counter(self._words["train"]), [UNK, EOS], p.max_vocab)
        elif UNK not in vocab or EOS not in vocab:
            raise DataError(f"the project's vocabulary has no {UNK} or {EOS}: it was not made by a word LM; "
                            f"start a new project")
        self.vocab = list(vocab)
        self._index = {w: i for i, w in enumerate(self.vocab)}
        self.eos_id = self._index[EOS]
        self.sizes = {"vocab": len(self.vocab)}
        unk = self._index[UNK]
        self._splits = {s: torch.tensor([self._index.get(w, unk) for w in ws], dtype=torch.long)
                        for s, ws in self._words.items()}
        self._cache.clear()

    def encode(self, text: str) -> list[int]:
        unk = self._index[UNK]
        out: list[int] = []
        for chunk in text.split():
            if chunk in self._index:
                out.append(self._index[chunk])
            elif self.params.source == "python-docs":
                out.extend(self._index.get(w, unk) for w in normalize(chunk))
            else:
                out.append(unk)
        return out

    def decode(self, ids) -> str:
        v = self.vocab or []
        return "".join(" " + (v[i] if 0 <= i < len(v) else UNK) for i in ids)

    # ---- loss and metrics ------------------------------------------------------------------------------
    def eval_finish(self, acc: dict) -> dict:
        loss = acc.get("loss_sum", 0.0) / max(acc.get("count", 0), 1)
        return {"loss": loss, "ppl": math.exp(min(loss, 50.0))}

    # ---- generation and inspection ---------------------------------------------------------------------
    def prime(self, model, prompt: str, device, batch_size: int = 1):
        """Generation starts a new sentence: the model reads ``<eos>`` and then the prompt's words."""
        ids = [self.eos_id] + self.encode(prompt or "")
        state = model.start(batch_size)
        tokens = torch.tensor(ids, dtype=torch.long, device=device).view(-1, 1).expand(-1, batch_size)
        out, state = model({self.input_port(): tokens}, state)
        return out[self.output_port()][-1], state, ids

    def sample_text(self, length: int = 2000) -> str:
        words = self._words.get("valid") or self._words.get("train", [])
        out, n = [], 0
        for w in words:
            if n + len(w) + 1 > length:
                break
            out.append(w)
            n += len(w) + 1
        return " ".join(out)
