"""The distribution ships every package: the explicit package list in pyproject.toml must name them all."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    dirs = config["package-dir"]
    found = set()
    for top, folder in dirs.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            rel = init.parent.relative_to(base)
            found.add(".".join([top, *rel.parts]))
    assert found == listed, f"missing from pyproject: {sorted(found - listed)}; stale: {sorted(listed - found)}"


# ---- desktop integration (resources/) and the bundle spec ---------------------------------------------------

import configparser  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402

import pytest  # noqa: E402

RES = ROOT / "resources"
MIME_NS = "{http://www.freedesktop.org/standards/shared-mime-info}"
APP_ID = "io.github.seqwb.SequenceWorkbench"


def _desktop_entry() -> configparser.SectionProxy:
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp.read_string((RES / "seqwb.desktop").read_text(encoding="utf-8"))
    return cp["Desktop Entry"]


def test_desktop_entry_opens_project_files_with_seqwb():
    entry = _desktop_entry()
    assert entry["Type"] == "Application" and entry["Icon"] == "seqwb" and entry["Terminal"] == "false"
    exec_line = entry["Exec"].split()
    assert exec_line[0] == "seqwb" and exec_line[-1] == "%f"     # one file per window: `seqwb gui FILE`
    assert "application/x-seqwb-project" in entry["MimeType"].split(";")
    assert entry["StartupWMClass"] == "seqwb"   # QGuiApplication.setDesktopFileName("seqwb") in the app
    if shutil.which("desktop-file-validate"):
        done = subprocess.run(["desktop-file-validate", str(RES / "seqwb.desktop")], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_appstream_metainfo_is_valid_and_points_at_the_desktop_file():
    root = ET.parse(RES / f"{APP_ID}.metainfo.xml").getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    assert root.find("launchable").text == "seqwb.desktop"
    assert root.find("provides/mediatype").text == "application/x-seqwb-project"
    from workbench import __version__
    assert root.find("releases/release").get("version") == __version__
    if shutil.which("appstreamcli"):
        done = subprocess.run(["appstreamcli", "validate", "--no-net", str(RES / f"{APP_ID}.metainfo.xml")],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def _magic_matches(match: ET.Element, data: bytes) -> bool:
    """shared-mime-info ``<match type="string">`` (with C escapes), nested matches all required."""
    value = match.get("value").encode("latin-1").decode("unicode_escape").encode("latin-1")
    offset = int(match.get("offset"))
    if data[offset:offset + len(value)] != value:
        return False
    children = match.findall(f"{MIME_NS}match")
    return not children or any(_magic_matches(c, data) for c in children)


def test_mime_type_is_a_zip_matched_by_glob_and_by_magic(tmp_path):
    root = ET.parse(RES / "seqwb-mime.xml").getroot()
    mt = root.find(f"{MIME_NS}mime-type")
    assert mt.get("type") == "application/x-seqwb-project"
    assert mt.find(f"{MIME_NS}sub-class-of").get("type") == "application/zip"
    assert mt.find(f"{MIME_NS}glob").get("pattern") == "*.seqwb"
    # the magic recognises a project file as the app writes it (project.json is the zip's first member on disk;
    # files from before 0.1's streaming writer have manifest.json there, and the magic accepts both)
    from tests.helpers import small_project
    from workbench.core.projectfile import save_project
    from workbench.plugin_system import discover
    path = tmp_path / "p.seqwb"
    save_project(small_project(discover()), path)
    data = path.read_bytes()[:64]
    top = mt.find(f"{MIME_NS}magic").findall(f"{MIME_NS}match")
    assert any(_magic_matches(m, data) for m in top)
    other = tmp_path / "other.zip"
    import zipfile
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("readme.txt", "not a project")
    assert not any(_magic_matches(m, other.read_bytes()[:64]) for m in top)


def test_icon_renders_are_up_to_date_with_the_svg(subprocess_env):
    """resources/icons/hicolor/*, the SVG copy and the PNGs the window loads come from resources/seqwb.svg."""
    sizes = sorted(int(p.name.split("x")[0]) for p in (RES / "icons" / "hicolor").iterdir() if "x" in p.name)
    assert sizes == [16, 22, 24, 32, 48, 64, 128, 256, 512]
    assert (ROOT / "workbench" / "gui" / "icons" / "seqwb.svg").read_bytes() == (RES / "seqwb.svg").read_bytes()
    done = subprocess.run([sys.executable, str(ROOT / "packaging" / "render_icons.py"), "--check"],
                          capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_window_icon_comes_from_the_package(qapp_offscreen):
    from workbench.gui.app_icon import application_icon
    icon = application_icon()
    assert not icon.isNull()
    assert {16, 32, 48, 256} <= {s.width() for s in icon.availableSizes()}


@pytest.fixture
def qapp_offscreen():
    pytest.importorskip("PySide6")
    from PySide6.QtWidgets import QApplication
    return QApplication.instance() or QApplication([])


def test_seqwb_file_opens_it_with_the_window_icon(tmp_path, subprocess_env):
    """What a double-click runs (the desktop file's ``seqwb gui %f``; ``seqwb FILE`` is the same)."""
    from tests.helpers import small_project
    from workbench.core.projectfile import save_project
    from workbench.plugin_system import discover
    project = small_project(discover())
    project.name = "Double-clicked"
    save_project(project, tmp_path / "dbl.seqwb")
    env = subprocess_env()
    env.update({"SEQWB_STARTUP_PROBE": "1", "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)})
    out = subprocess.run([sys.executable, "-m", "workbench", "gui", str(tmp_path / "dbl.seqwb")], env=env,
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(next(ln for ln in out.stdout.splitlines() if ln.startswith("{")))
    # the first paint names the file being opened; the project is in the window once it is read
    assert report["title"].startswith("Opening dbl.seqwb…") and report["window_icon"] is True
    assert report["opened"] is True and report["title_loaded"].startswith("Double-clicked — dbl.seqwb")


def test_bundle_spec_carries_the_plugin_metadata_and_every_plugin_module():
    """The frozen app finds its plugins through entry points: the spec must copy the distribution's metadata
    (under the name pyproject.toml gives it) and list the lazily imported plugin modules."""
    spec = (ROOT / "packaging" / "seqwb.spec").read_text()
    name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    assert f'copy_metadata("{name}")' in spec
    assert '_app_modules("workbench_plugins")' in spec and '_app_modules("workbench")' in spec
    script = (ROOT / "packaging" / "build_bundle.sh").read_text()
    for check in ("--version", "SEQWB_STARTUP_PROBE=1", " train ", "plugins --json", "du -s"):
        assert check in script
