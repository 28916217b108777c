"""File ▸ New from template: the templates with their descriptions and parameters; OK builds the project.

The project is made by :func:`workbench.core.settings.template_project`, the same function behind
``seqwb new TEMPLATE --set ...``, so the window and the command line produce the same file.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QScrollArea, QSplitter, QVBoxLayout, QWidget)

from workbench.gui.forms import ParamsForm, error_color
from workbench.schema.params import ParamError, apply_settings


class NewFromTemplateDialog(QDialog):
    """Pick a template, adjust its parameters; ``project`` holds the result after ``accept``."""

    def __init__(self, registry: Any, parent: QWidget | None = None, selected: str | None = None):
        super().__init__(parent)
        self.registry = registry
        self.project = None
        self.form: ParamsForm | None = None
        self.setWindowTitle("New project from a template")
        self.resize(900, 540)

        self.list = QListWidget()
        self.list.setMinimumWidth(260)
        self.list.setWordWrap(True)   # long titles wrap instead of hiding behind a horizontal scroll bar
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setSpacing(1)
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
        params_label = QLabel("<b>Parameters</b> (anything else can be changed in the inspector afterwards)")
        params_label.setWordWrap(True)
        right_layout.addWidget(params_label)
        right_layout.addWidget(self.form_area, 1)
        right_layout.addWidget(self.error)

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
        index = next((i for i in range(self.list.count())
                      if self.list.item(i).data(Qt.ItemDataRole.UserRole) == selected), 0)
        if self.list.count():
            self.list.setCurrentRow(index)
        else:
            self.heading.setText("No template is installed.")
            self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)

    def template_id(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _on_template(self, item: QListWidgetItem | None, _previous: Any = None) -> None:
        self.error.hide()
        if item is None:
            return
        spec = self.registry.template(item.data(Qt.ItemDataRole.UserRole))
        task = self.registry.task(spec.task).title if spec.task and self.registry.has("task", spec.task) else spec.task
        self.heading.setText(f"<h3>{spec.title}</h3><p>{spec.description}</p>"
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
        spec_id = self.template_id()
        if spec_id is None:
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
