"""Take the README's training screenshots: the dashboard mid-run on the adding problem, vanilla RNN and LSTM.

    Xvfb :96 -screen 0 1400x900x24 &
    DISPLAY=:96 QT_QPA_PLATFORM=xcb python docs/images/take_training_screenshots.py            # light palette
    DISPLAY=:96 QT_QPA_PLATFORM=xcb python docs/images/take_training_screenshots.py --dark     # *-dark.png

It does what a person would do in the window: open the template ``adding-problem-rnn``, press Train and take a
picture half-way; when the run has finished, choose the LSTM cell in the inspector's place (one undoable edit),
press Train again (a new run, because the graph changed) and take a picture half-way; then tick the RNN's run in
the runs list to overlay it and take a third.  The palette and inspector docks are hidden (View menu) so that the
dashboard has the whole width.  Probes run every 20 steps instead of the template's 100, so that the heatmap has
rows enough to read.  Every picture is the whole X screen (``import -window root``, ImageMagick).  Settings go to
a temporary folder, never the user's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="seqwb-shots-")

from PySide6.QtWidgets import QApplication  # noqa: E402

from take_screenshots import dark_palette, settle, shot  # noqa: E402


def wait_for(app: QApplication, condition, timeout: float = 300.0) -> None:
    end = time.time() + timeout
    while not condition():
        if time.time() > end:
            raise SystemExit("timed out waiting for the run")
        settle(app, 0.05)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dark", action="store_true", help="dark palette; files end in -dark.png")
    parser.add_argument("--at", type=int, default=420, help="take the mid-run pictures at this step (of 800)")
    args = parser.parse_args()
    suffix = "-dark" if args.dark else ""

    app = QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    if args.dark:
        app.setPalette(dark_palette())
    from workbench.core.settings import template_project
    from workbench.gui.app import MainWindow
    from workbench.plugin_system import default_registry
    reg = default_registry()
    project, _ = template_project(reg.template("adding-problem-rnn"), {"probe_every": "20"}, reg)
    win = MainWindow(reg, project)
    win.setGeometry(app.primaryScreen().geometry())
    for dock in (win.palette_dock, win.inspector_dock, win.problems_dock, win.log_dock):
        dock.hide()
    win.show()
    settle(app, 1.0)
    win.show_dashboard()
    settle(app, 0.5)

    def mid_run(name: str) -> None:
        wait_for(app, lambda: win.bridge.last_step >= args.at)
        settle(app, 0.6)     # the plots catch up (a few of them per frame)
        shot(app, name)

    # 1. the vanilla RNN, half-way
    win.runs.act_train.trigger()
    mid_run(f"training-rnn{suffix}.png")
    wait_for(app, lambda: not win.bridge.is_live())

    # 2. the same project with an LSTM: a new run, half-way
    assert win.doc.set_node_param("rnn", "cell", "lstm") is None
    win.runs.act_train.trigger()
    mid_run(f"training-lstm{suffix}.png")

    # 3. the RNN's run overlaid on the LSTM's
    win.bridge.pause()
    wait_for(app, lambda: win.bridge.state == "paused")
    win.dashboard.set_overlay("run-1", True)
    win.bridge.resume()
    args.at = win.bridge.last_step + 40
    mid_run(f"training-overlay{suffix}.png")

    win.stop_and_wait()
    win.doc.undo_stack.setClean()   # quit without the unsaved-changes question
    win.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
