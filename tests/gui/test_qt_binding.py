"""The Qt binding itself must be sound: PySide6-Essentials 6.12.0 drops a reference to ``True`` on every
``Signal.emit()``, so a window that emits signals for long enough crashes the interpreter ("bool_dealloc").
This test fails fast on such a build instead of letting the app die later."""

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    text = Signal(str)
    bare = Signal()


def test_signal_emit_does_not_leak_references_to_bools(qapp):
    e = _Emitter()
    e.text.connect(lambda s: None)
    before = (sys.getrefcount(True), sys.getrefcount(False))
    for _ in range(200):
        e.text.emit("x")
        e.bare.emit()
    after = (sys.getrefcount(True), sys.getrefcount(False))
    assert abs(after[0] - before[0]) < 10 and abs(after[1] - before[1]) < 10, (
        f"this PySide6 build corrupts reference counts on Signal.emit (True: {before[0]} -> {after[0]}); "
        f"install another version (see pyproject.toml)")
