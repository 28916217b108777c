"""The application's own settings: where they are kept, and the list of recently opened files.

An INI file in the user's config folder.  Tests point ``QSettings.setPath`` at a temporary folder, so they never
touch the user's.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

ORGANIZATION = "Sequence Workbench"
APPLICATION = "Sequence Workbench"
MAX_RECENT = 10


def app_settings() -> QSettings:
    """The application's settings."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def recent_files() -> list[str]:
    """The files opened or saved lately, the latest first."""
    value = app_settings().value("recentFiles", [])
    if isinstance(value, str):   # an INI list of one item comes back as a plain string
        value = [value]
    return [str(v) for v in (value or []) if v]


def set_recent_files(files: list[str]) -> None:
    settings = app_settings()
    settings.setValue("recentFiles", files[:MAX_RECENT])
    settings.sync()


def add_recent_file(path: str) -> None:
    path = str(Path(path).resolve())
    set_recent_files([path] + [p for p in recent_files() if p != path])


def forget_recent_file(path: str) -> None:
    path = str(Path(path).resolve())
    set_recent_files([p for p in recent_files() if p != path])
