"""Take the README's picture of an empty project being wired, with the app running for real on an X display.

    Xvfb :98 -screen 0 1400x900x24 &
    DISPLAY=:98 QT_QPA_PLATFORM=xcb python docs/images/take_empty_project_screenshots.py

Everything is done with real X mouse events (``xdotool``), as a person would: File ▸ New ▸ Empty project ▸ Create,
the Sentiment task dragged from the palette onto the canvas, its CSV file chosen with the file picker (the one
place where a file name is typed), the inspector scrolled with the wheel to the data preview, blocks dragged onto
the canvas and wired port to port; the picture is taken while the last link is being dragged.  The CSV file is
written to a temporary folder; settings go to a temporary folder, never the user's.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="seqwb-shots-")
os.environ.setdefault("SEQWB_RECOVERY_DIR", tempfile.mkdtemp(prefix="seqwb-shots-recovery-"))

from PySide6.QtCore import QPoint, QPointF, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QToolButton  # noqa: E402

REVIEWS = [("the cast was wonderful and the ending moving", "positive"),
           ("a dull script and a tedious second half", "negative"), ("I loved every minute of it", "positive"),
           ("not funny, not clever, just long", "negative"), ("a gripping story told with care", "positive"),
           ("the dialogue was clumsy and the plot predictable", "negative")]


def settle(app: QApplication, seconds: float = 0.4) -> None:
    end = time.time() + seconds
    while time.time() < end:
        app.processEvents()
        time.sleep(0.02)


def run(app: QApplication, *cmd: str) -> None:
    """Run ``xdotool`` (or ``import``) while the event loop keeps going; a drag and drop runs a nested event loop
    inside ``processEvents`` until the drop, so a whole drag is one command line that ends with the release."""
    proc = subprocess.Popen(cmd)
    while proc.poll() is None:
        app.processEvents()
        time.sleep(0.01)
    if proc.returncode:
        raise SystemExit(f"{cmd[0]} failed with exit code {proc.returncode}")


def later(ms: int, action) -> None:
    """Act on a modal dialog once it is open (its own event loop runs this timer)."""
    QTimer.singleShot(ms, action)


def xy(point: QPoint) -> list[str]:
    return [str(point.x()), str(point.y())]


def drag(app: QApplication, a: QPoint, b: QPoint, *, release: bool = True, steps: int = 12) -> None:
    cmd = ["xdotool", "mousemove", *xy(a), "mousedown", "1", "sleep", "0.2"]
    for i in range(1, steps + 1):
        cmd += ["mousemove", str(a.x() + (b.x() - a.x()) * i // steps), str(a.y() + (b.y() - a.y()) * i // steps),
                "sleep", "0.04"]
    if release:
        cmd += ["sleep", "0.2", "mouseup", "1"]
    run(app, *cmd)
    settle(app, 0.3)


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="seqwb-reviews-"))
    data = folder / "my_reviews.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(REVIEWS * 60)

    app = QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    from workbench.gui.app import MainWindow
    from workbench.plugin_system import default_registry
    win = MainWindow(default_registry())
    win.setGeometry(app.primaryScreen().geometry())
    win.show()
    settle(app, 1.5)

    def centre(widget) -> QPoint:
        return widget.mapToGlobal(widget.rect().center())

    def on_canvas(scene_pt: QPointF) -> QPoint:
        return win.view.viewport().mapToGlobal(win.view.mapFromScene(scene_pt))

    def click_create() -> None:
        dialog = QApplication.activeModalWidget()
        button = next(b for b in dialog.findChildren(type(dialog.buttons.buttons()[0])) if b.text() == "Create")
        subprocess.Popen(["xdotool", "mousemove", *xy(centre(button)), "click", "1"])

    # File ▸ New: "Empty project" is the first entry; Create
    later(1200, click_create)
    run(app, "xdotool", "mousemove", *xy(centre(win.toolbar.widgetForAction(win.files.act_new))), "click", "1")
    settle(app, 1.0)

    def palette_item(task: str = "", block: str = "", cell: str = "") -> QPoint:
        tree = win.palette_widget.tree
        for g in range(tree.topLevelItemCount()):
            group = tree.topLevelItem(g)
            for c in range(group.childCount()):
                entry = win.palette_widget.entry_of(group.child(c))
                if (task and entry.task == task) or (block and entry.type_id == block and
                                                     (not cell or entry.params.get("cell") == cell)):
                    tree.scrollToItem(group.child(c))
                    settle(app, 0.2)
                    return tree.viewport().mapToGlobal(tree.visualItemRect(group.child(c)).center())
        raise LookupError(task or block)

    # the task, dragged from the palette onto the empty canvas
    drag(app, palette_item(task="sentiment"), centre(win.view.viewport()))
    settle(app, 0.8)

    # its data: the file picker beside "path"; the file's name typed in the picker, then Open
    def type_path() -> None:
        subprocess.Popen(["xdotool", "type", "--delay", "15", str(data)]).wait()
        subprocess.Popen(["xdotool", "key", "Return"])
    win.inspector.flush()
    browse = win.inspector.form("task").rows["path"].container.findChild(QToolButton)
    later(1200, type_path)
    run(app, "xdotool", "mousemove", *xy(centre(browse)), "click", "1")
    end = time.time() + 60
    while (win.inspector.previewer.result is None or win.inspector.previewer.busy) and time.time() < end:
        settle(app, 0.2)

    # blocks, dragged onto the canvas in a row under the task's nodes; then Fit, to see them all
    graph = win.doc.graph
    x_in, y_in = win.doc.position("input")
    row = y_in + 150
    for i, (kind, cell) in enumerate((("embedding", ""), ("rnn", "lstm"), ("pool", ""), ("classifier", ""))):
        visible = win.view.mapToScene(win.view.viewport().rect()).boundingRect()
        x = min(x_in + 70 + 200 * i, visible.right() - 90)
        drag(app, palette_item(block=kind, cell=cell), on_canvas(QPointF(x, row)))
        if i == 1:
            # the rest of the row is off the canvas's right edge: make room as a person would, Fit
            run(app, "xdotool", "mousemove", *xy(centre(win.toolbar.widgetForAction(win.act_fit))), "click", "1")
            settle(app, 0.3)
    run(app, "xdotool", "mousemove", *xy(centre(win.toolbar.widgetForAction(win.act_fit))), "click", "1")
    settle(app, 0.3)
    ids = {n.type: n.id for n in graph.nodes.values()}
    scene = win.view.graph_scene

    def port(node: str, name: str, output: bool) -> QPoint:
        return on_canvas(scene.nodes[node].port(name, output).anchor())

    # wired port to port
    for src, sp, dst, dp in (("input", "tokens", ids["embedding"], "x"), (ids["embedding"], "y", ids["rnn"], "x"),
                             (ids["rnn"], "y", ids["pool"], "x"), (ids["pool"], "y", ids["classifier"], "x")):
        drag(app, port(src, sp, True), port(dst, dp, False))

    # a click on the empty canvas: the inspector shows the project's settings again, the task's among them; it is
    # scrolled with the wheel (over its fields, which do not change) down to the data preview
    top = win.view.viewport().mapToGlobal(QPoint(40, 40))
    run(app, "xdotool", "mousemove", *xy(top), "click", "1")
    settle(app, 0.5)
    win.inspector.flush()
    panel = win.inspector.preview
    while panel is not None and panel.mapTo(win.inspector.scroll.viewport(), QPoint(0, 0)).y() > 140:
        run(app, "xdotool", "mousemove", *xy(centre(win.inspector.scroll.viewport())), "click", "5")

    # the last link on its way: the classifier's scores to the task's output
    a, b = port(ids["classifier"], "y", True), port("output", "logits", False)
    drag(app, a, QPoint(b.x() - 14, b.y() + 10), release=False)
    settle(app, 0.6)
    run(app, "import", "-window", "root", str(HERE / "empty-project-wiring.png"))
    print("wrote", HERE / "empty-project-wiring.png")
    run(app, "xdotool", "mousemove", *xy(b), "mouseup", "1")
    settle(app, 0.5)
    problems = win.doc.report().problems
    print("problems after the last link:", problems or "none")
    win.doc.undo_stack.setClean()       # quit without the unsaved-changes question
    win.close()
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
