import os
from pathlib import Path

# Tests never open a real window; set before Qt is imported anywhere.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _recovery_folder_in_tmp(tmp_path, monkeypatch):
    """Autosave copies (workbench.gui.recovery) go to a temporary folder, never the user's."""
    monkeypatch.setenv("SEQWB_RECOVERY_DIR", str(tmp_path / "recovery"))


def pytest_collection_modifyitems(config, items):
    """Every test in this folder is a GUI test (``-m gui`` / ``-m "not gui"``); the hook sees the whole session's
    items, so it marks only this folder's."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.gui)


@pytest.fixture
def window(make_window):
    """Like ``make_window``, but closing a window whose run is still live stops the run without asking (the
    question is a modal dialog that no one would answer when the test ends)."""

    def make(*args, **kwargs):
        win = make_window(*args, **kwargs)
        win.resize(1280, 800)
        win.runs.ask_stop_training = lambda closing: "discard"
        return win

    return make
