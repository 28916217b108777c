"""The fault suite at full scale: the reliability tests, run with the counts docs/reliability.md reports.

    python benchmarks/reliability.py                 # full scale (about 10,000 fuzzed files, 300 kills...)
    python benchmarks/reliability.py --quick         # the counts of the normal test run (a smoke test)

Each reliability test reports what it tried, how many times and what happened (tests/core/reliability_figures.py);
this script runs them with ``SEQWB_FAULT_SCALE=full`` and ``SEQWB_FAULT_RESULTS`` set, and gathers the reports into
``benchmarks/results/reliability.json`` (or ``--json FILE``), from which benchmarks/docs_tables.py renders the table
in docs/reliability.md.  Nothing is written unless every test passed: the figures are those of a passing suite.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: the tests of the suite, in the order of the table
TESTS = [
    "tests/core/test_reliability_fuzz.py",
    "tests/core/test_reliability_hostile_files.py",
    "tests/core/test_reliability_save_errors.py",
    "tests/core/test_reliability_crash_save.py",
    "tests/core/test_reliability_writers.py",
    "tests/gui/test_shared_file.py",
    "tests/core/test_reliability_outside_data.py",
    "tests/core/test_reliability_corpora.py",
    "tests/core/test_reliability_interrupts.py",
    "tests/gui/test_reliability_window.py",
]
#: the groups of the table, in order
GROUPS = ["Hostile files", "Numbers from a file", "Steering", "Saving", "Crash during save", "Two writers",
          "Shared files", "Bad corpora", "Interrupts", "Out of memory", "Clear messages"]


def machine() -> dict:
    import torch
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the normal test run's counts (a smoke test)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "reliability.json"), metavar="FILE")
    ap.add_argument("-k", metavar="EXPR", help="only the tests pytest -k selects (the file is then not written)")
    args = ap.parse_args(argv)
    from workbench.atomic import atomic_write
    with tempfile.TemporaryDirectory(prefix="seqwb-faults-") as folder:
        env = dict(os.environ, SEQWB_FAULT_RESULTS=folder, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM",
                                                                                          "offscreen"))
        if not args.quick:
            env["SEQWB_FAULT_SCALE"] = "full"
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS]
        if args.k:
            command += ["-k", args.k]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
        print(summary)
        if done.returncode != 0:
            print(done.stdout[-6000:], done.stderr[-3000:], sep="\n", file=sys.stderr)
            print("some tests failed: nothing written", file=sys.stderr)
            return 1
        cases = [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]
    if args.k:
        print(json.dumps(cases, indent=1))
        return 0
    order = {g: i for i, g in enumerate(GROUPS)}
    cases.sort(key=lambda c: (order.get(c["group"], len(GROUPS)), c["case"]))
    doc = {"command": "python benchmarks/reliability.py" + (" --quick" if args.quick else ""),
           "measured": _dt.date.today().isoformat(), "scale": "quick" if args.quick else "full",
           "machine": machine(), "tests": TESTS, "pytest": summary, "seconds": round(seconds), "cases": cases}
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")
    print(f"wrote {out} ({len(cases)} cases, {seconds / 60:.0f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
