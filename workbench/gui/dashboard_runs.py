"""The training dashboard's runs beyond the project: runs of other project files, the runs filter, the time axis.

As TensorBoard users expect: **Add Runs from Files…** reads the history of other ``.seqwb`` files (read-only: the
quick read, no weights, nothing written back; in a worker thread) and lists their runs under each file's name; a
ticked run is overlaid on the loss, gradient-norm and gradient-through-time plots like a run of the project.  A file
that changes on disk (another window or ``seqwb train`` writing it) is read again.  The filter (a regular expression
or plain text, on the run's name, cells and file) hides the runs it does not match from the list and from the plots;
the run shown (the live or latest run of the project) always stays.  **X axis** draws the plots over training time
against the step, the time since each run began, or the wall clock (``train/wall_time``, which the trainer records;
runs trained before it are left out of the time axes, and the dashboard says which).

The files, ticks, filter and axis are kept in ``project.views["dashboard"]`` (saved with the project, never marking
it changed).  A part of :class:`~workbench.gui.dashboard.TrainingDashboard` (``self`` is the dashboard).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QTreeWidgetItem,
                               QVBoxLayout)

from workbench.core.traces import RunTraces, run_label, run_matches, runs_from_file
from workbench.gui.jobs import JobRunner
from workbench.gui.plots import SERIES_COLORS
from workbench.gui.style import set_muted, ui_font

VIEWS_KEY = "dashboard"
FILE_ROLE = "file"              # the user data of a file's row in the runs list: (FILE_ROLE, path)
X_AXIS_ITEMS = (("step", "Step"), ("relative", "Relative time"), ("wall", "Wall clock"))
CHECK_FILES_MS = 10_000         # how often files on disk are looked at for changes


def read_runs(path: str, _job: Any) -> tuple[str, list[RunTraces], float]:
    """The project name and runs of another file, and its modification time (in the worker)."""
    mtime = os.stat(path).st_mtime
    name, runs = runs_from_file(path)
    return name, runs, mtime


class OtherRuns:
    """Other files' runs, the filter and the x axis of :class:`~workbench.gui.dashboard.TrainingDashboard`."""

    def _build_run_tools(self, side_layout: QVBoxLayout) -> None:
        """The filter above the runs list, and the file buttons and the x axis below it."""
        self.others: dict[str, dict[str, Any]] = {}        # path -> {"name", "runs": [RunTraces], "mtime"}
        self.files_jobs = JobRunner("dashboard files", self)
        # until the project's kept state is back (_restore_dashboard), nothing is written over it
        self._restoring_dashboard = True
        self.filter_edit = QLineEdit()
        self.filter_edit.setObjectName("runsFilter")
        self.filter_edit.setPlaceholderText("Filter runs (text or regular expression)")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setToolTip("Show only the runs whose name, cells or file match (case-insensitive; a "
                                    "regular expression such as lstm|gru works). The run shown always stays.")
        self.filter_edit.textChanged.connect(self.apply_filter)
        side_layout.addWidget(self.filter_edit)
        self._check_timer = QTimer(self)
        self._check_timer.setInterval(CHECK_FILES_MS)
        self._check_timer.timeout.connect(self.check_other_files)

    def _build_file_buttons(self, side_layout: QVBoxLayout) -> None:
        row = QHBoxLayout()
        self.add_files_button = QPushButton("Add Runs from Files…")
        self.add_files_button.setToolTip("Overlay the runs of other project files (read-only), e.g. the same model "
                                         "trained elsewhere or another architecture")
        self.add_files_button.clicked.connect(self._choose_other_files)
        row.addWidget(self.add_files_button)
        self.remove_file_button = QPushButton("Remove File")
        self.remove_file_button.setToolTip("Stop showing the selected file's runs (the file is not touched)")
        self.remove_file_button.clicked.connect(self._remove_selected_files)
        self.remove_file_button.setEnabled(False)
        row.addWidget(self.remove_file_button)
        row.addStretch(1)
        side_layout.addLayout(row)
        axis_row = QHBoxLayout()
        axis_label = QLabel("X axis")
        axis_row.addWidget(axis_label)
        self.x_axis_combo = QComboBox()
        self.x_axis_combo.setObjectName("xAxis")
        for mode, text in X_AXIS_ITEMS:
            self.x_axis_combo.addItem(text, mode)
        self.x_axis_combo.setToolTip("Draw the plots over training time against the optimizer step, the time "
                                     "since each run began, or the wall clock")
        self.x_axis_combo.currentIndexChanged.connect(lambda _i: self.set_x_axis(self.x_axis_combo.currentData()))
        axis_row.addWidget(self.x_axis_combo)
        axis_row.addStretch(1)
        side_layout.addLayout(axis_row)
        self.time_note = QLabel("")
        self.time_note.setWordWrap(True)
        self.time_note.setFont(ui_font(0.9))
        set_muted(self.time_note)
        self.time_note.hide()
        side_layout.addWidget(self.time_note)

    # ---- other files -------------------------------------------------------------------------------------
    def _choose_other_files(self) -> None:
        start = str(Path(self.doc.path).parent) if self.doc.path else str(Path.home())
        paths, _ = QFileDialog.getOpenFileNames(self, "Add runs from project files", start,
                                                "Sequence Workbench projects (*.seqwb)")
        if paths:
            self.add_other_files(paths)

    def add_other_files(self, paths: list[str]) -> None:
        """Read the runs of these project files in the worker; they are listed (and can be ticked) when read."""
        own = str(Path(self.doc.path).resolve()) if self.doc.path else ""
        for path in paths:
            path = str(Path(path).resolve())
            if path == own:
                self.show_banner("That is this project's own file: its runs are listed already.")
                continue
            self.files_jobs.submit(functools.partial(read_runs, path), key=path,
                                   on_result=functools.partial(self._other_loaded, path),
                                   on_error=functools.partial(self._other_failed, path))

    def _other_loaded(self, path: str, result: tuple[str, list[RunTraces], float]) -> None:
        name, runs, mtime = result
        old = self.others.get(path)
        self.others[path] = {"name": name, "runs": runs, "mtime": mtime}
        self._color_other_runs()
        # a file read again (it changed on disk): the runs ticked before stay ticked, with their new series
        for t in runs:
            if t.key in self.checked:
                self.overlays[t.key] = t
        if old is None:
            self._remember_dashboard()
        self._check_timer.start()
        self._fill_runs_list()
        self.plots.invalidate()

    def _other_failed(self, path: str, message: str) -> None:
        self.show_banner(f"<b>Could not read the runs of {Path(path).name}.</b> {message}", "error")

    def _color_other_runs(self) -> None:
        """Other files' runs take the palette from its end, so that they rarely share a colour with the project's
        first runs (which take it from the start)."""
        n = len(SERIES_COLORS)
        k = 0
        for info in self.others.values():
            for t in info["runs"]:
                t.color_index = n - 1 - (k % n)
                k += 1

    def other_runs(self) -> list[RunTraces]:
        return [t for info in self.others.values() for t in info["runs"]]

    def remove_other_file(self, path: str) -> None:
        info = self.others.pop(path, None)
        self.files_jobs.drop(path)
        if info is None:
            return
        for t in info["runs"]:
            self.checked.discard(t.key)
            self.overlays.pop(t.key, None)
        if not self.others:
            self._check_timer.stop()
        self._remember_dashboard()
        self._fill_runs_list()
        self.plots.invalidate()

    def _remove_selected_files(self) -> None:
        for path in self._selected_files():
            self.remove_other_file(path)

    def _selected_files(self) -> list[str]:
        out = []
        for item in self.runs.selectedItems():
            data = item.data(0, Qt.ItemDataRole.UserRole)
            parent = item.parent()
            if isinstance(data, tuple) and data[0] == FILE_ROLE:
                out.append(data[1])
            elif parent is not None:
                out.append(parent.data(0, Qt.ItemDataRole.UserRole)[1])
        return list(dict.fromkeys(out))

    def check_other_files(self) -> None:
        """Read again the files that changed on disk since they were read (a run still training elsewhere)."""
        for path, info in list(self.others.items()):
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                continue            # gone for now (being replaced atomically): what was read stays shown
            if mtime != info["mtime"] and not self.files_jobs.pending(path):
                self.files_jobs.submit(functools.partial(read_runs, path), key=path,
                                       on_result=functools.partial(self._other_loaded, path),
                                       on_error=functools.partial(self._other_failed, path))

    def set_other_overlay(self, key: str, on: bool) -> None:
        """Overlay (or stop overlaying) a run of another file, by its key (``file.seqwb/run-2``)."""
        t = next((r for r in self.other_runs() if r.key == key), None)
        if t is None:
            return
        if on:
            self.checked.add(key)
            self.overlays[key] = t
        else:
            self.checked.discard(key)
            self.overlays.pop(key, None)
        self._remember_dashboard()
        self.plots.invalidate()

    def _fill_other_runs(self) -> None:
        """Each other file's row, with its runs under it (after the project's runs; called by the list's fill)."""
        self.runs.setRootIsDecorated(bool(self.others))
        self.runs.setIndentation(12)        # the runs under a file keep room for their names in the narrow list
        for path, info in self.others.items():
            group = QTreeWidgetItem(self.runs)
            group.setData(0, Qt.ItemDataRole.UserRole, (FILE_ROLE, path))
            # the file's name across the row: the project's name in the cell column would widen it and push the
            # steps and losses out of the list
            group.setText(0, f"{Path(path).name} · {info['name']}")
            group.setToolTip(0, f"{path}: the project “{info['name']}”\nread-only: its runs can be overlaid, "
                                f"never changed here")
            font = group.font(0)
            font.setItalic(True)
            group.setFont(0, font)
            group.setFlags(group.flags() & ~Qt.ItemFlag.ItemIsUserCheckable)
            for t in reversed(info["runs"]):
                item = QTreeWidgetItem(group)
                item.setData(0, Qt.ItemDataRole.UserRole, t.key)
                item.setText(0, t.run_id)
                item.setText(1, "+".join(t.settings.get("cells") or []) or "?")
                item.setText(2, str(t.last_step))
                valid = t.series.get("valid/loss")
                item.setText(3, f"{valid.last():.4g}" if valid is not None and len(valid) else "—")
                for c in (2, 3):
                    item.setTextAlignment(c, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                item.setIcon(0, self._swatch_of(t))
                item.setToolTip(0, f"{t.label}: {t.status}\nfrom {path} (read-only)")
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(0, Qt.CheckState.Checked if t.key in self.checked else Qt.CheckState.Unchecked)
                if t.status == "failed":
                    item.setForeground(0, QBrush(QColor("#d32f2f")))
            group.setFirstColumnSpanned(True)
            group.setExpanded(True)
        self.apply_filter(self.filter_edit.text())

    # ---- the filter ------------------------------------------------------------------------------------------
    def run_visible(self, t: RunTraces) -> bool:
        """Whether the filter lets a run through (the run shown always passes)."""
        if self.primary is not None and t.key == self.primary.key:
            return True
        return run_matches(self.filter_edit.text(), t.label, t.file)

    def apply_filter(self, text: str) -> None:
        """Hide the rows the filter does not match (and their runs from the plots)."""
        primary = self.primary.key if self.primary is not None else None
        history = {r.id: r for r in self.doc.project.history.runs}
        for i in range(self.runs.topLevelItemCount()):
            item = self.runs.topLevelItem(i)
            data = item.data(0, Qt.ItemDataRole.UserRole)
            if isinstance(data, tuple):             # a file and its runs
                path = data[1]
                file_matches = run_matches(text, Path(path).name, self.others.get(path, {}).get("name", ""))
                shown = 0
                for j in range(item.childCount()):
                    child = item.child(j)
                    t = next((r for r in self.others.get(path, {}).get("runs", [])
                              if r.key == child.data(0, Qt.ItemDataRole.UserRole)), None)
                    visible = file_matches or (t is not None and run_matches(text, t.label))
                    child.setHidden(not visible)
                    shown += visible
                item.setHidden(not shown)
                continue
            run = history.get(data)
            label = run_label(run.id, run.settings) if run is not None else str(data)
            item.setHidden(data != primary and not run_matches(text, label))
        self._remember_dashboard()
        self.plots.invalidate()

    # ---- the x axis --------------------------------------------------------------------------------------
    def set_x_axis(self, mode: str) -> None:
        """Step, relative time or wall clock on the plots over training time; which runs lack times is said."""
        index = self.x_axis_combo.findData(mode)
        if index >= 0 and index != self.x_axis_combo.currentIndex():
            self.x_axis_combo.setCurrentIndex(index)        # comes back here through the signal
            return
        self.plots.set_x_axis(mode)
        self._show_time_note()
        self._remember_dashboard()

    def _show_time_note(self) -> None:
        if self.plots.x_axis == "step":
            self.time_note.hide()
            return
        untimed = [t.label for t in self.shown_runs() if not t.has_times()]
        self.time_note.setText("Not on this axis (trained before runs recorded their times): " + ", ".join(untimed)
                               if untimed else "")
        self.time_note.setVisible(bool(untimed))

    # ---- kept in the project ---------------------------------------------------------------------------------
    def _remember_dashboard(self) -> None:
        if getattr(self, "_restoring_dashboard", False):
            return
        base = Path(self.doc.path).resolve().parent if self.doc.path else None
        files = []
        for path in self.others:
            rel = path
            if base is not None:
                try:
                    rel = os.path.relpath(path, base)
                except ValueError:      # another drive on Windows
                    rel = path
            files.append(rel)
        state = {"files": files, "ticked": sorted(k for k in self.checked if "/" in k),
                 "filter": self.filter_edit.text(), "x_axis": self.plots.x_axis}
        views = self.doc.project.views
        if state == {"files": [], "ticked": [], "filter": "", "x_axis": "step"}:
            views.pop(VIEWS_KEY, None)
        else:
            views[VIEWS_KEY] = state

    def _forget_dashboard(self) -> None:
        """Another project is in the window: no file, tick, filter or time axis of the previous one stays (and
        nothing is written into the new one's views until its own are back)."""
        self._restoring_dashboard = True
        for path in list(self.others):
            self.remove_other_file(path)
        self.filter_edit.clear()
        self.set_x_axis("step")

    def _restore_dashboard(self) -> None:
        """The files, ticks, filter and axis the project kept (the files are read again in the worker)."""
        state = self.doc.project.views.get(VIEWS_KEY)
        state = state if isinstance(state, dict) else {}
        self._restoring_dashboard = True
        try:
            self.filter_edit.setText(str(state.get("filter") or ""))
            mode = state.get("x_axis")
            self.set_x_axis(mode if isinstance(mode, str) and self.x_axis_combo.findData(mode) >= 0 else "step")
            ticked = state.get("ticked") or []
            self.checked |= {str(k) for k in ticked if isinstance(k, str)}
        finally:
            self._restoring_dashboard = False
        base = Path(self.doc.path).resolve().parent if self.doc.path else Path.cwd()
        paths = [str(base / p) if not Path(p).is_absolute() else p for p in state.get("files") or []
                 if isinstance(p, str)]
        self.add_other_files([p for p in paths if Path(p).exists()])
