"""workbench.plugin_system.installer: what the window's Plugins ▸ Install… runs (pip, with its output line by
line), without Qt.  Installs go to a temporary --target folder here; uninstalling is tested in a fresh virtual
environment by tests/test_example_plugin.py."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from workbench.plugin_system import installer
from workbench.plugin_system.installer import InstallError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "thirdparty_plugin"
OFFLINE = ["--no-deps", "--no-build-isolation", "--no-index"]


@pytest.mark.parametrize("source, message", [
    ("", "nothing to install: give a wheel (.whl), a folder or a package name"),
    ("missing-1.0-py3-none-any.whl", "no such wheel: missing-1.0-py3-none-any.whl"),
    ("./no/such/folder", "no such file or folder: ./no/such/folder"),
    ("two words", "'two words' is neither a wheel, a folder nor a package name (Expected"),
])
def test_a_source_that_is_not_installable_is_refused_before_pip_runs(source, message):
    with pytest.raises(InstallError) as info:
        installer.install(source)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_source_kinds(tmp_path):
    assert installer.source_kind(str(FIXTURE)) == "folder"
    assert installer.source_kind("seqwb-indrnn>=0.2") == "requirement"
    (tmp_path / "x-1.0-py3-none-any.whl").write_bytes(b"")
    assert installer.source_kind(str(tmp_path / "x-1.0-py3-none-any.whl")) == "wheel"
    with pytest.raises(InstallError, match="without pyproject.toml or setup.py"):
        installer.source_kind(str(tmp_path))
    command = installer.install_command("seqwb-indrnn", python="/venv/bin/python")
    assert command[:4] == [sys.executable, "-u", "-m", "pip"] and command[4:6] == ["--python", "/venv/bin/python"]
    assert command[-3:] == ["install", "--upgrade", "seqwb-indrnn"]


def test_install_streams_pips_output_and_says_the_plugin_can_be_loaded(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(FIXTURE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    lines: list[str] = []
    result = installer.install(str(src), lines.append, target=str(tmp_path / "site"), extra=OFFLINE)
    assert result.ok, result.output
    assert result.changed == ["seqwb-fixture-cells"] and not result.restart_needed
    assert result.message == "installed seqwb-fixture-cells; its plugins can be loaded now"
    assert any(line.startswith("Successfully installed seqwb-fixture-cells-") for line in lines)
    assert "\n".join(lines) == result.output
    assert (tmp_path / "site" / "seqwb_fixture_cells" / "plugin.py").is_file()


def test_a_plugin_already_imported_needs_a_restart_after_an_upgrade(tmp_path, monkeypatch):
    from workbench.plugin_system import discover
    src = tmp_path / "src"
    shutil.copytree(FIXTURE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = tmp_path / "site"
    assert installer.install(str(src), target=str(site), extra=OFFLINE).ok
    monkeypatch.syspath_prepend(str(site))
    try:
        assert discover().has("cell", "seqwb-fixture-cells.mgu")     # imports its registration module
        again = installer.install(str(src), target=str(site), extra=[*OFFLINE, "--force-reinstall"])
        assert again.ok and again.restart_needed
        assert again.message == ("installed seqwb-fixture-cells; restart Sequence Workbench to use the change (its "
                                 "plugin code is loaded)")
    finally:
        for name in [m for m in sys.modules if m.startswith("seqwb_fixture_cells")]:
            del sys.modules[name]


def test_a_pip_failure_is_shown_with_pips_message(tmp_path):
    result = installer.install("seqwb-no-such-plugin-anywhere", target=str(tmp_path / "site"),
                               extra=["--no-index"])
    assert not result.ok and not result.changed
    assert result.message.startswith("ERROR: Could not find a version that satisfies the requirement "
                                     "seqwb-no-such-plugin-anywhere")


def test_cancelling_stops_pip(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(FIXTURE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    result = installer.install(str(src), target=str(tmp_path / "site"), extra=OFFLINE, cancelled=lambda: True)
    assert not result.ok and result.message == "cancelled; pip was stopped"


def test_uninstall_refuses_what_it_must_not_touch():
    with pytest.raises(InstallError, match="cannot be uninstalled from its window"):
        installer.uninstall("Sequence_Workbench")
    with pytest.raises(InstallError, match="is not a distribution name"):
        installer.uninstall("../etc")
