"""The main window: canvas in the middle, palette / inspector / problems docks, menus, toolbar, status bar, files.

One :class:`~workbench.gui.document.ProjectDocument` lives as long as the window; opening another file replaces
the project inside it (``replace_project``), so the undo actions, the canvas and the docks stay connected to the
same object.  Torch is never imported before the window has painted: the status bar's device is found by a
background thread started after the first show, and About imports torch only when it opens.

The middle of the window has two tabs: **Model** (the canvas) and **Training** (the dashboard, built the first
time it is needed, because pyqtgraph takes half a second to import).  Run ▸ Train trains a snapshot of the
project in a worker thread (:mod:`workbench.gui.run_bridge`); edits made while it trains go to the document and
never reach the live run, and the window says so.
"""

from __future__ import annotations

import html
import re
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QObject, QPointF, QSettings, Qt, QTimer, QUrl, Signal, qVersion
from PySide6.QtGui import (QAction, QCloseEvent, QColor, QDesktopServices, QIcon, QKeySequence, QPainter, QPalette,
                           QPen, QPixmap)
from PySide6.QtWidgets import (QAbstractSpinBox, QApplication, QDockWidget, QFileDialog, QLabel, QLineEdit,
                               QMainWindow, QMessageBox, QPlainTextEdit, QStyle, QTabWidget, QTextEdit, QToolBar,
                               QWidget)

from workbench import __version__
from workbench.gui.canvas.view import GraphView
from workbench.gui.document import ProjectDocument
from workbench.gui.evaluate_dialog import show_evaluate_dialog
from workbench.gui.forms import ElidedLabel, ScrollPage
from workbench.gui.inspector import Inspector
from workbench.gui.palette import PaletteWidget
from workbench.gui.problems import ProblemsPanel
from workbench.core.runs import merge_run_state, plan_run
from workbench.gui.run_bridge import RunBridge

ORGANIZATION = "Sequence Workbench"
APPLICATION = "Sequence Workbench"
FILE_FILTER = "Sequence Workbench projects (*.seqwb)"
MAX_RECENT = 10
STATE_VERSION = 2            # bump when the docks change, so an old saved layout is not forced onto new docks
VIEW_KEY = "__view__"        # graph.ui keys that are not node ids: the canvas view and the inspector
INSPECTOR_KEY = "__inspector__"
LOG_LINES = 5000             # the log dock keeps this many lines
# Side docks: their default widths, and the narrowest they may get.  Below the minimum the palette shows
# "Recurre…" eight times and the inspector's fields are cut off.  A saved layout with a dock below it (from a smaller
# window, or from a version whose wide tabs squeezed the docks) gets the default width back at the first show.
PALETTE_WIDTH, PALETTE_MIN_WIDTH = 210, 150
INSPECTOR_WIDTH, INSPECTOR_MIN_WIDTH = 330, 240


def app_settings() -> QSettings:
    """The application's settings (an INI file in the user's config folder; tests point ``QSettings.setPath`` at a
    temporary folder, so they never touch the user's)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def default_project(registry: Any) -> Any:
    """The embedded default project: the char-LM template on the Python standard library's source."""
    from workbench.core.settings import template_project
    project, _ = template_project(registry.template("char-lm"), {}, registry)
    return project


def docs_url() -> QUrl:
    """The documentation: the README of the checkout or source distribution the app runs from."""
    root = Path(__file__).resolve().parents[2]
    for candidate in (root / "README.md", root / "docs"):
        if candidate.exists():
            return QUrl.fromLocalFile(str(candidate))
    return QUrl("https://pypi.org/project/sequence-workbench/")


class _DeviceProbe(QObject):
    """Finds the training device in a background thread (importing torch takes a second or two)."""

    found = Signal(str)
    devices = Signal(list)       # [(value, label)] for the dashboard's device chooser

    def start(self) -> None:
        thread = threading.Thread(target=self._run, name="seqwb-device-probe")
        # importing torch allocates a great deal: no automatic garbage collection in that thread meanwhile
        from workbench.gui.worker_gc import worker_gc
        worker_gc().hold_until("device probe", lambda: not thread.is_alive())
        thread.start()

    def _run(self) -> None:
        devices: list[tuple[str, str]] = []
        try:
            from workbench.core.device import (available_devices, cpu_count, default_threads, describe_device,
                                               resolve_device)
            device = resolve_device("auto")
            if device.type == "cpu":    # what a run started here will use (cores - 1 by default), not torch's own count
                n = default_threads(True)
                text = f"CPU (trains on {n} of {cpu_count()} cores by default)"
            else:
                text = describe_device(device)
            for name in available_devices():
                if name.startswith("cuda:"):
                    import torch
                    devices.append((name, f"CUDA {name[5:]}: {torch.cuda.get_device_name(int(name[5:]))}"))
                elif name == "mps":
                    devices.append((name, "Apple MPS"))
        except Exception as exc:  # noqa: BLE001 - a broken torch must not take the window down
            text = f"unavailable ({type(exc).__name__}: {exc})"
        try:
            self.found.emit(text)
            self.devices.emit(devices)
        except RuntimeError:  # the window closed before torch finished importing
            pass


def _icon(theme: str, fallback: QStyle.StandardPixmap) -> QIcon:
    return QIcon.fromTheme(theme, QApplication.style().standardIcon(fallback))


def _run_icon(kind: str, text_color: QColor) -> QIcon:
    """Train / Pause / Resume / Stop.  The icon theme's when there is one; otherwise drawn here, because the
    style's stock media icons are black and vanish on a dark toolbar.  Green play and red stop are mid-luminance,
    readable on light and dark; pause is in the palette's text colour."""
    theme = {"train": "media-playback-start", "pause": "media-playback-pause", "resume": "media-playback-start",
             "stop": "media-playback-stop"}[kind]
    if QIcon.hasThemeIcon(theme):
        return QIcon.fromTheme(theme)
    pixmap = QPixmap(32, 32)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    green, red = QColor("#2e9d4f"), QColor("#d64541")
    if kind in ("train", "resume"):
        x0 = 9 if kind == "train" else 13
        if kind == "resume":              # a bar before the triangle: carry on from where it paused
            painter.setBrush(text_color)
            painter.drawRoundedRect(6, 7, 4, 18, 1, 1)
        painter.setBrush(green)
        painter.drawPolygon([QPointF(x0, 6), QPointF(x0 + 17, 16), QPointF(x0, 26)])
    elif kind == "pause":
        painter.setBrush(text_color)
        painter.drawRoundedRect(8, 7, 6, 18, 1.5, 1.5)
        painter.drawRoundedRect(18, 7, 6, 18, 1.5, 1.5)
    else:
        painter.setBrush(red)
        painter.drawRoundedRect(8, 8, 16, 16, 2, 2)
    painter.end()
    return QIcon(pixmap)


def _fit_icon(color: QColor) -> QIcon:
    """Four corner brackets around a box, in the palette's text colour (the style's stock "maximise" icon is
    dark grey, invisible on a dark toolbar)."""
    if QIcon.hasThemeIcon("zoom-fit-best"):
        return QIcon.fromTheme("zoom-fit-best")
    pixmap = QPixmap(32, 32)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(color, 2.6))
    for x, y, dx, dy in ((4, 4, 1, 1), (28, 4, -1, 1), (4, 28, 1, -1), (28, 28, -1, -1)):
        painter.drawLine(x, y, x + 7 * dx, y)
        painter.drawLine(x, y, x, y + 7 * dy)
    painter.drawRoundedRect(11, 12, 10, 8, 1.5, 1.5)
    painter.end()
    return QIcon(pixmap)


class MainWindow(QMainWindow):
    """``MainWindow(registry, project=None, path=None)``: without a project, the embedded default project."""

    def __init__(self, registry: Any, project: Any = None, path: str | None = None, *,
                 detect_device: bool = True, parent: QWidget | None = None):
        super().__init__(parent)
        self.registry = registry
        self._detect_device = detect_device
        self._device_text = ""
        self._shown_once = False
        self._untitled_kind = "default" if project is None else ("new" if path is None else "")
        if project is None:
            project = default_project(registry)
        self.doc = ProjectDocument(registry, project, path, self)
        self.setObjectName("MainWindow")
        self.resize(1280, 800)

        self.bridge = RunBridge(self)
        self.dashboard: Any = None          # built on first use (pyqtgraph's import is slow)
        self._devices: list[tuple[str, str]] = []
        self._run_graph_hash = ""           # the graph and settings the live run started with
        self._run_train: dict[str, Any] = {}
        self.view = GraphView(self.doc, self)
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("centralTabs")
        self.tabs.setDocumentMode(True)
        # the dashboard asks for about 980 px (its top row: run buttons, device, threads, progress, speed): in a
        # scrolling page, a narrower tab scrolls it instead of squeezing the docks or widening the window
        self.training_tab = ScrollPage()
        self.training_tab.setObjectName("trainingTab")
        self.tabs.addTab(self.view, "Model")
        self.tabs.addTab(self.training_tab, "Training")
        self.tabs.setTabToolTip(0, "The model graph (canvas)")
        self.tabs.setTabToolTip(1, "The training dashboard: losses, gradient norms, gradient through time, runs")
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.setCentralWidget(self.tabs)
        self._build_docks()
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status()
        # Inspect ▸ Hidden Units and its tab (the panel itself, and pyqtgraph, load when the tab is first shown)
        from workbench.gui.inspect_menu import install_inspect_menu
        install_inspect_menu(self)
        # the Decoding tab (beam-search trees, attention) and its Inspect menu entry; built when first shown
        from workbench.gui.inspect_decode import install as install_decoding
        install_decoding(self)
        from workbench.gui.export_menu import install_export
        install_export(self)                # File ▸ Export: model, run metrics, samples

        self.doc.undo_stack.cleanChanged.connect(self._update_title)
        self.doc.settingsChanged.connect(self._on_settings_changed)
        self.doc.problemsChanged.connect(self._update_run_actions)
        self.doc.graphChanged.connect(self._check_run_snapshot)
        self.bridge.runStarted.connect(self._on_run_started)
        self.bridge.eventsReady.connect(self._on_run_events)
        self.bridge.stateSaved.connect(self._on_run_state_saved)
        self.bridge.runEnded.connect(self._on_run_ended)
        self.bridge.stateChanged.connect(self._on_run_state_changed)
        self.view.selectionChanged.connect(self._on_selection)
        self.view.message.connect(self.show_message)
        self.problems.nodeActivated.connect(lambda nid: self.view.select_node(nid, center=True))
        # autosave while modified (after the bridge's connections above: a checkpoint is merged before it is saved)
        from workbench.gui.recovery import RecoveryManager
        self.recovery = RecoveryManager(self)

        self._restore_window()
        self._update_title()
        self._update_run_actions()
        self._on_selection(self.view.selected_node_ids())

    # ---- properties kept for callers of the old window ------------------------------------------------------
    @property
    def project(self) -> Any:
        return self.doc.project

    @property
    def path(self) -> str | None:
        return self.doc.path

    # ---- building ------------------------------------------------------------------------------------------
    def _build_docks(self) -> None:
        self.setDockNestingEnabled(True)
        # side docks run the full height (as in IDEs); the problems list sits under the canvas only
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.palette_widget = PaletteWidget(self.registry, self.view)
        self.inspector = Inspector(self.doc)
        self.problems = ProblemsPanel(self.doc)
        self.palette_dock = self._dock("Palette", "paletteDock", self.palette_widget,
                                       Qt.DockWidgetArea.LeftDockWidgetArea)
        self.inspector_dock = self._dock("Inspector", "inspectorDock", self.inspector,
                                         Qt.DockWidgetArea.RightDockWidgetArea)
        self.problems_dock = self._dock("Problems", "problemsDock", self.problems,
                                        Qt.DockWidgetArea.BottomDockWidgetArea)
        self.log_view = QPlainTextEdit()
        self.log_view.setObjectName("runLog")
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(LOG_LINES)
        self.log_view.setPlaceholderText("Training runs report here: start, notices, evaluations, errors.")
        self.log_dock = self._dock("Log", "logDock", self.log_view, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.problems_dock, self.log_dock)
        self.problems_dock.raise_()
        # the minimum widths are set at the first show (_keep_docks_usable), after the saved layout is restored
        self.resizeDocks([self.palette_dock, self.inspector_dock], [PALETTE_WIDTH, INSPECTOR_WIDTH],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.problems_dock], [96], Qt.Orientation.Vertical)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)          # saveState / restoreState find docks by object name
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, text: str, slot: Any = None, *, shortcut: Any = None, tip: str = "",
                icon: QIcon | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setToolTip(tip)
            action.setStatusTip(tip)
        if icon is not None:
            action.setIcon(icon)
        if slot is not None:
            action.triggered.connect(lambda _checked=False: slot())
        return action

    def _build_actions(self) -> None:
        SK = QKeySequence.StandardKey
        SP = QStyle.StandardPixmap
        self.act_new = self._action("&New from Template…", self.new_from_template, shortcut=SK.New,
                                    tip="Start a new project from a template",
                                    icon=_icon("document-new", SP.SP_FileIcon))
        self.act_open = self._action("&Open…", self.open_dialog, shortcut=SK.Open, tip="Open a project file",
                                     icon=_icon("document-open", SP.SP_DialogOpenButton))
        self.act_save = self._action("&Save", self.save, shortcut=SK.Save, tip="Save the project",
                                     icon=_icon("document-save", SP.SP_DialogSaveButton))
        self.act_save_as = self._action("Save &As…", self.save_as, shortcut=SK.SaveAs,
                                        tip="Save the project under another name")
        self.act_close = self._action("&Close", self.close_project, shortcut=SK.Close,
                                      tip="Close the project (the window goes back to the default project)")
        self.act_quit = self._action("&Quit", self.close, shortcut=SK.Quit, tip="Quit Sequence Workbench")
        self.act_quit.setMenuRole(QAction.MenuRole.QuitRole)

        stack = self.doc.undo_stack
        self.act_undo = stack.createUndoAction(self, "&Undo")
        self.act_undo.setShortcut(QKeySequence(SK.Undo))
        self.act_undo.setIcon(_icon("edit-undo", SP.SP_ArrowBack))
        self.act_redo = stack.createRedoAction(self, "&Redo")
        self.act_redo.setShortcut(QKeySequence(SK.Redo))
        self.act_redo.setIcon(_icon("edit-redo", SP.SP_ArrowForward))
        self.act_cut = self._action("Cu&t", lambda: self._edit("cut"), shortcut=SK.Cut,
                                    tip="Cut the selected nodes")
        self.act_copy = self._action("&Copy", lambda: self._edit("copy"), shortcut=SK.Copy,
                                     tip="Copy the selected nodes (with the links among them)")
        self.act_paste = self._action("&Paste", lambda: self._edit("paste"), shortcut=SK.Paste,
                                      tip="Paste nodes")
        self.act_delete = self._action("&Delete", lambda: self._edit("delete"), shortcut=SK.Delete,
                                       tip="Delete the selected nodes and their links")
        self.act_select_all = self._action("Select &All", lambda: self._edit("select_all"), shortcut=SK.SelectAll,
                                           tip="Select every node")

        self.act_fit = self._action("&Fit Model in View", lambda: self.view.fit_all(), shortcut="Home",
                                    tip="Zoom so that the whole model is visible (Home on the canvas)",
                                    icon=_fit_icon(self.palette().color(QPalette.ColorRole.ButtonText)))
        # Home belongs to the canvas; in a list or a text field it keeps its usual meaning
        self.act_fit.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.view.addAction(self.act_fit)
        self.act_layout = self._action("&Auto-layout", lambda: self.view.auto_layout(), shortcut="Ctrl+L",
                                       tip="Arrange the nodes left to right by data flow (undoable)",
                                       icon=_icon("view-sort-ascending", SP.SP_FileDialogListView))
        # no shortcut here: the canvas takes Tab itself (a window-wide Tab would break focus navigation)
        self.act_quick_add = self._action("Add &Block… (Tab on the canvas)", self._quick_add,
                                          tip="Type the name of a block to add it to the canvas")

        # F5 / Shift+F5 as in debuggers (run / stop); no standard key exists for these
        text_color = self.palette().color(QPalette.ColorRole.ButtonText)
        self.act_train = self._action("&Train", self.train, shortcut="F5",
                                      icon=_run_icon("train", text_color))
        self.act_train_new = self._action("Train &New Run", lambda: self.train(new_run=True), shortcut="Ctrl+F5",
                                          tip="Start a new run from fresh weights, keeping the earlier runs in the "
                                              "history")
        self.act_pause = self._action("&Pause", self.pause_training, shortcut="F6",
                                      icon=_run_icon("pause", text_color))
        self.act_resume = self._action("&Resume", self.resume_training, shortcut="F6",
                                       icon=_run_icon("resume", text_color),
                                       tip="Resume training from the step where it paused (F6)")
        self.act_stop = self._action("&Stop", self.stop_training, shortcut="Shift+F5",
                                     icon=_run_icon("stop", text_color))
        # the window's seqwb eval; the dialog (workbench.gui.evaluate_dialog) is built the first time it opens
        self.act_evaluate = self._action("&Evaluate…", lambda: show_evaluate_dialog(self), shortcut="Ctrl+E",
                                         tip="The model's metrics on the validation or test split, at the current "
                                             "or the best weights (Ctrl+E)")
        self.act_show_model = self._action("&Model", lambda: self.tabs.setCurrentIndex(0), shortcut="Ctrl+1",
                                           tip="Show the model graph")
        self.act_show_training = self._action("&Training Dashboard", self.show_dashboard, shortcut="Ctrl+2",
                                              tip="Show the training dashboard")

        self.act_plugins = self._action("&Plugin Manager…", self.show_plugin_manager,
                                        tip="Installed plugins, their contributions, and plugins that failed")
        self.act_docs = self._action("&Documentation", self.open_docs, shortcut=QKeySequence.StandardKey.HelpContents,
                                     tip="Open the documentation")
        self.act_about = self._action("&About Sequence Workbench", self.about)
        self.act_about.setMenuRole(QAction.MenuRole.AboutRole)
        self.act_about_qt = self._action("About &Qt", QApplication.aboutQt)
        self.act_about_qt.setMenuRole(QAction.MenuRole.AboutQtRole)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        m = bar.addMenu("&File")
        m.addAction(self.act_new)
        m.addAction(self.act_open)
        self.recent_menu = m.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._fill_recent_menu()
        m.addSeparator()
        m.addAction(self.act_save)
        m.addAction(self.act_save_as)
        m.addSeparator()
        m.addAction(self.act_close)
        m.addSeparator()
        m.addAction(self.act_quit)

        m = bar.addMenu("&Edit")
        for act in (self.act_undo, self.act_redo, None, self.act_cut, self.act_copy, self.act_paste,
                    self.act_delete, None, self.act_select_all):
            m.addSeparator() if act is None else m.addAction(act)

        m = bar.addMenu("&View")
        m.addAction(self.act_show_model)
        m.addAction(self.act_show_training)
        m.addSeparator()
        for dock in (self.palette_dock, self.inspector_dock, self.problems_dock, self.log_dock):
            toggle = dock.toggleViewAction()
            toggle.setStatusTip(f"Show or hide the {dock.windowTitle().lower()}")
            m.addAction(toggle)
        m.addSeparator()
        m.addAction(self.act_fit)
        m.addAction(self.act_layout)
        m.addAction(self.act_quick_add)

        m = bar.addMenu("&Run")
        m.setToolTipsVisible(True)    # the reason Train is disabled is in its tooltip
        for act in (self.act_train, self.act_train_new, self.act_pause, self.act_resume, self.act_stop, None,
                    self.act_evaluate):
            m.addSeparator() if act is None else m.addAction(act)
        self.run_menu = m

        m = bar.addMenu("&Plugins")
        m.addAction(self.act_plugins)

        m = bar.addMenu("&Help")
        m.addAction(self.act_docs)
        m.addSeparator()
        m.addAction(self.act_about)
        m.addAction(self.act_about_qt)

    def _build_toolbar(self) -> None:
        bar = QToolBar("Main toolbar", self)
        bar.setObjectName("mainToolBar")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        # The menu's Undo/Redo say what they undo ("Undo Set rnn.hidden_size"); on the toolbar that text would
        # make every button after them jump, so the toolbar has fixed labels and says the rest in the tooltip.
        stack = self.doc.undo_stack
        self.tb_undo = self._action("Undo", stack.undo, icon=self.act_undo.icon())
        self.tb_redo = self._action("Redo", stack.redo, icon=self.act_redo.icon())
        for act, can, text_changed, word in ((self.tb_undo, stack.canUndo, stack.undoTextChanged, "Undo"),
                                             (self.tb_redo, stack.canRedo, stack.redoTextChanged, "Redo")):
            act.setEnabled(can())
            (stack.canUndoChanged if word == "Undo" else stack.canRedoChanged).connect(act.setEnabled)
            text_changed.connect(lambda text, a=act, w=word: a.setToolTip(f"{w} {text}".strip()))
            act.setToolTip(word)
        for act in (self.act_new, self.act_open, self.act_save, None, self.tb_undo, self.tb_redo, None,
                    self.act_fit, self.act_layout, None, self.act_train, self.act_pause, self.act_resume,
                    self.act_stop):
            bar.addSeparator() if act is None else bar.addAction(act)
        # short labels on the toolbar; the menus keep the full ones
        for act, text in ((self.act_new, "New"), (self.act_open, "Open"), (self.act_fit, "Fit")):
            button = bar.widgetForAction(act)
            if button is not None:
                button.setText(text)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.toolbar = bar

    def _build_status(self) -> None:
        status = self.statusBar()
        # Messages go to this label rather than being painted by the status bar, which cuts a long one off where
        # the permanent labels begin ("set task.e✓ model graph complete"); the label ends it in "…" instead and
        # keeps the whole text in its tooltip.  Being the first permanent widget, it leaves the status bar's own
        # message area no room, so the text is not drawn twice.
        self.message_label = ElidedLabel()
        self.message_label.setObjectName("statusMessage")
        self.message_label.setContentsMargins(4, 0, 6, 0)
        status.messageChanged.connect(self.message_label.setText)
        status.addPermanentWidget(self.message_label, 1)
        self.problems_label = QLabel()
        self.problems_label.setContentsMargins(6, 0, 6, 0)
        self.device_label = QLabel("Device: …")
        self.device_label.setToolTip("The device training will use (auto: CUDA, then MPS, then CPU)")
        self.device_label.setContentsMargins(6, 0, 6, 0)
        self.run_label = QLabel()
        self.run_label.setContentsMargins(6, 0, 6, 0)
        self.run_label.hide()
        status.addPermanentWidget(self.run_label)
        status.addPermanentWidget(self.problems_label)
        status.addPermanentWidget(self.device_label)

    # ---- showing -------------------------------------------------------------------------------------------
    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            QTimer.singleShot(0, self._keep_docks_usable)
            QTimer.singleShot(0, self._apply_view_state)
            if self._detect_device:
                # after the first paint: torch's import must not delay the window
                QTimer.singleShot(200, self._start_device_probe)

    def _keep_docks_usable(self) -> None:
        """Give a side dock that the restored layout left too narrow its default width, then keep both docks at
        least at their minimum widths from now on.

        Set before the restore, the minimums would only clamp such a dock to the minimum; the layout is laid out
        (and the restored widths known) once the window is shown."""
        docks = ((self.palette_dock, PALETTE_WIDTH, PALETTE_MIN_WIDTH),
                 (self.inspector_dock, INSPECTOR_WIDTH, INSPECTOR_MIN_WIDTH))
        narrow = [(dock, width) for dock, width, least in docks
                  if dock.isVisible() and not dock.isFloating() and dock.width() < least]
        if narrow:
            self.resizeDocks([d for d, _ in narrow], [w for _, w in narrow], Qt.Orientation.Horizontal)
            # now, not at the next layout pass: the canvas fits the model to its size right after this
            self.layout().activate()
        for dock, _width, least in docks:
            dock.setMinimumWidth(least)

    def _start_device_probe(self) -> None:
        self.device_label.setText("Device: detecting…")
        self._probe = _DeviceProbe(self)
        self._probe.found.connect(self._on_device)
        self._probe.devices.connect(self._on_devices)
        self._probe.start()

    def _on_device(self, text: str) -> None:
        self._device_text = text
        self.device_label.setText(f"Device: {text}")

    def _on_devices(self, devices: list) -> None:
        self._devices = [tuple(d) for d in devices]
        if self.dashboard is not None:
            self.dashboard.set_devices(self._devices)

    def device_text(self) -> str:
        return self._device_text

    def show_message(self, text: str, timeout_ms: int = 6000) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    def _apply_view_state(self) -> None:
        """Restore the saved zoom/centre and inspector state of the project, or fit a project that has none."""
        ui = self.doc.graph.ui
        view_state = ui.get(VIEW_KEY)
        if isinstance(view_state, dict) and view_state:
            self.view.set_view_state(view_state)
        else:
            self.view.fit_all()
        inspector_state = ui.get(INSPECTOR_KEY)
        if isinstance(inspector_state, dict):
            self.inspector.set_state(inspector_state)
            node = inspector_state.get("node")
            if isinstance(node, str) and node in self.doc.graph.nodes:
                self.view.select_node(node, center=False)

    def _update_title(self, *_args: Any) -> None:
        path = self.doc.path
        if path:
            where = Path(path).name
        elif self._untitled_kind == "default":
            where = "default project, not saved"
        else:
            where = "not saved"
        self.setWindowTitle(f"{self.doc.project.name} — {where}[*] — Sequence Workbench")
        self.setWindowModified(self.doc.is_modified())

    def _on_settings_changed(self, section: str) -> None:
        if section == "name":
            self._update_title()
        elif section == "train":
            self._update_run_actions()
            self._check_run_snapshot()

    def _update_run_actions(self, *_args: Any) -> None:
        problems = self.doc.report().problems
        state = self.bridge.state
        live = state != "idle"
        if problems:
            more = f" (and {len(problems) - 1} more; see the Problems panel)" if len(problems) > 1 else ""
            tip = f"Cannot train: {problems[0]}{more}"
            self.problems_label.setText(f"⚠ {len(problems)} problem{'s' if len(problems) > 1 else ''}")
            self.problems_label.setToolTip("\n".join(problems))
        else:
            tip = f"Train (F5): {plan_run(self.doc.project).text}"
            self.problems_label.setText("✓ model graph complete")
            self.problems_label.setToolTip("The model graph has no problems")
        if live:
            tip = "A run is training: Pause, Resume or Stop it first"
        self.act_train.setEnabled(not live and not problems)
        self.act_train_new.setEnabled(not live and not problems)
        paused = state in ("pausing", "paused")
        self.act_pause.setEnabled(state in ("starting", "running"))
        self.act_resume.setEnabled(paused)
        self.act_pause.setVisible(not paused)
        self.act_resume.setVisible(paused)
        self.act_stop.setEnabled(live and state != "stopping")
        idle_tip = "Nothing is training"
        for act, text in ((self.act_train, tip),
                          (self.act_pause, "Pause training after the current step (F6)" if live else idle_tip),
                          (self.act_stop, "Stop training after the current step and keep a checkpoint (Shift+F5)"
                           if live else idle_tip)):
            act.setToolTip(text)
            act.setStatusTip(text)

    def _on_selection(self, node_ids: list[str]) -> None:
        self.inspector.show_nodes(list(node_ids))
        has = bool(node_ids)
        for act in (self.act_cut, self.act_copy, self.act_delete):
            act.setEnabled(has)

    def _quick_add(self) -> None:
        self.view.setFocus()
        self.view.open_quick_search()

    def _edit(self, what: str) -> None:
        """Edit actions go to a focused text field when there is one (the inspector), otherwise to the canvas."""
        focus = QApplication.focusWidget()
        if isinstance(focus, QAbstractSpinBox):
            focus = focus.findChild(QLineEdit) or focus
        if isinstance(focus, (QLineEdit, QPlainTextEdit, QTextEdit)) and what != "delete":
            method = {"select_all": "selectAll"}.get(what, what)
            getattr(focus, method)()
            return
        {"cut": self.view.cut_selection, "copy": self.view.copy_selection, "paste": self.view.paste,
         "delete": self.view.delete_selection, "select_all": self.view.select_all}[what]()

    # ---- training ------------------------------------------------------------------------------------------
    def ensure_dashboard(self) -> Any:
        """The dashboard, built (and pyqtgraph imported) the first time it is needed."""
        if self.dashboard is None:
            QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
            try:
                from workbench.gui.dashboard import TrainingDashboard
                self.dashboard = TrainingDashboard(self.doc, self.training_tab.content)
            finally:
                QApplication.restoreOverrideCursor()
            self.dashboard.add_run_actions([self.act_train, self.act_pause, self.act_resume, self.act_stop])
            if self._devices:
                self.dashboard.set_devices(self._devices)
            self.training_tab.add(self.dashboard)
        return self.dashboard

    def show_dashboard(self) -> None:
        self.ensure_dashboard()
        self.tabs.setCurrentWidget(self.training_tab)

    def _on_tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.training_tab:
            self.ensure_dashboard()

    def log(self, text: str, kind: str = "info") -> None:
        """A line in the log dock, with the time; errors in the error colour."""
        import time as _time
        from workbench.gui.forms import error_color
        stamp = _time.strftime("%H:%M:%S")
        body = html.escape(text).replace("\n", "<br>&nbsp;&nbsp;")
        if kind == "error":
            body = f"<span style='color:{error_color(self.log_view).name()}'>{body}</span>"
        elif kind == "detail":
            body = f"<span style='white-space:pre'>{body}</span>"
        self.log_view.appendHtml(f"<span style='opacity:0.7'>{stamp}</span>&nbsp; {body}")

    def train(self, new_run: bool = False) -> bool:
        """Run ▸ Train: continue the latest run or start a new one (``new_run``), on a snapshot of the project."""
        if self.bridge.is_live():
            if self.bridge.state in ("pausing", "paused"):
                self.resume_training()
            return False
        self.inspector.commit_pending()
        problems = self.doc.report().problems
        if problems:
            self.show_message(f"Cannot train: {problems[0]}")
            return False
        plan = plan_run(self.doc.project, force_new=new_run)
        self.show_dashboard()
        self._run_graph_hash = self.doc.graph.content_hash()
        from workbench.schema.params import params_to_dict
        self._run_train = params_to_dict(self.doc.project.train)
        base_dir = str(Path(self.doc.path).resolve().parent) if self.doc.path else None
        self.log(f"Train: {plan.text}")
        self.bridge.start(self.doc.project, self.registry, base_dir=base_dir, new_run=plan.new_run)
        self.dashboard.hide_banner()
        self.dashboard.settings_bar.setEnabled(False)      # they apply at Train: this run has them already
        self.dashboard.progress.setFormat("starting: reading the data and building the model…")
        self._update_run_actions()
        return True

    def pause_training(self) -> None:
        self.bridge.pause()

    def resume_training(self) -> None:
        self.bridge.resume()
        if self.dashboard is not None:
            self.dashboard.set_paused(False)
        self.log(f"Resumed at step {self.bridge.last_step}")

    def stop_training(self) -> None:
        if self.bridge.is_live():
            self.bridge.stop()
            self.show_message("Stopping after the current step…")

    def _on_run_state_changed(self, state: str) -> None:
        self._update_run_actions()
        if state == "paused":
            self.log(f"Paused at step {self.bridge.last_step} (a checkpoint is in the project: Save keeps it)")
            if self.dashboard is not None:
                self.dashboard.set_paused(True)
        self.run_label.setVisible(state != "idle")
        if state in ("paused", "pausing", "stopping", "starting"):
            self.run_label.setText(f"Training: {state}")

    def _merge(self, state: Any) -> None:
        sizes_before = (self.doc.project.data or {}).get("sizes")
        merge_run_state(self.doc.project, state)
        self.doc.undo_stack.resetClean()    # the project changed, but not by an undoable edit
        if (self.doc.project.data or {}).get("sizes") != sizes_before:
            self.doc.graphChanged.emit()    # the data's sizes (the vocabulary) are known now: revalidate

    def _on_run_started(self, start: Any) -> None:
        self._merge(start.state)
        self.log(f"{start.run_id}: {'continuing' if start.resumed else 'started'} at step {start.step} of "
                 f"{start.total} on {start.device}, {start.parameters:,} parameters")
        for notice in start.notices:
            self.log(f"note: {notice}")
        if self.dashboard is not None:
            self.dashboard.begin_run(start)
        self.run_label.setText(f"Training {start.run_id}")
        self._check_run_snapshot()

    def _on_run_events(self, events: list) -> None:
        if self.dashboard is not None:
            self.dashboard.consume(events)
        for kind, ev in events:
            if kind == "eval":
                shown = "  ".join(f"{k} {v:.4g}" for k, v in ev.metrics.items() if isinstance(v, (int, float)))
                self.log(f"step {ev.step}: valid {shown}{'  (best)' if ev.best else ''}")
        self.run_label.setText(f"Training: step {self.bridge.last_step}")

    def _on_run_state_saved(self, state: Any) -> None:
        self._merge(state)
        if self.dashboard is not None:
            self.dashboard.save_state(state)

    def _on_run_ended(self, end: Any) -> None:
        if end.state is not None:
            self._merge(end.state)
        run_id = end.state.run.id if end.state is not None else "the run"
        if end.status == "failed":
            self.log(f"{run_id} failed: {end.message}", "error")
            if end.details:
                self.log(end.details.rstrip(), "detail")
            self.show_message(f"Training failed: {end.message}", 15000)
        else:
            self.log(f"{run_id} {end.status} at step {end.step}" + (f" ({end.message})" if end.message else ""))
            self.show_message(f"Training {end.status} at step {end.step}")
        if self.dashboard is not None:
            self.dashboard.end_run(end)
        self.run_label.hide()
        self._update_run_actions()

    def _check_run_snapshot(self) -> None:
        """While a run is live, tell the user when the document no longer matches what the run trains."""
        if not self.bridge.is_live() or self.dashboard is None:
            return
        from workbench.schema.params import params_to_dict
        graph_edited = self.doc.graph.content_hash() != self._run_graph_hash
        settings_edited = params_to_dict(self.doc.project.train) != self._run_train
        if graph_edited or settings_edited:
            what = "model graph" if graph_edited else "training settings"
            if graph_edited and settings_edited:
                what = "model graph and training settings"
            self.dashboard.show_banner(
                f"The {what} changed after this run started. The run goes on with the {what} as they were when "
                f"you pressed Train; the edits apply to the next run.", "notice")
        elif self.dashboard.banner_kind == "notice":
            self.dashboard.hide_banner()

    def ask_stop_training(self, closing: bool) -> str:
        """Ask what to do with the live run: "save" (stop, then save), "discard" (stop only) or "cancel"."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("A run is training")
        if closing:
            box.setText("A run is training. Stop it and save the project before closing?")
            box.setInformativeText("Stopping keeps a checkpoint at the last finished step.")
            save = box.addButton("Stop and Save", QMessageBox.ButtonRole.AcceptRole)
            discard = box.addButton("Stop, Don't Save", QMessageBox.ButtonRole.DestructiveRole)
        else:
            box.setText("A run is training. Stop it first?")
            box.setInformativeText("Stopping keeps a checkpoint at the last finished step; you are asked about "
                                   "saving next.")
            save, discard = None, box.addButton("Stop Training", QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(save or discard)
        box.exec()
        clicked = box.clickedButton()
        if clicked is cancel or clicked is None:
            return "cancel"
        return "save" if clicked is save else "discard"

    def stop_and_wait(self, timeout_s: float = 60.0) -> bool:
        """Stop the live run and wait until it has ended and its checkpoint is in the project."""
        if not self.bridge.is_live():
            return True
        self.bridge.stop()
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            return self.bridge.wait_until_ended(timeout_s)
        finally:
            QApplication.restoreOverrideCursor()

    def _stop_run_first(self) -> bool:
        """Before another project replaces this one: a live run is stopped (after asking) and merged."""
        if not self.bridge.is_live():
            return True
        if self.ask_stop_training(closing=False) == "cancel":
            return False
        return self.stop_and_wait()

    # ---- files ---------------------------------------------------------------------------------------------
    def maybe_save(self) -> bool:
        """Ask Save / Discard / Cancel when there are unsaved changes; True when it is fine to go on."""
        self.inspector.commit_pending()
        if not self.doc.is_modified():
            return True
        where = Path(self.doc.path).name if self.doc.path else "this project"
        answer = QMessageBox.question(
            self, "Unsaved changes",
            f"“{self.doc.project.name}” ({where}) has unsaved changes.\nSave them before going on?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def _replace(self, project: Any, path: str | None, kind: str = "") -> None:
        self._untitled_kind = kind
        self.doc.replace_project(project, path)
        self._update_title()
        self._update_run_actions()
        if self.isVisible():
            QTimer.singleShot(0, self._apply_view_state)

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", self._last_dir(), FILE_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str) -> bool:
        """Open ``path`` in this window; on any error the message is shown and the current project stays."""
        if not self._stop_run_first() or not self.maybe_save():
            return False
        from workbench.schema.errors import MissingPluginError, WorkbenchError
        from workbench.core.projectfile import load_project
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            project = load_project(path, registry=self.registry)
        except MissingPluginError as exc:
            QApplication.restoreOverrideCursor()
            QMessageBox.warning(self, "A plugin is missing",
                                f"{exc}\n\nNothing was opened. Install the plugin, then open the file again "
                                f"(Plugins ▸ Plugin Manager lists what is installed).")
            return False
        except (WorkbenchError, OSError, ValueError) as exc:
            QApplication.restoreOverrideCursor()
            if not Path(path).exists():
                self._forget_recent(path)   # a recent file that has gone stays gone
            QMessageBox.warning(self, "Cannot open project", str(exc))
            return False
        QApplication.restoreOverrideCursor()
        self._replace(project, str(path))
        self.add_recent(str(path))
        self.show_message(f"Opened {path}")
        return True

    def save(self) -> bool:
        if not self.doc.path:
            return self.save_as()
        return self._save_to(self.doc.path)

    def save_as(self) -> bool:
        start = self.doc.path or str(Path(self._last_dir()) / f"{_slug(self.doc.project.name)}.seqwb")
        path, _ = QFileDialog.getSaveFileName(self, "Save project as", start, FILE_FILTER)
        if not path:
            return False
        if not path.endswith(".seqwb"):
            path += ".seqwb"
            if Path(path).exists():
                answer = QMessageBox.question(self, "Replace file?", f"{path} exists already. Replace it?",
                                              QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                              QMessageBox.StandardButton.Cancel)
                if answer != QMessageBox.StandardButton.Yes:
                    return False
        return self._save_to(path)

    def _save_to(self, path: str) -> bool:
        from workbench.schema.errors import WorkbenchError
        from workbench.core.projectfile import project_plugins_used, save_project
        self.inspector.commit_pending()
        project = self.doc.project
        # The layout belongs to the project file too: where the user was looking and what the inspector showed.
        project.graph.ui[VIEW_KEY] = dict(self.view.view_state())
        project.graph.ui[INSPECTOR_KEY] = dict(self.inspector.state())
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            save_project(project, path, plugins_used=project_plugins_used(project, self.registry))
        except (WorkbenchError, OSError, ValueError, TypeError) as exc:
            QApplication.restoreOverrideCursor()
            QMessageBox.warning(self, "Cannot save project", f"Could not save to {path}:\n{exc}")
            return False
        QApplication.restoreOverrideCursor()
        self.doc.path = str(path)
        self._untitled_kind = ""
        self.doc.undo_stack.setClean()
        self.add_recent(str(path))
        self._update_title()
        self.show_message(f"Saved {path}")
        return True

    def close_project(self) -> bool:
        """File ▸ Close: back to the embedded default project."""
        if not self._stop_run_first() or not self.maybe_save():
            return False
        self._replace(default_project(self.registry), None, "default")
        return True

    def new_from_template(self) -> bool:
        if not self._stop_run_first() or not self.maybe_save():
            return False
        from workbench.gui.new_project import NewFromTemplateDialog
        dialog = NewFromTemplateDialog(self.registry, self)
        if dialog.exec() != NewFromTemplateDialog.DialogCode.Accepted or dialog.project is None:
            return False
        self._replace(dialog.project, None, "new")
        self.show_message(f"New project from the template {dialog.template_id()!r}; Save asks for a file name")
        return True

    def _last_dir(self) -> str:
        if self.doc.path:
            return str(Path(self.doc.path).resolve().parent)
        recent = self.recent_files()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    # ---- recent files --------------------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = app_settings().value("recentFiles", [])
        if isinstance(value, str):   # an INI list of one item comes back as a plain string
            value = [value]
        return [str(v) for v in (value or []) if v]

    def _set_recent(self, files: list[str]) -> None:
        settings = app_settings()
        settings.setValue("recentFiles", files[:MAX_RECENT])
        settings.sync()

    def add_recent(self, path: str) -> None:
        path = str(Path(path).resolve())
        self._set_recent([path] + [p for p in self.recent_files() if p != path])

    def _forget_recent(self, path: str) -> None:
        path = str(Path(path).resolve())
        self._set_recent([p for p in self.recent_files() if p != path])

    def _fill_recent_menu(self) -> None:
        menu = self.recent_menu
        menu.clear()
        files = self.recent_files()
        for i, path in enumerate(files):
            label = f"&{i + 1} {Path(path).name}" if i < 9 else Path(path).name
            act = menu.addAction(label)
            act.setToolTip(path)
            act.setStatusTip(path)
            act.triggered.connect(lambda _c=False, p=path: self.open_path(p))
        if files:
            menu.addSeparator()
            menu.addAction("Clear Recent Files", lambda: self._set_recent([]))
        else:
            empty = menu.addAction("No recent files")
            empty.setEnabled(False)
        menu.setToolTipsVisible(True)

    # ---- window state --------------------------------------------------------------------------------------
    def _restore_window(self) -> None:
        settings = app_settings()
        geometry = settings.value("window/geometry")
        if isinstance(geometry, (QByteArray, bytes)):
            self.restoreGeometry(QByteArray(geometry))
        state = settings.value("window/state")
        if isinstance(state, (QByteArray, bytes)):
            self.restoreState(QByteArray(state), STATE_VERSION)

    def save_window_state(self) -> None:
        settings = app_settings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState(STATE_VERSION))
        settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if self.bridge.is_live():
            answer = self.ask_stop_training(closing=True)
            if answer == "cancel":
                event.ignore()
                return
            if not self.stop_and_wait():
                self.log("The run did not stop within a minute; closing anyway", "error")
            if answer == "save" and not self.save():
                event.ignore()
                return
            self.save_window_state()
            self.recovery.close_clean()
            event.accept()
            return
        if not self.maybe_save():
            event.ignore()
            return
        self.save_window_state()
        self.recovery.close_clean()     # saved or discarded by the user: no copy to recover
        event.accept()

    # ---- dialogs -------------------------------------------------------------------------------------------
    def show_plugin_manager(self) -> None:
        from workbench.gui.plugin_manager import PluginManagerDialog
        dialog = PluginManagerDialog(self.registry, self)
        dialog.exec()

    def open_docs(self) -> None:
        QDesktopServices.openUrl(docs_url())

    def about_text(self) -> str:
        """Versions of the app, Qt and torch, and the device.  Imports torch (only here, when About opens)."""
        import PySide6
        try:
            import torch
            torch_version = torch.__version__
        except Exception as exc:  # noqa: BLE001 - About must open even with a broken torch
            torch_version = f"not available ({type(exc).__name__})"
        device = self._device_text
        if not device:
            try:
                from workbench.core.device import describe_device, resolve_device
                device = describe_device(resolve_device("auto"))
            except Exception as exc:  # noqa: BLE001
                device = f"unavailable ({exc})"
        url = docs_url().toString()
        return (f"<h3>Sequence Workbench {__version__}</h3>"
                f"<p>Build, train and look inside recurrent sequence models.</p>"
                f"<table>"
                f"<tr><td>Qt</td><td>{qVersion()} (PySide6 {PySide6.__version__})</td></tr>"
                f"<tr><td>PyTorch&nbsp;&nbsp;</td><td>{html.escape(torch_version)}</td></tr>"
                f"<tr><td>Device</td><td>{html.escape(device)}</td></tr>"
                f"<tr><td>Plugins</td><td>{len(self.registry.plugins)} loaded, "
                f"{len(self.registry.failures)} failure(s)</td></tr>"
                f"</table>"
                f"<p>Documentation: <a href='{html.escape(url)}'>{html.escape(url)}</a></p>")

    def about(self) -> None:
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            text = self.about_text()
        finally:
            QApplication.restoreOverrideCursor()
        QMessageBox.about(self, "About Sequence Workbench", text)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-]+", "-", name).strip("-").lower() or "project"

