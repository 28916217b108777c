"""The example plugin and a scaffolded plugin, pip-installed into a fresh virtual environment, work end to end:
every docs example installs, passes the contract suite (its own tests run it, and so does ``seqwb plugins
--check``), trains and decodes; a project saved with the example's 0.1.0 ids still opens; uninstalling works.

The environment is made the fast, offline way: ``python -m venv --without-pip --system-site-packages`` from the
base interpreter, plus one ``.pth`` file that adds this interpreter's site-packages as a *site* directory (so
torch, pytest and Sequence Workbench itself — an editable install, or a regular one in CI — come from there, and
their own ``.pth`` files run).  The plugins are then installed into the new environment's own site-packages with
this interpreter's pip (``pip --python NEW``, ``--no-deps --no-build-isolation --no-index``), from copies, so the
checkout gets no build/ or *.egg-info.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "seqwb-plugin-example"
DIST = "seqwb-plugin-example"
NS = DIST + "."           # the example's ids are namespaced by its distribution


def _site_dirs() -> list[str]:
    dirs = list(site.getsitepackages()) + [sysconfig.get_paths()["purelib"]]
    return list(dict.fromkeys(d for d in dirs if os.path.isdir(d)))


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A new virtual environment that sees this one's packages; returns its python."""
    root = tmp_path_factory.mktemp("venv") / "env"
    base = getattr(sys, "_base_executable", None) or sys.executable
    proc = subprocess.run([base, "-m", "venv", "--without-pip", "--system-site-packages", str(root)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    python = root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, timeout=60).stdout.strip()
    lines = "".join(f"import site; site.addsitedir({d!r})\n" for d in _site_dirs())
    (Path(purelib) / "zz_seqwb_test_parent_env.pth").write_text(lines, encoding="utf-8")
    return python


def env_for_tests() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    return env


def pip_install(venv: Path, source: Path, workdir: Path) -> None:
    copy = workdir / source.name
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__"))
    cmd = [sys.executable, "-m", "pip", "--python", str(venv), "install", "--no-deps", "--no-build-isolation",
           "--no-index", "--disable-pip-version-check", "--no-input", "-q", str(copy)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=str(workdir), env=env_for_tests())
    assert proc.returncode == 0, f"pip install {source.name} failed:\n{proc.stdout}\n{proc.stderr}"


def run(venv: Path, args: list[str], cwd: Path, timeout: int = 300, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv), *args], capture_output=True, text=True, timeout=timeout, cwd=str(cwd),
                          env=env or env_for_tests())


@pytest.fixture(scope="module")
def example_installed(venv, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("example")
    # not importable before the install (the parent environment does not have it)
    assert run(venv, ["-c", "import seqwb_plugin_example"], work).returncode != 0
    pip_install(venv, EXAMPLE, work)
    return work


def test_installed_example_is_listed_by_seqwb_plugins(venv, example_installed):
    proc = run(venv, ["-m", "workbench", "plugins", "--json"], example_installed)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    ours = {(r["kind"], r["id"]) for r in rows if r["distribution"] == DIST and r["status"] == "ok"}
    assert ours == {("cell", NS + "indrnn"), ("architecture", NS + "layer-norm"), ("decoder", NS + "min-p"),
                    ("feature_track", NS + "running_parity")} | \
        {("task", NS + t) for t in ("parity", "majority", "echo", "reverse", "mean")} | \
        {("template", NS + t) for t in ("parity-indrnn", "majority-gru", "echo-gru", "reverse-attention",
                                        "mean-gru")}
    assert not [r for r in rows if r["distribution"] == DIST and r["status"] != "ok"], rows  # no error, no note
    # the built-ins are all there too
    assert {("cell", "lstm"), ("feature_track", "quotes")} <= {(r["kind"], r["id"]) for r in rows}
    # and discovering it imports neither torch nor numpy (its specs name the code, which loads on use)
    code = ("import sys; from workbench.plugin_system import discover; r = discover(); "
            f"print(r.has('cell', '{NS}indrnn'), 'torch' in sys.modules, 'numpy' in sys.modules)")
    assert run(venv, ["-c", code], example_installed).stdout.split() == ["True", "False", "False"]

    # SEQWB_DISABLE_PLUGINS turns it off for one run: listed as disabled, none of its contributions loaded
    env = env_for_tests() | {"SEQWB_DISABLE_PLUGINS": "seqwb_plugin_example"}
    proc = run(venv, ["-m", "workbench", "plugins", "--json"], example_installed, env=env)
    rows = json.loads(proc.stdout)
    assert [(r["id"], r["status"]) for r in rows if r["distribution"] == DIST] == [("example", "disabled")]


def test_the_installed_example_passes_seqwb_plugins_check(venv, example_installed):
    proc = run(venv, ["-m", "workbench", "plugins", "--check", "--only", DIST, "--strict"], example_installed,
               timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "FAILED" not in proc.stdout and "NOT CHECKED" not in proc.stdout


def test_the_example_trains_and_its_track_finds_units(venv, example_installed):
    work = example_installed
    project = work / "parity.seqwb"
    proc = run(venv, ["-m", "workbench", "new", NS + "parity-indrnn", "-o", str(project), "--set",
                      "hidden_size=8"], work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run(venv, ["-m", "workbench", "train", str(project), "--steps", "4", "--json", "--set", "threads=1",
                      "--set", "eval_every=0", "--set", "probe_every=2", "--set", "batch_size=16",
                      "--set", "rnn.cell.clip=2"], work)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    steps = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    steps = [s for s in steps if "step" in s and "loss" in s]
    assert steps and steps[-1]["step"] == 4 and math.isfinite(steps[-1]["loss"])

    proc = run(venv, ["-m", "workbench", "units", str(project), "--feature", NS + "running_parity", "--text",
                      "0110100110010110" * 4, "--json", "--top", "3"], work)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["title"] == "Running parity of 1s" and len(out["units"]) == 3
    assert all(-1.0 <= u["r"] <= 1.0 for u in out["units"])

    # the same project where the plugin is disabled: one clear line, the file untouched
    before = project.read_bytes()
    env = env_for_tests() | {"SEQWB_DISABLE_PLUGINS": DIST}
    proc = run(venv, ["-m", "workbench", "train", str(project), "--steps", "1"], work, env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    first = proc.stderr.strip().splitlines()[0]
    assert NS + "indrnn" in first and DIST in first and "disabled by SEQWB_DISABLE_PLUGINS" in first, first
    assert project.read_bytes() == before


# A project as the example's 0.1.0 saved it: bare ids (indrnn, parity), recorded as seqwb-plugin-example's.
OLD_PROJECT = f"""
import json, sys
from workbench.core.project import Project
from workbench.core.projectfile import save_project
from workbench.core.settings import template_project
from workbench.plugin_system import discover
reg = discover()
project, _ = template_project(reg.template("{NS}parity-indrnn"), {{"hidden_size": "8"}}, reg)
doc = json.loads(json.dumps(project.to_json()).replace("{NS}indrnn", "indrnn").replace("{NS}parity", "parity"))
old = Project.from_json(doc)
plugins = [{{"kind": "task", "id": "parity", "distribution": "{DIST}", "version": "0.1.0"}},
           {{"kind": "cell", "id": "indrnn", "distribution": "{DIST}", "version": "0.1.0"}}]
save_project(old, sys.argv[1], plugins_used=plugins)
"""


def test_a_project_saved_with_the_old_ids_still_trains(venv, example_installed, tmp_path):
    project = tmp_path / "old.seqwb"
    proc = run(venv, ["-c", OLD_PROJECT, str(project)], example_installed)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(project) as archive:
        assert json.loads(archive.read("project.json"))["task"]["id"] == "parity"
    proc = run(venv, ["-m", "workbench", "train", str(project), "--steps", "2", "--set", "threads=1", "--set",
                      "eval_every=0", "--set", "probe_every=0", "--set", "batch_size=8"], example_installed)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    with zipfile.ZipFile(project) as archive:     # saved after training: with the ids the plugin has now
        doc = json.loads(archive.read("project.json"))
        manifest = json.loads(archive.read("manifest.json"))
    assert doc["task"]["id"] == NS + "parity"
    assert {(p["id"], p["distribution"], p["version"]) for p in manifest["plugins"] if p["kind"] in ("task", "cell")} \
        == {(NS + "parity", DIST, "0.2.0"), (NS + "indrnn", DIST, "0.2.0")}


def test_the_example_passes_its_own_tests(venv, example_installed, tmp_path):
    tests = tmp_path / "tests"
    shutil.copytree(EXAMPLE / "tests", tests)
    proc = run(venv, ["-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)], tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "12 passed" in proc.stdout


def test_uninstalling_the_example_with_the_installer(venv, example_installed, tmp_path):
    """What the window's Plugins ▸ Install… uses to remove a plugin (workbench.plugin_system.installer), run for
    the test's environment.  Last in this module: the example is gone afterwards."""
    from workbench.plugin_system import installer
    lines: list[str] = []
    result = installer.uninstall(DIST, lines.append, python=str(venv))
    assert result.ok, result.output
    assert result.changed == [DIST] and not result.restart_needed
    assert any("Successfully uninstalled seqwb-plugin-example" in line for line in lines)
    assert run(venv, ["-c", "import seqwb_plugin_example"], tmp_path).returncode != 0
    again = installer.uninstall(DIST, python=str(venv))
    assert again.ok and again.changed == [] and again.message == f"{DIST} is not installed"


def test_plugin_new_scaffolds_a_package_that_installs_and_passes_its_tests(venv, tmp_path):
    proc = run(venv, ["-m", "workbench", "plugin", "new", "leaky-cell", "--dir", str(tmp_path), "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    made = json.loads(proc.stdout)
    root = Path(made["path"])
    assert made["distribution"] == "seqwb-leaky-cell" and made["cell"] == "seqwb-leaky-cell.leaky-cell"
    assert {"pyproject.toml", "README.md", "seqwb_leaky_cell/plugin.py", "seqwb_leaky_cell/cell.py",
            "tests/test_cell.py"} <= set(made["files"])
    # a second time: refused, nothing overwritten
    before = (root / "seqwb_leaky_cell" / "cell.py").read_text()
    proc = run(venv, ["-m", "workbench", "plugin", "new", "leaky-cell", "--dir", str(tmp_path)], tmp_path)
    assert proc.returncode == 1 and "exists and is not empty" in proc.stderr
    assert (root / "seqwb_leaky_cell" / "cell.py").read_text() == before

    (tmp_path / "build").mkdir()
    pip_install(venv, root, tmp_path / "build")
    proc = run(venv, ["-m", "workbench", "plugins", "--json"], tmp_path)
    rows = json.loads(proc.stdout)
    assert [(r["kind"], r["id"], r["status"]) for r in rows if r["distribution"] == "seqwb-leaky-cell"] == \
        [("cell", "seqwb-leaky-cell.leaky-cell", "ok")]
    proc = run(venv, ["-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")], root, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "4 passed" in proc.stdout
