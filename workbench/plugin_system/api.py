"""Plugin API versions and the ranges plugins declare (``SEQWB_API = ">=1.0,<2"``).

A tiny subset of PEP 440 specifiers, enough for a MAJOR.MINOR contract and without a dependency: clauses joined
by commas, each an operator (``>=``, ``>``, ``<=``, ``<``, ``==``, ``!=``) and a version of dot-separated integers
(``1``, ``1.0``, ``2.1``); ``==1.*`` / ``!=1.*`` compare the given leading parts only.  Versions compare as tuples
padded with zeros, so ``1`` equals ``1.0``.
"""

from __future__ import annotations

import re

__all__ = ["ApiRangeError", "parse_range", "parse_version", "range_allows"]

_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*([0-9]+(?:\.[0-9]+)*)(\.\*)?\s*$")


class ApiRangeError(ValueError):
    """A ``SEQWB_API`` value that is not a version range."""


def parse_version(text: str) -> tuple[int, ...]:
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]+(\.[0-9]+)*", text.strip()):
        raise ApiRangeError(f"{text!r} is not a version such as 1.0")
    return tuple(int(part) for part in text.strip().split("."))


def _pad(v: tuple[int, ...], n: int) -> tuple[int, ...]:
    return v + (0,) * (n - len(v))


def parse_range(spec: str) -> list[tuple[str, tuple[int, ...], bool]]:
    """``">=1.0,<2"`` -> ``[(">=", (1, 0), False), ("<", (2,), False)]`` (the flag marks a ``.*`` wildcard)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ApiRangeError(f"SEQWB_API must be a non-empty string such as '>=1.0,<2', got {spec!r}")
    clauses = []
    for part in spec.split(","):
        m = _CLAUSE.match(part)
        if not m:
            raise ApiRangeError(f"SEQWB_API {spec!r}: cannot read {part.strip()!r} "
                                f"(write clauses such as '>=1.0', '<2', '==1.*', joined by commas)")
        op, version, star = m.group(1), m.group(2), bool(m.group(3))
        if star and op not in ("==", "!="):
            raise ApiRangeError(f"SEQWB_API {spec!r}: '.*' only goes with == or !=")
        clauses.append((op, parse_version(version), star))
    return clauses


def range_allows(spec: str, version: str) -> bool:
    """True if ``version`` (e.g. ``"1.0"``) satisfies every clause of ``spec``.  Raises ApiRangeError."""
    have = parse_version(version)
    for op, want, star in parse_range(spec):
        if star:
            same = have[:len(want)] == want
            ok = same if op == "==" else not same
        else:
            n = max(len(have), len(want))
            a, b = _pad(have, n), _pad(want, n)
            ok = {">=": a >= b, ">": a > b, "<=": a <= b, "<": a < b, "==": a == b, "!=": a != b}[op]
        if not ok:
            return False
    return True
