"""The built-in feature tracks (registered by :mod:`workbench_plugins.feature_tracks`): what a character-level
model of code might learn to follow.  numpy only."""

from __future__ import annotations

import re

import numpy as np


def _scan_code(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inside a string, inside a comment, bracket depth) per character, by the lexical rules of Python.

    Single and double quotes, their triple forms, backslash escapes, and ``#`` comments; a one-line string that
    is not closed ends at the newline (as Python's tokenizer would complain, and as a reader would assume).  The
    rules suit most C-like code and prose too: a quote is a quote.
    """
    n = len(text)
    string = np.zeros(n, dtype=np.float64)
    comment = np.zeros(n, dtype=np.float64)
    depth = np.zeros(n, dtype=np.float64)
    i, level = 0, 0
    while i < n:
        ch = text[i]
        if ch == "#":
            end = text.find("\n", i)
            end = n if end < 0 else end
            comment[i:end] = 1.0
            depth[i:end] = level
            i = end
            continue
        if ch in "'\"":
            triple = text.startswith(ch * 3, i)
            quote = ch * 3 if triple else ch
            j = i + len(quote)
            while j < n:
                c = text[j]
                if c == "\\":
                    j += 2
                    continue
                if not triple and c == "\n":
                    break             # an unterminated one-line string stops at the end of its line
                if text.startswith(quote, j):
                    break
                j += 1
            j = min(j, n)
            # the opening quote(s) and the body are inside; the closing quote(s) are the way out
            string[i:j] = 1.0
            depth[i:j] = level
            if j < n and text[j] != "\n":
                depth[j:j + len(quote)] = level
                i = j + len(quote)
            else:
                i = j
            continue
        if ch in "([{":
            level += 1
        elif ch in ")]}":
            level = max(0, level - 1)
        depth[i] = level
        i += 1
    return string, comment, depth


def track_quotes(text: str) -> np.ndarray:
    """1 inside a string literal ('...', "...", '''...''', \"\"\"...\"\"\"), from the opening quote up to (not
    including) the closing one."""
    return _scan_code(text)[0]


def track_comment(text: str) -> np.ndarray:
    """1 from a ``#`` (outside strings) to the end of its line, newline excluded."""
    return _scan_code(text)[1]


def track_brackets(text: str) -> np.ndarray:
    """Nesting depth of (), [] and {} outside strings and comments, after reading each character."""
    return _scan_code(text)[2]


def _line_starts(text: str) -> np.ndarray:
    """Index of the first character of each character's line."""
    n = len(text)
    newlines = np.fromiter((i for i, ch in enumerate(text) if ch == "\n"), dtype=np.int64)
    starts = np.concatenate([[0], newlines + 1])
    # the line a character belongs to: the number of newlines strictly before it
    line = np.searchsorted(newlines, np.arange(n), side="left")
    return starts[line]


def track_line_position(text: str) -> np.ndarray:
    """Column of each character in its line (0 for a line's first character; a newline ends its own line)."""
    n = len(text)
    if not n:
        return np.zeros(0)
    return (np.arange(n) - _line_starts(text)).astype(np.float64)


def track_indent(text: str) -> np.ndarray:
    """Indentation of each character's line: the width of its leading spaces and tabs (a tab to the next multiple
    of 8, as Python counts it).  Every character of a line, its newline included, gets the line's value."""
    out = np.zeros(len(text), dtype=np.float64)
    pos = 0
    for line in text.split("\n"):
        width = 0
        for ch in line:
            if ch == " ":
                width += 1
            elif ch == "\t":
                width = (width // 8 + 1) * 8
            else:
                break
        end = pos + len(line) + 1             # the newline belongs to the line it ends
        out[pos:min(end, len(text))] = width
        pos = end
    return out


_WORD = re.compile(r"\w+")


def track_word_start(text: str) -> np.ndarray:
    """1 on the first character of every word (a run of letters, digits and underscores)."""
    out = np.zeros(len(text), dtype=np.float64)
    for m in _WORD.finditer(text):
        out[m.start()] = 1.0
    return out
