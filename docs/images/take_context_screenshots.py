"""Take the screenshots of issue 16's inside views and runs across files, with the app running for real on an X
display (Xvfb works):

    seqwb new seq2seq-attention -o dates.seqwb && seqwb train dates.seqwb --steps 600
    seqwb new forecast -o series.seqwb && seqwb train series.seqwb
    seqwb new adding-problem-rnn -o adding-rnn.seqwb && seqwb train adding-rnn.seqwb --steps 400
    seqwb new adding-problem-lstm -o adding-lstm.seqwb && seqwb train adding-lstm.seqwb --steps 400
    Xvfb :99 -screen 0 1400x900x24 &
    DISPLAY=:99 QT_QPA_PLATFORM=xcb python docs/images/take_context_screenshots.py FOLDER

``FOLDER`` holds the four files.  It writes ``seq2seq-hidden-units.png`` (the decoder's units over the output it
wrote, coloured by the unit that best follows the outputs' dashes over the validation split, the attention map
beside it with the output step clicked in the text view outlined), ``forecast-vs-actual.png``
(the forecasting project's dashboard: the forecasts against the series and the naive forecast, and MSE against the
naive forecast's) and ``runs-from-files.png`` (the LSTM's runs with the vanilla RNN's run of another file ticked,
over relative time).  Every click a person would make (Record, a character of the output, the run's tick box, the
x-axis choice) is a real X mouse event sent with ``xdotool``; files a person would pick in a file dialog are given
to the dashboard directly.  Settings go to a temporary folder, never the user's.
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

from PySide6.QtCore import QPoint  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from take_screenshots import run, settle, shot  # noqa: E402


def click(app: QApplication, widget, point: QPoint | None = None) -> None:
    p = widget.mapToGlobal(point if point is not None else widget.rect().center())
    run(app, "xdotool", "mousemove", str(p.x()), str(p.y()), "click", "1")
    settle(app, 0.3)


def wait_for(app: QApplication, predicate, seconds: float = 600) -> None:
    end = time.time() + seconds
    while not predicate():
        if time.time() > end:
            raise SystemExit("timed out")
        settle(app, 0.2)


def open_window(app: QApplication, path: Path):
    from workbench.core.projectfile import load_project
    from workbench.gui.app import MainWindow
    from workbench.plugin_system import default_registry
    reg = default_registry()
    win = MainWindow(reg, load_project(path, registry=reg), str(path))
    win.setGeometry(app.primaryScreen().geometry())
    for dock in (win.palette_dock, win.inspector_dock, win.problems_dock, getattr(win, "log_dock", None)):
        if dock is not None:
            dock.hide()
    win.show()
    settle(app, 1.5)
    win.activateWindow()                        # no window manager to give it the keyboard
    settle(app, 0.3)
    return win


def close(win) -> None:
    win.doc.undo_stack.setClean()
    win.close()


def seq2seq_hidden_units(app: QApplication, folder: Path) -> None:
    win = open_window(app, folder / "dates.seqwb")
    run(app, "xdotool", "key", "ctrl+3")        # Inspect ▸ Hidden Units
    settle(app, 1.0)
    panel = win.views["hiddenUnits"].widget
    wait_for(app, lambda: panel.context_inputs.isVisible())
    # a validation example with some letters in it, as a person would pick from the list
    combo = panel.example_combo
    index = next((i for i in range(combo.count()) if any(ch.isalpha() for ch in combo.itemText(i))), 0)
    combo.setCurrentIndex(index)
    click(app, panel.record_button)
    wait_for(app, lambda: panel.recording is not None and not panel.is_recording())
    panel.select("decoder.0", "h")
    settle(app, 0.5)
    # the decoder unit that best follows the dashes of the outputs, over every validation example
    panel.side.setCurrentIndex(1)
    panel.all_layers.setChecked(False)
    panel.feature_combo.setCurrentIndex(panel.feature_combo.findData("__regex__"))
    click(app, panel.regex_edit)
    run(app, "xdotool", "type", "-")
    click(app, panel.search_button)
    wait_for(app, lambda: not panel.corpus.busy() and panel.results.topLevelItemCount() > 0)
    top = panel.results.topLevelItem(0)
    click(app, panel.results.viewport(), panel.results.visualItemRect(top).center())
    print("search:", panel.search_note.text())
    # the output's sixth character: its step is outlined in the attention map
    view = panel.text_view
    char = min(5, len(view.text()) - 1)
    point = QPoint(view._margin() + char * view._cw + view._cw // 2, view._margin() + view._lh // 2)
    click(app, view.viewport(), point)
    settle(app, 0.5)
    print("recorded:", panel.status.text())
    shot(app, "seq2seq-hidden-units.png")
    close(win)


def forecast_vs_actual(app: QApplication, folder: Path) -> None:
    win = open_window(app, folder / "series.seqwb")
    run(app, "xdotool", "key", "ctrl+2")        # the Training tab
    settle(app, 1.0)
    dash = win.dashboard
    wait_for(app, lambda: dash.plots.forecast_panel.isVisible() and dash.plots.forecast_panel.curves)
    dash.plots.ensureWidgetVisible(dash.plots.forecast_panel)
    settle(app, 1.0)
    print("forecast:", dash.plots.forecast_panel.title.text())
    shot(app, "forecast-vs-actual.png")
    close(win)


def runs_from_files(app: QApplication, folder: Path) -> None:
    win = open_window(app, folder / "adding-lstm.seqwb")
    run(app, "xdotool", "key", "ctrl+2")
    settle(app, 1.0)
    dash = win.dashboard
    dash.add_other_files([str(folder / "adding-rnn.seqwb")])
    wait_for(app, lambda: bool(dash.others))
    settle(app, 0.5)
    group = dash.runs.topLevelItem(dash.runs.topLevelItemCount() - 1)
    child = group.child(0)
    rect = dash.runs.visualItemRect(child)
    # the tick box sits at the left of the run's name, after the tree's indentation
    click(app, dash.runs.viewport(), QPoint(rect.left() + 8, rect.center().y()))
    combo = dash.x_axis_combo
    click(app, combo)
    run(app, "xdotool", "key", "Down", "Return")          # Relative time
    settle(app, 1.5)
    print("overlays:", list(dash.overlays), "x axis:", dash.plots.x_axis)
    shot(app, "runs-from-files.png")
    close(win)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path, help="the folder with the four trained projects")
    args = parser.parse_args()
    app = QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    seq2seq_hidden_units(app, args.folder)
    forecast_vs_actual(app, args.folder)
    runs_from_files(app, args.folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
