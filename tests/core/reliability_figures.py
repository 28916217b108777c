"""The fault suite's counts and figures.

Every reliability test that tries something many times takes its count from :func:`count`: the normal test run
uses the small count (CI stays well under ten minutes), ``SEQWB_FAULT_SCALE=full`` the count the docs report.  A
test reports what it tried and what happened through :func:`record`; with ``SEQWB_FAULT_RESULTS=DIR`` each report
is written to ``DIR/<case>.json``.  ``python benchmarks/reliability.py`` runs the suite at full scale that way and
gathers the reports into ``benchmarks/results/reliability.json``, from which docs/reliability.md's table is
generated (benchmarks/docs_tables.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FULL = os.environ.get("SEQWB_FAULT_SCALE", "") == "full"


def count(quick: int, full: int) -> int:
    """How many times to try: ``quick`` in the normal test run, ``full`` for the docs' figures."""
    return full if FULL else quick


def record(case: str, *, group: str, tried: str, times: int, result: str, **figures: Any) -> None:
    """Report one case: what was ``tried``, how many ``times``, what happened (``result``, in words), and any
    measured ``figures`` (numbers)."""
    folder = os.environ.get("SEQWB_FAULT_RESULTS")
    if not folder:
        return
    path = Path(folder) / f"{case}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"case": case, "group": group, "tried": tried, "times": int(times), "result": result,
           "scale": "full" if FULL else "quick", "figures": figures}
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
