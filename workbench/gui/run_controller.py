"""Training from the main window: Run ▸ Train, Train New Run, Pause, Resume and Stop, what the run bridge reports,
and what a run brings back merged into the project.

Run ▸ Train trains a snapshot of the project in a worker thread (:mod:`workbench.gui.run_bridge`); whether it
continues the latest run or starts a new one is :func:`workbench.core.runs.plan_run`'s answer, and every record
and checkpoint the run sends back goes into the document through :func:`workbench.core.runs.merge_run_state`.
Edits made while a run trains go to the document and never reach the live run, and the dashboard says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox

from workbench.core.runs import merge_run_state, plan_run
from workbench.gui.actions import make_action, run_icon


class RunController(QObject):
    """``RunController(window)``: the Run actions (``act_train``, ``act_train_new``, ``act_pause``,
    ``act_resume``, ``act_stop``) and the status bar's run label (``label``), for the window to place.

    Of the window it uses ``doc``, ``registry``, ``bridge`` (the :class:`~workbench.gui.run_bridge.RunBridge`),
    ``inspector``, ``dashboard`` (None until first shown), ``show_dashboard()``, ``log()`` and
    ``show_message()``.  It connects to the bridge when made, so a run's checkpoint is in the project before
    anything connected later (autosave) sees it."""

    def __init__(self, window: Any):
        super().__init__(window)
        self.window = window
        self.doc = window.doc
        self.bridge = window.bridge
        self._graph_hash = ""           # the graph and settings the live run started with
        self._train_settings: dict[str, Any] = {}
        text_color = window.palette().color(QPalette.ColorRole.ButtonText)
        # F5 / Shift+F5 as in debuggers (run / stop); no standard key exists for these
        self.act_train = make_action(window, "&Train", self.train, shortcut="F5", icon=run_icon("train", text_color))
        self.act_train_new = make_action(window, "Train &New Run", lambda: self.train(new_run=True),
                                         shortcut="Ctrl+F5", tip="Start a new run from fresh weights, keeping the "
                                                                 "earlier runs in the history")
        self.act_pause = make_action(window, "&Pause", self.pause, shortcut="F6", icon=run_icon("pause", text_color))
        self.act_resume = make_action(window, "&Resume", self.resume, shortcut="F6",
                                      icon=run_icon("resume", text_color),
                                      tip="Resume training from the step where it paused (F6)")
        self.act_stop = make_action(window, "&Stop", self.stop, shortcut="Shift+F5",
                                    icon=run_icon("stop", text_color))
        self.label = QLabel()
        self.label.setContentsMargins(6, 0, 6, 0)
        self.label.hide()

        self.doc.settingsChanged.connect(self._on_settings_changed)
        self.doc.problemsChanged.connect(self.update_actions)
        self.doc.graphChanged.connect(self._check_snapshot)
        self.bridge.runStarted.connect(self._on_started)
        self.bridge.eventsReady.connect(self._on_events)
        self.bridge.stateSaved.connect(self._on_state_saved)
        self.bridge.runEnded.connect(self._on_ended)
        self.bridge.stateChanged.connect(self._on_state_changed)

    @property
    def actions(self) -> list[Any]:
        """Train, Pause, Resume and Stop: the toolbar's and the dashboard's buttons."""
        return [self.act_train, self.act_pause, self.act_resume, self.act_stop]

    def is_live(self) -> bool:
        return self.bridge.is_live()

    # ---- the actions -------------------------------------------------------------------------------------
    def update_actions(self, *_args: Any) -> None:
        """Enable the actions the run's state allows; Train's tooltip says what it would do, or why it cannot."""
        problems = self.doc.report().problems
        state = self.bridge.state
        live = state != "idle"
        if problems:
            more = f" (and {len(problems) - 1} more; see the Problems panel)" if len(problems) > 1 else ""
            tip = f"Cannot train: {problems[0]}{more}"
        else:
            tip = f"Train (F5): {plan_run(self.doc.project).text}"
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

    def train(self, new_run: bool = False) -> bool:
        """Run ▸ Train: continue the latest run or start a new one (``new_run``), on a snapshot of the project."""
        if self.bridge.is_live():
            if self.bridge.state in ("pausing", "paused"):
                self.resume()
            return False
        window = self.window
        window.inspector.commit_pending()
        problems = self.doc.report().problems
        if problems:
            window.show_message(f"Cannot train: {problems[0]}")
            return False
        plan = plan_run(self.doc.project, force_new=new_run)
        window.show_dashboard()
        self._graph_hash = self.doc.graph.content_hash()
        from workbench.schema.params import params_to_dict
        self._train_settings = params_to_dict(self.doc.project.train)
        base_dir = str(Path(self.doc.path).resolve().parent) if self.doc.path else None
        window.log(f"Train: {plan.text}")
        self.bridge.start(self.doc.project, window.registry, base_dir=base_dir, new_run=plan.new_run)
        dashboard = window.dashboard
        dashboard.hide_banner()
        dashboard.settings_bar.setEnabled(False)      # they apply at Train: this run has them already
        dashboard.progress.setFormat("starting: reading the data and building the model…")
        self.update_actions()
        return True

    def pause(self) -> None:
        self.bridge.pause()

    def resume(self) -> None:
        self.bridge.resume()
        if self.window.dashboard is not None:
            self.window.dashboard.set_paused(False)
        self.window.log(f"Resumed at step {self.bridge.last_step}")

    def stop(self) -> None:
        if self.bridge.is_live():
            self.bridge.stop()
            self.window.show_message("Stopping after the current step…")

    # ---- stopping before the project goes --------------------------------------------------------------------
    def ask_stop_training(self, closing: bool) -> str:
        """Ask what to do with the live run: "save" (stop, then save), "discard" (stop only) or "cancel"."""
        box = QMessageBox(self.window)
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

    def stop_run_first(self) -> bool:
        """Before another project replaces this one: a live run is stopped (after asking) and merged.  False when
        the user chose to keep it."""
        if not self.bridge.is_live():
            return True
        if self.ask_stop_training(closing=False) == "cancel":
            return False
        return self.stop_and_wait()

    # ---- what the bridge reports -----------------------------------------------------------------------------
    def _on_settings_changed(self, section: str) -> None:
        if section == "train":
            self.update_actions()
            self._check_snapshot()

    def _on_state_changed(self, state: str) -> None:
        self.update_actions()
        if state == "paused":
            self.window.log(f"Paused at step {self.bridge.last_step} (a checkpoint is in the project: Save keeps it)")
            if self.window.dashboard is not None:
                self.window.dashboard.set_paused(True)
        self.label.setVisible(state != "idle")
        if state in ("paused", "pausing", "stopping", "starting"):
            self.label.setText(f"Training: {state}")

    def _merge(self, state: Any) -> None:
        sizes_before = (self.doc.project.data or {}).get("sizes")
        merge_run_state(self.doc.project, state)
        self.doc.undo_stack.resetClean()    # the project changed, but not by an undoable edit
        if (self.doc.project.data or {}).get("sizes") != sizes_before:
            self.doc.graphChanged.emit()    # the data's sizes (the vocabulary) are known now: revalidate

    def _on_started(self, start: Any) -> None:
        self._merge(start.state)
        log = self.window.log
        log(f"{start.run_id}: {'continuing' if start.resumed else 'started'} at step {start.step} of "
            f"{start.total} on {start.device}, {start.parameters:,} parameters")
        for notice in start.notices:
            log(f"note: {notice}")
        if self.window.dashboard is not None:
            self.window.dashboard.begin_run(start)
        self.label.setText(f"Training {start.run_id}")
        self._check_snapshot()

    def _on_events(self, events: list) -> None:
        if self.window.dashboard is not None:
            self.window.dashboard.consume(events)
        for kind, ev in events:
            if kind == "eval":
                shown = "  ".join(f"{k} {v:.4g}" for k, v in ev.metrics.items() if isinstance(v, (int, float)))
                self.window.log(f"step {ev.step}: valid {shown}{'  (best)' if ev.best else ''}")
        self.label.setText(f"Training: step {self.bridge.last_step}")

    def _on_state_saved(self, state: Any) -> None:
        self._merge(state)
        if self.window.dashboard is not None:
            self.window.dashboard.save_state(state)

    def _on_ended(self, end: Any) -> None:
        if end.state is not None:
            self._merge(end.state)
        window = self.window
        run_id = end.state.run.id if end.state is not None else "the run"
        if end.status == "failed":
            window.log(f"{run_id} failed: {end.message}", "error")
            if end.details:
                window.log(end.details.rstrip(), "detail")
            window.show_message(f"Training failed: {end.message}", 15000)
        else:
            window.log(f"{run_id} {end.status} at step {end.step}" + (f" ({end.message})" if end.message else ""))
            window.show_message(f"Training {end.status} at step {end.step}")
        if window.dashboard is not None:
            if window.dashboard.banner_kind == "notice":
                # "the graph changed after this run started" is about the live run: with the run over, the edits
                # are simply what the next Train uses
                window.dashboard.hide_banner()
            window.dashboard.end_run(end)
        self.label.hide()
        self.update_actions()

    def _check_snapshot(self) -> None:
        """While a run is live, tell the user when the document no longer matches what the run trains."""
        dashboard = self.window.dashboard
        if not self.bridge.is_live() or dashboard is None:
            return
        from workbench.schema.params import params_to_dict
        graph_edited = self.doc.graph.content_hash() != self._graph_hash
        settings_edited = params_to_dict(self.doc.project.train) != self._train_settings
        if graph_edited or settings_edited:
            what = "model graph" if graph_edited else "training settings"
            if graph_edited and settings_edited:
                what = "model graph and training settings"
            dashboard.show_banner(
                f"The {what} changed after this run started. The run goes on with the {what} as they were when "
                f"you pressed Train; the edits apply to the next run.", "notice")
        elif dashboard.banner_kind == "notice":
            dashboard.hide_banner()
