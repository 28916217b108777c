"""Take the README screenshots of the Decoding tab with the app running for real on an X display (Xvfb works).

    seqwb new seq2seq-attention -o dates.seqwb --set threads=1 && seqwb train dates.seqwb   # a few minutes
    Xvfb :94 -screen 0 1400x900x24 &
    DISPLAY=:94 QT_QPA_PLATFORM=xcb python docs/images/take_decoding_screenshots.py dates.seqwb [--dark]

The window fills the screen with the docks closed (View menu), so the tab has the room a person would give it.
Clicks on the tree are real X mouse events sent with ``xdotool``; every picture is the whole X screen
(``import -window root``, ImageMagick).  Settings go to a temporary folder, never the user's.
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

from take_screenshots import dark_palette, run, settle  # noqa: E402


def shot(app: QApplication, name: str) -> Path:
    settle(app, 0.6)
    path = HERE / name
    run(app, "import", "-window", "root", str(path))
    print("wrote", path)
    return path


def wait(app: QApplication, cond, timeout: float = 120.0) -> None:
    end = time.time() + timeout
    while time.time() < end and not cond():
        app.processEvents()
        time.sleep(0.02)
    if not cond():
        raise SystemExit("timed out waiting for the decoding view")


def click(app: QApplication, widget, pos: QPoint, double: bool = False) -> None:
    g = widget.mapToGlobal(pos)
    run(app, "xdotool", "mousemove", str(g.x()), str(g.y()))
    settle(app, 0.2)
    run(app, "xdotool", "click", *(["--repeat", "2", "--delay", "80"] if double else []), "1")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("project", help="a trained seq2seq-attention project")
    parser.add_argument("--input", default="Saturday, 9 July 1985")
    parser.add_argument("--dark", action="store_true")
    parser.add_argument("--shots", default="tree,whatif,compare", help="which pictures to take")
    args = parser.parse_args()
    shots = set(args.shots.split(","))
    suffix = "-dark" if args.dark else ""

    app = QApplication([])
    app.setStyle("Fusion")
    if args.dark:
        app.setPalette(dark_palette())
    from workbench.core.projectfile import load_project
    from workbench.gui.mainwindow import MainWindow
    from workbench.plugin_system import discover
    reg = discover()
    path = str(Path(args.project).resolve())
    window = MainWindow(reg, load_project(path, registry=reg), path, detect_device=False)
    window.setGeometry(0, 0, 1400, 900)
    for dock in (window.palette_dock, window.inspector_dock, window.problems_dock, window.log_dock):
        dock.hide()
    window.show()
    window.activateWindow()       # Qt shows tooltips in the active window only
    settle(app, 1.0)
    window.views["decoding"].show()
    view = window.views["decoding"].widget
    wait(app, lambda: view._info is not None)

    # 1. the beam tree of one input, the best hypothesis selected with its attention
    view.set_decoder("beam", {"width": 4, "n_best": 3, "alpha": 0.6, "max_len": 40, "topk": 5})
    view.set_input(args.input)
    done: list = []
    view.decoded.connect(done.append)
    view.decode()
    wait(app, lambda: done)
    pane = view.panes[0]
    wait(app, lambda: pane.attention.matrix_shape() != (0, 0))
    pane.tree.fit_best()
    # hover a node on the best path, so the picture shows its top-k tooltip
    best = pane.tree.highlighted_path()
    item = pane.tree.node_items[best[min(5, len(best) - 1)]]
    centre = pane.tree.mapFromScene(item.sceneBoundingRect().center())
    g = pane.tree.viewport().mapToGlobal(centre)
    # two moves, as a hand makes: the first enters the view, the second rests on the node (the tooltip follows)
    run(app, "xdotool", "mousemove", str(g.x() - 30), str(g.y() + 40))
    settle(app, 0.3)
    run(app, "xdotool", "mousemove", str(g.x()), str(g.y()))
    settle(app, 2.0)
    if "tree" in shots:
        shot(app, f"decoding-tree{suffix}.png")

    # 2. what-if: double-click a pruned node, the search goes on from it; its attention shows
    pruned = [n for n, k in pane.tree.layout_model().kind.items() if k == "pruned"
              and pane.tree.document()["tree"][n]["step"] in (3, 4, 5)]
    done.clear()
    if pruned and "whatif" in shots:
        item = pane.tree.node_items[pruned[0]]
        pane.tree.centerOn(item)
        settle(app, 0.3)
        centre = pane.tree.mapFromScene(item.sceneBoundingRect().center())
        click(app, pane.tree.viewport(), centre, double=True)
        wait(app, lambda: done)
        wait(app, lambda: not view.busy())
        pane.tree.fit_best()
        run(app, "xdotool", "mousemove", "5", "890")
        shot(app, f"decoding-whatif{suffix}.png")

    # 3. current and best weights together
    if "compare" not in shots:
        view.shutdown()
        return 0
    view.set_prefix_text("")
    view.set_compare(True)
    done.clear()
    view.decode()
    wait(app, lambda: done)
    wait(app, lambda: not view.busy())
    for p in view.panes:
        p.tree.fit_best()
    shot(app, f"decoding-compare{suffix}.png")
    view.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
