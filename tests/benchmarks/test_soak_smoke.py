"""The soak script works end to end on a tiny model for a few seconds (the real soak is run by hand: see
docs/reliability.md, "Long runs (soak)")."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, make_subprocess_env

pytest.importorskip("PySide6")


def test_soak_script_reports_rss_and_lateness_at_start_and_end(tmp_path):
    out = tmp_path / "soak.json"
    env = make_subprocess_env()
    env["QT_QPA_PLATFORM"] = "offscreen"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "soak_gui.py"), "--minutes", "0.1", "--window", "2",
         "--points", "3", "--hidden", "16", "--probe-every", "2", "--sample-every", "3", "--eval-every", "3",
         "--max-chars", "30000", "--json", str(out)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "lateness of a 10 ms timer, first 2 s" in proc.stdout and "RSS: window shown" in proc.stdout
    r = json.loads(out.read_text())
    assert r["status"] == "stopped" and r["steps"] >= 3
    labels = [p["at"] for p in r["rss"]]
    assert labels[0] == "window shown" and "first step" in labels and labels[-1] == "after the run ended"
    assert all(p["rss_mb"] > 10 for p in r["rss"])
    for window in ("first", "last"):
        assert r[window]["ticks"] > 0 and 0 <= r[window]["p50_ms"] <= r[window]["p99_ms"] <= r[window]["max_ms"]
    # the dashboard got every kind of training event: the probes and samples were on
    assert r["events"]["step"] >= 3 and r["events"]["probe"] >= 1 and r["events"]["sample"] >= 1
    assert r["events"]["eval"] >= 1 and r["redraws"] > 0
    assert r["objects_first_step"] > 1000 and r["objects_end"] > 1000
