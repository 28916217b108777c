"""The window's layout holds at 1280 x 800 whatever the central tabs show: no tab squeezes the palette or the
inspector or widens the window, a saved layout with squeezed docks comes back usable, long status messages end in
"…" before the status indicators, and every shortcut belongs to one action (pytest-qt, offscreen)."""

from __future__ import annotations

from collections import defaultdict

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSize, Qt  # noqa: E402
from PySide6.QtGui import QAction  # noqa: E402

from tests.gui.window_helpers import isolated_settings, make_window  # noqa: E402,F401
from workbench.gui.inspect_menu import show_hidden_units  # noqa: E402
from workbench.gui.mainwindow import (INSPECTOR_MIN_WIDTH, INSPECTOR_WIDTH, PALETTE_MIN_WIDTH,  # noqa: E402
                                     PALETTE_WIDTH)

SIZE = QSize(1280, 800)
LONG = ("Training failed: training could not start: /tmp/walk/latin1.txt is not valid utf-8: byte 0xe9 at offset 1 "
        "(line 1, invalid continuation byte); set task.encoding (e.g. latin-1 or cp1252) or convert the file")



def at_1280(win, qtbot):
    """The window at 1280 x 800 with its layout settled (the offscreen screen is smaller, so set it after showing)."""
    win.resize(SIZE)
    qtbot.waitUntil(lambda: win.size() == SIZE, timeout=5000)
    settle(qtbot)
    return win


def settle(qtbot) -> None:
    """Let deferred layout requests run (a new tab's layout reaches the window's dock layout a few events later)."""
    qtbot.wait(200)


def widths(win) -> tuple[int, int, int]:
    return win.width(), win.palette_dock.width(), win.inspector_dock.width()


def test_no_tab_squeezes_the_docks_or_widens_the_window(make_window, reg, qtbot):
    win = at_1280(make_window(reg), qtbot)
    before = widths(win)
    assert before[1] >= 200 and before[2] >= 320, "the default layout: palette 210, inspector 330"
    try:
        for index in range(win.tabs.count()):
            win.tabs.setCurrentIndex(index)
            settle(qtbot)
            name = win.tabs.tabText(index)
            assert win.size() == SIZE, f"the {name} tab resized the window"
            assert widths(win) == before, f"the {name} tab moved the docks"
            # what the tabs ask for, built or not, fits the window with the docks as they are
            assert win.minimumSizeHint().width() <= SIZE.width(), name
        # long texts (a decoding header with a long prefix and output, a failed run's reason) do not widen it
        win.views["decoding"].show()
        win.views["decoding"].widget.panes[0].header.setText("Current weights (step 600) · beam, width 5 · " + LONG)
        win.views["decoding"].widget.panes[0].attention_title.setText("Attention for “" + LONG + "”")
        win.show_message(LONG)
        settle(qtbot)
        assert win.size() == SIZE and widths(win) == before
        # the views still fit the default layout without a horizontal scroll bar
        for page in (win.views["hiddenUnits"].page, win.views["decoding"].page):
            win.tabs.setCurrentWidget(page)
            settle(qtbot)
            assert not page.horizontalScrollBar().isVisible(), page.objectName()
        win.tabs.setCurrentIndex(0)
        settle(qtbot)
        assert win.size() == SIZE and widths(win) == before
    finally:
        if win.views["decoding"].widget is not None:
            win.views["decoding"].widget.shutdown()


def test_a_narrow_central_area_scrolls_the_dashboard_instead_of_squeezing_the_docks(make_window, reg, qtbot):
    win = at_1280(make_window(reg), qtbot)
    before = widths(win)
    win.show_dashboard()
    settle(qtbot)
    assert widths(win) == before
    page = win.training_tab
    need = win.dashboard.minimumSizeHint().width()
    assert win.dashboard.width() >= need, "nothing of the dashboard is cut off"
    # at 1280 px with the default docks the whole dashboard fits (its top row's progress bar and speed text give
    # way first); in a narrower central area it scrolls rather than squeezing the docks
    assert need <= page.viewport().width() and not page.horizontalScrollBar().isVisible()
    win.palette_dock.setMinimumWidth(win.palette_dock.width() + need)     # leave it too little room
    settle(qtbot)
    assert page.horizontalScrollBar().isVisible() == (need > page.viewport().width())
    win.palette_dock.setMinimumWidth(0)
    win.resize(SIZE.width() + need, SIZE.height())
    qtbot.waitUntil(lambda: win.width() == SIZE.width() + need, timeout=5000)
    settle(qtbot)
    assert not page.horizontalScrollBar().isVisible()


def test_a_saved_layout_with_squeezed_docks_comes_back_usable(make_window, reg, qtbot, isolated_settings):
    win = at_1280(make_window(reg), qtbot)
    # what a wide tab left behind before: the docks at about 80 px, saved with the layout when the window closed
    # (the minimum widths of this version lifted to get there)
    for dock in (win.palette_dock, win.inspector_dock):
        dock.setMinimumWidth(0)
    win.resizeDocks([win.palette_dock, win.inspector_dock], [80, 86], Qt.Orientation.Horizontal)
    qtbot.waitUntil(lambda: win.palette_dock.width() < 100 and win.inspector_dock.width() < 100, timeout=5000)
    win.close()

    again = at_1280(make_window(reg), qtbot)
    # too narrow to use: the default widths again, and from then on never below the minimum
    assert (again.palette_dock.width(), again.inspector_dock.width()) == (again.palette_width, INSPECTOR_WIDTH)
    assert PALETTE_WIDTH <= again.palette_width
    assert again.size() == SIZE
    again.resizeDocks([again.palette_dock, again.inspector_dock], [60, 60], Qt.Orientation.Horizontal)
    settle(qtbot)
    assert again.palette_dock.width() >= PALETTE_MIN_WIDTH
    assert again.inspector_dock.width() >= INSPECTOR_MIN_WIDTH
    # a layout the user chose, with docks narrower than the defaults but usable, is kept as it was
    again.resizeDocks([again.palette_dock, again.inspector_dock], [170, 260], Qt.Orientation.Horizontal)
    settle(qtbot)
    chosen = (again.palette_dock.width(), again.inspector_dock.width())
    again.close()
    third = at_1280(make_window(reg), qtbot)
    assert (third.palette_dock.width(), third.inspector_dock.width()) == chosen


def test_the_inspector_fits_its_dock_on_every_template(make_window, reg, qtbot):
    """A section title asked for its whole width ("Task: Sequence to sequence (translation)" alone, 317 px), so
    the inspector's form was wider than the dock and its fields were cut off at the right."""
    from workbench.core.settings import template_project
    win = at_1280(make_window(reg), qtbot)
    too_wide, cut = {}, {}
    for template_id in sorted(reg.items["template"]):
        project, _ = template_project(reg.template(template_id), {}, reg)
        win.doc.replace_project(project, None)
        win.inspector.flush()
        settle(qtbot)
        scroll = win.inspector.scroll
        need, room = scroll.widget().minimumSizeHint().width(), scroll.viewport().width()
        if need > room or scroll.horizontalScrollBar().isVisible():
            too_wide[template_id] = (need, room)
        for key, section in win.inspector.sections.items():
            header = section.header
            if header.fontMetrics().horizontalAdvance(header.text()) > header.width():
                cut[(template_id, key)] = header.text()
    assert too_wide == {} and cut == {}
    # a title too long for the dock ends in "…", with the whole title in its tooltip
    header = win.inspector.sections["task"].header
    win.resizeDocks([win.inspector_dock], [INSPECTOR_MIN_WIDTH], Qt.Orientation.Horizontal)
    settle(qtbot)
    assert header.text().endswith("…") and header.toolTip() == header.title()


def test_a_long_status_message_ends_in_an_ellipsis_before_the_indicators(make_window, reg, qtbot):
    win = at_1280(make_window(reg), qtbot)
    bar, label = win.statusBar(), win.message_label
    win.show_message(LONG, 60000)
    qtbot.wait(20)
    assert bar.currentMessage() == LONG and label.text() == LONG
    shown = label.elided_text()
    assert shown.endswith("…") and len(shown) < len(LONG)
    assert label.fontMetrics().horizontalAdvance(shown) <= label.contentsRect().width()
    assert label.geometry().right() < win.problems_label.geometry().left(), "the message stops before ✓"
    assert label.toolTip() == LONG, "the whole message is in the tooltip"
    # the status bar does not paint the message itself as well (it would run on under the indicators): with the
    # message shown it looks exactly as with the label alone holding the same text
    with_message = bar.grab().toImage()
    bar.clearMessage()
    assert label.text() == ""
    label.setText(LONG)
    label_alone = bar.grab().toImage()
    assert with_message == label_alone
    # a short message is shown whole
    win.show_message("Saved /tmp/x.seqwb")
    qtbot.wait(10)
    assert label.elided_text() == "Saved /tmp/x.seqwb" and label.toolTip() == ""


def test_every_shortcut_belongs_to_one_action(make_window, reg, qtbot):
    win = make_window(reg)
    show_hidden_units(win)
    win.show_dashboard()
    try:
        win.views["decoding"].show()
        by_key: dict[str, set[QAction]] = defaultdict(set)
        for act in win.findChildren(QAction):
            # Pause and Resume share F6 and take turns: one of them is always hidden (a hidden action's shortcut
            # does not fire)
            if act.isVisible():
                for key in act.shortcuts():
                    by_key[key.toString()].add(act)
        ambiguous = {key: sorted(a.text() for a in acts) for key, acts in by_key.items() if len(acts) > 1}
        assert ambiguous == {}
        # Ctrl+3 and Ctrl+4 are listed under View and Inspect: the same action in both menus
        menus = {a.text().replace("&", ""): a.menu() for a in win.menuBar().actions()}
        for act, key in ((win.views["hiddenUnits"].action, "Ctrl+3"), (win.views["decoding"].action, "Ctrl+4")):
            assert act.shortcut().toString() == key
            assert act in menus["View"].actions() and act in menus["Inspect"].actions()
            assert by_key[key] == {act}
    finally:
        win.views["decoding"].widget.shutdown()
