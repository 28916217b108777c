"""The main window: canvas in the middle, palette / inspector / problems / log docks, menus, toolbar, status bar.

The window builds the frame and hands the rest to its parts: the run controller (:mod:`workbench.gui.run_controller`:
Run ▸ Train, Pause, Resume, Stop and the run bridge's reports), the file controller
(:mod:`workbench.gui.file_controller`: new, open, save, close, recent files, the title), autosave
(:mod:`workbench.gui.recovery`) and the views registered with it (:mod:`workbench.gui.views`: hidden units,
decoding, Evaluate, File ▸ Export).  Torch is never imported before the window has painted: the status bar's device
is found by a background job started after the first show, and About imports torch only when it opens.

The middle of the window has tabs: **Model** (the canvas), **Training** (the dashboard, built the first time it is
needed, because pyqtgraph takes half a second to import) and the registered views' tabs.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, Qt, QTimer, QUrl, qVersion
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QKeySequence, QPalette
from PySide6.QtWidgets import (QAbstractSpinBox, QApplication, QDockWidget, QLabel, QLineEdit, QMainWindow, QMenu,
                               QMessageBox, QPlainTextEdit, QProgressBar, QStyle, QTabWidget, QTextEdit, QToolBar,
                               QWidget)

from workbench import __version__
from workbench.gui.actions import fit_icon, make_action, theme_icon
from workbench.gui.app_settings import app_settings
from workbench.gui.canvas.view import GraphView
from workbench.gui.document import ProjectDocument
from workbench.gui.file_controller import FileController, default_project
from workbench.gui.forms import ElidedLabel, ScrollPage
from workbench.gui.inspector import Inspector
from workbench.gui.palette import PaletteWidget
from workbench.gui.problems import ProblemsPanel
from workbench.gui.recovery import RecoveryManager
from workbench.gui.run_bridge import RunBridge
from workbench.gui.run_controller import RunController
from workbench.gui.views import ViewRegistry

STATE_VERSION = 2            # bump when the docks change, so an old saved layout is not forced onto new docks
VIEW_KEY = "__view__"        # graph.ui keys that are not node ids: the canvas view and the inspector
INSPECTOR_KEY = "__inspector__"
LOG_LINES = 5000             # the log dock keeps this many lines
# Side docks: their default widths, and the narrowest they may get.  Below the minimum the palette shows
# "Recurre…" eight times and the inspector's fields are cut off.  A saved layout with a dock below it (from a smaller
# window, or from a version whose wide tabs squeezed the docks) gets the default width back at the first show.
# The palette's default width is what its longest entry needs, between PALETTE_WIDTH and PALETTE_MAX_WIDTH: at a
# fixed 210 px "Sequence to sequence (translation)" and the current task's bold title ended in "…".
PALETTE_WIDTH, PALETTE_MAX_WIDTH, PALETTE_MIN_WIDTH = 210, 310, 150
INSPECTOR_WIDTH, INSPECTOR_MIN_WIDTH = 330, 240


def docs_url() -> QUrl:
    """The documentation: the README of the checkout or source distribution the app runs from."""
    root = Path(__file__).resolve().parents[2]
    for candidate in (root / "README.md", root / "docs"):
        if candidate.exists():
            return QUrl.fromLocalFile(str(candidate))
    return QUrl("https://pypi.org/project/sequence-workbench/")


def _register_views(views: ViewRegistry) -> None:
    """The views beyond the canvas and the dashboard, in the order their tabs and menu entries appear."""
    from workbench.gui import evaluate_dialog, export_menu, inspect_decode, inspect_menu, plugin_install
    inspect_menu.register(views)        # Hidden units: the panel, and pyqtgraph, load when the tab is first shown
    inspect_decode.register(views)      # Decoding: beam-search trees, attention; built when first shown
    export_menu.register(views)         # File ▸ Export: model, run metrics, samples
    evaluate_dialog.register(views)     # Run ▸ Evaluate…: the window's seqwb eval
    plugin_install.register(views)      # Plugins ▸ Install Plugin…, Uninstall Plugin…: pip from the window


class MainWindow(QMainWindow):
    """``MainWindow(registry, project=None, path=None)``: without a project, the embedded default project.

    Its parts: ``doc`` (the :class:`~workbench.gui.document.ProjectDocument`), ``bridge`` (the run in its worker
    thread), ``runs`` (:class:`~workbench.gui.run_controller.RunController`), ``files``
    (:class:`~workbench.gui.file_controller.FileController`), ``recovery`` (autosave), ``views`` (the
    :class:`~workbench.gui.views.ViewRegistry`) and ``dashboard`` (None until first shown)."""

    def __init__(self, registry: Any, project: Any = None, path: str | None = None, *,
                 detect_device: bool = True, parent: QWidget | None = None):
        super().__init__(parent)
        self.registry = registry
        self._detect_device = detect_device
        self._device_text = ""
        self._shown_once = False
        self._tab_hidden: set[QDockWidget] = set()     # docks hidden because the tab shown has no use for them
        untitled_kind = "default" if project is None else ("new" if path is None else "")
        if project is None:
            project = default_project(registry)
        self.doc = ProjectDocument(registry, project, path, self,
                                   auto_name=project.name if untitled_kind in ("default", "new") else None)
        self.setObjectName("MainWindow")
        self.resize(1280, 800)

        self.bridge = RunBridge(self)
        self.dashboard: Any = None          # built on first use (pyqtgraph's import is slow)
        self._devices: list[tuple[str, str]] = []
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
        # the run controller connects to the bridge first: a checkpoint is merged before autosave writes it
        self.runs = RunController(self)
        self.recovery = RecoveryManager(self.doc, registry, bridge=self.bridge, log=self.log,
                                        show_message=self.show_message, parent=self)
        self.files = FileController(self, self.runs, self.recovery, untitled_kind)
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status()
        self.views = ViewRegistry(self, self.tabs)
        self.views.add_menu("file", self.file_menu, before=self._file_views_end)
        self.views.add_menu("view", self.view_menu, before=self._view_views_end)
        self.views.add_menu("run", self.run_menu)
        self.views.add_menu("inspect", self.inspect_menu)
        self.views.add_menu("plugins", self.plugins_menu)
        _register_views(self.views)

        # the window is the receiver: a window being deleted clears its undo stack, and must not retitle itself
        self.doc.undo_stack.cleanChanged.connect(self.update_title)
        self.doc.settingsChanged.connect(self._on_settings_changed)
        self.doc.problemsChanged.connect(self._show_problems)
        self.doc.projectReplaced.connect(self._on_project_replaced)
        self.view.selectionChanged.connect(self._on_selection)
        self.view.message.connect(self.show_message)
        self.problems.nodeActivated.connect(lambda nid: self.view.select_node(nid, center=True))

        self._restore_window()
        self.update_title()
        self.runs.update_actions()
        self._show_problems()
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
        self.palette_width = max(PALETTE_WIDTH, min(PALETTE_MAX_WIDTH, self.palette_widget.needed_width()))
        self.resizeDocks([self.palette_dock, self.inspector_dock], [self.palette_width, INSPECTOR_WIDTH],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.problems_dock], [96], Qt.Orientation.Vertical)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)          # saveState / restoreState find docks by object name
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_actions(self) -> None:
        SK = QKeySequence.StandardKey
        SP = QStyle.StandardPixmap
        self.act_quit = make_action(self, "&Quit", self.close, shortcut=SK.Quit, tip="Quit Sequence Workbench")
        self.act_quit.setMenuRole(QAction.MenuRole.QuitRole)

        stack = self.doc.undo_stack
        self.act_undo = stack.createUndoAction(self, "&Undo")
        # every binding of the platform (Redo is Ctrl+Y and Ctrl+Shift+Z on some), not only the first
        self.act_undo.setShortcuts(SK.Undo)
        self.act_undo.setIcon(theme_icon("edit-undo", SP.SP_ArrowBack))
        self.act_redo = stack.createRedoAction(self, "&Redo")
        self.act_redo.setShortcuts(SK.Redo)
        self.act_redo.setIcon(theme_icon("edit-redo", SP.SP_ArrowForward))
        self.act_cut = make_action(self, "Cu&t", lambda: self._edit("cut"), shortcut=SK.Cut,
                                   tip="Cut the selected nodes")
        self.act_copy = make_action(self, "&Copy", lambda: self._edit("copy"), shortcut=SK.Copy,
                                    tip="Copy the selected nodes (with the links among them)")
        self.act_paste = make_action(self, "&Paste", lambda: self._edit("paste"), shortcut=SK.Paste,
                                     tip="Paste nodes")
        self.act_delete = make_action(self, "&Delete", lambda: self._edit("delete"), shortcut=SK.Delete,
                                      tip="Delete the selected nodes and their links")
        self.act_select_all = make_action(self, "Select &All", lambda: self._edit("select_all"),
                                          shortcut=SK.SelectAll, tip="Select every node")

        self.act_fit = make_action(self, "&Fit Model in View", lambda: self.view.fit_all(), shortcut="Home",
                                   tip="Zoom so that the whole model is visible (Home on the canvas)",
                                   icon=fit_icon(self.palette().color(QPalette.ColorRole.ButtonText)))
        # Home belongs to the canvas; in a list or a text field it keeps its usual meaning
        self.act_fit.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.view.addAction(self.act_fit)
        self.act_layout = make_action(self, "&Auto-layout", lambda: self.view.auto_layout(), shortcut="Ctrl+L",
                                      tip="Arrange the nodes left to right by data flow (undoable)",
                                      icon=theme_icon("view-sort-ascending", SP.SP_FileDialogListView))
        # no shortcut here: the canvas takes Tab itself (a window-wide Tab would break focus navigation)
        self.act_quick_add = make_action(self, "Add &Block… (Tab on the canvas)", self._quick_add,
                                         tip="Type the name of a block to add it to the canvas")
        self.act_show_model = make_action(self, "&Model", lambda: self.tabs.setCurrentIndex(0), shortcut="Ctrl+1",
                                          tip="Show the model graph")
        self.act_show_training = make_action(self, "&Training Dashboard", self.show_dashboard, shortcut="Ctrl+2",
                                             tip="Show the training dashboard")

        self.act_plugins = make_action(self, "&Plugin Manager…", self.show_plugin_manager,
                                       tip="Installed plugins, their contributions, and plugins that failed")
        self.act_docs = make_action(self, "&Documentation", self.open_docs, shortcut=SK.HelpContents,
                                    tip="Open the documentation")
        self.act_about = make_action(self, "&About Sequence Workbench", self.about)
        self.act_about.setMenuRole(QAction.MenuRole.AboutRole)
        self.act_about_qt = make_action(self, "About &Qt", QApplication.aboutQt)
        self.act_about_qt.setMenuRole(QAction.MenuRole.AboutQtRole)

    def _build_menus(self) -> None:
        """The menus; ``_file_views_end`` and ``_view_views_end`` mark where the registered views' entries go."""
        bar = self.menuBar()
        files = self.files
        m = self.file_menu = bar.addMenu("&File")
        m.addAction(files.act_new)
        m.addAction(files.act_open)
        m.addMenu(files.recent_menu)
        m.addSeparator()
        m.addAction(files.act_save)
        m.addAction(files.act_save_as)
        m.addSeparator()
        self._file_views_end = m.addSeparator()          # File ▸ Export goes before it
        m.addAction(files.act_close)
        m.addSeparator()
        m.addAction(self.act_quit)

        m = bar.addMenu("&Edit")
        for act in (self.act_undo, self.act_redo, None, self.act_cut, self.act_copy, self.act_paste,
                    self.act_delete, None, self.act_select_all):
            m.addSeparator() if act is None else m.addAction(act)

        m = self.view_menu = bar.addMenu("&View")
        m.addAction(self.act_show_model)
        m.addAction(self.act_show_training)
        self._view_views_end = m.addSeparator()          # the views' tabs are listed before it
        for dock in (self.palette_dock, self.inspector_dock, self.problems_dock, self.log_dock):
            toggle = dock.toggleViewAction()
            toggle.setStatusTip(f"Show or hide the {dock.windowTitle().lower()}")
            m.addAction(toggle)
        m.addSeparator()
        m.addAction(self.act_fit)
        m.addAction(self.act_layout)
        m.addAction(self.act_quick_add)

        m = self.run_menu = bar.addMenu("&Run")
        m.setToolTipsVisible(True)    # the reason Train is disabled is in its tooltip
        runs = self.runs
        for act in (runs.act_train, runs.act_train_new, runs.act_pause, runs.act_resume, runs.act_stop):
            m.addAction(act)
        m.addSeparator()              # Run ▸ Evaluate… goes after it

        # the inspection views (hidden units, decoding) fill it
        self.inspect_menu = QMenu("&Inspect", self)
        self.inspect_menu.setObjectName("inspectMenu")
        bar.addMenu(self.inspect_menu)

        m = self.plugins_menu = bar.addMenu("&Plugins")
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
        self.tb_undo = make_action(self, "Undo", stack.undo, icon=self.act_undo.icon())
        self.tb_redo = make_action(self, "Redo", stack.redo, icon=self.act_redo.icon())
        for act, can, text_changed, word in ((self.tb_undo, stack.canUndo, stack.undoTextChanged, "Undo"),
                                             (self.tb_redo, stack.canRedo, stack.redoTextChanged, "Redo")):
            act.setEnabled(can())
            (stack.canUndoChanged if word == "Undo" else stack.canRedoChanged).connect(act.setEnabled)
            text_changed.connect(lambda text, a=act, w=word: a.setToolTip(f"{w} {text}".strip()))
            act.setToolTip(word)
        files, runs = self.files, self.runs
        for act in (files.act_new, files.act_open, files.act_save, None, self.tb_undo, self.tb_redo, None,
                    self.act_fit, self.act_layout, None, *runs.actions):
            bar.addSeparator() if act is None else bar.addAction(act)
        # short labels on the toolbar; the menus keep the full ones
        for act, text in ((files.act_new, "New"), (files.act_open, "Open"), (self.act_fit, "Fit")):
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
        self.load_progress = QProgressBar()
        self.load_progress.setObjectName("loadProgress")
        self.load_progress.setMaximumWidth(160)
        self.load_progress.setTextVisible(False)
        self.load_progress.hide()
        status.addPermanentWidget(self.load_progress)
        self.problems_label = QLabel()
        self.problems_label.setContentsMargins(6, 0, 6, 0)
        self.device_label = QLabel("Device: …")
        self.device_label.setToolTip("The device training will use (auto: CUDA, then MPS, then CPU)")
        self.device_label.setContentsMargins(6, 0, 6, 0)
        status.addPermanentWidget(self.runs.label)
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
        docks = ((self.palette_dock, self.palette_width, PALETTE_MIN_WIDTH),
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
        from workbench.gui.device_probe import DeviceProbe
        self.device_label.setText("Device: detecting…")
        self._probe = DeviceProbe(self)
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

    def set_loading(self, text: str | None, done: int = 0, total: int = 0) -> None:
        """A file is being read (``text`` says what is happening, ``done`` of ``total`` stages are done) or no
        longer (None).  Meanwhile the canvas shows the text and the window's parts
        take no edits, since the project they would change is about to be replaced."""
        loading = text is not None
        self.load_progress.setVisible(loading)
        if loading:
            # stages done, not a moving "busy" bar: its animation repaints many times a second, and every repaint
            # takes Python's lock from the thread that reads the file (opening took 1.5 s longer with it)
            self.load_progress.setRange(0, max(total, 1))
            self.load_progress.setValue(done)
            self.load_progress.setToolTip(f"{text} (stage {done + 1} of {total})" if total else str(text))
            self.statusBar().showMessage(str(text))
        else:
            self.statusBar().clearMessage()
        self.view.set_placeholder(text or "")
        for part in (self.tabs, self.palette_dock, self.inspector_dock, self.problems_dock):
            part.setEnabled(not loading)
        for act in (self.files.act_new, self.files.act_open, self.files.act_save, self.files.act_save_as,
                    self.files.act_close):
            act.setEnabled(not loading)
        if not loading:
            self.runs.update_actions()
        else:
            for act in self.runs.actions:
                act.setEnabled(False)
        self.update_title()

    def show_message(self, text: str, timeout_ms: int = 6000) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    def update_title(self, *_args: Any) -> None:
        self.setWindowTitle(self.files.title())
        self.setWindowModified(self.doc.is_modified())

    def _on_settings_changed(self, section: str) -> None:
        if section == "name":
            self.update_title()

    def _show_problems(self, *_args: Any) -> None:
        problems = self.doc.report().problems
        if problems:
            self.problems_label.setText(f"⚠ {len(problems)} problem{'s' if len(problems) > 1 else ''}")
            self.problems_label.setToolTip("\n".join(problems))
        else:
            self.problems_label.setText("✓ model graph complete")
            self.problems_label.setToolTip("The model graph has no problems")

    # ---- the layout kept in the project ----------------------------------------------------------------------
    def keep_view_state(self) -> None:
        """Put where the user was looking and what the inspector showed into the project (saved with it)."""
        ui = self.doc.graph.ui
        ui[VIEW_KEY] = dict(self.view.view_state())
        ui[INSPECTOR_KEY] = dict(self.inspector.state())

    def restore_view_state(self) -> None:
        """The project's saved view (another project is in the window): once it is laid out."""
        if self.isVisible():
            QTimer.singleShot(0, self._apply_view_state)

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

    # ---- the canvas and its edits --------------------------------------------------------------------------
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

    # ---- the dashboard and the log --------------------------------------------------------------------------
    def ensure_dashboard(self) -> Any:
        """The dashboard, built (and pyqtgraph imported) the first time it is needed."""
        if self.dashboard is None:
            QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
            try:
                from workbench.gui.dashboard import TrainingDashboard
                self.dashboard = TrainingDashboard(self.doc, self.training_tab.content)
            finally:
                QApplication.restoreOverrideCursor()
            self.dashboard.add_run_actions(self.runs.actions)
            if self._devices:
                self.dashboard.set_devices(self._devices)
            self.training_tab.add(self.dashboard)
        return self.dashboard

    def show_dashboard(self) -> None:
        self.ensure_dashboard()
        self.tabs.setCurrentWidget(self.training_tab)

    def _on_tab_changed(self, index: int) -> None:
        page = self.tabs.widget(index)
        if page is self.training_tab:
            self.ensure_dashboard()
        self._fit_docks_to(page)

    def _docks_serving(self, page: QWidget | None) -> set[QDockWidget]:
        """The docks that have something to do with a tab: the palette and the problems with the canvas, the
        inspector with the canvas and the training dashboard (its training settings); the log everywhere."""
        if page is self.view:
            return {self.palette_dock, self.inspector_dock, self.problems_dock, self.log_dock}
        if page is self.training_tab:
            return {self.inspector_dock, self.log_dock}
        return {self.log_dock}

    def _fit_docks_to(self, page: QWidget | None) -> None:
        """Hide the docked docks a tab has no use for (the palette beside the decoding view only took its room),
        and bring back the ones hidden that way when a tab that uses them is shown.  A dock the user closed stays
        closed; a floating one is the user's to place."""
        serving = self._docks_serving(page)
        for dock in (self.palette_dock, self.inspector_dock, self.problems_dock, self.log_dock):
            if dock in serving:
                if dock in self._tab_hidden:
                    self._tab_hidden.discard(dock)
                    dock.show()
                    if dock is self.problems_dock:
                        dock.raise_()       # over the Log it shares a place with, as when the window opened
            elif dock.isVisible() and not dock.isFloating():
                self._tab_hidden.add(dock)
                dock.hide()

    def _on_project_replaced(self) -> None:
        """The log is about one project: another one starts it afresh (runs of two projects read as one)."""
        self.log_view.clear()
        where = Path(self.doc.path).name if self.doc.path else "not saved"
        self.log(f"Project “{self.doc.project.name}” ({where})")

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
        # the layout as the user left it: docks hidden only because of the tab shown are saved as open
        hidden = list(self._tab_hidden)
        for dock in hidden:
            dock.show()
        settings.setValue("window/state", self.saveState(STATE_VERSION))
        for dock in hidden:
            dock.hide()
        settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        runs, files = self.runs, self.files
        if runs.is_live():
            answer = runs.ask_stop_training(closing=True)
            if answer == "cancel":
                event.ignore()
                return
            if not runs.stop_and_wait():
                self.log("The run did not stop within a minute; closing anyway", "error")
            if answer == "save" and not files.save():
                event.ignore()
                return
            self.save_window_state()
            self.recovery.close_clean()
            event.accept()
            return
        if not files.maybe_save():
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

