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

KIND_TITLES = {"cell": "cells", "architecture": "blocks", "task": "tasks", "decoder": "decoders",
               "template": "templates"}

ROLE_DETAILS = Qt.ItemDataRole.UserRole
ROLE_KIND = Qt.ItemDataRole.UserRole + 1   # "plugin" | "failure" | "group" | "contribution"


def plugin_rows(registry: Any) -> list[dict[str, Any]]:
    """One dict per plugin: distribution, entry point, version, status, contributions by kind, failures."""
    contributions: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for kind, spec in registry.all():
        contributions[spec.plugin][kind].append(spec)
    failures: dict[str, list[Any]] = defaultdict(list)
    for failure in registry.failures:
        failures[failure.entry_point].append(failure)
    rows = []
    loaded = set()
    for dist, entry_point, version in registry.plugins:
        loaded.add(entry_point)
        errs = failures.get(entry_point, [])
        rows.append({"distribution": dist, "entry_point": entry_point, "version": version,
                     "status": (f"loaded, {len(errs)} error{'s' if len(errs) > 1 else ''}" if errs else "loaded"),
                     "ok": not errs, "contributions": dict(contributions.get(entry_point, {})), "failures": errs})
    for entry_point, errs in failures.items():
        if entry_point not in loaded:
            rows.append({"distribution": errs[0].distribution, "entry_point": entry_point, "version": "",
                         "status": "failed to load", "ok": False, "contributions": {}, "failures": errs})
    return rows


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
                            else "all loaded."))
        summary.setWordWrap(True)

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
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        bottom = QHBoxLayout()
        bottom.addWidget(self.copy_button)
        bottom.addStretch(1)
        bottom.addWidget(buttons)

        layout = QVBoxLayout(self)
        layout.addWidget(summary)
        layout.addWidget(split, 1)
        layout.addLayout(bottom)

        self._fill(rows)
        self.tree.currentItemChanged.connect(self._on_current)
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
            item.setIcon(0, ok_icon if row["ok"] else bad_icon)
            item.setData(0, ROLE_KIND, "plugin")
            item.setData(0, ROLE_DETAILS, self._plugin_details(row))
            if not row["ok"]:
                item.setForeground(3, red)
            self.tree.addTopLevelItem(item)
            for failure in row["failures"]:
                child = QTreeWidgetItem(["error" + (f" in {failure.hook}" if failure.hook else ""), "", "",
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
        for failure in row["failures"]:
            lines += ["", failure.message(), "", failure.detail.rstrip() if failure.detail else "(no traceback)"]
        return "\n".join(lines)

    def _on_current(self, item: QTreeWidgetItem | None, _previous: Any = None) -> None:
        self.details.setPlainText(item.data(0, ROLE_DETAILS) if item is not None else "")

    def report(self) -> str:
        return bug_report(self.registry)

    def copy_details(self) -> None:
        QGuiApplication.clipboard().setText(self.report())
        self.copy_button.setText("Copied")


def _spec_details(kind: str, spec: Any) -> str:
    from workbench.plugin_system.params import field_info
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
