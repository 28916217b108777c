"""Sequence tagging: one tag per token, from CoNLL-style files or from Python source read from this machine.

CoNLL style: one ``token<TAB>tag`` per line (``task.separator=whitespace``: the first and the last field of
whitespace-separated columns, as in CoNLL-2003), a blank line between sentences, ``-DOCSTART-`` lines ignored.

The default corpus is the Python standard library's source, tokenized with the standard ``tokenize`` module: one
logical line per sentence, every token tagged with its category (:data:`PYTHON_TAGS`).  Some tags need the left
context (``attribute`` after a dot, ``function`` after ``def``) and some the right one (``call`` before an opening
parenthesis), which is what a bidirectional layer is for.
"""

from __future__ import annotations

import builtins
import io
import keyword
import tokenize
from collections import Counter
from pathlib import Path
from typing import Any, Optional

import torch

from workbench.api import Batch, DataError, sha256_text
from workbench_plugins.text_data import (IGNORE, PAD, UNK, UNK_SIGNATURES, PaddedSequenceTask, build_vocab,
                                         classification_scores, file_record, masked_cross_entropy, pack_vocab,
                                         read_text, resolve_path, split_of, stdlib_sources, unk_signature,
                                         unpack_vocab, update_confusion)

PYTHON_TAGS = {
    "keyword": "a reserved word (def, if, return, True, None...)",
    "builtin": "a built-in name (len, print, int, ValueError...) not after a dot",
    "function": "the name being defined after def",
    "class": "the name being defined after class",
    "call": "a name or attribute directly followed by '(' (a call)",
    "attribute": "a name after '.' that is not called",
    "name": "any other identifier",
    "number": "a numeric literal",
    "string": "a string literal (docstrings included)",
    "comment": "a comment",
    "operator": "an operator or delimiter",
}
_BUILTINS = frozenset(dir(builtins))
_STRING_PARTS = {"FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END"}  # Python 3.12+ splits f-strings


# ---- the Python corpus ------------------------------------------------------------------------------------------

def _tag_line(tokens: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(token type name, text)`` of one logical line -> ``(word, tag)``."""
    out = []
    for i, (kind, text) in enumerate(tokens):
        prev = tokens[i - 1][1] if i else ""
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "NAME":
            if keyword.iskeyword(text):
                tag = "keyword"
            elif prev == ".":
                tag = "call" if nxt == "(" else "attribute"
            elif prev == "def":
                tag = "function"
            elif prev == "class":
                tag = "class"
            elif text in _BUILTINS:
                tag = "builtin"
            elif nxt == "(":
                tag = "call"
            else:
                tag = "name"
        elif kind == "NUMBER":
            tag = "number"
        elif kind == "STRING" or kind in _STRING_PARTS:
            tag = "string"
        elif kind == "COMMENT":
            tag = "comment"
        else:
            tag = "operator"
        if tag in ("string", "comment"):
            text = " ".join(text.split())[:40]  # one line, and long literals cut: they are all rare words anyway
        out.append((text, tag))
    return out


_SKIP = {"INDENT", "DEDENT", "ENDMARKER", "NL", "NEWLINE", "ENCODING"}


def python_lines(source: str) -> list[list[tuple[str, str]]]:
    """Logical lines of Python source as ``(token type name, text)`` lists; comment-only lines are lines too.
    Stops quietly at the first tokenizer error (the lines before it are kept)."""
    lines: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    depth = 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            kind = tokenize.tok_name[tok.type]
            if kind == "NEWLINE" or (kind == "NL" and depth == 0):
                if current:
                    lines.append(current)
                    current = []
            elif kind not in _SKIP and not (kind == "ERRORTOKEN" and not tok.string.strip()):
                if kind == "OP":
                    if tok.string in "([{":
                        depth += 1
                    elif tok.string in ")]}":
                        depth = max(0, depth - 1)
                current.append((kind, tok.string))
    except (tokenize.TokenError, SyntaxError):
        pass
    if current:
        lines.append(current)
    return lines


def python_tokens(text: str) -> list[str]:
    """The words of a piece of Python source as the corpus has them, line by line (a line that does not tokenize
    on its own, e.g. inside a multi-line string, is split at whitespace)."""
    words: list[str] = []
    for line in text.splitlines():
        try:
            toks = [(tokenize.tok_name[t.type], t.string) for t in tokenize.generate_tokens(io.StringIO(line).readline)
                    if tokenize.tok_name[t.type] not in _SKIP and t.string.strip()]
        except (tokenize.TokenError, SyntaxError):
            words.extend(line.split())
            continue
        words.extend(w for w, _ in _tag_line(toks))
    return words


def python_tag_sentences(max_sentences: int, valid_fraction: float = 0.05,
                         test_fraction: float = 0.05) -> dict[str, list[list[tuple[str, str]]]]:
    """Tagged logical lines of the standard library, whole files per split, up to ``max_sentences`` in all."""
    out: dict[str, list[list[tuple[str, str]]]] = {"train": [], "valid": [], "test": []}
    total = 0
    for name, source in stdlib_sources():
        split = split_of(name, valid_fraction, test_fraction)
        for line in python_lines(source):
            out[split].append(_tag_line(line))
            total += 1
        if total >= max_sentences:
            break
    return out


def write_conll(path: Path | str, sentences: list[list[tuple[str, str]]]) -> Path:
    """Write tagged sentences as ``token<TAB>tag`` lines with a blank line after each sentence."""
    path = Path(path)
    path.write_text("".join("".join(f"{w}\t{t}\n" for w, t in s) + "\n" for s in sentences), encoding="utf-8")
    return path


# ---- reading CoNLL-style files ------------------------------------------------------------------------------------

def read_conll(path: Path, encoding: str = "utf-8", separator: str = "tab") -> list[list[tuple[str, str, int]]]:
    """Sentences of ``(token, tag, line number)``; :class:`DataError` naming the file and line."""
    text = read_text(path, encoding, "tagging data file")
    sentences: list[list[tuple[str, str, int]]] = []
    current: list[tuple[str, str, int]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if current:
                sentences.append(current)
                current = []
            continue
        if line.startswith("-DOCSTART-"):
            continue
        if separator == "tab":
            fields = line.split("\t")
            if len(fields) != 2:
                found = "no tab" if len(fields) == 1 else f"{len(fields)} fields"
                raise DataError(f"{path}:{n}: expected token<TAB>tag, found {found} in {line[:60]!r} (for "
                                f"space-separated columns set task.separator=whitespace)")
            token, tag = fields[0].strip(), fields[1].strip()
        else:
            fields = line.split()
            if len(fields) < 2:
                raise DataError(f"{path}:{n}: expected a token and a tag separated by whitespace, found "
                                f"{line.strip()[:60]!r}")
            token, tag = fields[0], fields[-1]
        if not token:
            raise DataError(f"{path}:{n}: the token is empty")
        if not tag:
            raise DataError(f"{path}:{n}: the tag is empty")
        current.append((token, tag, n))
    if current:
        sentences.append(current)
    if not sentences:
        raise DataError(f"{path} has no sentences")
    return sentences


# ---- the task -----------------------------------------------------------------------------------------------------

class TaggingTask(PaddedSequenceTask):
    """Tokens -> one tag each.  ``batch``: ``tokens [T, B]``, ``lengths [B]``, ``targets [T, B]`` (padding: -100)."""

    time_major = ("tokens", "targets")
    count_unit = "tokens"

    def __init__(self, params, base_dir=None):
        super().__init__(params, base_dir)
        self.tags: list[str] = []
        self._words: list[str] = []
        self._index: dict[str, int] = {}
        self._sentences: dict[str, list[list[str]]] = {}

    @property
    def labels(self) -> list[str]:
        return self.tags

    # ---- data --------------------------------------------------------------------------------------------
    def _read(self) -> dict[str, list[list[tuple[str, str, str]]]]:
        """Per split, sentences of ``(token, tag, where)``."""
        p = self.params
        if not p.path:
            corpus = python_tag_sentences(p.max_sentences, p.valid_fraction, p.test_fraction)
            self.data_files = {s: {"path": f"<python-stdlib-tokens:{s}>", "sentences": len(rows),
                                   "sha256": sha256_text("\n".join(" ".join(f"{w}/{t}" for w, t in r)
                                                                   for r in rows))}
                               for s, rows in corpus.items()}
            return {s: [[(w, t, f"<python tokens, {s} sentence {i + 1}>") for w, t in sent]
                        for i, sent in enumerate(rows)] for s, rows in corpus.items()}
        out: dict[str, list[list[tuple[str, str, str]]]] = {}
        path = resolve_path(self.base_dir, p.path)
        main = [[(w, t, f"{path}:{n}") for w, t, n in s] for s in read_conll(path, p.encoding, p.separator)]
        self.data_files = {"train": file_record(path, self.base_dir, sentences=len(main))}
        for split, given in (("valid", p.valid_path), ("test", p.test_path)):
            if given:
                other = resolve_path(self.base_dir, given)
                out[split] = [[(w, t, f"{other}:{n}") for w, t, n in s]
                              for s in read_conll(other, p.encoding, p.separator)]
                self.data_files[split] = file_record(other, self.base_dir, sentences=len(out[split]))
        # a split without its own file: a share of the main file's sentences, taken from its end
        n_valid = 0 if "valid" in out else int(round(len(main) * p.valid_fraction))
        n_test = 0 if "test" in out else int(round(len(main) * p.test_fraction))
        n_train = len(main) - n_valid - n_test
        if n_train < 1:
            raise DataError(f"{path}: no training sentences left after holding out validation and test data "
                            f"({len(main)} sentences); lower task.valid_fraction / task.test_fraction")
        out.setdefault("valid", main[n_train:n_train + n_valid])
        out.setdefault("test", main[n_train + n_valid:])
        out["train"] = main[:n_train]
        return out

    def _word(self, token: str) -> str:
        return token.lower() if self.params.lowercase else token

    def prepare(self, vocab: Optional[list[str]] = None, progress=None) -> None:
        p = self.params
        data = self._read()
        if not data["train"]:
            raise DataError("the tagging corpus has no training sentences: raise task.max_sentences")
        saved = unpack_vocab(vocab, ("tokens", "tags")) if vocab is not None else None
        if vocab is not None and saved is None:
            raise DataError("the project's vocabulary was not made by a tagging task; start a new project")
        if saved is None:
            counts = Counter(self._word(w) for s in data["train"] for w, _, _ in s)
            words = build_vocab(counts, [PAD, UNK, *UNK_SIGNATURES], p.max_vocab, p.min_count)
            tags = sorted({t for s in data["train"] for _, t, _ in s})
        else:
            words, tags = saved["tokens"], saved["tags"]
        self.tags = list(tags)
        self._words = list(words)
        self._index = {w: i for i, w in enumerate(words)}
        tag_id = {t: i for i, t in enumerate(tags)}
        self.vocab = pack_vocab({"tokens": self._words, "tags": self.tags})
        self.sizes = {"vocab": len(words), "tags": len(tags)}
        self._examples, self._sentences = {}, {}
        step = p.max_len or None
        for split, sentences in data.items():
            items, texts = [], []
            for sent in sentences:
                ids, ys = [], []
                for w, t, where in sent:
                    if t not in tag_id:
                        seen = "the project's tags" if saved is not None else "the tags of the training data"
                        raise DataError(f"{where}: tag {t!r} is not one of {seen} ({', '.join(tags)})")
                    ids.append(self._id(w))
                    ys.append(tag_id[t])
                for i in range(0, len(ids), step or len(ids)):  # long sentences in pieces of max_len
                    items.append((ids[i:i + (step or len(ids))], ys[i:i + (step or len(ids))]))
                texts.append([w for w, _, _ in sent])
            self._examples[split] = items
            self._sentences[split] = texts

    def _id(self, token: str) -> int:
        w = self._word(token)
        i = self._index.get(w)
        if i is None:
            i = self._index.get(unk_signature(w), self._index[UNK])
        return i

    def _targets(self, items, T: int) -> torch.Tensor:
        out = torch.full((T, len(items)), IGNORE, dtype=torch.long)
        for b, (_, ys) in enumerate(items):
            out[:len(ys), b] = torch.as_tensor(ys, dtype=torch.long)
        return out

    def _cut(self, item, length: int):
        ids, ys = item
        return ids[:length], ys[:length]

    def encode(self, text: str) -> list[int]:
        words = python_tokens(text) if not self.params.path else text.split()
        return [self._id(w) for w in words]

    def decode(self, ids) -> str:
        return " ".join(self._words[i] if 0 <= i < len(self._words) else UNK for i in ids)

    # ---- loss and metrics ------------------------------------------------------------------------------
    def loss(self, outputs, batch) -> torch.Tensor:
        return masked_cross_entropy(outputs["logits"], batch["targets"])

    def count(self, batch) -> int:
        return int(batch["lengths"].sum())

    def loss_last_step(self, outputs, batch) -> torch.Tensor:
        """The loss at each sentence's last token (the gradient-through-time probe's L_T)."""
        logits, targets, lengths = outputs["logits"], batch["targets"], batch["lengths"].to(outputs["logits"].device)
        idx = (lengths - 1).clamp(min=0)
        cols = torch.arange(logits.shape[1], device=logits.device)
        return masked_cross_entropy(logits[idx, cols], targets[idx, cols])

    def eval_update(self, acc: dict, outputs, batch: Batch) -> None:
        logits, targets = outputs["logits"], batch["targets"]
        n = self.count(batch)
        acc["loss_sum"] = acc.get("loss_sum", 0.0) + float(masked_cross_entropy(logits, targets)) * n
        acc["count"] = acc.get("count", 0) + n
        valid = targets != IGNORE
        update_confusion(acc, len(self.tags), targets[valid], logits.argmax(-1)[valid])

    def eval_finish(self, acc: dict) -> dict[str, Any]:
        k = len(self.tags)
        confusion = acc["confusion"].tolist() if "confusion" in acc else [[0] * k for _ in range(k)]
        return {"loss": acc.get("loss_sum", 0.0) / max(acc.get("count", 0), 1), **classification_scores(confusion)}

    def sample_text(self, length: int = 2000) -> str:
        sentences = self._sentences.get("valid") or self._sentences.get("train", [])
        out, n = [], 0
        for s in sentences:
            line = " ".join(s)
            if out and n + len(line) + 1 > length:
                break
            out.append(line)
            n += len(line) + 1
        return "\n".join(out)[:length]

