"""The plugin manager: every plugin with its distribution, version, contributions and status; failures in full.

Everything shown comes from the :class:`~workbench.plugin_system.loader.Registry` the window was started with
(``registry.plugins``, ``registry.items``, ``registry.failures``); the dialog loads nothing itself.  "Copy details"
puts a plain-text report on the clipboard that is meant to be pasted into a bug report as it is.
"""

from __future__ import annotations

import platform
import sys
from collections import defaultdict
from typing import Any

from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QBrush, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (QApplication, QDialog, QDialogButtonBox, QHBoxLayout, QHeaderView, QLabel,
                               QPlainTextEdit, QPushButton, QSplitter, QStyle, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from workbench import __version__
from workbench.gui.forms import error_color
from workbench.plugin_system import user_settings
from workbench.plugin_system.user_settings import BUILTIN_DISTRIBUTION

KIND_TITLES = {"cell": "cells", "architecture": "blocks", "task": "tasks", "decoder": "decoders",
               "template": "templates", "feature_track": "feature tracks"}
RESTART_NOTE = "Enabling or disabling a plugin takes effect the next time Sequence Workbench starts."

ROLE_DETAILS = Qt.ItemDataRole.UserRole
ROLE_KIND = Qt.ItemDataRole.UserRole + 1   # "plugin" | "failure" | "group" | "contribution"
ROLE_KEY = Qt.ItemDataRole.UserRole + 2    # the name the settings file uses for a plugin that can be disabled


def plugin_rows(registry: Any) -> list[dict[str, Any]]:
    """One dict per plugin: distribution, entry point, version, status, contributions by kind, failures."""
    contributions: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for kind, spec in registry.all():
        contributions[spec.plugin][kind].append(spec)
    failures: dict[str, list[Any]] = defaultdict(list)
    for failure in registry.failures:
        failures[failure.entry_point].append(failure)
    notes: dict[str, list[str]] = defaultdict(list)
    for note in getattr(registry, "notes", ()):
        notes[note.entry_point].append(note.note)
    rows = []
    loaded = set()
    for dist, entry_point, version in registry.plugins:
        loaded.add(entry_point)
        errs = failures.get(entry_point, [])
        rows.append({"distribution": dist, "entry_point": entry_point, "version": version,
                     "status": (f"loaded, {len(errs)} error{'s' if len(errs) > 1 else ''}" if errs else "loaded"),
                     "ok": not errs, "contributions": dict(contributions.get(entry_point, {})), "failures": errs,
                     "notes": notes.get(entry_point, []), "enabled": True})
    for entry_point, errs in failures.items():
        if entry_point not in loaded:
            incompatible = all(f.category == "incompatible" for f in errs)
            rows.append({"distribution": errs[0].distribution, "entry_point": entry_point, "version": "",
                         "status": "not loaded: incompatible" if incompatible else "failed to load", "ok": False,
                         "contributions": {}, "failures": errs, "notes": notes.get(entry_point, []),
                         "enabled": True})
    for off in getattr(registry, "disabled", ()):
        rows.append({"distribution": off.distribution, "entry_point": off.entry_point, "version": off.version,
                     "status": "disabled", "ok": True, "contributions": {}, "failures": [], "notes": [off.reason],
                     "enabled": False})
    for row in rows:
        row["builtin"] = is_builtin(row)
    return rows


def is_builtin(row: dict[str, Any]) -> bool:
    """Plugins that ship with Sequence Workbench cannot be disabled (the app needs its tasks and blocks)."""
    return row["distribution"] == BUILTIN_DISTRIBUTION or row["entry_point"].startswith("builtin-")


def settings_key(row: dict[str, Any]) -> str:
    """What the settings file names: the distribution (all its entry points), or the entry point for a plugin
    registered in code."""
    dist = row["distribution"]
    return dist if dist and not dist.startswith("(") else row["entry_point"]


def bug_report(registry: Any) -> str:
    """Plain text for a bug report: versions, every plugin and its status, every failure with its traceback."""
    import PySide6
    lines = [
        f"Sequence Workbench {__version__}",
        f"Python {platform.python_version()} ({sys.executable})",
        f"Platform {platform.platform()}",
        f"Qt {qVersion()}, PySide6 {PySide6.__version__}",
        "",
        "Plugins:",
    ]
    for row in plugin_rows(registry):
        counts = ", ".join(f"{len(specs)} {KIND_TITLES.get(kind, kind)}"
                           for kind, specs in row["contributions"].items())
        lines.append(f"  {row['entry_point']} — {row['distribution'] or '?'} {row['version']}: {row['status']}"
                     + (f" ({counts})" if counts else ""))
        lines += [f"    note: {note}" for note in row["notes"]]
    if registry.failures:
        lines += ["", "Failures:"]
        for failure in registry.failures:
            lines.append(f"- {failure.message()}")
            if failure.detail:
                lines += ["    " + ln for ln in failure.detail.rstrip().splitlines()]
    else:
        lines += ["", "No plugin failed to load."]
    return "\n".join(lines) + "\n"


class PluginManagerDialog(QDialog):
    def __init__(self, registry: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.registry = registry
        self.setWindowTitle("Plugins — Sequence Workbench")
        self.resize(900, 560)
        rows = plugin_rows(registry)
        n_failed = sum(1 for r in rows if not r["ok"])
        summary = QLabel(f"{len(rows)} plugin{'s' if len(rows) != 1 else ''} from the entry-point group "
                         f"<code>seqwb.plugins</code>; "
                         + (f"<b>{n_failed} with problems</b> (select one to see why)." if n_failed
                            else "all loaded.")
                         + (f" {n_off} disabled." if (n_off := sum(1 for r in rows if not r["enabled"])) else ""))
        summary.setWordWrap(True)
        self.restart_label = QLabel(f"<i>{RESTART_NOTE}</i> Untick a plugin to disable it. "
                                    f"<code>SEQWB_DISABLE_PLUGINS=name,…</code> or <code>SEQWB_NO_PLUGINS=1</code> "
                                    f"in the environment do the same for one run.")
        self.restart_label.setWordWrap(True)
        self.changed: dict[str, bool] = {}   # settings key -> enabled, changed in this dialog

        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Plugin", "Distribution", "Version", "Status"])
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.details.setPlaceholderText("Select a plugin or a contribution to see its details.")
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.tree)
        split.addWidget(self.details)
        split.setSizes([330, 200])

        self.copy_button = QPushButton("Copy details")
        self.copy_button.setToolTip("Copy versions, plugins and every failure with its traceback, for a bug report")
        self.copy_button.clicked.connect(self.copy_details)
        self.check_button = QPushButton("Check cells")
        self.check_button.setToolTip("Build every cell and run one trial step: a cell with wrong shapes is named "
                                     "with its plugin before a project uses it")
        self.check_button.clicked.connect(self.check_cells)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        bottom = QHBoxLayout()
        bottom.addWidget(self.copy_button)
        bottom.addWidget(self.check_button)
        bottom.addStretch(1)
        bottom.addWidget(buttons)

        layout = QVBoxLayout(self)
        layout.addWidget(summary)
        layout.addWidget(self.restart_label)
        layout.addWidget(split, 1)
        layout.addLayout(bottom)

        self._fill(rows)
        self.tree.currentItemChanged.connect(self._on_current)
        self.tree.itemChanged.connect(self._on_item_changed)
        first_failed = next((self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())
                             if not rows[i]["ok"]), None)
        self.tree.setCurrentItem(first_failed or self.tree.topLevelItem(0))

    def _fill(self, rows: list[dict[str, Any]]) -> None:
        style = QApplication.style()
        ok_icon = style.standardIcon(QStyle.StandardPixmap.SP_DialogApplyButton)
        bad_icon = style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical)
        red = QBrush(error_color(self))
        for row in rows:
            item = QTreeWidgetItem([row["entry_point"], row["distribution"] or "?", row["version"], row["status"]])
            if row["enabled"]:   # a disabled plugin was not loaded: neither a tick nor a failure
                item.setIcon(0, ok_icon if row["ok"] else bad_icon)
            item.setData(0, ROLE_KIND, "plugin")
            item.setData(0, ROLE_DETAILS, self._plugin_details(row))
            if not row["builtin"]:
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(0, Qt.CheckState.Checked if row["enabled"] else Qt.CheckState.Unchecked)
                item.setData(0, ROLE_KEY, settings_key(row))
                item.setToolTip(0, "Untick to disable this plugin from the next start")
            else:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsUserCheckable)
                item.setToolTip(0, "Built into Sequence Workbench (cannot be disabled)")
            if not row["enabled"]:
                item.setForeground(3, QBrush(self.palette().color(self.palette().ColorGroup.Disabled,
                                                                  self.palette().ColorRole.Text)))
            if not row["ok"]:
                item.setForeground(3, red)
            self.tree.addTopLevelItem(item)
            for failure in row["failures"]:
                label = "incompatible" if failure.category == "incompatible" else "error"
                child = QTreeWidgetItem([label + (f" in {failure.hook}" if failure.hook else ""), "", "",
                                         failure.error])
                child.setForeground(3, red)
                child.setForeground(0, red)
                child.setToolTip(3, failure.error)
                child.setData(0, ROLE_KIND, "failure")
                child.setData(0, ROLE_DETAILS, f"{failure.message()}\n\n{failure.detail or '(no traceback)'}")
                item.addChild(child)
            for kind, specs in row["contributions"].items():
                group = QTreeWidgetItem([f"{KIND_TITLES.get(kind, kind)} ({len(specs)})", "", "", ""])
                group.setData(0, ROLE_KIND, "group")
                group.setData(0, ROLE_DETAILS, "\n".join(f"{s.id}: {s.title}" for s in specs))
                item.addChild(group)
                for spec in specs:
                    leaf = QTreeWidgetItem([f"{spec.id} — {spec.title}" if spec.title != spec.id else spec.id,
                                            "", spec.version, ""])
                    leaf.setToolTip(0, spec.description or spec.title)
                    leaf.setToolTip(1, spec.description or spec.title)
                    leaf.setData(0, ROLE_KIND, "contribution")
                    leaf.setData(0, ROLE_DETAILS, _spec_details(kind, spec))
                    group.addChild(leaf)
            item.setExpanded(not row["ok"])
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)   # names and titles get the room
        for col in (1, 2):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        # an error text can be long: the status column keeps a fixed width, the full text is in the tooltip
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Interactive)
        self.tree.setColumnWidth(3, 240)

    def _plugin_details(self, row: dict[str, Any]) -> str:
        lines = [f"Plugin {row['entry_point']}", f"Distribution: {row['distribution'] or '?'} {row['version']}",
                 f"Status: {row['status']}"]
        for kind, specs in row["contributions"].items():
            lines.append(f"{KIND_TITLES.get(kind, kind).capitalize()}: {', '.join(s.id for s in specs)}")
        for note in row["notes"]:
            lines.append(f"Note: {note}")
        for failure in row["failures"]:
            lines += ["", failure.message(), "", failure.detail.rstrip() if failure.detail else "(no traceback)"]
        return "\n".join(lines)

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        key = item.data(0, ROLE_KEY)
        if column != 0 or not key:
            return
        self.set_enabled(key, item.checkState(0) == Qt.CheckState.Checked)

    def set_enabled(self, key: str, enabled: bool) -> None:
        """Record the choice in the user's plugin settings (read by the loader at the next start)."""
        names, _problem = user_settings.read_disabled()
        current = {user_settings.normalize(n): n for n in names}
        if enabled:
            current.pop(user_settings.normalize(key), None)
        else:
            current[user_settings.normalize(key)] = key
        try:
            path = user_settings.write_disabled(current.values())
        except OSError as exc:
            self.restart_label.setText(f"<b>Could not save the plugin settings:</b> {exc}")
            return
        self.changed[key] = enabled
        state = "enabled" if enabled else "disabled"
        self.restart_label.setText(f"<b>{key} will be {state} the next time Sequence Workbench starts</b> "
                                   f"(saved in {path}). {RESTART_NOTE}")

    def _on_current(self, item: QTreeWidgetItem | None, _previous: Any = None) -> None:
        self.details.setPlainText(item.data(0, ROLE_DETAILS) if item is not None else "")

    def check_cells(self) -> list[Any]:
        """Run :func:`workbench.core.plugin_checks.check_cells` (core computes; this shows) and list each
        problem under its plugin."""
        from workbench.core.plugin_checks import check_cells
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            checked, problems = check_cells(self.registry)
        finally:
            QApplication.restoreOverrideCursor()
        red = QBrush(error_color(self))
        items = {self.tree.topLevelItem(i).text(0): self.tree.topLevelItem(i)
                 for i in range(self.tree.topLevelItemCount())}
        for failure in problems:
            item = items.get(failure.entry_point)
            if item is None:
                continue
            child = QTreeWidgetItem(["error in cell check", "", "", failure.error])
            child.setForeground(0, red)
            child.setForeground(3, red)
            child.setToolTip(3, failure.error)
            child.setData(0, ROLE_KIND, "failure")
            child.setData(0, ROLE_DETAILS, f"{failure.message()}\n\n{failure.detail or '(no traceback)'}")
            item.insertChild(0, child)
            item.setText(3, "loaded, cell check failed")
            item.setForeground(3, red)
            item.setExpanded(True)
        summary = (f"{checked} cell{'s' if checked != 1 else ''} checked: "
                   + (f"{len(problems)} with problems." if problems else "all build and step with the right shapes."))
        self.details.setPlainText(summary + "".join(f"\n\n{f.error}" for f in problems))
        self.check_button.setText("Checked" if not problems else f"{len(problems)} problem(s)")
        return problems

    def report(self) -> str:
        return bug_report(self.registry)

    def copy_details(self) -> None:
        QGuiApplication.clipboard().setText(self.report())
        self.copy_button.setText("Copied")


def _spec_details(kind: str, spec: Any) -> str:
    from workbench.schema.params import field_info
    lines = [f"{kind} {spec.id}: {spec.title} (version {spec.version})", f"factory: {spec.factory}"]
    if spec.description:
        lines += ["", spec.description]
    try:
        infos = field_info(spec.params)
    except TypeError:
        infos = []
    if infos:
        lines += ["", "Parameters:"] + [f"  {i.describe()}" for i in infos]
    return "\n".join(lines)
