"""Inspect ▸ Hidden Units and its tab, registered with the window's views.

Kept apart from the view itself so that the window can add the menu entry and the tab at startup without importing
pyqtgraph (or torch): the hidden-units panel is built the first time its tab is shown.
"""

from __future__ import annotations

from typing import Any

from workbench.gui.views import MenuEntry, ViewRegistry

NAME = "hiddenUnits"
TAB_TITLE = "Hidden units"
TIP = ("Record the model over a text and look at its hidden units: heatmap, text view, unit search, hypothesis "
       "selection, gate saturation")


def register(views: ViewRegistry) -> None:
    """The **Hidden units** tab, and **Inspect ▸ Hidden Units** (Ctrl+3, also under View)."""
    window = views.window

    def build(parent: Any) -> Any:
        from workbench.gui.inspect_units import HiddenUnitsPanel
        return HiddenUnitsPanel(window.doc, window.registry, parent)

    # Ctrl+3: after View ▸ Model (Ctrl+1) and Training (Ctrl+2)
    views.register_view(NAME, title=TAB_TITLE, tip=TIP, build=build,
                        entries=[MenuEntry("&Hidden Units", menu="inspect", shortcut="Ctrl+3", tip=TIP,
                                           in_view_menu=True)])


def show_hidden_units(window: Any) -> Any:
    """Show the hidden-units panel (building it the first time); returns it."""
    return window.views[NAME].show()
