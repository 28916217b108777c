"""The plugin manager: every plugin with its distribution, version, contributions and status; failures in full.

Everything shown comes from the window's :class:`~workbench.plugin_system.loader.Registry` (``registry.plugins``,
``registry.items``, ``registry.failures``, ``registry.conflicts``); the dialog loads nothing itself.  Ids that two
distributions register are listed under "Id conflicts" (neither is used) and each claimant's row says so.
"Run contract checks" runs :func:`workbench.testing.contracts.check_registry` on the selected plugin's
distribution in a worker thread (cancellable) and lists each failed check under the plugin.  "Install…" and
"Uninstall…" open :mod:`workbench.gui.plugin_install`; the list is filled again when plugins change.  "Copy
details" puts a plain-text report on the clipboard that is meant to be pasted into a bug report as it is.
"""

from __future__ import annotations

import platform
import sys
from collections import defaultdict
from typing import Any, Optional

from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QBrush, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (QApplication, QDialog, QDialogButtonBox, QHBoxLayout, QHeaderView, QLabel,
                               QPlainTextEdit, QProgressBar, QPushButton, QSplitter, QStyle, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from workbench import __version__
from workbench.gui.forms import error_color
from workbench.gui.jobs import Job, JobRunner
from workbench.plugin_system import user_settings
from workbench.plugin_system.user_settings import BUILTIN_DISTRIBUTION

KIND_TITLES = {"cell": "cells", "architecture": "blocks", "task": "tasks", "decoder": "decoders",
               "template": "templates", "feature_track": "feature tracks"}
RESTART_NOTE = "Enabling or disabling a plugin takes effect the next time Sequence Workbench starts."

ROLE_DETAILS = Qt.ItemDataRole.UserRole
ROLE_KIND = Qt.ItemDataRole.UserRole + 1   # "plugin" | "failure" | "group" | "contribution"
ROLE_KEY = Qt.ItemDataRole.UserRole + 2    # the name the settings file uses for a plugin that can be disabled
ROLE_DIST = Qt.ItemDataRole.UserRole + 3   # a plugin row's distribution
CONFLICTS_ROW = "Id conflicts"


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
                     "status": _loaded_status(errs), "ok": not errs,
                     "contributions": dict(contributions.get(entry_point, {})), "failures": errs,
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


def _loaded_status(failures: list[Any]) -> str:
    """"loaded", or "loaded, 1 error, 2 conflicts": a conflict (an id another distribution registers too, or one
    in another's namespace) is not an error of the plugin's code, and says so."""
    conflicts = sum(1 for f in failures if f.category == "conflict")
    errors = len(failures) - conflicts
    parts = [f"{n} {word}{'s' if n > 1 else ''}" for n, word in ((errors, "error"), (conflicts, "conflict")) if n]
    return ", ".join(["loaded", *parts])


def conflict_rows(registry: Any) -> list[dict[str, Any]]:
    """One dict per id that several distributions register (neither is used): kind, id, the claimants."""
    rows = []
    for kind, table in getattr(registry, "conflicts", {}).items():
        for spec_id, specs in table.items():
            claimants = sorted({f"{s.distribution or '?'} ({s.plugin})" for s in specs})
            rows.append({"kind": kind, "id": spec_id, "claimants": claimants,
                         "entry_points": sorted({s.plugin for s in specs})})
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
    conflicts = conflict_rows(registry)
    if conflicts:
        lines += ["", "Id conflicts (neither claimant is used):"]
        lines += [f"  {c['kind']} {c['id']!r}: {' and '.join(c['claimants'])}" for c in conflicts]
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
    """``PluginManagerDialog(registry, parent)``; ``pip_options`` go to the install dialog (the tests install into
    a folder, offline).  When plugins change, the parent window (if it is one) is redrawn with
    :func:`workbench.gui.plugin_install.refresh_window`."""

    def __init__(self, registry: Any, parent: QWidget | None = None, *, pip_options: dict[str, Any] | None = None):
        super().__init__(parent)
        self.registry = registry
        self.pip_options = dict(pip_options or {})
        self.setWindowTitle("Plugins — Sequence Workbench")
        self.resize(960, 600)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.restart_label = QLabel(f"<i>{RESTART_NOTE}</i> Untick a plugin to disable it. "
                                    f"<code>SEQWB_DISABLE_PLUGINS=name,…</code> or <code>SEQWB_NO_PLUGINS=1</code> "
                                    f"in the environment do the same for one run.")
        self.restart_label.setWordWrap(True)
        self.changed: dict[str, bool] = {}   # settings key -> enabled, changed in this dialog
        self.contract_results: list[Any] = []   # the last contract checks' results
        self.checks = JobRunner("plugin contract checks", self, thread_name="seqwb-contracts")
        self._checking: Optional[Job] = None

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
        split.setSizes([350, 200])

        self.copy_button = QPushButton("Copy details")
        self.copy_button.setToolTip("Copy versions, plugins and every failure with its traceback, for a bug report")
        self.copy_button.clicked.connect(self.copy_details)
        self.check_button = QPushButton("Check cells")
        self.check_button.setToolTip("Build every cell and run one trial step: a cell with wrong shapes is named "
                                     "with its plugin before a project uses it")
        self.check_button.clicked.connect(self.check_cells)
        self.contracts_button = QPushButton("Run contract checks")
        self.contracts_button.setToolTip("Run every contract check (docs/plugins.md, section 12) on the selected "
                                         "plugin's distribution, as seqwb plugins --check --only does")
        self.contracts_button.clicked.connect(self._toggle_contract_checks)
        self.check_progress = QProgressBar()
        self.check_progress.setMaximumWidth(140)
        self.check_progress.hide()
        self.install_button = QPushButton("Install…")
        self.install_button.setToolTip("Install a plugin with pip from a wheel, a folder or the package index")
        self.install_button.clicked.connect(self.install)
        self.uninstall_button = QPushButton("Uninstall…")
        self.uninstall_button.setToolTip("Remove the selected plugin's distribution with pip")
        self.uninstall_button.clicked.connect(self.uninstall)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        bottom = QHBoxLayout()
        for widget in (self.copy_button, self.check_button, self.contracts_button, self.check_progress):
            bottom.addWidget(widget)
        bottom.addStretch(1)
        for widget in (self.install_button, self.uninstall_button, buttons):
            bottom.addWidget(widget)

        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.restart_label)
        layout.addWidget(split, 1)
        layout.addLayout(bottom)

        self.tree.currentItemChanged.connect(self._on_current)
        self.tree.itemChanged.connect(self._on_item_changed)
        self.refill()

    def refill(self) -> None:
        """Fill the list from the registry as it is now (after an install, say), selecting the first plugin with a
        problem."""
        rows = plugin_rows(self.registry)
        conflicts = conflict_rows(self.registry)
        n_failed = sum(1 for r in rows if not r["ok"])
        n_off = sum(1 for r in rows if not r["enabled"])
        self.summary.setText(
            f"{len(rows)} plugin{'s' if len(rows) != 1 else ''} from the entry-point group <code>seqwb.plugins</code>; "
            + (f"<b>{n_failed} with problems</b> (select one to see why)." if n_failed else "all loaded.")
            + (f" {n_off} disabled." if n_off else "")
            + (f" <b>{len(conflicts)} id{'s are' if len(conflicts) > 1 else ' is'} registered by more than one "
               f"distribution</b>, so not used (see {CONFLICTS_ROW})." if conflicts else ""))
        self.tree.blockSignals(True)   # filling is not the user ticking boxes
        self.tree.clear()
        self._fill(rows)
        self._fill_conflicts(conflicts)
        self.tree.blockSignals(False)
        first_failed = next((self.tree.topLevelItem(i) for i in range(len(rows)) if not rows[i]["ok"]), None)
        self.tree.setCurrentItem(first_failed or self.tree.topLevelItem(0))
        self._on_current(self.tree.currentItem())

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
            item.setData(0, ROLE_DIST, row["distribution"])
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
                label = failure.category if failure.category in ("incompatible", "conflict") else "error"
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

    def _fill_conflicts(self, conflicts: list[dict[str, Any]]) -> None:
        """A row of its own for the ids several distributions register: neither is used, and why."""
        if not conflicts:
            return
        red = QBrush(error_color(self))
        top = QTreeWidgetItem([CONFLICTS_ROW, "", "", f"{len(conflicts)} not used"])
        top.setIcon(0, QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning))
        top.setForeground(3, red)
        top.setData(0, ROLE_KIND, "group")
        top.setData(0, ROLE_DETAILS, "Ids registered by more than one distribution.  Which one a project meant "
                                     "cannot be known, so neither is used: uninstall or disable the one that is not "
                                     "meant (Uninstall…, or untick it above).")
        for c in conflicts:
            claimants = " and ".join(c["claimants"])
            leaf = QTreeWidgetItem([f"{KIND_TITLES.get(c['kind'], c['kind']).rstrip('s')} {c['id']}",
                                    claimants, "", "neither is used"])
            leaf.setForeground(3, red)
            leaf.setToolTip(1, claimants)
            leaf.setData(0, ROLE_KIND, "conflict")
            leaf.setData(0, ROLE_DETAILS, f"{c['kind']} {c['id']!r} is registered by {claimants}, so neither is "
                                          f"used.  Uninstall or disable the one that is not meant; a project that "
                                          f"records which one it was saved with opens once only that one is left.")
            top.addChild(leaf)
        self.tree.addTopLevelItem(top)
        top.setExpanded(True)

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
        dist = self.selected_distribution()
        third_party = bool(dist) and not dist.startswith("(") and user_settings.normalize(dist) != BUILTIN_DISTRIBUTION
        self.uninstall_button.setEnabled(third_party and self._checking is None)
        self.contracts_button.setEnabled(bool(dist) or self._checking is not None)

    def selected_plugin_item(self) -> QTreeWidgetItem | None:
        """The plugin row of the selection (the row itself, or the row a failure or contribution belongs to)."""
        item = self.tree.currentItem()
        while item is not None and item.parent() is not None:
            item = item.parent()
        return item if item is not None and item.data(0, ROLE_KIND) == "plugin" else None

    def selected_distribution(self) -> str:
        item = self.selected_plugin_item()
        return (item.data(0, ROLE_DIST) or "") if item is not None else ""

    # ---- installing -------------------------------------------------------------------------------------------
    def install(self) -> Any:
        return self._pip("install")

    def uninstall(self) -> Any:
        return self._pip("uninstall", self.selected_distribution())

    def _pip(self, mode: str, distribution: str = "") -> Any:
        from workbench.gui.plugin_install import PipDialog
        dialog = PipDialog(self.registry, mode, self, distribution=distribution, pip_options=self.pip_options)
        dialog.pluginsChanged.connect(self._plugins_changed)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def _plugins_changed(self) -> None:
        from workbench.gui.plugin_install import refresh_window
        window = self.parentWidget()
        if window is not None:
            refresh_window(window)
        self.refill()

    # ---- contract checks ------------------------------------------------------------------------------------
    def _toggle_contract_checks(self) -> None:
        if self._checking is not None:
            self._checking.cancel()
            self.contracts_button.setEnabled(False)
            self.contracts_button.setText("Stopping…")
        else:
            self.run_contract_checks()

    def run_contract_checks(self, distribution: str = "") -> Optional[Job]:
        """Run the contract suite on ``distribution`` (the selected plugin's by default) in the worker thread; the
        results are listed under its plugins when they come.  Not while the window trains: the checks seed
        PyTorch's random numbers, which a run draws from too."""
        dist = distribution or self.selected_distribution()
        runs = getattr(self.parentWidget(), "runs", None)
        if not dist or self._checking is not None:
            return None
        if runs is not None and runs.is_live():
            self.details.setPlainText("The contract checks wait until the training run stops: they seed PyTorch's "
                                      "random numbers, which the run draws from too.")
            return None
        registry = self.registry

        def work(job: Job) -> list[Any]:
            from workbench.testing.contracts import check_registry
            return check_registry(registry, distributions={dist}, progress=job.report)

        self.contracts_button.setText("Stop checks")
        self.check_progress.setRange(0, 0)
        self.check_progress.show()
        self.details.setPlainText(f"Running the contract checks on {dist}…")
        self._checking = self.checks.submit(
            work, key="contracts", on_progress=self._contract_progress, on_error=self._contracts_failed,
            on_result=lambda results, d=dist: self._contracts_done(d, results),
            on_cancelled=lambda: self._contracts_failed("stopped before the end"))
        return self._checking

    def _contract_progress(self, done: int, total: int) -> None:
        self.check_progress.setRange(0, max(total, 1))
        self.check_progress.setValue(done)
        self.check_progress.setFormat(f"{done} of {total}")

    def _contracts_over(self) -> None:
        self._checking = None
        self.check_progress.hide()
        self.contracts_button.setText("Run contract checks")
        self._on_current(self.tree.currentItem())

    def _contracts_failed(self, message: str) -> None:
        self._contracts_over()
        self.details.setPlainText(f"The contract checks did not finish: {message}")

    def _contracts_done(self, distribution: str, results: list[Any]) -> None:
        """List each result's failure under its plugin, and the whole outcome in the details."""
        self._contracts_over()
        self.contract_results = results
        red = QBrush(error_color(self))
        items = {self.tree.topLevelItem(i).text(0): self.tree.topLevelItem(i)
                 for i in range(self.tree.topLevelItemCount())}
        counts: dict[str, int] = defaultdict(int)
        for r in results:
            counts[r.status] += 1
        for entry_point in sorted({r.plugin for r in results}):
            item = items.get(entry_point)
            if item is None:
                continue
            mine = [r for r in results if r.plugin == entry_point]
            failed = [r for r in mine if r.status == "failed"]
            unchecked = sum(1 for r in mine if r.status == "not checked")
            for r in failed:
                child = QTreeWidgetItem([f"failed {r.check}", "", "", r.message])
                child.setForeground(0, red)
                child.setForeground(3, red)
                child.setToolTip(3, r.message)
                child.setData(0, ROLE_KIND, "failure")
                child.setData(0, ROLE_DETAILS, f"{r.message}\n\n{r.detail or '(no traceback)'}")
                item.insertChild(0, child)
            item.setText(3, (f"{len(failed)} contract check(s) failed" if failed else "contract checks passed")
                         + (f", {unchecked} not checked" if unchecked else ""))
            if failed:
                item.setForeground(3, red)
                item.setExpanded(True)
        summary = (f"Contract checks of {distribution}: {counts['passed']} passed, {counts['failed']} failed"
                   + (f", {counts['not checked']} not checked (their defaults need data or sizes)"
                      if counts["not checked"] else "") + ".")
        if not results:
            summary = f"{distribution} registers no contribution to check."
        self.details.setPlainText(summary + "".join(f"\n\n{r.message}" for r in results if r.status != "passed"))

    def reject(self) -> None:
        self.checks.drop()      # a check still running is stopped; its answer goes nowhere
        super().reject()

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
