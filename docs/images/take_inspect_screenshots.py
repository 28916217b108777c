"""Take the "Looking inside" screenshots with the app running for real on an X display (Xvfb works).

    seqwb new char-lm -o py.seqwb
    seqwb train py.seqwb --steps 2000 --set batch_size=16          # a char-LM on Python source
    Xvfb :95 -screen 0 1400x900x24 &
    DISPLAY=:95 QT_QPA_PLATFORM=xcb python docs/images/take_inspect_screenshots.py py.seqwb
    DISPLAY=:95 QT_QPA_PLATFORM=xcb python docs/images/take_inspect_screenshots.py py.seqwb --dark

The side docks are closed (View menu) so the Hidden units tab has the window; the tab is opened with its
shortcut and everything a person would click (Record, Find units, a result, a drag across a string) is a real X
mouse event sent with ``xdotool``.  Which units are shown is not chosen by hand: the best-ranked unit of each
search.  Settings go to a temporary folder, never the user's.
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
from take_screenshots import dark_palette, run, settle, shot  # noqa: E402


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


def search(app: QApplication, panel, feature: str) -> list:
    combo = panel.feature_combo
    combo.setCurrentIndex(combo.findData(feature))
    panel.side.setCurrentIndex(1)
    settle(app)
    click(app, panel.search_button)
    # the search runs over the validation split: read once in the background, then every search is immediate
    wait_for(app, lambda: not panel.corpus.busy())
    rows = panel.run_search()          # what the click showed, returned for the caption
    top = panel.results.topLevelItem(0)
    if top is not None:
        click(app, panel.results.viewport(), panel.results.visualItemRect(top).center())
    return rows


def string_runs(text: str) -> list[tuple[int, int]]:
    """``[(opening quote, closing quote)]`` of the strings of 6 to 40 characters in ``text``."""
    from workbench.core.features import compute_track
    from workbench.plugin_system import default_registry
    inside = compute_track("quotes", text, default_registry())
    edges = [i for i in range(1, len(text)) if inside[i] != inside[i - 1]]
    return [(a, b) for a, b in zip(edges[0::2], edges[1::2]) if inside[a] and 6 <= b - a <= 40]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", help="a char-LM project trained on Python source")
    parser.add_argument("--dark", action="store_true", help="dark palette; files end in -dark.png")
    parser.add_argument("--chars", type=int, default=4000, help="characters of validation text to record")
    parser.add_argument("--threshold", type=float, default=0.1,
                        help="the selection's 'on' threshold (the quote unit of our model dips to 0.1 on '_')")
    args = parser.parse_args()
    suffix = "-dark" if args.dark else ""

    app = QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    if args.dark:
        app.setPalette(dark_palette())
    from workbench.core.projectfile import load_project
    from workbench.gui.app import MainWindow
    from workbench.plugin_system import default_registry
    reg = default_registry()
    win = MainWindow(reg, load_project(args.file, registry=reg), args.file)
    win.setGeometry(app.primaryScreen().geometry())
    for dock in (win.palette_dock, win.inspector_dock, win.problems_dock, getattr(win, "log_dock", None)):
        if dock is not None:
            dock.hide()
    win.show()
    settle(app, 1.5)
    win.activateWindow()                            # no window manager to give it the keyboard
    settle(app, 0.3)
    run(app, "xdotool", "key", "ctrl+3")            # Inspect ▸ Hidden Units
    settle(app, 1.0)
    panel = win.views["hiddenUnits"].widget
    panel.length_spin.setValue(args.chars)
    panel.src_valid.setChecked(True)
    click(app, panel.record_button)
    wait_for(app, lambda: panel.recording is not None and not panel.is_recording())
    settle(app, 0.5)

    # 1. the quote unit: heatmap, text view, unit search
    rows = search(app, panel, "quotes")
    print("quotes:", rows[:5])
    strings = string_runs(panel.recording["text"])
    panel.text_view.scroll_to_char(0)
    panel.text_view.scroll_to_char(strings[min(2, len(strings) - 1)][0])   # where strings come thick
    shot(app, f"hidden-units{suffix}.png")
    if args.dark:
        return 0

    # 2. unit search on bracket depth, the best unit's trace against it
    for feature in ("indent", "comment", "word_start"):
        print(f"{feature}:", search(app, panel, feature)[:3])
    print("line_position:", search(app, panel, "line_position")[:3])
    rows = search(app, panel, "brackets")
    print("brackets:", rows[:3])
    shot(app, "unit-search.png")

    # 3. hypothesis selection: back to the quote unit's layer, drag across the inside of a string
    search(app, panel, "quotes")
    text = panel.recording["text"]
    # the first string of 6 to 40 characters (what a person would pick to ask "what is on here?")
    start, end = string_runs(text)[0]
    view = panel.text_view
    panel.side.setCurrentIndex(2)
    panel.threshold_spin.setValue(args.threshold)
    view.scroll_to_char(start)
    settle(app)

    def at(char: int) -> QPoint:
        row = view._row_of_char(char) - view.verticalScrollBar().value()
        col = char - view._rows[view._row_of_char(char)][0]
        return view.viewport().mapToGlobal(QPoint(view._margin() + col * view._cw + view._cw // 2,
                                                  view._margin() + row * view._lh + view._lh // 2))

    a, b = at(start), at(end - 1)      # from the opening quote (already "inside") to the last character in
    run(app, "xdotool", "mousemove", str(a.x()), str(a.y()), "mousedown", "1")
    run(app, "xdotool", "mousemove", str((a.x() + b.x()) // 2), str(b.y()))
    run(app, "xdotool", "mousemove", str(b.x()), str(b.y()), "mouseup", "1")
    settle(app, 0.5)
    print("selection:", panel.selection_label.text(), panel.matches_label.text())
    # go to the third place where the units switch on again, as a person would to look at the others
    matches = panel.matches_list
    if matches.count() > 2:
        click(app, matches.viewport(), matches.visualItemRect(matches.item(2)).center())
    shot(app, "hypothesis-selection.png")

    # 4. gate saturation
    panel.views.setCurrentIndex(1)
    shot(app, "gate-saturation.png")

    win.doc.undo_stack.setClean()
    win.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
