"""The wheel: built with ``pip wheel --no-deps --no-build-isolation`` from a copy of the sources, it holds
``workbench`` and ``workbench_plugins`` (and its dist-info) and nothing else at top level, with the plugin entry
points, the console scripts and the window icon; installed on its own it gives a working ``seqwb``."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "workbench", "plugins")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel from a copy of the sources (the build writes build/ and *.egg-info next to them)."""
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=IGNORE)
        else:
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("wheelhouse")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(src)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (whl,) = out.glob("sequence_workbench-*.whl")
    return whl


def test_wheel_holds_the_two_packages_and_nothing_else(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        top = {n.split("/", 1)[0] for n in names}
        dist_info = next(t for t in top if t.endswith(".dist-info"))
        assert top == {"workbench", "workbench_plugins", dist_info}, sorted(top)
        assert not any(n.startswith(("tests/", "plugins/", "packaging/", "resources/")) for n in names)
        # every module of the source tree is in the wheel, under its import name
        expected = {f"workbench/{p.relative_to(ROOT / 'workbench').as_posix()}"
                    for p in (ROOT / "workbench").rglob("*.py") if "__pycache__" not in p.parts}
        expected |= {f"workbench_plugins/{p.relative_to(ROOT / 'plugins').as_posix()}"
                     for p in (ROOT / "plugins").rglob("*.py") if "__pycache__" not in p.parts}
        assert expected <= set(names), sorted(expected - set(names))
        # the window icon is package data
        assert {"workbench/gui/icons/seqwb.svg", "workbench/gui/icons/seqwb-48.png"} <= set(names)

        eps = configparser.ConfigParser(delimiters=("=",))
        eps.optionxform = str
        eps.read_string(zf.read(f"{dist_info}/entry_points.txt").decode())
        assert eps["console_scripts"]["seqwb"].strip() == "workbench.cli:main"
        assert eps["gui_scripts"]["seqwb-gui"].strip() == "workbench.cli:gui_main"
        assert {v.strip().split(".")[0] for v in eps["seqwb.plugins"].values()} == {"workbench_plugins"}
        meta = zf.read(f"{dist_info}/METADATA").decode()
        assert "Provides-Extra: export" in meta and "onnxruntime" in meta


@pytest.mark.slow
def test_the_installed_wheel_runs_seqwb(wheel, tmp_path):
    """``pip install --no-deps --target`` the wheel and run its ``seqwb`` script with this interpreter's
    dependencies: the packages and the plugins come from the installed wheel, not from this checkout."""
    target = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    script = target / "bin" / "seqwb"
    assert script.exists()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(target), QT_QPA_PLATFORM="offscreen")
    work = tmp_path / "work"      # not the checkout: nothing may be imported from the source tree
    work.mkdir()
    version = subprocess.run([sys.executable, str(script), "--version"], capture_output=True, text=True,
                             env=env, cwd=work, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("seqwb "), version.stderr
    where = subprocess.run([sys.executable, "-c", "import workbench, workbench_plugins, workbench.gui.app_icon as i; "
                            "print(workbench.__file__); print(workbench_plugins.__file__); "
                            "print(i.ICON_DIR.joinpath('seqwb.svg').exists())"],
                           capture_output=True, text=True, env=env, cwd=work, timeout=120)
    assert where.returncode == 0, where.stderr
    lines = where.stdout.split()
    assert all(line.startswith(str(target)) for line in lines[:2]) and lines[2] == "True"
    plugins = subprocess.run([sys.executable, str(script), "plugins", "--json"], capture_output=True, text=True,
                             env=env, cwd=work, timeout=300)
    assert plugins.returncode == 0, plugins.stderr
    rows = json.loads(plugins.stdout)
    assert not [r for r in rows if r["status"] != "ok"]
    assert {"cell", "task", "template", "decoder"} <= {r["kind"] for r in rows}
