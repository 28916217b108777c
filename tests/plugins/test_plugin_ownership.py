"""Ids are owned (issue 17, point 1), in process: the loader's rules over throw-away distributions (a custom
entry-point group, so the installed plugins never take part), and what reading and saving a project do with the
providers it records.  The same scenarios with real pip installs are in tests/test_third_party_plugin.py."""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from workbench.core.project import Project
from workbench.core.projectfile import load_project, project_plugins_used, save_project
from workbench.plugin_system import discover
from workbench.plugin_system.loader import Registry
from workbench.schema.errors import ContributionConflictError, MissingPluginError, PluginProviderError
from workbench.schema.params import param
from workbench.schema.registry import Provider
from workbench.schema.specs import BlockSpec, CellSpec, DecoderSpec, TaskSpec, with_source

GROUP = "seqwb.ownership-test.plugins"


def _dist(root: Path, dist: str, version: str, entry_point: str, body: str) -> None:
    module = dist.replace("-", "_") + "_mod"
    (root / f"{module}.py").write_text(textwrap.dedent(body))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{entry_point} = {module}\n")


def _cells(*ids: str, former: tuple[str, ...] = ()) -> str:
    return f"""
        from dataclasses import dataclass
        from workbench.api import CellSpec, hookimpl

        SEQWB_API = ">=1.2,<2"

        @dataclass
        class P:
            size: int = 1

        @hookimpl
        def seqwb_cells():
            return [CellSpec(id=i, title=i, version="1", params=P, factory="x:Y", former_ids={former!r})
                    for i in {ids!r}]
    """


@pytest.fixture()
def site(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in [m for m in sys.modules if m.endswith("_mod") and m.startswith(("seqwb_", "acme_", "sequence_"))]:
        del sys.modules[name]


def test_a_distribution_owns_its_namespace_and_no_other(site):
    _dist(site, "seqwb-owner", "1.0", "owner", _cells("seqwb-owner.mgu"))
    _dist(site, "seqwb-squat", "6.6", "squat", _cells("seqwb-owner.mgu", "seqwb-squat.mgu"))
    reg = discover(group=GROUP)
    assert reg.cell("seqwb-owner.mgu").distribution == "seqwb-owner"
    assert reg.cell("seqwb-squat.mgu").distribution == "seqwb-squat"
    (failure,) = reg.failures
    assert (failure.distribution, failure.category, failure.hook) == ("seqwb-squat", "conflict", "seqwb_cells")
    assert failure.error == ("cell id 'seqwb-owner.mgu' is in the namespace of the distribution 'seqwb-owner': "
                             "seqwb-squat may register ids 'seqwb-squat.NAME' only (e.g. 'seqwb-squat.mgu'), so "
                             "that no plugin can take over another's")
    assert failure.message().startswith("plugin seqwb-squat (squat, seqwb_cells): cell id 'seqwb-owner.mgu'")
    assert reg.notes == []     # namespaced ids need no note


def test_the_namespace_is_the_name_as_pip_compares_it(site):
    _dist(site, "Acme_Cells", "1.0", "acme", _cells("acme-cells.lstm"))
    reg = discover(group=GROUP)
    assert reg.failures == [] and reg.cell("acme-cells.lstm").distribution == "Acme_Cells"


def test_an_id_two_distributions_register_is_used_by_neither(site):
    _dist(site, "seqwb-one", "1.0", "one", _cells("mgu"))
    _dist(site, "seqwb-two", "2.0", "two", _cells("mgu"))
    reg = discover(group=GROUP)
    assert not reg.has("cell", "mgu")
    assert sorted(f.distribution for f in reg.failures) == ["seqwb-one", "seqwb-two"]
    assert {f.error for f in reg.failures} == {
        "cell 'mgu' is registered by seqwb-one and seqwb-two, so neither is used (which one was meant cannot be "
        "known): uninstall or disable one of them (pip uninstall NAME, or SEQWB_DISABLE_PLUGINS)"}
    with pytest.raises(ContributionConflictError):
        reg.cell("mgu")
    assert [s.distribution for s in reg.conflicts["cell"]["mgu"]] == ["seqwb-one", "seqwb-two"]


def test_a_bare_third_party_id_loads_with_a_note_and_cannot_replace_a_builtin(site):
    _dist(site, "seqwb-old", "0.1", "old", _cells("mgu", "lstm"))
    _dist(site, "Sequence_Workbench", "0.1.0", "builtin-cells", _cells("lstm"))   # the built-ins' distribution
    reg = discover(group=GROUP)
    assert reg.cell("mgu").distribution == "seqwb-old"
    assert reg.cell("lstm").distribution == "Sequence_Workbench"
    (note,) = reg.notes
    assert note.note.startswith("ids without a namespace: cell 'mgu'; another distribution could register the "
                                "same id, and then neither would be used. Name them 'seqwb-old.NAME'")
    (failure,) = reg.failures
    assert failure.error == ("cell id 'lstm' belongs to the built-in plugins of Sequence Workbench; a plugin cannot "
                             "replace it (register it as 'seqwb-old.lstm')")
    assert (failure.distribution, failure.category) == ("seqwb-old", "conflict")


def test_builtins_own_their_bare_ids():
    import workbench.plugin_system.loader as loader
    reg = discover()
    assert reg.cell("lstm").distribution == "sequence-workbench" and not reg.failures
    assert loader.is_builtin("Sequence_Workbench")


def test_former_ids_and_providers():
    @dataclass
    class P:
        size: int = param(1)

    reg = Registry()
    reg.add("cell", with_source(CellSpec(id="seqwb-x.mgu", title="m", version="1", params=P, factory="a:b",
                                         former_ids=("mgu",)), "seqwb-x", "x"))
    reg.plugins.append(("seqwb-x", "x", "0.2.0"))
    assert reg.successor("cell", "mgu", "SEQWB_X").id == "seqwb-x.mgu"
    assert reg.successor("cell", "mgu", "seqwb-y") is None
    assert reg.provider("cell", "seqwb-x.mgu") == Provider("seqwb-x", "0.2.0", "x")
    assert reg.provider("cell", "seqwb-x.mgu").describe() == "seqwb-x 0.2.0 (entry point x)"
    assert reg.provider("cell", "mgu") is None
    with pytest.raises(LookupError, match=r"unknown cell 'mgu': it is now 'seqwb-x\.mgu' \(from seqwb-x\)"):
        reg.cell("mgu")


@pytest.mark.parametrize("spec_id, error", [
    ("Seqwb-X.mgu", "a namespaced id is 'DISTRIBUTION.NAME'"),
    ("seqwb-x.", "a namespaced id is 'DISTRIBUTION.NAME'"),
    ("seqwb-x.a.b", "a namespaced id is 'DISTRIBUTION.NAME'"),
    (".mgu", "a namespaced id is 'DISTRIBUTION.NAME'"),
])
def test_malformed_namespaced_ids_are_refused(spec_id, error):
    @dataclass
    class P:
        size: int = param(1)

    with pytest.raises(ValueError, match=error):
        CellSpec(id=spec_id, title="m", version="1", params=P, factory="a:b").check()
    with pytest.raises(ValueError, match="former_ids lists the spec's own id"):
        CellSpec(id="x.m", title="m", version="1", params=P, factory="a:b", former_ids=("x.m",)).check()


# ---- a project records its providers; reading refuses another one; saving never names another one --------------

@dataclass
class _RNNParams:
    cell: str = param("lstm", ui="cell")
    hidden_size: int = param(4, min=1)


@dataclass
class _NoParams:
    pass


def _registry(cells: dict[str, tuple[str, tuple[str, ...]]]) -> Registry:
    """Built-in task, block and decoder, plus ``cells``: id -> (distribution, former ids)."""
    reg = Registry()
    for kind, spec in (("task", TaskSpec(id="char-lm", title="t", version="1", params=_NoParams, factory="m:f")),
                       ("architecture", BlockSpec(id="rnn", title="b", version="1", params=_RNNParams,
                                                  factory="m:f")),
                       ("decoder", DecoderSpec(id="greedy", title="g", version="1", params=_NoParams,
                                               factory="m:f"))):
        reg.add(kind, with_source(spec, "sequence-workbench", f"builtin-{kind}s"))
    for cell_id, (dist, former) in cells.items():
        reg.add("cell", with_source(CellSpec(id=cell_id, title=cell_id, version="1", params=_NoParams,
                                             factory="m:f", former_ids=former), dist, dist))
        reg.plugins.append((dist, dist, "0.3.0"))
    return reg


def _project(cell: str) -> Project:
    from workbench.core.graph import TASK_INPUT, TASK_OUTPUT, Graph
    g = Graph()
    g.add_node(TASK_INPUT, id="input")
    g.add_node("rnn", {"cell": cell}, id="rnn")
    g.add_node(TASK_OUTPUT, id="output")
    return Project.from_json({"name": "p", "graph": g.to_json(), "task": {"id": "char-lm"}})


def _saved(tmp_path: Path, cell: str, reg: Registry) -> Path:
    path = tmp_path / "p.seqwb"
    project = _project(cell)
    save_project(project, path, plugins_used=project_plugins_used(project, reg), backup=False)
    return path


def test_the_manifest_records_every_provider_the_decoder_too(tmp_path):
    reg = _registry({"mgu": ("seqwb-owner", ())})
    assert project_plugins_used(_project("mgu"), reg) == [
        {"kind": "task", "id": "char-lm", "distribution": "sequence-workbench", "version": "1"},
        {"kind": "architecture", "id": "rnn", "distribution": "sequence-workbench", "version": "1"},
        {"kind": "cell", "id": "mgu", "distribution": "seqwb-owner", "version": "0.3.0"},
        {"kind": "decoder", "id": "greedy", "distribution": "sequence-workbench", "version": "1"}]


def test_another_provider_of_a_saved_id_is_refused_naming_both_and_the_file_is_untouched(tmp_path):
    path = _saved(tmp_path, "mgu", _registry({"mgu": ("seqwb-owner", ())}))
    before = path.read_bytes()
    with pytest.raises(PluginProviderError) as info:
        load_project(path, registry=_registry({"mgu": ("seqwb-squat", ())}))
    assert str(info.value) == (
        f"{path}: refused, so that the project computes what it was saved with: cell 'mgu' was provided by "
        f"seqwb-owner 0.3.0 when the project was saved, but here it comes from seqwb-squat; install seqwb-owner "
        f"(pip install seqwb-owner) and uninstall or disable seqwb-squat; the file was not changed")
    assert not isinstance(info.value, MissingPluginError)
    assert path.read_bytes() == before
    # the same distribution under another spelling is the same provider
    assert load_project(path, registry=_registry({"mgu": ("Seqwb_Owner", ())})).graph.nodes["rnn"].params["cell"] \
        == "mgu"


def test_a_renamed_id_is_read_as_its_new_id_only_from_the_recorded_provider(tmp_path):
    path = _saved(tmp_path, "mgu", _registry({"mgu": ("seqwb-owner", ())}))
    before = path.read_bytes()
    renamed = _registry({"seqwb-owner.mgu": ("seqwb-owner", ("mgu",)), "mgu": ("seqwb-squat", ())})
    project = load_project(path, registry=renamed)
    assert project.graph.nodes["rnn"].params["cell"] == "seqwb-owner.mgu"
    assert path.read_bytes() == before          # in memory only
    # another distribution declaring the old id as its own former id takes nothing over
    decoy = _registry({"seqwb-squat.mgu": ("seqwb-squat", ("mgu",))})
    with pytest.raises(MissingPluginError, match="cell 'mgu' from the plugin distribution 'seqwb-owner'"):
        load_project(path, registry=decoy)


def test_a_conflicted_id_is_refused(tmp_path):
    path = _saved(tmp_path, "mgu", _registry({"mgu": ("seqwb-owner", ())}))
    reg = _registry({})
    reg.conflicts["cell"]["mgu"] = [with_source(CellSpec(id="mgu", title="m", version="1", params=_NoParams,
                                                         factory="m:f"), d, d) for d in ("seqwb-owner", "seqwb-b")]
    with pytest.raises(PluginProviderError, match=r"cell 'mgu' is registered by seqwb-b and seqwb-owner \(it was "
                                                  r"saved with seqwb-owner\), so neither can be used"):
        load_project(path, registry=reg)


def test_a_save_never_names_another_provider_than_the_one_read(tmp_path):
    path = _saved(tmp_path, "mgu", _registry({"mgu": ("seqwb-owner", ())}))
    project = load_project(path, registry=_registry({"mgu": ("seqwb-owner", ())}))
    # the registry changed while the project was open (say, a plugin was installed from the window)
    with pytest.raises(PluginProviderError, match=r"^not saved: cell 'mgu' came from seqwb-owner when the project "
                                                  r"was opened and comes from seqwb-squat now"):
        project_plugins_used(project, _registry({"mgu": ("seqwb-squat", ())}))
    assert project_plugins_used(project, _registry({"mgu": ("seqwb-owner", ())}))[2]["distribution"] == "seqwb-owner"
    # a new project has nothing to keep to
    assert project_plugins_used(_project("mgu"), _registry({"mgu": ("seqwb-squat", ())}))


def test_files_without_provenance_still_open(tmp_path):
    path = tmp_path / "p.seqwb"
    save_project(_project("mgu"), path, backup=False)            # no manifest plugins: hand-made or very old
    assert load_project(path, registry=_registry({"mgu": ("anyone", ())})).task.id == "char-lm"
    # and a renamed id without a record of its provider is taken when exactly one distribution declares it
    project = load_project(path, registry=_registry({"seqwb-owner.mgu": ("seqwb-owner", ("mgu",))}))
    assert project.graph.nodes["rnn"].params["cell"] == "seqwb-owner.mgu"


def test_the_format1_fixture_still_loads_with_its_providers():
    from workbench.core.projectfile import read_manifest
    path = Path(__file__).resolve().parents[1] / "fixtures" / "projects" / "format1-minimal.seqwb"
    manifest = read_manifest(path)
    reg = Registry()
    for entry in manifest["plugins"]:
        kind = entry["kind"]
        params = _RNNParams if kind == "architecture" else _NoParams
        cls = {"task": TaskSpec, "architecture": BlockSpec, "cell": CellSpec}[kind]
        reg.add(kind, with_source(cls(id=entry["id"], title="x", version="1", params=params, factory="m:f"),
                                  entry["distribution"], "fixtures"))
    assert load_project(path, registry=reg).graph.nodes["rnn1"].params["cell"] == "fixture-cell"
    other = Registry()
    for kind, table in reg.items.items():
        for spec in table.values():
            other.add(kind, with_source(spec, "seqwb-someone-else", "x"))
    with pytest.raises(PluginProviderError, match="comes from seqwb-someone-else"):
        load_project(path, registry=other)
