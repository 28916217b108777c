"""The Inspect menu and the "Hidden units" tab, installed into the main window with one call.

Kept apart from the views themselves so the window can add the menu and the tab at startup without importing
pyqtgraph (or torch): the hidden-units panel is built the first time its tab is shown.  In a window with central
tabs (Model, Training) it is one more tab; in a window without them, a dock.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu, QTabWidget

from workbench.gui.forms import ScrollPage

HIDDEN_UNITS_DOCK = "hiddenUnitsDock"
TAB_TITLE = "Hidden units"


def _menu(window: QMainWindow, title: str) -> QMenu | None:
    for action in window.menuBar().actions():
        if action.text().replace("&", "") == title and action.menu() is not None:
            return action.menu()
    return None


def install_inspect_menu(window: QMainWindow) -> QMenu:
    """Add Inspect ▸ Hidden Units (Ctrl+3), a View entry and the tab (or dock) it shows.  The Inspect menu is
    shared with the other inspection views: found by its object name ``inspectMenu``, made when missing."""
    menu = next((a.menu() for a in window.menuBar().actions()
                 if a.menu() is not None and a.menu().objectName() == "inspectMenu"), None)
    shared = menu is not None          # another inspection view (decoding) made it already
    if menu is None:
        menu = QMenu("&Inspect", window)
        menu.setObjectName("inspectMenu")
    act = QAction("&Hidden Units", window)
    act.setShortcut(QKeySequence("Ctrl+3"))   # after View ▸ Model (Ctrl+1) and Training (Ctrl+2)
    tip = ("Record the model over a text and look at its hidden units: heatmap, text view, unit search, "
           "hypothesis selection, gate saturation")
    act.setToolTip(tip)
    act.setStatusTip(tip)
    act.triggered.connect(lambda _checked=False: show_hidden_units(window))
    first = menu.actions()[0] if menu.actions() else None
    menu.insertAction(first, act)      # hidden units first: the view most people open
    if not shared:
        bar = window.menuBar()
        before = next((a for a in bar.actions() if a.text().replace("&", "") in ("Plugins", "Help")), None)
        if before is not None:
            bar.insertMenu(before, menu)
        else:
            bar.addMenu(menu)
    view = _menu(window, "View")
    if view is not None:
        actions = view.actions()
        training = getattr(window, "act_show_training", None)
        after = actions.index(training) + 1 if training in actions else 0
        view.insertAction(actions[after] if after < len(actions) else None, act)
    window.inspect_menu = menu
    window.act_hidden_units = act
    window.hidden_units = None

    tabs = getattr(window, "tabs", None)
    if isinstance(tabs, QTabWidget):
        # a scrolling page: a tab narrower than the panel scrolls it instead of squeezing the window's docks
        holder = ScrollPage()
        holder.setObjectName("hiddenUnitsTab")
        index = tabs.addTab(holder, TAB_TITLE)
        tabs.setTabToolTip(index, tip)
        window.hidden_units_tab = holder
        tabs.currentChanged.connect(lambda i: _build_in_tab(window) if tabs.widget(i) is holder else None)
    return menu


def _build_in_tab(window: Any):
    if window.hidden_units is None:
        from workbench.gui.inspect_units import HiddenUnitsPanel
        panel = HiddenUnitsPanel(window.doc, window.registry, window.hidden_units_tab.content)
        window.hidden_units_tab.add(panel)
        window.hidden_units = panel
    return window.hidden_units


def show_hidden_units(window: Any):
    """Show the hidden-units panel (building it the first time); returns it."""
    holder = getattr(window, "hidden_units_tab", None)
    if holder is not None:
        panel = _build_in_tab(window)
        window.tabs.setCurrentWidget(holder)
        return panel
    dock = window.findChild(QDockWidget, HIDDEN_UNITS_DOCK)
    if dock is None:
        from workbench.gui.inspect_units import HiddenUnitsPanel
        panel = HiddenUnitsPanel(window.doc, window.registry)
        dock = QDockWidget(TAB_TITLE, window)
        dock.setObjectName(HIDDEN_UNITS_DOCK)
        dock.setWidget(panel)
        window.hidden_units = panel
        if not window.restoreDockWidget(dock):
            window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
            window.resizeDocks([dock], [int(window.height() * 0.62)], Qt.Orientation.Vertical)
    dock.show()
    dock.raise_()
    return dock.widget()
