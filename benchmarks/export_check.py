"""How close the exported models are to the workbench's own: ``seqwb export --json``'s largest difference, per template.

For each built-in template that trains on data this machine has, in a fresh folder:

    seqwb new TEMPLATE -o t.seqwb
    seqwb export t.seqwb -o model.pt --allow-untrained --json      # TorchScript
    seqwb export t.seqwb -o model.onnx --allow-untrained --json    # ONNX (needs the `export` extra)

and the same for the adding-problem template after a short training (``--trained-steps``), so that one row has
weights that have moved.  ``max_abs_diff`` is what the export measured itself: the exported model against the
workbench's on a second batch of another size and length.  A template that cannot be exported keeps the reason.

    python benchmarks/export_check.py                  # writes benchmarks/results/export_check.json
    python benchmarks/export_check.py --smoke --json /tmp/e.json   # two templates: checks the plumbing only
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "export_check.json"
TRAINED = "adding-problem-lstm"     # the row whose weights are trained before the export


def seqwb(*args: str, cwd: Path) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "workbench", *args], cwd=cwd, capture_output=True, text=True,
                          check=False)
    return proc.returncode, proc.stdout, proc.stderr.strip()


def export(folder: Path, project: str, out: str) -> dict:
    code, stdout, stderr = seqwb("export", project, "-o", out, "--allow-untrained", "--force", "--json", cwd=folder)
    if code != 0:
        # the reason the command gives (an unsupported block, a missing extra) is the result
        return {"error": stderr.splitlines()[-1] if stderr else f"exit {code}"}
    report = json.loads(stdout)
    return {"max_abs_diff": report.get("max_abs_diff")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trained-steps", type=int, default=200, help=f"training steps of {TRAINED} before its export")
    ap.add_argument("--smoke", action="store_true", help="two templates, 5 training steps")
    ap.add_argument("--json", metavar="FILE", help=f"write here (default: {RESULTS.relative_to(ROOT)})")
    args = ap.parse_args(argv)
    if args.smoke and not args.json:
        ap.error("--smoke needs --json FILE: its figures are not results")
    from workbench.plugin_system import discover
    from workbench.schema.params import field_info
    reg = discover()
    names = [s.id for s in reg.items["template"].values() if s.distribution == "sequence-workbench"
             and not any(i.name == "data_dir" for i in field_info(s.params))]    # PTB: the user's data
    if args.smoke:
        names = ["char-lm", TRAINED]
    steps = 5 if args.smoke else args.trained_steps
    rows = []
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"seqwb-export-{name}-") as tmp:
            folder = Path(tmp)
            code, _, err = seqwb("new", name, "-o", "t.seqwb", "--set", "threads=1", cwd=folder)
            if code != 0:
                raise SystemExit(f"seqwb new {name} failed: {err}")
            trained = 0
            if name == TRAINED:
                code, _, err = seqwb("train", "t.seqwb", "--steps", str(steps), "--quiet", cwd=folder)
                if code != 0:
                    raise SystemExit(f"seqwb train {name} failed: {err}")
                trained = steps
            row = {"template": name, "trained_steps": trained, "torchscript": export(folder, "t.seqwb", "model.pt"),
                   "onnx": export(folder, "t.seqwb", "model.onnx")}
        rows.append(row)
        print(f"{name:<22} trained {trained:>4} steps: TorchScript {row['torchscript']}, ONNX {row['onnx']}",
              flush=True)
    import torch
    doc = {"command": "python benchmarks/export_check.py" + (" --smoke" if args.smoke else ""),
           "measured": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
           "torch": torch.__version__, "templates": rows}
    from workbench.atomic import atomic_write
    out_path = Path(args.json) if args.json else RESULTS
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out_path, "w") as fh:
        fh.write(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
