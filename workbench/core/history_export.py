"""A run's recorded series as CSV and its samples as text (what File ▸ Export and the dashboard write).

No torch and no Qt here: the history is plain data.  Files are written atomically.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any, Iterable

from workbench.atomic import atomic_write

METRICS_HEADER = ("run", "series", "step", "value")


def _number(v: float) -> str:
    """A value as CSV text: ``repr`` keeps every digit of a float; non-finite values stay readable."""
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return repr(float(v)) if isinstance(v, float) else str(v)


def metrics_csv(runs: Iterable[Any]) -> str:
    """Every series of every run in ``runs`` as one long table: ``run,series,step,value`` (series sorted by
    name, then by step as recorded).  Long rather than wide because series are recorded at different steps
    (training loss every step, validation every ``eval_every``)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(METRICS_HEADER)
    for run in runs:
        for name in sorted(run.series):
            s = run.series[name]
            for step, value in zip(s.step, s.value):
                w.writerow((run.id, name, int(step), _number(value)))
    return buf.getvalue()


def samples_text(run: Any) -> str:
    """The run's generated samples, oldest first, each under a header line with its step."""
    parts = [f"── {run.id}, step {int(s.get('step', 0))} ──\n{s.get('text', '')}" for s in run.samples]
    return "\n\n".join(parts) + ("\n" if parts else "")


def series_csv(series: list[tuple[str, Any, Any]], x_name: str = "x") -> str:
    """Named curves ``[(name, xs, ys)]`` as a long table ``series,<x_name>,value`` (a plot's visible lines)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("series", x_name, "value"))
    for name, xs, ys in series:
        for x, y in zip(xs, ys):
            w.writerow((name, _number(float(x)), _number(float(y))))
    return buf.getvalue()


def matrix_csv(rows: Any, row_labels: Any, row_name: str, column_name: str) -> str:
    """A matrix (a heatmap) as a table: one row per ``row_labels`` entry, one column per index."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    n_cols = len(rows[0]) if len(rows) else 0
    w.writerow((row_name, *[f"{column_name}={j + 1}" for j in range(n_cols)]))
    for label, row in zip(row_labels, rows):
        w.writerow((_number(float(label)), *[_number(float(v)) for v in row]))
    return buf.getvalue()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: the mode a plainly created file gets (the atomic writer's temporary file is private, 0600)
FILE_MODE = 0o666 & ~_umask()


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) all or nothing."""
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` all or nothing, readable like any file the user creates (not 0600)."""
    with atomic_write(path, "wb") as fh:
        if hasattr(os, "fchmod"):          # POSIX; elsewhere the temporary file has the usual mode
            os.fchmod(fh.fileno(), FILE_MODE)
        fh.write(data)
