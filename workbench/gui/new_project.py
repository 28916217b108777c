"""File ▸ New: "Empty project" first, then the templates with their descriptions and parameters; Create builds the
project.

The project is made by :func:`workbench.core.task_choice.empty_project` (``seqwb new --empty``) or
:func:`workbench.core.settings.template_project` (``seqwb new TEMPLATE --set ...``), the functions behind the
command line, so the window and the command line produce the same file.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QScrollArea, QSplitter, QVBoxLayout, QWidget)

from workbench.gui.forms import ParamsForm, error_color
from workbench.gui.style import help_html
from workbench.schema.params import ParamError, apply_settings


EMPTY_TITLE = "Empty project"
EMPTY_TEXT = ("No task and no blocks. Drag a task from the palette's <b>Tasks</b> onto the canvas, choose its data "
              "in the inspector, then wire blocks between the task's input and output. (<code>seqwb new --empty"
              "</code> on the command line.)")


class NewFromTemplateDialog(QDialog):
    """Pick the empty project or a template, adjust the template's parameters; ``project`` holds the result after
    ``accept``."""

    def __init__(self, registry: Any, parent: QWidget | None = None, selected: str | None = None):
        super().__init__(parent)
        self.registry = registry
        self.project = None
        self.form: ParamsForm | None = None
        self.setWindowTitle("New project")
        self.resize(900, 540)

        self.list = QListWidget()
        self.list.setMinimumWidth(260)
        self.list.setWordWrap(True)   # long titles wrap instead of hiding behind a horizontal scroll bar
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setSpacing(1)
        empty = QListWidgetItem(EMPTY_TITLE)
        empty.setData(Qt.ItemDataRole.UserRole, None)
        empty.setToolTip(EMPTY_TEXT)
        font = empty.font()
        font.setBold(True)
        empty.setFont(font)
        self.list.addItem(empty)
        templates = sorted(registry.items.get("template", {}).values(), key=lambda s: (s.id != "char-lm", s.title))
        for spec in templates:
            item = QListWidgetItem(spec.title)
            item.setData(Qt.ItemDataRole.UserRole, spec.id)
            item.setToolTip(spec.description or spec.title)
            self.list.addItem(item)

        self.heading = QLabel()
        self.heading.setTextFormat(Qt.TextFormat.RichText)
        self.heading.setWordWrap(True)
        self.form_area = QScrollArea()
        self.form_area.setWidgetResizable(True)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {error_color(self).name()}")
        self.error.hide()
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(6, 0, 0, 0)
        right_layout.addWidget(self.heading)
        self.params_label = QLabel("<b>Parameters</b> (anything else can be changed in the inspector afterwards)")
        self.params_label.setWordWrap(True)
        right_layout.addWidget(self.params_label)
        right_layout.addWidget(self.form_area, 1)
        right_layout.addWidget(self.error)
        right_layout.addStretch(0)

        split = QSplitter()
        split.addWidget(self.list)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([300, 560])

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(self.buttons)
        layout.addLayout(bottom)

        self.list.currentItemChanged.connect(self._on_template)
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        # the template asked for, else the empty project (File ▸ New's plain answer)
        index = next((i for i in range(self.list.count())
                      if self.list.item(i).data(Qt.ItemDataRole.UserRole) == selected), 0)
        self.list.setCurrentRow(index)

    def template_id(self) -> str | None:
        """The chosen template, or None for the empty project."""
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def choose_empty(self) -> None:
        self.list.setCurrentRow(0)

    def _on_template(self, item: QListWidgetItem | None, _previous: Any = None) -> None:
        self.error.hide()
        if item is None:
            return
        if item.data(Qt.ItemDataRole.UserRole) is None:
            self.heading.setText(f"<h3>{EMPTY_TITLE}</h3><p>{EMPTY_TEXT}</p>")
            self.form = None
            self.params_label.hide()
            self.form_area.takeWidget()
            self.form_area.hide()
            return
        self.params_label.show()
        self.form_area.show()
        spec = self.registry.template(item.data(Qt.ItemDataRole.UserRole))
        task = self.registry.task(spec.task).title if spec.task and self.registry.has("task", spec.task) else spec.task
        self.heading.setText(f"<h3>{html.escape(spec.title)}</h3><p>{help_html(spec.description)}</p>"
                             f"<p>Task: <b>{task}</b> &nbsp; Template id: <code>{spec.id}</code></p>")
        # The form only collects values here; they are checked again when the project is made.
        self.form = ParamsForm(spec.params, {}, self._check, registry=self.registry)
        self.form.setContentsMargins(8, 8, 8, 8)
        self.form_area.setWidget(self.form)

    def _check(self, name: str, value: Any) -> str | None:
        spec = self.registry.template(self.template_id())
        try:
            apply_settings(spec.params(), {name: value}, spec.id)
        except ParamError as exc:
            return str(exc)
        return None

    def settings(self) -> dict[str, Any]:
        return self.form.values() if self.form is not None else {}

    def accept(self) -> None:
        from workbench.core.settings import template_project
        from workbench.core.task_choice import empty_project
        spec_id = self.template_id()
        if spec_id is None:
            self.project = empty_project()
            super().accept()
            return
        if self.form is not None:
            self.form.commit_pending()
        try:
            self.project, _ = template_project(self.registry.template(spec_id), self.settings(), self.registry)
        except Exception as exc:  # noqa: BLE001 - a plugin's template factory may raise anything; say so
            self.error.setText(f"Cannot create the project: {exc}")
            self.error.show()
            return
        super().accept()
