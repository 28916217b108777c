"""What the hidden-units panel keeps in the project: the last recording's input and how it was shown.

Stored as plain JSON in ``project.views["hidden_units"]`` (saved in ``project.json``; a file without it opens as
before)::

    {"input": {"source": "valid" | "text" | "file" | "example", "length": 2000, "text": "...", "file": "a.txt",
               "example": "9 July 1985"},                       # the Input tab as it was left
     "recorded": {"source": ..., "value": ..., "weights": "current" | "best"},   # what the last Record recorded
     "view": {"layer": "rnn.1", "quantity": "c", "unit": 17, "feature": "quotes", "regex": "", "scope": "valid",
              "all_layers": true}}

A new recording marks the project changed (it is what the user asked to see, and closing asks to save it), without
an entry in Edit ▸ Undo: it is not an edit of the model.  Choosing another layer or unit only updates what is kept;
the next save takes it along.  On reopen the inputs and choices come back, and the last recording is made again
when the tab is shown.  A file path is kept relative to the project's folder when it is inside it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

KEY = "hidden_units"
#: a typed text longer than this is not kept (the project file is no place for a pasted book)
MAX_TEXT = 200_000


def _relative(panel: Any, path: str) -> str:
    if not path or not panel.doc.path:
        return path
    try:
        rel = os.path.relpath(path, Path(panel.doc.path).resolve().parent)
    except ValueError:          # another drive on Windows
        return path
    return path if rel.startswith("..") else rel


def _absolute(panel: Any, path: str) -> str:
    if not path or Path(path).is_absolute():
        return path
    return str(panel.base_dir() / path)


def collect(panel: Any) -> dict[str, Any]:
    """The Input tab and the view's choices, as kept."""
    text = panel.text_edit.toPlainText()
    return {
        "input": {"source": panel.source(), "length": panel.length_spin.value(),
                  "text": text if len(text) <= MAX_TEXT else "", "file": _relative(panel, panel._file),
                  "example": panel.example_combo.currentText()},
        "view": {"layer": panel.layer, "quantity": panel.quantity, "unit": int(panel.unit),
                 "feature": panel.feature_combo.currentData() or "", "regex": panel.regex_edit.text(),
                 "scope": panel.search_scope(), "all_layers": panel.all_layers.isChecked()},
    }


def remember(panel: Any, recorded: bool = False) -> None:
    """Keep what :func:`collect` reads in the project; after a recording also what it recorded, and then the
    project is marked changed if that differs from what was kept."""
    if panel.restoring:
        return
    views = panel.doc.project.views
    before = views.get(KEY) or {}
    state = {**before, **collect(panel)}
    if recorded and panel.last_request:
        request = dict(panel.last_request)
        if request["source"] == "file":
            request["value"] = _relative(panel, str(request["value"]))
        if request["source"] == "text" and len(str(request["value"])) > MAX_TEXT:
            state.pop("recorded", None)         # too long to keep: reopening shows the inputs, not the recording
        else:
            state["recorded"] = request
    if state != before:
        views[KEY] = state
        if recorded and state.get("recorded") != before.get("recorded"):
            panel.doc.undo_stack.resetClean()


def restore(panel: Any, state: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """Put ``state`` back into the panel (defaults for a project that kept nothing); returns the recording to
    make again (``{"source", "value", "weights"}``) or None."""
    state = state if isinstance(state, dict) else {}
    given = state.get("input") if isinstance(state.get("input"), dict) else {}
    view = state.get("view") if isinstance(state.get("view"), dict) else {}
    panel.restoring = True
    try:
        source = given.get("source", "valid")
        panel.length_spin.setValue(int(given.get("length") or 2000))
        panel.text_edit.setPlainText(str(given.get("text") or ""))
        path = _absolute(panel, str(given.get("file") or ""))
        panel._file = path
        panel.file_label.setText(path)
        panel.example_combo.setEditText(str(given.get("example") or ""))
        button = {"valid": panel.src_valid, "text": panel.src_text, "file": panel.src_file,
                  "example": panel.src_example}.get(source, panel.src_valid)
        button.setChecked(True)
        panel.layer = str(view.get("layer") or "")
        panel.quantity = str(view.get("quantity") or "h")
        panel.unit = max(0, int(view.get("unit") or 0))
        feature = view.get("feature")
        if feature and panel.feature_combo.findData(feature) >= 0:
            panel.feature_combo.blockSignals(True)
            panel.feature_combo.setCurrentIndex(panel.feature_combo.findData(feature))
            panel.feature_combo.blockSignals(False)
            panel.regex_edit.setEnabled(feature == "__regex__")
        panel.regex_edit.setText(str(view.get("regex") or ""))
        panel.set_search_scope(view.get("scope") or "valid")
        panel.all_layers.setChecked(bool(view.get("all_layers", True)))
    finally:
        panel.restoring = False
    recorded = state.get("recorded")
    if not isinstance(recorded, dict) or recorded.get("source") not in ("valid", "text", "file", "example"):
        return None
    from workbench.core.project import available_weights
    weights = recorded.get("weights") if recorded.get("weights") in available_weights(panel.doc.project) else \
        "current"
    value = recorded.get("value")
    if recorded["source"] == "file":
        value = _absolute(panel, str(value or ""))
    return {"source": recorded["source"], "value": value, "weights": weights}
