"""The decoding view on a big search tree: beam search with 10 beams for 50 steps, drawn and relaid out.

Without a project the tree is synthetic (the shape beam search records: 2 x width candidates per step); with one,
the project's model decodes its prompt with ``--width`` and ``--steps`` first (a language model runs to max_len,
so the tree has all its steps), timed as well.  Offscreen unless ``--platform`` says otherwise.

    python benchmarks/decode_tree.py                               # synthetic 10 x 50
    python benchmarks/decode_tree.py lm.seqwb --prompt "def "      # a trained char-LM's own tree

Prints the median of ``--runs`` runs of: decode (with a project), first drawing (layout + scene), relayout with the
pruned candidates hidden, relayout with dead beams folded, and one full repaint of the view.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _results beside it, also when imported
from _results import figures_writer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


write_figures = figures_writer(__file__)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("project", nargs="?")
    parser.add_argument("--prompt", default="")
    parser.add_argument("--width", type=int, default=10)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--platform", default="offscreen")
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="write the figures as JSON to FILE (alone: print them after the table)")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    os.environ.setdefault("QT_QPA_PLATFORM", args.platform)
    os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="seqwb-bench-")
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from workbench.gui.decode_views import SearchTreeView

    decode_times: list[float] = []
    if args.project:
        import torch

        from workbench.core.projectfile import load_project
        from workbench.core.search import DecodeSession
        from workbench.plugin_system import discover
        torch.set_num_threads(1)
        reg = discover()
        project = load_project(args.project, registry=reg)
        session = DecodeSession(reg)
        settings = {"width": args.width, "n_best": min(5, args.width), "max_len": args.steps, "topk": 5}
        base = Path(args.project).resolve().parent
        session.decode(project, base, "beam", settings, args.prompt)        # load the data and the model once
        for _ in range(args.runs):
            t0 = time.perf_counter()
            doc = session.decode(project, base, "beam", settings, args.prompt)
            decode_times.append(time.perf_counter() - t0)
    else:
        from workbench.testing.search_trees import synthetic_document
        doc = synthetic_document(args.width, args.steps)

    view = SearchTreeView()
    view.resize(1100, 600)
    view.show()
    app.processEvents()
    timings: dict[str, list[float]] = {"draw": [], "hide pruned": [], "fold dead": [], "repaint": []}
    for _ in range(args.runs):
        t0 = time.perf_counter()
        view.set_document(doc)
        app.processEvents()
        timings["draw"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        view.set_options(show_pruned=False)
        timings["hide pruned"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        view.set_options(show_pruned=True, fold_dead=True)
        timings["fold dead"].append(time.perf_counter() - t0)
        view.set_options(fold_dead=False)
        view.fit_all()
        t0 = time.perf_counter()
        view.viewport().repaint()
        timings["repaint"].append(time.perf_counter() - t0)
    lay = view.layout_model()
    print(f"tree: {len(doc['tree'])} nodes, {lay.columns} columns x at most {lay.rows} rows "
          f"({'project ' + args.project if args.project else 'synthetic'}, width {args.width}, {args.steps} steps)")
    if decode_times:
        print(f"decode      {statistics.median(decode_times) * 1000:7.0f} ms")
    for name, values in timings.items():
        print(f"{name:<11} {statistics.median(values) * 1000:7.0f} ms")
    if args.json:
        write_figures(args.json, {"source": "project" if args.project else "synthetic", "prompt": args.prompt,
                                  "width": args.width, "steps": args.steps, "runs": args.runs,
                                  "platform": args.platform, "nodes": len(doc["tree"]), "columns": lay.columns,
                                  "rows": lay.rows,
                                  "decode_ms": statistics.median(decode_times) * 1000 if decode_times else None,
                                  "ms": {k: statistics.median(v) * 1000 for k, v in timings.items()}},
                      load_start, None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
