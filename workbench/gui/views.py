"""The main window's view registry: how a view that is not part of the window itself (hidden units, decoding,
Evaluate, File ▸ Export) puts its menu entries, actions and tab or dialog into the window.

The window names its menus and where in each of them views' entries go (:meth:`ViewRegistry.add_menu`), then
calls each view module's ``register(views)``, which calls :meth:`ViewRegistry.register_view` once::

    views.register_view("decoding", title="Decoding", tip="Beam-search trees, …",
                        build=lambda parent: DecodeInspector(window.doc, window.registry, parent),
                        entries=[MenuEntry("&Decoding and Beam Search", menu="inspect", shortcut="Ctrl+4",
                                           tip="Decode an input and …", in_view_menu=True)])

A view with a tab gets a page in the central tabs at once and its widget the first time the page is shown (its
modules, pyqtgraph or torch, load then); a dialog is built the first time it is asked for and shown again after
that.  Entries go into the named menus in the order the views register; an entry without a ``slot`` shows the
view.  ``views["decoding"]`` is the :class:`RegisteredView`: its page, widget (None until built), actions and
``show()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QMainWindow, QMenu, QTabWidget, QWidget

from workbench.gui.forms import ScrollPage

#: where a view lives: a page of the central tabs, a dialog of its own, or nowhere (menu entries only)
TAB, DIALOG, NONE = "tab", "dialog", ""


@dataclass(frozen=True)
class MenuEntry:
    """An action a view puts in one of the window's menus (by the name the window gave it), or in the view's own
    submenu when ``menu`` is empty.  Without a ``slot`` it shows the view."""

    text: str
    menu: str = ""
    name: str = ""                       # its key in the view's ``actions`` (default: the view's name)
    slot: Optional[Callable[[], Any]] = None
    shortcut: str = ""
    tip: str = ""
    status_tip: str = ""                 # the status bar's text, when it is not the tooltip
    in_view_menu: bool = False           # listed in View with the window's tabs as well


class RegisteredView:
    """One view as the window knows it; made by :meth:`ViewRegistry.register_view`."""

    def __init__(self, registry: "ViewRegistry", name: str, title: str, place: str,
                 build: Optional[Callable[[QWidget], QWidget]]):
        self.registry = registry
        self.name = name
        self.title = title
        self.place = place
        self._build = build
        self.page: Optional[ScrollPage] = None       # the view's tab (a scrolling page), for TAB
        self.widget: Any = None                      # the view itself, once built
        self.actions: dict[str, QAction] = {}        # by the entries' names
        self.menu: Optional[QMenu] = None            # the view's own submenu, if it has one

    @property
    def action(self) -> Optional[QAction]:
        """The view's first menu entry."""
        return next(iter(self.actions.values()), None)

    def build(self) -> Any:
        """The view's widget, built the first time."""
        if self.widget is None and self._build is not None:
            window = self.registry.window
            if self.place == TAB:
                assert self.page is not None
                self.widget = self._build(self.page.content)
                self.page.add(self.widget)
            else:
                QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
                try:
                    self.widget = self._build(window)
                finally:
                    QApplication.restoreOverrideCursor()
        return self.widget

    def show(self) -> Any:
        """Build the view if needed and bring it to the front; returns the widget."""
        widget = self.build()
        if self.place == TAB:
            self.registry.tabs.setCurrentWidget(self.page)
        elif widget is not None:
            widget.show()
            widget.raise_()
            widget.activateWindow()
        return widget


class ViewRegistry:
    """The places in a window where views go: its central tabs and its named menus."""

    def __init__(self, window: QMainWindow, tabs: QTabWidget):
        self.window = window
        self.tabs = tabs
        self._menus: dict[str, tuple[QMenu, Optional[QAction]]] = {}
        self._views: dict[str, RegisteredView] = {}
        tabs.currentChanged.connect(self._on_tab_shown)

    def add_menu(self, name: str, menu: QMenu, *, before: Optional[QAction] = None) -> None:
        """Let views put entries into ``menu`` as ``name``: before ``before`` (an action of the menu), or at its
        end.  The name ``"view"`` is also where entries with ``in_view_menu`` go."""
        self._menus[name] = (menu, before)

    def register_view(self, name: str, *, title: str = "", tip: str = "",
                      build: Optional[Callable[[QWidget], QWidget]] = None, place: str = TAB,
                      entries: Sequence[MenuEntry] = (), submenu: str = "", submenu_in: str = "") -> RegisteredView:
        """Add a view: a tab titled ``title`` (tooltip ``tip``) or a dialog, built by ``build(parent)`` when first
        needed, or no widget at all (``place=""``); its ``entries`` in the window's menus; ``submenu`` (a title)
        makes it a submenu of its own in the menu ``submenu_in``, for the entries that name no menu."""
        if name in self._views:
            raise ValueError(f"a view named {name!r} is registered already")
        view = RegisteredView(self, name, title, place if build is not None else NONE, build)
        if view.place == TAB:
            view.page = ScrollPage()
            view.page.setObjectName(f"{name}Tab")
            index = self.tabs.addTab(view.page, title)
            self.tabs.setTabToolTip(index, tip)
        if submenu:
            view.menu = QMenu(submenu, self.window)
            view.menu.setObjectName(f"{name}Menu")
            self._insert(submenu_in, view.menu.menuAction())
        for entry in entries:
            action = self._action(view, entry)
            key = entry.name or name
            if key in view.actions:
                raise ValueError(f"the view {name!r} has two entries named {key!r}")
            view.actions[key] = action
            if entry.menu:
                self._insert(entry.menu, action)
            elif view.menu is not None:
                view.menu.addAction(action)
            else:
                raise ValueError(f"the entry {entry.text!r} of the view {name!r} names no menu")
            if entry.in_view_menu:
                self._insert("view", action)
        self._views[name] = view
        return view

    def __getitem__(self, name: str) -> RegisteredView:
        return self._views[name]

    def __contains__(self, name: object) -> bool:
        return name in self._views

    def __iter__(self) -> Iterator[RegisteredView]:
        return iter(self._views.values())

    def _action(self, view: RegisteredView, entry: MenuEntry) -> QAction:
        action = QAction(entry.text, self.window)
        if entry.shortcut:
            action.setShortcut(QKeySequence(entry.shortcut))
        if entry.tip:
            action.setToolTip(entry.tip)
        if entry.status_tip or entry.tip:
            action.setStatusTip(entry.status_tip or entry.tip)
        slot = entry.slot or view.show
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def _insert(self, menu_name: str, action: QAction) -> None:
        if menu_name not in self._menus:
            raise KeyError(f"the window has no menu named {menu_name!r} for views")
        menu, before = self._menus[menu_name]
        menu.insertAction(before, action)       # None: at the end

    def _on_tab_shown(self, index: int) -> None:
        page = self.tabs.widget(index)
        for view in self._views.values():
            if view.page is not None and view.page is page:
                view.build()
