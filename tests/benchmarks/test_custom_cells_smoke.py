"""benchmarks/custom_cells.py works end to end in its ``--smoke`` mode, and what it prints is what it measured.

The real run and its figures are in docs/benchmarks.md ("Custom cells: per-step path vs fused"); nothing here
asserts a speed.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT, make_subprocess_env

VARIANTS = [
    "lstm: fused nn.LSTM, plain loop", "lstm: workbench, fused nn.LSTM", "lstm: step path, naive (step(x[t]))",
    "lstm: step path, plain (autograd)", "lstm: step path, optimised", "gru: fused nn.GRU, plain loop",
    "gru: workbench, fused nn.GRU", "gru: step path, plain (autograd)", "gru: step path, optimised",
    "mgu (step-only, 3rd party): plain",
]


def test_custom_cells_smoke_prints_every_variant_and_consistent_ratios(tmp_path):
    out = tmp_path / "cells.json"
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "custom_cells.py"), "--smoke",
                           "--json", str(out)], cwd=REPO_ROOT, env=make_subprocess_env(), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    rows = {r["variant"]: r for r in data["rows"]}
    assert list(rows) == VARIANTS
    assert data["threads"] == 1 and data["args"]["smoke"] is True
    assert data["compile_seconds"] is None            # torch.compile only with --compile
    for name, row in rows.items():
        assert row["ms_per_step"] > 0, name
        family = "gru: fused nn.GRU, plain loop" if name.startswith("gru") else "lstm: fused nn.LSTM, plain loop"
        # one round: the ratio is the reference's time over this variant's time in that round
        expected = rows[family]["ms_per_round"][0] / row["ms_per_round"][0]
        assert abs(row["fraction_of_fused"] - expected) < 1e-9, name
        assert abs(row["ms_per_step"] - row["ms_per_round"][0]) < 1e-9, name
        # the printed table holds the same figures
        assert f"{name:<45} {row['precision']:>5} {row['ms_per_step']:8.1f} {row['fraction_of_fused']:8.2f}" \
                in proc.stdout, name
        assert row["precision"] == "fp32", name          # the default: every variant in float32
    assert rows["lstm: fused nn.LSTM, plain loop"]["fraction_of_fused"] == 1.0
    assert "load average" in proc.stdout and "1 thread(s)" in proc.stdout
