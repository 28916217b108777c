"""benchmarks/gui_latency.py works end to end on a tiny model (the real figures are measured by hand: README,
"Responsiveness while training", and docs/benchmarks.md)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, make_subprocess_env

pytest.importorskip("PySide6")


def test_gui_latency_script_reports_lateness_throughput_and_gui_cpu():
    env = make_subprocess_env()
    env["QT_QPA_PLATFORM"] = "offscreen"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "gui_latency.py"), "--pairs", "1", "--steps", "6",
         "--hidden", "16", "--window-threads", "1"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    window = re.search(r"window   1: lateness p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms over (\d+) ticks; "
                       r"([\d,]+) tokens/s \((.*); (\d+) redraws; GUI thread (\d+) % of a core; finished\)", out)
    assert window, out
    p50, p99, worst = (float(window.group(i)) for i in (1, 2, 3))
    assert int(window.group(4)) > 0 and 0 <= p50 <= p99 <= worst
    assert int(window.group(5).replace(",", "")) > 0
    assert "1 thread" in window.group(6)          # --window-threads reached the window's run
    assert int(window.group(7)) > 0 and 0 <= int(window.group(8)) <= 100
    assert re.search(r"headless 1: [\d,]+ tokens/s \(\d+ threads?\)", out)
    assert re.search(r"headless 1: [\d,]+ tokens/s \(1 thread, as the window\)", out)
    assert re.search(r"throughput window / headless: [\d.]+ \(medians\)", out)
    assert re.search(r"throughput window / headless with the window's 1 thread\(s\): [\d.]+", out)
