"""Hidden-unit views at scale: record N characters through a layer of H units, then time what the window does.

Builds an (untrained: the values do not matter for timing) character LM with one LSTM layer of ``--units``
units, records ``--chars`` characters of its validation text with the same :class:`Recorder` the window uses,
and shows the recording in the hidden-units panel (offscreen by default):

- **record**: the run over the text, in chunks where the model allows (what the worker thread does; the window
  stays responsive meanwhile, this is how long the progress bar runs);
- **show recording**: ``set_recording`` — heatmap image, text layout, saturation scatter, levels;
- **switch quantity**: choosing another quantity (a new heatmap image, a new unit trace);
- **switch unit**: one ↓ in the text view (text colours, unit band, trace);
- **paint heatmap / text view**: a full repaint of each, as after a scroll;
- **zoom/pan heatmap**: a new x range (all, 400 steps, half, 2,000 steps in turn) and the repaint it causes;
- **unit search**: Pearson's r of every unit with "inside quotes".

    python benchmarks/inspect_scale.py                      # 20,000 characters x 512 units, offscreen
    python benchmarks/inspect_scale.py --chars 5000 --units 256 --platform xcb
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _results beside it, also when imported
from _results import figures_writer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(fn, repeat: int = 5) -> float:
    """Median milliseconds of ``fn()`` over ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


write_figures = figures_writer(__file__)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=20000)
    ap.add_argument("--units", type=int, default=512)
    ap.add_argument("--platform", default="offscreen")
    ap.add_argument("--json", nargs="?", const="-", metavar="FILE",
                    help="write the figures as JSON to FILE (alone: print them after the table)")
    args = ap.parse_args()
    load_start = os.getloadavg()[0]
    os.environ["QT_QPA_PLATFORM"] = args.platform

    from PySide6.QtWidgets import QApplication
    app = QApplication.instance() or QApplication([])

    from workbench.core import recording
    from workbench.core.settings import template_project
    from workbench.gui.document import ProjectDocument
    from workbench.gui.inspect_units import HiddenUnitsPanel
    from workbench.plugin_system import discover

    reg = discover()
    project, _ = template_project(reg.template("char-lm"), {
        "hidden_size": str(args.units), "layers": "1", "task.max_chars": str(max(200_000, 25 * args.chars)),
        "task.valid_fraction": "0.2"}, reg)
    recorder = recording.Recorder(reg)
    text = recorder.sample_text(project, ROOT, args.chars)
    recorder.session.load(project, ROOT)                   # build once, as the window's first Record does
    t0 = time.perf_counter()
    rec = recorder.record(project, text, ROOT)
    record_s = time.perf_counter() - t0
    T, H = rec["layers"]["rnn.0"]["h"].shape
    mb = sum(a.nbytes for qs in rec["layers"].values() for a in qs.values()) / 1e6

    doc = ProjectDocument(reg, project, None)
    panel = HiddenUnitsPanel(doc, reg)
    panel.resize(1400, 850)
    panel.show()
    app.processEvents()

    def show():
        panel.set_recording(rec)
        app.processEvents()

    def switch_quantity():
        panel.select(quantity="c" if panel.quantity != "c" else "h")
        app.processEvents()

    def switch_unit():
        panel._step_unit(1)
        app.processEvents()

    def paint_heatmap():
        panel.heatmap.glw.viewport().repaint()

    def paint_text():
        panel.text_view.viewport().repaint()

    spans = iter([(0, T), (T // 3, T // 3 + 400), (0, T // 2), (T // 2, T // 2 + 2000)] * 10)

    def zoom_heatmap():
        a, b = next(spans)
        panel.heatmap.plot.setXRange(a, b, padding=0)
        app.processEvents()
        panel.heatmap.glw.viewport().repaint()

    def search():
        recording.unit_search(rec, "rnn.0", "h", "quotes", reg)

    rows = [("show recording", timed(show, 3)), ("switch quantity", timed(switch_quantity)),
            ("switch unit", timed(switch_unit)), ("paint heatmap", timed(paint_heatmap)),
            ("zoom/pan heatmap + paint", timed(zoom_heatmap, 8)),
            ("paint text view", timed(paint_text)), ("unit search (quotes)", timed(search))]
    panel.text_view.verticalScrollBar().setValue(panel.text_view.verticalScrollBar().maximum() // 2)
    rows.append(("paint text view, mid-text", timed(paint_text)))
    print(f"{T:,} steps x {H} units ({mb:,.0f} MB of activations: {', '.join(rec['layers']['rnn.0'])}), "
          f"{args.platform}")
    print(f"{'record (worker thread)':<28} {record_s * 1000:>9.0f} ms  ({record_s / T * 1e6:.0f} us per step)")
    for name, ms in rows:
        print(f"{name:<28} {ms:>9.1f} ms")
    if args.json:
        write_figures(args.json, {"chars": T, "units": H, "megabytes": mb, "platform": args.platform,
                                  "record_ms": record_s * 1000, "ms": dict(rows)}, load_start, None)
    panel.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
