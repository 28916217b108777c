"""Every measured figure in README.md and docs/ comes from a committed results file (benchmarks/results/*.json).

The figures sit in regions between ``<!-- figures:NAME -->`` markers, written by ``python benchmarks/docs_tables.py
--write`` from the results files the benchmark scripts write.  These tests only render JSON: no training.
"""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

from tests.conftest import REPO_ROOT


def _load_tables():
    spec = importlib.util.spec_from_file_location("seqwb_docs_tables", REPO_ROOT / "benchmarks" / "docs_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tables = _load_tables()
REGIONS = [(path, m["name"], m["body"]) for path in tables.DOCUMENTS for m in tables.regions(path.read_text())]


def _id(region) -> str:
    return f"{region[0].relative_to(REPO_ROOT)}:{region[1]}"


@pytest.mark.parametrize("region", REGIONS, ids=[_id(r) for r in REGIONS])
def test_every_region_is_what_its_results_render_to(region):
    _, name, body = region
    assert name in tables.RENDERERS, f"{_id(region)}: no renderer named {name!r} in benchmarks/docs_tables.py"
    for stem in tables.RENDERERS[name].files:
        assert (tables.RESULTS / f"{stem}.json").exists() or stem in tables.AWAITING, \
            f"{_id(region)} reads benchmarks/results/{stem}.json, which is missing"
    assert body == tables.render(name) + "\n", \
        f"{_id(region)} differs from its results: run python benchmarks/docs_tables.py --write"


def test_the_template_tables_are_generated_in_the_readme_and_the_benchmarks_doc():
    names = {(path.name, name) for path, name, _ in REGIONS}
    assert ("README.md", "templates-readme") in names
    assert ("benchmarks.md", "templates") in names
    assert (tables.RESULTS / "templates.json").exists()


def test_templates_results_cover_every_built_in_template_without_invented_figures():
    from workbench.plugin_system import discover
    doc = json.loads((tables.RESULTS / "templates.json").read_text())
    rows = {r["template"]: r for r in doc["templates"]}
    built_in = {s.id for s in discover().items["template"].values() if s.distribution == "sequence-workbench"}
    assert built_in <= set(rows), f"templates.json lacks {sorted(built_in - set(rows))}"
    for name, r in rows.items():
        if r.get("needs_data"):
            # a template that needs the user's files states only what its own notes publish
            assert set(r) <= {"template", "task", "shipped_steps", "shipped_epochs", "needs_data", "published"}, name
        else:
            assert r["test"].get("metrics") or r["test"].get("error"), name


def test_awaiting_lists_only_files_that_are_still_missing():
    present = sorted(s for s in tables.AWAITING if (tables.RESULTS / f"{s}.json").exists())
    assert not present, f"measured now: remove {present} from AWAITING in benchmarks/docs_tables.py"


def test_a_missing_results_file_and_a_stale_region_are_reported(tmp_path, monkeypatch):
    results = tmp_path / "results"
    results.mkdir()
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- figures:templates -->\nold\n<!-- /figures:templates -->\n")
    monkeypatch.setattr(tables, "RESULTS", results)
    monkeypatch.setattr(tables, "ROOT", tmp_path)
    monkeypatch.setattr(tables, "DOCUMENTS", [doc])
    monkeypatch.setattr(tables, "AWAITING", set())
    found = tables.problems()
    assert any("templates.json, which is missing" in p for p in found), found
    # with the file present, the region is stale until --write renders it
    (results / "templates.json").write_text((REPO_ROOT / "benchmarks" / "results" / "templates.json").read_text())
    assert any("differs from its results" in p for p in tables.problems())
    doc.write_text(tables.rewrite(doc.read_text()))
    assert tables.problems() == []


# Figures quoted inside prose or a command's transcript cannot sit in a generated region; these tests hold them to
# the results files instead, to the digits the text prints.

def _agrees(printed: str, value: float) -> bool:
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return abs(float(printed.replace("−", "-")) - value) <= 0.5 * 10 ** -decimals + 1e-12


def test_the_readmes_seqwb_forecast_transcript_is_the_forecast_templates_measured_validation():
    text = (REPO_ROOT / "README.md").read_text()
    found = re.search(r"model  MSE ([\d.]+)  MAE ([\d.]+)\n  naive  MSE ([\d.]+)  MAE ([\d.]+).*?\n  skill  ([+-][\d.]+)",
                      text)
    if found is None:      # the transcript is gone from the README: nothing to hold
        return
    doc = json.loads((tables.RESULTS / "templates.json").read_text())
    valid = next(r for r in doc["templates"] if r["template"] == "forecast")["valid"]["metrics"]
    for printed, key in zip(found.groups(), ("mse", "mae", "naive_mse", "naive_mae", "skill")):
        assert _agrees(printed, valid[key]), f"README's seqwb forecast says {key} {printed}, templates.json " \
                                             f"{valid[key]} (python benchmarks/templates.py --only forecast)"


def test_the_readmes_seq2seq_dash_unit_is_the_measured_one():
    text = (REPO_ROOT / "README.md").read_text()
    found = re.search(r'--feature "regex:-" --layer decoder\.0`.*?\(unit (\d+), r = ([+−-][\d.]+)\)', text, re.DOTALL)
    if found is None:
        return
    doc = json.loads((tables.RESULTS / "units-seq2seq.json").read_text())
    assert int(found[1]) == doc["unit"] and _agrees(found[2], doc["r"]), \
        f"README says unit {found[1]}, r = {found[2]}; units-seq2seq.json unit {doc['unit']}, r = {doc['r']:+.3f} " \
        f"(python benchmarks/units.py --seq2seq)"
