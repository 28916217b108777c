"""The hidden-units panel's view of the whole validation split: unit search and "where else" over the corpus.

LSTMVis (Strobelt et al. 2018) matches a selection against the whole corpus, not the stretch on screen, and a unit
that follows a feature over 2,000 characters may not over the split.  :class:`CorpusSearch` keeps the validation
split's recording of one quantity (:meth:`workbench.core.recording.Recorder.record_corpus`: float16, every layer;
made in the panel's :class:`~workbench.gui.jobs.JobRunner`, tens of seconds for a large split, with progress and
Cancel) for the weights it was made at, until the graph, the weights or the project change; every search, feature
and selection after the first is answered at once from it.  The correlations and spans are
:mod:`workbench.core.recording`'s, as ``seqwb units`` computes them.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import numpy as np
from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QTreeWidgetItem

from workbench.core import features, recording
from workbench.core import project as core_project
from workbench.gui.jobs import Job

SCOPE_VALID, SCOPE_TEXT = "valid", "text"
CORPUS_JOB = "corpus"
REGEX_ITEM = "__regex__"


def read_corpus(recorder: Any, project: Any, base_dir: Any, weights: str, quantity: str, job: Job) -> dict[str, Any]:
    """The validation split's recording of ``quantity`` (in the worker)."""
    return recorder.record_corpus(project, base_dir, weights, quantity, progress=job.report)


class CorpusSearch(QObject):
    """The validation split's recordings of the quantities asked for, kept per (weights, step, quantity)."""

    def __init__(self, panel: Any):
        super().__init__(panel)
        self.panel = panel
        self._recs: dict[tuple[str, int, str], dict[str, Any]] = {}
        self._job: Optional[Job] = None
        self._job_key: Optional[tuple[str, int, str]] = None
        self._then: list[Callable[[dict[str, Any]], Any]] = []
        self.last_error = ""

    def key(self, quantity: str) -> tuple[str, int, str]:
        weights = self.panel.chosen_weights()
        available = core_project.available_weights(self.panel.doc.project)
        step = int((available.get(weights) or available["current"]).get("step") or 0)
        return weights, step, quantity

    def get(self, quantity: str) -> Optional[dict[str, Any]]:
        """The split's recording of ``quantity`` at the weights chosen now, if it has been read."""
        return self._recs.get(self.key(quantity))

    def busy(self) -> bool:
        return self._job is not None

    def request(self, quantity: str, then: Callable[[dict[str, Any]], Any]) -> None:
        """Call ``then(recording)`` with the split's recording of ``quantity``: now if it has been read, otherwise
        once the worker has read it (one reading for every request that waits for it)."""
        key = self.key(quantity)
        rec = self._recs.get(key)
        if rec is not None:
            then(rec)
            return
        if self._job is not None and self._job_key == key:
            self._then.append(then)
            return
        self.cancel()
        panel = self.panel
        self._job_key = key
        self._then = [then]
        self.last_error = ""
        self._job = panel.jobs.submit(
            functools.partial(read_corpus, panel.recorder, panel.project_snapshot(), panel.base_dir(), key[0],
                              quantity),
            key=CORPUS_JOB, on_result=functools.partial(self._arrived, key), on_error=self._failed,
            on_progress=panel.show_corpus_progress, on_cancelled=self._cancelled)
        panel.corpus_busy(True)

    def cancel(self) -> None:
        if self._job is not None:
            self.panel.jobs.drop(CORPUS_JOB)
            self._finish()

    def clear(self) -> None:
        """Forget every recording (another project, another graph)."""
        self.cancel()
        self._recs.clear()

    def _finish(self) -> None:
        self._job = None
        self._job_key = None
        self._then = []
        self.panel.corpus_busy(False)

    def _arrived(self, key: tuple[str, int, str], rec: dict[str, Any]) -> None:
        # one quantity at a time is kept: another one means another reading anyway, and each can be 500 MB
        self._recs = {key: rec}
        waiting = self._then
        self._finish()
        for then in waiting:
            then(rec)

    def _failed(self, message: str) -> None:
        self.last_error = message
        self._finish()
        self.panel.corpus_failed(message)

    def _cancelled(self) -> None:
        self._finish()
        self.panel.corpus_failed("")


def corpus_note(rec: dict[str, Any]) -> str:
    """What a corpus recording covers: "the validation split (150,000 characters)" or its examples."""
    meta = rec.get("meta", {})
    examples, chars = int(meta.get("examples") or 0), int(meta.get("chars") or 0)
    if examples:
        if meta.get("truncated"):
            return f"the first {examples:,} validation examples (as many as a search holds)"
        return f"{examples:,} validation example{'s' if examples != 1 else ''}"
    if meta.get("truncated"):
        return f"the first {chars:,} characters of the validation split (as much as a search holds)"
    return f"the validation split ({chars:,} characters)"


class UnitSearch:
    """The Unit search tab of :class:`~workbench.gui.inspect_units.HiddenUnitsPanel` (a part of the panel's class:
    ``self`` is the panel)."""

    def search_scope(self) -> str:
        return SCOPE_VALID if self.scope_valid.isChecked() else SCOPE_TEXT

    def set_search_scope(self, scope: str) -> None:
        (self.scope_valid if scope == SCOPE_VALID else self.scope_text).setChecked(True)

    def _on_feature_changed(self, _index: int) -> None:
        regex = self.feature_combo.currentData() == REGEX_ITEM
        self.regex_edit.setEnabled(regex)
        if regex:
            self.regex_edit.setFocus()
        elif self.recording is not None or self.corpus.get(self.quantity) is not None:
            self.run_search()

    def feature(self) -> str:
        name = self.feature_combo.currentData()
        if name == REGEX_ITEM:
            return features.REGEX_PREFIX + self.regex_edit.text()
        return str(name)

    def _on_search_clicked(self) -> None:
        if self.corpus.busy():
            self.corpus.cancel()
            self.search_note.setText("Search cancelled.")
        else:
            self.run_search()

    def run_search(self, feature: str | None = None, scope: str | None = None) -> list[tuple[str, int, float]]:
        """Rank units by ``feature`` (default: the tab's) over the validation split or the recorded text
        (``scope``, default: the tab's) and list them; returns ``[(layer, unit, r)]``.  When the split has not been
        read yet this starts reading it, returns ``[]``, and ``searchFinished`` brings the rows."""
        if feature:
            if not feature.startswith(features.REGEX_PREFIX) and self.feature_combo.findData(feature) < 0:
                self.refresh_features()     # a plugin may have registered it since the panel was built
            if feature.startswith(features.REGEX_PREFIX):
                self.feature_combo.setCurrentIndex(self.feature_combo.findData(REGEX_ITEM))
                self.regex_edit.setText(feature[len(features.REGEX_PREFIX):])
            else:
                self.feature_combo.blockSignals(True)
                self.feature_combo.setCurrentIndex(self.feature_combo.findData(feature))
                self.feature_combo.blockSignals(False)
        if scope:
            self.set_search_scope(scope)
        feature = self.feature()
        self.results.clear()
        self._remember()
        if feature == features.REGEX_PREFIX:
            self.search_note.setText("Type a regular expression.")
            return []
        if self.search_scope() == SCOPE_VALID:
            corpus = self.corpus.get(self.quantity)
            if corpus is None:
                self.search_note.setText("Reading the validation split (the first search takes a while; the next "
                                         "ones are immediate)…")
                self.corpus.request(self.quantity, lambda _rec, f=feature: self.searchFinished.emit(
                    self.run_search(f, SCOPE_VALID)))
                return []
            return self._search(corpus, feature, corpus_note(corpus))
        if self.recording is None:
            self.search_note.setText("Record a text first (Record, top left).")
            return []
        return self._search(self.recording, feature, "the recorded text")

    def _search(self, target: dict[str, Any], feature: str, where: str) -> list[tuple[str, int, float]]:
        title = features.feature_title(feature, self.registry)
        all_layers = recording.layer_names(target)
        if self.all_layers.isChecked() or self.layer not in all_layers:
            layers = all_layers
        else:
            layers = [self.layer]
        try:
            rows = recording.search_parts(target, feature, self.quantity, layers, registry=self.registry)
        except ValueError as exc:
            self.search_note.setText(str(exc).replace("the track", f"the feature “{title}”"))
            self._track, self._track_name = None, ""
            self._show_unit()
            return []
        self._track, self._track_name = self._recorded_track(feature), title
        share = recording.feature_share(target, feature, layers, self.registry) * 100
        self.search_note.setText(f"{title} over {where}: non-zero on {share:.1f} % of it. {self.quantity} of "
                                 f"{', '.join(layers)}, ranked by |r|; click a unit to show it.")
        self.results.setUpdatesEnabled(False)
        for i, (layer, unit, r) in enumerate(rows[:500], 1):
            item = QTreeWidgetItem([str(i), layer, str(unit), f"{r:+.3f}"])
            item.setData(0, Qt.ItemDataRole.UserRole, (layer, unit))
            item.setData(3, Qt.ItemDataRole.UserRole, float(r))
            item.setTextAlignment(0, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.results.addTopLevelItem(item)
        self.results.setUpdatesEnabled(True)
        self._show_unit()
        return rows

    def _recorded_track(self, feature: str) -> Optional[np.ndarray]:
        """The feature over the part shown, for the trace under the heatmap (None: nothing recorded, or constant)."""
        if self.recording is None:
            return None
        try:
            track = recording.step_track(self.shown, feature, self.registry)
        except ValueError:
            return None
        return track if track.size > 1 and float(track.max() - track.min()) > 0 else None

    def _on_result_chosen(self, item: QTreeWidgetItem | None, _previous: Any = None) -> None:
        if item is None:
            return
        layer, unit = item.data(0, Qt.ItemDataRole.UserRole)
        self.select(layer, None, unit)
        self.views.setCurrentIndex(0)

    def show_corpus_progress(self, done: int, total: int) -> None:
        self.progress.show()
        self._on_progress(done, total)
        what = "examples" if self.input_info.get("kind") in ("source", "example") else "steps"
        self._say(f"Reading the validation split for the search: {done:,} / {total:,} {what}…")

    def corpus_busy(self, busy: bool) -> None:
        self.search_button.setText("Cancel search" if busy else "Find units")
        if busy:
            self.progress.setRange(0, 0)
            self.progress.show()
            return
        if not self.is_recording():
            self.progress.hide()
            # the reading's progress leaves the status line: it says what is shown again
            if self.status.text().startswith("Reading the validation split"):
                self._say(self._recorded_text(self.recording) if self.recording is not None else
                          "Read the validation split; record a text to see units over it.")

    def corpus_failed(self, message: str) -> None:
        if message:
            self.search_note.setText(f"Could not read the validation split: {message}")
            self._say(f"Could not read the validation split: {message}", error=True)
        elif self.recording is not None:
            self._say(self._recorded_text(self.recording))

