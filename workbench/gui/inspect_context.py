"""Beside the hidden-units text view, for a model that reads a context first: what it read and what it wrote.

An encoder–decoder's recording (:mod:`workbench.core.record_context`) has an input, the output the project's
decoder produced, maybe a reference, and an attention map; a captioner's has an example's picture and caption.
:class:`ContextPane` shows them: a line with input, output and reference, the attention map (rows: output steps,
columns: source positions) with the output step and source position the panel shows outlined, or the picture.
A click on a cell of the map picks that output step (``stepChosen``), which the panel shows in its heatmap and text
view; nothing here computes anything.
"""

from __future__ import annotations

import html
from typing import Any, Optional

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from workbench.core import recording
from workbench.gui.attention_view import AttentionView
from workbench.gui.style import set_muted

ATTENTION_HINT = ("Rows: output steps · columns: source positions. The outlined row is the output step shown; "
                  "click a cell to show that step.")


class ContextPane(QWidget):
    """Input, output and reference; the attention map or the input picture.  Hidden for a recording of one text."""

    #: an output step (a row of the attention map) picked with the mouse, and the source position clicked
    stepChosen = Signal(int, int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("contextPane")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.summary)
        self.hint = QLabel(ATTENTION_HINT)
        self.hint.setWordWrap(True)
        set_muted(self.hint)
        layout.addWidget(self.hint)
        self.attention = AttentionView()
        self.attention.setMinimumSize(180, 140)
        self.attention.cellClicked.connect(self.stepChosen)
        layout.addWidget(self.attention, 1)
        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.picture.setMinimumSize(96, 96)
        layout.addWidget(self.picture, 1)
        self._image: Optional[np.ndarray] = None
        self.clear()

    def clear(self) -> None:
        self.summary.setText("")
        self.attention.set_message(AttentionView.PLACEHOLDER)
        self._image = None
        self.picture.clear()
        self.hide()

    def set_recording(self, rec: dict[str, Any]) -> None:
        """Show what ``rec`` read and wrote (a multi-part recording; anything else hides the pane)."""
        if not recording.is_multipart(rec):
            self.clear()
            return
        meta = rec.get("meta", {})
        parts = recording.parts(rec)
        self.summary.setText(summary_html(meta, "source" in parts))
        attention = rec.get("attention") or {}
        has_map = bool(attention) and "source" in parts and "output" in parts
        self.hint.setVisible(has_map)
        self.attention.setVisible(has_map)
        if has_map:
            node = next(iter(attention))
            self.attention.set_attention({"node": node, "weights": attention[node],
                                          "source": list(parts["source"]["labels"]),
                                          "target": list(parts["output"]["labels"])})
        self._image = rec.get("image")
        self.picture.setVisible(self._image is not None)
        self._show_picture()
        self.show()

    def mark(self, output_step: int = -1, source_position: int = -1) -> None:
        """Outline the output step and the source position the panel shows."""
        self.attention.set_marked(output_step, source_position)

    def _show_picture(self) -> None:
        if self._image is None:
            self.picture.clear()
            return
        rgb = np.ascontiguousarray((np.clip(self._image, 0.0, 1.0) * 255).round().astype(np.uint8))
        h, w = rgb.shape[:2]
        image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        side = max(32, min(self.picture.width(), self.picture.height()) - 8)
        # pixels as squares (a 32-pixel picture shown at 200 px): smoothing would blur the shapes' edges
        self.picture.setPixmap(QPixmap.fromImage(image).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                                               Qt.TransformationMode.FastTransformation))

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self._image is not None:
            self._show_picture()


def summary_html(meta: dict[str, Any], has_source: bool) -> str:
    """"Source 9 July 1985 → output 1985-07-09 (beam, reference 1985-07-09: the same)" as rich text."""
    prompt = html.escape(str(meta.get("prompt", "")))
    output = html.escape(str(meta.get("output", "")))
    what = "Source" if has_source else "Example"
    text = f"{what} <b>{prompt}</b> → output <b>{output}</b>"
    notes = [str(meta.get("decoder", ""))] if meta.get("decoder") else []
    if not meta.get("finished", True):
        notes.append("stopped at max_len, no end token")
    reference = meta.get("reference")
    if reference:
        same = " (the same)" if str(reference).strip() == str(meta.get("output", "")).strip() else ""
        notes.append(f"reference <b>{html.escape(str(reference))}</b>{same}")
    return text + (f" <span>· {' · '.join(notes)}</span>" if notes else "")
