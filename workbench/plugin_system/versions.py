"""Plugin API versions and the ranges plugins declare (``SEQWB_API = ">=1.0,<2"``).

A range is a PEP 440 version specifier, read by ``packaging.specifiers``: clauses such as ``>=1.0``, ``<2``,
``==1.*`` or ``~=1.1``, joined by commas.  Versions compare as PEP 440 releases, so ``1`` equals ``1.0``.
"""

from __future__ import annotations

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

__all__ = ["ApiRangeError", "parse_range", "range_allows"]


class ApiRangeError(ValueError):
    """A ``SEQWB_API`` value that is not a version range."""


def parse_range(spec: object) -> SpecifierSet:
    """``">=1.0,<2"`` as a specifier set; ApiRangeError with the reason when it is not one."""
    if not isinstance(spec, str) or not spec.strip():
        raise ApiRangeError(f"SEQWB_API must be a non-empty string such as '>=1.0,<2', got {spec!r}")
    try:
        return SpecifierSet(spec)
    except InvalidSpecifier:
        raise ApiRangeError(f"SEQWB_API {spec!r} is not a version range (write clauses such as '>=1.0', '<2', "
                            f"'==1.*', joined by commas)") from None


def range_allows(spec: object, version: str) -> bool:
    """True if ``version`` (e.g. ``"1.0"``) satisfies ``spec``.  Raises ApiRangeError for a bad range."""
    try:
        wanted = Version(version)
    except InvalidVersion:
        raise ApiRangeError(f"{version!r} is not a version such as 1.0") from None
    return parse_range(spec).contains(wanted, prereleases=True)
