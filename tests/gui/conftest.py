import os

# Tests never open a real window; set before Qt is imported anywhere.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _recovery_folder_in_tmp(tmp_path, monkeypatch):
    """Autosave copies (workbench.gui.recovery) go to a temporary folder, never the user's."""
    monkeypatch.setenv("SEQWB_RECOVERY_DIR", str(tmp_path / "recovery"))
