"""``seqwb plugin new``: names, the files it writes, and that the generated plugin works (in this process; the
install into a fresh virtual environment is in tests/test_example_plugin.py)."""

from __future__ import annotations

import ast
import sys
import tomllib

import pytest

from workbench.scaffold import ScaffoldError, plugin_names, render, scaffold


@pytest.mark.parametrize("name, dist, package, cell, cls", [
    ("my-cell", "seqwb-my-cell", "seqwb_my_cell", "seqwb-my-cell.my-cell", "MyCellCell"),
    ("seqwb-my-cell", "seqwb-my-cell", "seqwb_my_cell", "seqwb-my-cell.my-cell", "MyCellCell"),
    ("Leaky_RNN2", "seqwb-leaky-rnn2", "seqwb_leaky_rnn2", "seqwb-leaky-rnn2.leaky-rnn2", "LeakyRnn2Cell"),
])
def test_names(name, dist, package, cell, cls):
    n = plugin_names(name)
    assert (n.distribution, n.package, n.cell_id, n.class_name) == (dist, package, cell, cls)


@pytest.mark.parametrize("name", ["", "1cell", "my cell", "my--cell", "seqwb-", "cell!", "-cell"])
def test_bad_names_are_refused(name):
    with pytest.raises(ScaffoldError, match="plugin name"):
        plugin_names(name)


def test_the_files_are_valid_and_wired_together():
    n = plugin_names("my-cell")
    files = render(n)
    assert set(files) == {"pyproject.toml", "README.md", ".gitignore", "seqwb_my_cell/__init__.py",
                          "seqwb_my_cell/plugin.py", "seqwb_my_cell/cell.py", "tests/test_cell.py"}
    for path, text in files.items():
        if path.endswith(".py"):
            ast.parse(text, path)
    project = tomllib.loads(files["pyproject.toml"])
    assert project["project"]["name"] == "seqwb-my-cell"
    assert project["project"]["entry-points"]["seqwb.plugins"] == {"my-cell": "seqwb_my_cell.plugin"}
    assert project["tool"]["setuptools"]["packages"] == ["seqwb_my_cell"]
    assert 'SEQWB_API = ">=1.2,<2"' in files["seqwb_my_cell/plugin.py"]
    assert 'id="seqwb-my-cell.my-cell",' in files["seqwb_my_cell/plugin.py"]    # namespaced by its distribution
    assert 'seqwb_check_cell("seqwb-my-cell.my-cell")' in files["tests/test_cell.py"]
    assert 'seqwb_check_plugin("seqwb-my-cell")' in files["tests/test_cell.py"]
    assert "seqwb plugins --check --only seqwb-my-cell" in files["README.md"]
    assert "twine upload" in files["README.md"] and "python -m build" in files["README.md"]


def test_scaffold_refuses_a_non_empty_folder_and_writes_nothing(tmp_path):
    (tmp_path / "seqwb-my-cell").mkdir()
    (tmp_path / "seqwb-my-cell" / "mine.txt").write_text("keep me")
    with pytest.raises(ScaffoldError, match="exists and is not empty"):
        scaffold("my-cell", tmp_path)
    assert [p.name for p in (tmp_path / "seqwb-my-cell").iterdir()] == ["mine.txt"]
    names, root, written = scaffold("other-cell", tmp_path)   # an empty or new folder is fine
    assert root == tmp_path / "seqwb-other-cell" and len(written) == 7


def test_the_generated_cell_registers_and_passes_the_contract(tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from workbench.plugin_system import discover
    from workbench.testing.contracts import check_cell_spec
    _, root, _ = scaffold("gen-cell", tmp_path)
    sys.path.insert(0, str(root))
    try:
        import seqwb_gen_cell.plugin as plugin
        reg = discover(entry_points=False, extra=[("gen-cell", plugin)])
        assert reg.failures == [] and reg.notes == []
        spec = reg.cell("seqwb-gen-cell.gen-cell")
        check_cell_spec(spec)
        cell = spec.load()(3, 4, spec.params(leak=0.0))
        h = torch.randn(2, 4)
        out, _ = cell.step(torch.randn(2, 3), (h,))
        assert torch.equal(out, h)                                  # leak 0: the state never changes
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.startswith("seqwb_gen_cell")]:
            del sys.modules[name]
