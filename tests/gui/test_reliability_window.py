"""The window under a real memory cap (issue 19, point 4): a run that runs out of memory fails with the documented
advice, the window keeps the last checkpoint, saves, and trains another run.  The window runs in a child process
(offscreen) under an address-space cap."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("pytestqt")

from tests.core.reliability_figures import record  # noqa: E402
from tests.core.test_reliability_interrupts import FAST, _project, capped  # noqa: E402
from tests.conftest import make_subprocess_env  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")



WINDOW = textwrap.dedent('''
    import json, os, sys
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from workbench.gui.mainwindow import MainWindow
    from workbench.core.projectfile import load_project
    from workbench.plugin_system import discover
    reg = discover()
    path = sys.argv[1]
    win = MainWindow(reg, load_project(path, registry=reg), path, detect_device=False)
    win.show()

    def train_and_wait():
        loop, ended = QEventLoop(), []
        def on_end(end):
            ended.append(end)
            loop.quit()
        win.bridge.runEnded.connect(on_end)
        QTimer.singleShot(600_000, loop.quit)
        win.runs.train()
        loop.exec()
        win.bridge.runEnded.disconnect(on_end)
        return ended[0]

    win.doc.set_setting("train", "batch_size", "4096")
    win.doc.set_setting("train", "chunk_len", "1024")
    end = train_and_wait()
    step = win.doc.project.checkpoint.step
    # the window is still usable: edits, a save, and another run that fits
    win.doc.set_setting("train", "batch_size", "4")
    win.doc.set_setting("train", "chunk_len", "16")
    saved = win.files.save()
    second = train_and_wait()
    print(json.dumps({"status": end.status, "message": end.message, "step_kept": step, "saved": saved,
                      "second": second.status, "second_step": second.step}), flush=True)
    os._exit(0)          # no closing questions: the test reads what was printed
''')


def test_out_of_memory_in_the_window_under_a_memory_cap_keeps_the_window_usable(tmp_path, reg):
    text = ("The quick brown fox jumps over the lazy dog. " * 23 + "\n") * 9000
    path = _project(tmp_path, reg, "c.seqwb", text, **{"task.max_chars": "9000000", "eval_every": "0"})
    first = subprocess.run([sys.executable, "-m", "workbench", "train", str(path), "--steps", "3", *FAST],
                           capture_output=True, text=True, env=make_subprocess_env(), timeout=600)
    assert first.returncode == 0, first.stderr
    script = tmp_path / "window.py"
    script.write_text(WINDOW)
    doc = capped(3072, sys.executable, str(script), str(path), env={"SEQWB_RECOVERY_DIR": str(tmp_path / "recovery")})
    assert doc["rc"] == 0, doc["err"]
    result = json.loads(doc["out"].strip().splitlines()[-1])
    assert result["status"] == "failed"
    assert result["message"].startswith("out of memory at step 4 (batch_size 4096, chunk_len 1024): try a smaller "
                                        "batch_size or chunk_len; the last checkpoint is kept"), result
    assert result["step_kept"] == 3 and result["saved"] and result["second"] == "finished"
    record("oom-window", group="Out of memory", times=1,
           tried="the window trains with batch_size 4096 and chunk_len 1024 under a 3 GiB address-space cap",
           result="the run fails with the advice; the window keeps the step-3 checkpoint, saves, and trains another "
                  "run that fits")
