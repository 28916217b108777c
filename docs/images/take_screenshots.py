"""Take the README screenshots with the app running for real on an X display (Xvfb works).

    Xvfb :97 -screen 0 1400x900x24 &
    DISPLAY=:97 QT_QPA_PLATFORM=xcb python docs/images/take_screenshots.py            # light palette
    DISPLAY=:97 QT_QPA_PLATFORM=xcb python docs/images/take_screenshots.py --dark     # dark palette, *-dark.png

The window fills the screen; every picture is the whole X screen (``import -window root``, ImageMagick), taken
after real X mouse and keyboard events sent with ``xdotool`` where a person would use the mouse (the refused
link is a real drag from port to port).  Settings go to a temporary folder, never the user's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="seqwb-shots-")

from PySide6.QtCore import QPoint, QPointF  # noqa: E402
from PySide6.QtGui import QColor, QPalette  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def settle(app: QApplication, seconds: float = 0.4) -> None:
    end = time.time() + seconds
    while time.time() < end:
        app.processEvents()
        time.sleep(0.02)


def run(app: QApplication, *cmd: str) -> None:
    """Run an external command (xdotool, import) while the event loop keeps going, so the app can react."""
    proc = subprocess.Popen(cmd)
    while proc.poll() is None:
        app.processEvents()
        time.sleep(0.01)
    if proc.returncode:
        raise SystemExit(f"{cmd[0]} failed with exit code {proc.returncode}")


def shot(app: QApplication, name: str, widget=None) -> Path:
    """The whole screen, or only ``widget``'s rectangle (a dialog: there is no window manager to frame it)."""
    settle(app)
    path = HERE / name
    crop = []
    if widget is not None:
        g = widget.frameGeometry()
        crop = ["-crop", f"{g.width()}x{g.height()}+{g.x()}+{g.y()}", "+repage"]
    run(app, "import", "-window", "root", *crop, str(path))
    print("wrote", path)
    return path


def dark_palette() -> QPalette:
    p = QPalette()
    base, window, text = QColor("#1e1f22"), QColor("#2b2d30"), QColor("#dfe1e5")
    for role, color in ((QPalette.ColorRole.Window, window), (QPalette.ColorRole.WindowText, text),
                        (QPalette.ColorRole.Base, base), (QPalette.ColorRole.AlternateBase, QColor("#26282b")),
                        (QPalette.ColorRole.Text, text), (QPalette.ColorRole.Button, window),
                        (QPalette.ColorRole.ButtonText, text), (QPalette.ColorRole.ToolTipBase, QColor("#3c3f41")),
                        (QPalette.ColorRole.ToolTipText, text), (QPalette.ColorRole.Highlight, QColor("#2f65ca")),
                        (QPalette.ColorRole.HighlightedText, QColor("#ffffff")),
                        (QPalette.ColorRole.PlaceholderText, QColor("#8c8f94")),
                        (QPalette.ColorRole.Link, QColor("#6aa6ff")), (QPalette.ColorRole.Mid, QColor("#3c3f41")),
                        (QPalette.ColorRole.Light, QColor("#45484c")), (QPalette.ColorRole.Dark, QColor("#18191b"))):
        p.setColor(role, color)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7c7f84"))
    return p


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dark", action="store_true", help="dark palette; files end in -dark.png")
    args = parser.parse_args()
    suffix = "-dark" if args.dark else ""

    app = QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    if args.dark:
        app.setPalette(dark_palette())
    from workbench.gui.app import MainWindow
    from workbench.plugin_system import default_registry
    win = MainWindow(default_registry())
    screen = app.primaryScreen().geometry()
    win.setGeometry(screen)
    win.show()
    settle(app, 1.5)
    win.view.fit_all()
    # wait for the device line (torch imports in the background)
    end = time.time() + 60
    while not win.device_text() and time.time() < end:
        settle(app, 0.2)

    def global_of(scene_pt: QPointF) -> QPoint:
        return win.view.viewport().mapToGlobal(win.view.mapFromScene(scene_pt))

    # 1. the main window on the default project
    shot(app, f"main-window{suffix}.png")

    # 2. palette search: typed for real into the search field
    search = win.palette_widget.search
    target = search.mapToGlobal(search.rect().center())
    run(app, "xdotool", "mousemove", str(target.x()), str(target.y()), "click", "1")
    run(app, "xdotool", "type", "--delay", "60", "att")
    shot(app, f"palette-search{suffix}.png")
    search.clear()

    # 3. a refused link: drag the task input's tokens onto the recurrent layer's input (vectors[T])
    scene = win.view.graph_scene
    src = scene.nodes["input"].port("tokens", True)
    dst = scene.nodes["rnn"].port("x", False)
    a, b = global_of(src.anchor()), global_of(dst.anchor())
    run(app, "xdotool", "mousemove", str(a.x()), str(a.y()), "mousedown", "1")
    for i in range(1, 11):
        x = a.x() + (b.x() - a.x()) * i // 10
        y = a.y() + (b.y() - a.y()) * i // 10 + (30 if 0 < i < 10 else 0)
        run(app, "xdotool", "mousemove", str(x), str(y))
    run(app, "xdotool", "mouseup", "1")
    run(app, "xdotool", "mousemove", str(b.x() + 120), str(b.y() + 160))   # out of the way of the bubble
    shot(app, f"refused-link{suffix}.png")

    # 4. the inspector on the recurrent layer, with a refused value under its field
    node = scene.nodes["rnn"]
    centre = global_of(node.sceneBoundingRect().topLeft() + QPointF(40, 10))
    run(app, "xdotool", "mousemove", str(centre.x()), str(centre.y()), "click", "1")
    settle(app)
    win.inspector.flush()
    spin = win.inspector.form("node").editor("hidden_size")
    p = spin.mapToGlobal(spin.rect().center())
    run(app, "xdotool", "mousemove", str(p.x()), str(p.y()), "click", "--repeat", "3", "1")
    run(app, "xdotool", "type", "--delay", "60", "512")
    run(app, "xdotool", "key", "Return", "Tab")   # commit, then move on as a person would
    shot(app, f"inspector{suffix}.png")

    # 5. the plugin manager
    from workbench.gui.plugin_manager import PluginManagerDialog
    dialog = PluginManagerDialog(win.registry, win)
    dialog.resize(1000, 620)
    dialog.move(screen.center() - dialog.rect().center())
    dialog.show()
    settle(app, 0.6)
    tree = dialog.tree
    for i in range(tree.topLevelItemCount()):   # every plugin in view; the cells plugin opened on the LSTM
        item = tree.topLevelItem(i)
        item.setExpanded(item.text(0) == "builtin-cells")
        if item.text(0) == "builtin-cells" and item.childCount():
            group = item.child(0)
            group.setExpanded(True)
            lstm = next((group.child(j) for j in range(group.childCount())
                         if group.child(j).text(0).startswith("lstm")), None)
            if lstm is not None:
                tree.setCurrentItem(lstm)
    shot(app, f"plugin-manager{suffix}.png", dialog)
    dialog.close()

    win.doc.undo_stack.setClean()   # quit without the unsaved-changes question
    win.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
