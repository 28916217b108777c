"""Plugin API versions, disabling plugins, the feature-track hook, and wrong-shape cells named at build time."""

from __future__ import annotations

import json
import sys
import textwrap
from dataclasses import dataclass

import numpy as np
import pytest

from workbench import hookspecs
from workbench.core import features
from workbench.hookspecs import hookimpl
from workbench.plugin_system import CellSpec, FeatureTrackSpec, NoParams, discover, param, user_settings
from workbench.plugin_system.versions import ApiRangeError, parse_range, range_allows

GROUP = "seqwb.test-plugin-api"


# ---- version ranges --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, version, ok", [
    (">=1.0,<2", "1.0", True), (">=1,<2", "1.9", True), (">=1.0,<2", "2.0", False), (">=1.1", "1.0", False),
    ("==1.*", "1.7", True), ("==1.*", "2.0", False), ("!=1.*", "2.0", True), ("==1", "1.0", True),
    ("<=1.0", "1.0", True), (">1.0", "1.0", False), ("!=1.0", "1.0", False), (" >= 1.0 , < 2 ", "1.5", True),
    ("~=1.0", "1.5", True), ("~=1.1", "2.0", False),
])
def test_range_allows(spec, version, ok):
    assert range_allows(spec, version) is ok


@pytest.mark.parametrize("spec", ["", "1.0", ">=one", ">=1.*", ">=1.0;<2", None, 1.0])
def test_bad_ranges_are_refused_with_the_reason(spec):
    with pytest.raises(ApiRangeError, match="SEQWB_API"):
        parse_range(spec)


def test_the_contract_version_is_major_minor():
    assert hookspecs.API_VERSION == "1.2" and hookspecs.API_ATTRIBUTE == "SEQWB_API"


# ---- the loader and SEQWB_API ------------------------------------------------------------------------------------

@dataclass
class SizeParams:
    size: int = param(4, min=1)


class Plugin:
    """A cell plugin whose declared API range is set per test; counts hook calls."""

    def __init__(self, api: object = None, cell_id: str = "api-cell"):
        if api is not None:
            self.SEQWB_API = api
        self.cell_id = cell_id
        self.calls = 0

    @hookimpl
    def seqwb_cells(self):
        self.calls += 1
        return [CellSpec(id=self.cell_id, title="c", version="1", params=SizeParams, factory="nowhere:Cell")]


def test_a_compatible_plugin_loads_without_a_note():
    reg = discover(entry_points=False, extra=[("ok", Plugin(">=1.0,<2"))])
    assert reg.has("cell", "api-cell") and reg.failures == [] and reg.notes == []


def test_an_incompatible_plugin_is_reported_and_never_called():
    plugin = Plugin(">=2,<3")
    reg = discover(entry_points=False, extra=[("future", plugin), ("ok", Plugin(cell_id="other"))])
    assert not reg.has("cell", "api-cell") and reg.has("cell", "other")
    assert plugin.calls == 0
    (failure,) = reg.failures
    assert failure.category == "incompatible" and failure.entry_point == "future"
    assert failure.error == (f"incompatible: it supports plugin API >=2,<3, this Sequence Workbench provides "
                             f"{hookspecs.API_VERSION}; install a version of the plugin made for it")
    assert failure.message().startswith("plugin (registered in code) (future) not loaded: incompatible")
    assert ("(registered in code)", "future", "") not in reg.plugins


def test_an_undeclared_plugin_loads_with_a_note():
    reg = discover(entry_points=False, extra=[("quiet", Plugin())])
    assert reg.has("cell", "api-cell") and reg.failures == []
    (note,) = reg.notes
    assert (note.entry_point, note.note) == ("quiet", f"declares no SEQWB_API; loaded on trust (plugin API here: "
                                                      f"{hookspecs.API_VERSION})")


def test_an_unreadable_range_is_an_error_and_the_plugin_is_not_loaded():
    reg = discover(entry_points=False, extra=[("typo", Plugin("=>1.0"))])
    assert not reg.has("cell", "api-cell")
    (failure,) = reg.failures
    assert failure.category == "error" and failure.error.startswith("invalid SEQWB_API: SEQWB_API '=>1.0'")


def test_the_builtins_need_no_declaration():
    reg = discover()
    assert not [n for n in reg.notes if n.distribution == "sequence-workbench"]
    assert not reg.failures, reg.failures


# ---- disabling ---------------------------------------------------------------------------------------------------

@pytest.fixture()
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQWB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("SEQWB_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("SEQWB_NO_PLUGINS", raising=False)
    return tmp_path / "config"


@pytest.fixture()
def exploding_distribution(tmp_path, monkeypatch):
    """``api-test-dist`` with an entry point whose module raises when imported (so: imported means a failure)."""
    pkg = tmp_path / "api_test_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "boom.py").write_text("raise RuntimeError('imported although disabled')\n")
    info = tmp_path / "api_test_dist-0.4.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: api-test-dist\nVersion: 0.4\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\nboom = api_test_pkg.boom\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in [m for m in sys.modules if m.startswith("api_test_pkg")]:
        del sys.modules[name]


def test_an_enabled_plugin_is_imported(config, exploding_distribution):
    reg = discover(group=GROUP)
    assert [f.error for f in reg.failures] == ["RuntimeError: imported although disabled"]


@pytest.mark.parametrize("value", ["api-test-dist", "API_Test_Dist", "other, api_test.dist", "boom"])
def test_disable_by_environment_never_imports_it(config, exploding_distribution, monkeypatch, value):
    monkeypatch.setenv("SEQWB_DISABLE_PLUGINS", value)
    reg = discover(group=GROUP)
    assert reg.failures == [] and reg.plugins == []
    (off,) = reg.disabled
    assert (off.distribution, off.entry_point, off.version) == ("api-test-dist", "boom", "0.4")
    assert off.reason == "disabled by SEQWB_DISABLE_PLUGINS"
    assert "api_test_pkg.boom" not in sys.modules


def test_no_plugins_keeps_only_the_builtins(config, exploding_distribution, monkeypatch):
    monkeypatch.setenv("SEQWB_NO_PLUGINS", "1")
    reg = discover(group=GROUP)
    assert reg.failures == [] and [d.reason for d in reg.disabled] == [
        "disabled by SEQWB_NO_PLUGINS=1 (only built-in plugins are loaded)"]
    builtins = discover()
    assert builtins.has("cell", "lstm") and builtins.has("feature_track", "quotes") and builtins.disabled == []
    monkeypatch.setenv("SEQWB_NO_PLUGINS", "0")
    assert discover(group=GROUP).disabled == []


def test_disable_in_the_settings_file(config, exploding_distribution):
    path = user_settings.write_disabled(["api-test-dist"])
    assert path == config / "plugins.json"
    assert json.loads(path.read_text()) == {"disabled": ["api-test-dist"]}
    reg = discover(group=GROUP)
    assert reg.failures == [] and reg.disabled[0].reason == f"disabled in the plugin settings ({path})"
    assert discover(group=GROUP, honour_settings=False).failures != []   # the file can be ignored on purpose
    user_settings.write_disabled([])
    assert discover(group=GROUP).disabled == []


def test_a_broken_settings_file_is_a_note_and_disables_nothing(config, exploding_distribution):
    config.mkdir()
    (config / "plugins.json").write_text("{not json")
    reg = discover(group=GROUP)
    assert reg.disabled == [] and len(reg.failures) == 1
    assert [n.entry_point for n in reg.notes] == ["(plugin settings)"]
    assert "is not a valid plugin settings file" in reg.notes[0].note and "ignoring it" in reg.notes[0].note
    (config / "plugins.json").write_text('{"disabled": "api-test-dist"}')   # not a list
    assert discover(group=GROUP).disabled == []


def test_builtins_cannot_be_disabled(config, monkeypatch):
    monkeypatch.setenv("SEQWB_DISABLE_PLUGINS", "sequence-workbench,builtin-cells")
    reg = discover()
    assert reg.disabled == [] and reg.has("cell", "lstm")


def test_settings_keep_other_keys_and_are_written_atomically(config):
    config.mkdir()
    (config / "plugins.json").write_text('{"disabled": ["a"], "future": 1}')
    user_settings.write_disabled(["b", "a"])
    assert json.loads((config / "plugins.json").read_text()) == {"disabled": ["a", "b"], "future": 1}
    assert [p.name for p in config.iterdir()] == ["plugins.json"]   # no temporary file left behind


# ---- the seqwb_feature_tracks hook -------------------------------------------------------------------------------

@pytest.fixture()
def track_module(tmp_path, monkeypatch):
    (tmp_path / "seqwb_test_tracks.py").write_text(textwrap.dedent("""
        import numpy as np

        def digits(text):
            return np.array([ch.isdigit() for ch in text], dtype=float)

        def short(text):
            return [1.0]

        def raises(text):
            raise KeyError("no table")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("seqwb_test_tracks", None)


class TrackPlugin:
    SEQWB_API = ">=1.0,<2"

    @hookimpl
    def seqwb_feature_tracks(self):
        return [FeatureTrackSpec(id=i, title=f"{i} title", version="1", params=NoParams,
                                 factory=f"seqwb_test_tracks:{i}", description=f"{i} doc")
                for i in ("digits", "short", "raises")]


def test_plugin_tracks_appear_with_the_builtins_and_load_lazily(track_module):
    import workbench_plugins.feature_tracks as builtin_tracks
    reg = discover(entry_points=False, extra=[("builtin-feature-tracks", builtin_tracks), ("tracks", TrackPlugin())])
    assert "seqwb_test_tracks" not in sys.modules                    # discovery did not import the code
    names = [t.name for t in features.feature_tracks(reg)]
    assert names[:6] == ["quotes", "comment", "brackets", "line_position", "indent", "word_start"]
    assert names[6:9] == ["digits", "short", "raises"]
    assert features.feature_title("digits", reg) == "digits title"
    assert "seqwb_test_tracks" not in sys.modules
    assert features.compute_track("digits", "a1b22", reg).tolist() == [0, 1, 0, 1, 1]
    assert features.compute_track("quotes", "'a'", reg).tolist() == [1, 1, 0]
    with pytest.raises(ValueError, match=r"unknown feature 'digits'; choose one of: quotes"):
        features.compute_track("digits", "1", discover())                   # another registry does not have it


def test_a_broken_plugin_track_is_named(track_module):
    reg = discover(entry_points=False, extra=[("tracks", TrackPlugin())])
    with pytest.raises(ValueError) as info:
        features.compute_track("short", "abc", reg)
    assert str(info.value) == ("feature track 'short' from plugin (registered in code) (tracks) returned 1 values "
                               "for 3 characters")
    with pytest.raises(ValueError, match=r"feature track 'raises' from plugin .*tracks.* failed: KeyError"):
        features.compute_track("raises", "abc", reg)


def test_an_invalid_track_id_is_a_plugin_failure():
    class Bad:
        @hookimpl
        def seqwb_feature_tracks(self):
            return [FeatureTrackSpec(id="regex", title="t", version="1", params=NoParams, factory="m:f"),
                    FeatureTrackSpec(id="1st", title="t", version="1", params=NoParams, factory="m:f"),
                    FeatureTrackSpec(id="fine", title="t", version="1", params=NoParams, factory="m:f")]
    reg = discover(entry_points=False, extra=[("bad", Bad())])
    assert list(reg.items["feature_track"]) == ["fine"]
    assert len(reg.failures) == 2 and all("feature track id" in f.error for f in reg.failures)


def test_register_feature_track_still_works_next_to_the_hook(reg):
    def vowels(text):
        return np.array([ch in "aeiou" for ch in text], dtype=float)
    try:
        features.register_feature_track("vowels-legacy", vowels, title="Vowel")
        names = [t.name for t in features.feature_tracks(reg)]
        assert names[0] == "quotes" and names[-1] == "vowels-legacy"
        assert features.compute_track("vowels-legacy", "data", reg).tolist() == [0, 1, 0, 1]
    finally:
        features.FEATURE_TRACKS.pop("vowels-legacy", None)


# ---- a cell with wrong shapes is named when the model is built ---------------------------------------------------

CELLS = '''
import torch
from torch import nn
from workbench.core.cells import Cell


class WrongStep(Cell):
    def __init__(self, input_size, hidden_size, params):
        super().__init__(input_size, hidden_size)
        self.lin = nn.Linear(input_size, hidden_size + 1)        # one unit too many

    def step_projected(self, xp_t, state, gates=None):
        h = torch.tanh(self.lin(xp_t))
        return h, (h,)


class WrongState(Cell):
    state_names = ("h", "c")

    def __init__(self, input_size, hidden_size, params):
        super().__init__(input_size, hidden_size)

    def init_state(self, batch, device=None, dtype=None):
        return (torch.zeros(batch, self.hidden_size),)           # one tensor, two names

    def step_projected(self, xp_t, state, gates=None):
        return state[0], state


class NotACell(nn.Module):
    def __init__(self, input_size, hidden_size, params):
        super().__init__()


class MatmulError(Cell):
    def __init__(self, input_size, hidden_size, params):
        super().__init__(input_size, hidden_size)
        self.W = nn.Parameter(torch.zeros(hidden_size + 2, hidden_size))

    def step_projected(self, xp_t, state, gates=None):
        h = state[0] @ self.W                                    # [B, H] @ [H + 2, H]
        return h, (h,)


def raising(input_size, hidden_size, params):
    raise RuntimeError("cannot allocate the fancy kernel")
'''


@pytest.fixture()
def bad_cells(tmp_path, monkeypatch):
    (tmp_path / "seqwb_test_bad_cells.py").write_text(CELLS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("seqwb_test_bad_cells", None)


class BadCells:
    SEQWB_API = ">=1.0,<2"

    @hookimpl
    def seqwb_cells(self):
        return [CellSpec(id=i, title=i, version="1", params=NoParams, factory=f"seqwb_test_bad_cells:{f}",
                         state_names=("h", "c") if f == "WrongState" else ("h",))
                for i, f in (("wrong-step", "WrongStep"), ("wrong-state", "WrongState"), ("not-a-cell", "NotACell"),
                             ("matmul", "MatmulError"), ("raising", "raising"))]


@pytest.mark.parametrize("cell_id, message", [
    ("wrong-step", "cell 'wrong-step' from plugin bad-cells (distribution (registered in code)): step returned an "
                   "output of shape (2, 6), expected [batch, hidden] = (2, 5)"),
    ("wrong-state", "cell 'wrong-state' from plugin bad-cells (distribution (registered in code)): init_state "
                    "returned tuple of 1 tensors; state_names says 2 ('h', 'c')"),
    ("not-a-cell", "cell 'not-a-cell' from plugin bad-cells (distribution (registered in code)): the factory "
                   "returned NotACell, not a workbench.core.cells.Cell"),
    ("matmul", "cell 'matmul' from plugin bad-cells (distribution (registered in code)): a trial step on a batch "
               "of 2 failed: RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
    ("raising", "cell 'raising' from plugin bad-cells (distribution (registered in code)) failed to build: "
                "RuntimeError: cannot allocate the fancy kernel"),
])
def test_a_broken_cell_is_named_when_built(bad_cells, cell_id, message):
    import torch

    from workbench.core.blocks import BuildContext
    from workbench.core.plugin_checks import PluginCodeError
    torch.set_num_threads(1)
    reg = discover(entry_points=False, extra=[("bad-cells", BadCells())])
    with pytest.raises(PluginCodeError) as info:
        BuildContext(reg, {}, "rnn").make_cell(cell_id, 3, 5)
    assert str(info.value).startswith(message), str(info.value)


def test_a_broken_cell_stops_training_with_one_clear_line_and_saves_nothing(bad_cells, tmp_path):
    import torch

    from workbench.schema.errors import WorkbenchError
    from workbench.core.projectfile import save_project
    from workbench.core.settings import template_project
    from workbench.core.training.trainer import Trainer
    torch.set_num_threads(1)
    reg = discover(extra=[("bad-cells", BadCells())])
    project, _ = template_project(reg.template("temporal-order-lstm"),
                                  {"cell": "wrong-step", "hidden_size": "5", "length": "10"}, reg)
    path = tmp_path / "p.seqwb"
    save_project(project, path)
    before = path.read_bytes()
    with pytest.raises(WorkbenchError) as info:
        Trainer(project, reg, base_dir=tmp_path).fit(steps=1)
    assert "cell 'wrong-step' from plugin bad-cells" in str(info.value) and "(2, 6)" in str(info.value)
    assert path.read_bytes() == before


# ---- seqwb plugins shows all of it -----------------------------------------------------------------------------

def _fake_dist(root, dist: str, module: str, body: str) -> None:
    (root / f"{module}.py").write_text(textwrap.dedent(body))
    info = root / f"{dist.replace('-', '_')}-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(f"[seqwb.plugins]\n{dist} = {module}\n")


def test_seqwb_plugins_reports_incompatible_undeclared_and_disabled_plugins(tmp_path, subprocess_env):
    import subprocess
    site = tmp_path / "site"
    site.mkdir()
    _fake_dist(site, "seqwb-from-the-future", "seqwb_future_mod", 'SEQWB_API = ">=2.0"\n')
    _fake_dist(site, "seqwb-quiet", "seqwb_quiet_mod", "")
    _fake_dist(site, "seqwb-switched-off", "seqwb_off_mod", "raise RuntimeError('must not be imported')\n")
    env = subprocess_env(site) | {"SEQWB_DISABLE_PLUGINS": "seqwb-switched-off", "SEQWB_CONFIG_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "workbench", "plugins"], env=env, capture_output=True, text=True,
                          timeout=120, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = [" ".join(line.split()) for line in proc.stdout.splitlines()]
    assert ("INCOMPATIBLE seqwb-from-the-future seqwb-from-the-future: incompatible: it supports plugin API >=2.0, "
            f"this Sequence Workbench provides {hookspecs.API_VERSION}; install a version of the plugin made for it"
            ) in lines
    assert ("DISABLED seqwb-switched-off seqwb-switched-off: disabled by SEQWB_DISABLE_PLUGINS") in lines
    assert ("NOTE seqwb-quiet seqwb-quiet: declares no SEQWB_API; loaded on trust "
            f"(plugin API here: {hookspecs.API_VERSION})") in lines
    assert not [line for line in lines if line.startswith("FAILED")]
    assert "cell lstm" in "\n".join(lines)


def test_check_cells_reports_each_broken_cell_with_its_plugin(bad_cells):
    import torch

    from workbench.core.plugin_checks import check_cells
    torch.set_num_threads(1)
    reg = discover(extra=[("bad-cells", BadCells())])
    checked, failures = check_cells(reg)
    assert checked == len(reg.items["cell"])
    assert sorted(f.error.split("'")[1] for f in failures) == ["matmul", "not-a-cell", "raising", "wrong-state",
                                                               "wrong-step"]
    assert all(f.entry_point == "bad-cells" and f.hook == "cell check" for f in failures)


def test_a_misspelled_hook_is_reported_with_the_known_hooks():
    class Typo:
        SEQWB_API = ">=1.0,<2"

        @hookimpl(optionalhook=True)
        def seqwb_feature_track(self):
            return []
    reg = discover(entry_points=False, extra=[("typo", Typo())])
    (failure,) = reg.failures
    assert failure.error.startswith("unknown hook(s) seqwb_feature_track; known hooks: seqwb_cells")
    assert "seqwb_feature_tracks" in failure.error


# ---- a project that needs a plugin that failed or is disabled ----------------------------------------------------

FLAKY_OK = '''
from workbench.hookspecs import hookimpl
from workbench.plugin_system import CellSpec
from workbench_plugins.cells import RNNParams

SEQWB_API = ">=1.0,<2"


@hookimpl
def seqwb_cells():
    return [CellSpec(id="flaky-rnn", title="Flaky", version="1.0", params=RNNParams,
                     factory="workbench_plugins.cell_rnn:RNNCell")]
'''


def test_a_project_needing_a_failed_or_disabled_plugin_names_it_and_is_not_written(tmp_path, monkeypatch, config):
    from workbench.schema.errors import MissingPluginError
    from workbench.core.projectfile import load_project, project_plugins_used, save_project
    from workbench.core.settings import template_project
    site = tmp_path / "site"
    site.mkdir()
    (site / "seqwb_flaky_mod.py").write_text(FLAKY_OK)
    info = site / "seqwb_flaky-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: seqwb-flaky\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[seqwb.plugins]\nflaky = seqwb_flaky_mod\n")
    monkeypatch.syspath_prepend(str(site))
    try:
        reg = discover()
        project, _ = template_project(reg.template("temporal-order-lstm"), {"cell": "flaky-rnn"}, reg)
        path = tmp_path / "p.seqwb"
        save_project(project, path, plugins_used=project_plugins_used(project, reg))
        before = path.read_bytes()

        sys.modules.pop("seqwb_flaky_mod", None)
        (site / "seqwb_flaky_mod.py").write_text("raise OSError('libflaky.so: cannot open shared object file')\n")
        with pytest.raises(MissingPluginError) as info_failed:
            load_project(path, registry=discover())
        assert ("needs cell 'flaky-rnn' from the plugin distribution 'seqwb-flaky' 1.0, which is installed but "
                "failed: OSError: libflaky.so: cannot open shared object file") in str(info_failed.value)

        monkeypatch.setenv("SEQWB_DISABLE_PLUGINS", "seqwb-flaky")
        with pytest.raises(MissingPluginError) as info_off:
            load_project(path, registry=discover())
        assert str(info_off.value).endswith("'seqwb-flaky' 1.0, which is installed but disabled by "
                                            "SEQWB_DISABLE_PLUGINS")
        assert path.read_bytes() == before
    finally:
        sys.modules.pop("seqwb_flaky_mod", None)
