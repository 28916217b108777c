"""The application's icon, from the package data rendered out of ``resources/seqwb.svg``."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon

ICON_DIR = Path(__file__).resolve().parent / "icons"


def application_icon() -> QIcon:
    """The window icon: the PNG renders for small sizes (crisper than scaling the SVG down) and the SVG for the
    rest.  An empty icon when the files are missing (a broken install loses its icon, not its window)."""
    icon = QIcon()
    for png in sorted(ICON_DIR.glob("seqwb-*.png")):
        size = int(png.stem.rsplit("-", 1)[1])
        icon.addFile(str(png), QSize(size, size))
    svg = ICON_DIR / "seqwb.svg"
    if svg.exists():
        icon.addFile(str(svg))
    return icon
