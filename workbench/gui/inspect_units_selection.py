"""Hypothesis selection in the hidden-units panel (Strobelt et al., LSTMVis, 2018): drag across a stretch of the
text view, see the units on over all of it and off around it, and every other place where they all switch on, in
the recorded text (underlined) and across the validation split (listed; a double-click records a place outside the
recording).  The units and spans are :mod:`workbench.core.recording`'s; the split's recording comes from the panel's
:class:`~workbench.gui.inspect_units_search.CorpusSearch`.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QListWidgetItem

from workbench.core import recording
from workbench.gui.inspect_units_search import SCOPE_VALID, corpus_note


class HypothesisSelection:
    """The Selection tab of :class:`~workbench.gui.inspect_units.HiddenUnitsPanel` (a part of the panel's class:
    ``self`` is the panel)."""

    def select_span(self, start: int, end: int) -> None:
        """Select steps ``[start, end)`` as if dragged in the text view."""
        self.text_view.set_selection_steps(start, end)
        self._on_span_selected(start, end)

    def _on_span_selected(self, start: int, end: int) -> None:
        self._span = (start, end) if end > start else None
        self._update_selection()
        if self._span:
            self.side.setCurrentIndex(2)

    def span_result(self) -> tuple[list[int], list[tuple[int, int]]]:
        """The units on over the selected span and the spans of the recording where they all switch on."""
        if self.recording is None or not self._span or not self.layer:
            return [], []
        start, end = self._span
        threshold = self.threshold_spin.value()
        units = recording.units_on_span(self.shown, self.layer, self.quantity, start, end, threshold,
                                        self.margin_spin.value())
        matches = recording.matching_spans(self.shown, self.layer, self.quantity, units, threshold,
                                           self._min_length())
        return units, matches

    def _min_length(self) -> int:
        start, end = self._span or (0, 2)
        return self.min_length_spin.value() or max(1, (end - start) // 2)

    def corpus_matches(self) -> Optional[list[tuple[int, int]]]:
        """The selection's matches over the validation split (None until the split has been read)."""
        return self._corpus_matches

    def _update_selection(self) -> None:
        self._clear_selection_lists()
        self._corpus_matches = None
        if self.recording is None or not self._span:
            self.span_units.hide()
            self.matches_list.hide()
            self._matches = []
            self.text_view.set_marks([])
            self.heatmap.set_span(0, 0)
            return
        start, end = self._span
        self.heatmap.set_span(start, end)
        units, matches = self.span_result()
        values = recording.activations(self.recording, self.layer, self.quantity)
        threshold = self.threshold_spin.value()
        self.selection_label.setText(
            f"Positions {start:,}–{end - 1:,} «{recording.span_text(self.shown, start, end, 36)}»: "
            + (f"{len(units)} unit{'s' if len(units) != 1 else ''} of {self.layer} {self.quantity} on over it "
               f"(≥ {threshold:g}) and off around it." if units else
               f"no unit of {self.layer} {self.quantity} is on (≥ {threshold:g}) over all of it "
               f"and off around it. Try a lower threshold or a shorter span."))
        for u in units:
            item = QListWidgetItem(f"unit {u}   mean {values[start:end, u].mean():+.2f} over the span")
            item.setData(Qt.ItemDataRole.UserRole, u)
            self.span_units.addItem(item)
        self.span_units.setVisible(bool(units))
        self.matches_list.setVisible(bool(units))
        self._matches = matches
        self.text_view.set_marks(matches)
        if not units:
            return
        if self.search_scope() == SCOPE_VALID:
            key = (self.layer, self.quantity, tuple(units), threshold, self._min_length(), self._span)
            self.corpus.request(self.quantity, lambda rec, k=key: self._list_corpus_matches(rec, k))
            if self._corpus_matches is not None:
                return
            self._list_recorded_matches(units, matches, " Reading the validation split to find them there…")
            return
        self._list_recorded_matches(units, matches)

    def _list_recorded_matches(self, units: list[int], matches: list[tuple[int, int]], more: str = "") -> None:
        start, end = self._span or (0, 0)
        who = "it switches on" if len(units) == 1 else f"all {len(units)} switch on together"
        self.matches_label.setText(f"Where {who} in the recorded text: {len(matches)} place"
                                   f"{'s' if len(matches) != 1 else ''} (underlined; click one to go there)."
                                   + more)
        self.matches_list.clear()
        for a, b in matches[:1000]:
            item = QListWidgetItem(f"{a:>7,}  «{recording.span_text(self.shown, a, b, 36)}»"
                                   + ("   ← selected" if (a, b) == (start, end) else ""))
            item.setData(Qt.ItemDataRole.UserRole, ("recorded", a, b))
            self.matches_list.addItem(item)

    def _list_corpus_matches(self, corpus: dict[str, Any], key: tuple) -> None:
        """The selection's matches over the validation split (``key``: the selection they were asked for)."""
        units, _ = self.span_result()
        if self.recording is None or key != (self.layer, self.quantity, tuple(units), self.threshold_spin.value(),
                                             self._min_length(), self._span):
            return              # the selection changed while the split was read: its own request follows
        if self.layer not in recording.layer_names(corpus):
            return
        part = recording.part_for(corpus, self.layer)
        spans = recording.matching_spans(part, self.layer, self.quantity, units, self.threshold_spin.value(),
                                         self._min_length())
        self._corpus_matches = spans
        who = "it switches on" if len(units) == 1 else f"all {len(units)} switch on together"
        self.matches_label.setText(f"Where {who} in {corpus_note(corpus)}: {len(spans):,} place"
                                   f"{'s' if len(spans) != 1 else ''} ({len(self._matches)} in the recorded text, "
                                   f"underlined). Click one to go there; double-click one outside the recording to "
                                   f"record it.")
        self.matches_list.clear()
        segments = part.get("segments")
        here = self._recorded_here(corpus)
        for a, b in spans[:1000]:
            where = f"{a:>7,}"
            if segments is not None and len(segments):
                where = f"example {int(np.searchsorted(segments, a, side='right')) - 1:>4}"
            inside = here and b <= recording.steps(self.shown)
            item = QListWidgetItem(f"{where}  «{recording.span_text(part, a, b, 36)}»"
                                   + ("   (recorded)" if inside else ""))
            item.setData(Qt.ItemDataRole.UserRole, ("corpus", a, b))
            self.matches_list.addItem(item)
        self.matchesFinished.emit()

    def _recorded_here(self, corpus: dict[str, Any]) -> bool:
        """Whether step positions of the split are positions of the recording: it recorded the split's start."""
        if self.recording is None or recording.is_multipart(self.recording):
            return False
        return self.recording.get("meta", {}).get("source") == "valid" and \
            corpus.get("text", "").startswith(self.recording["text"])

    def _on_span_unit_chosen(self, item: QListWidgetItem | None, _previous: Any = None) -> None:
        if item is not None:
            self.set_unit(int(item.data(Qt.ItemDataRole.UserRole)))

    def _on_match_chosen(self, item: QListWidgetItem | None, _previous: Any = None) -> None:
        if item is None:
            return
        kind, a, _b = item.data(Qt.ItemDataRole.UserRole)
        corpus = self.corpus.get(self.quantity)
        if kind == "recorded" or (corpus is not None and self._recorded_here(corpus)
                                  and a < recording.steps(self.shown)):
            self.text_view.scroll_to_step(a)
            self.heatmap.show_position(a)
        else:
            self._say("That place is outside the recorded text: double-click it to record it.")

    def _on_match_activated(self, item: QListWidgetItem) -> None:
        """Double-click on a match of the split outside the recording: record around it (its example)."""
        kind, a, b = item.data(Qt.ItemDataRole.UserRole)
        corpus = self.corpus.get(self.quantity)
        if kind != "corpus" or corpus is None or self.is_recording():
            return
        part = recording.part_for(corpus, self.layer)
        segments = part.get("segments")
        if segments is not None and len(segments):
            index = int(np.searchsorted(segments, a, side="right")) - 1
            prompt = (corpus["meta"].get("prompts") or [""])[index]
            self.example_combo.setEditText(prompt)
            self.record("example", prompt)
            return
        # a language model: the stretch of the split around the match, as a text of its own
        first = int(part["offsets"][a])
        lo = max(0, first - 600)
        self.text_edit.setPlainText(part["text"][lo:lo + 2000])
        self.record("text")
