"""The fault suite's figures in docs/reliability.md hold what the page claims: benchmarks/results/reliability.json
(written by ``python benchmarks/reliability.py`` from the reliability tests at full scale) has every case, at full
scale, with the counts the issue asks for and nothing that went wrong.  Reads the results file only (no training);
the table itself is checked against the file by tests/test_docs_figures.py."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO_ROOT

RESULTS = REPO_ROOT / "benchmarks" / "results" / "reliability.json"
#: every case the suite reports (each recorded by one test)
CASES = {"fuzzed-files", "zip-bomb-manifest", "zip-bomb-bzip2", "many-members", "project-path-not-a-file",
         "carry-batch", "terminal-escapes", "full-disk", "read-only-file", "bak-is-a-folder", "sigkill-during-save",
         "two-cli-writers", "stale-lock", "window-and-cli", "outside-data-cli-absolute", "outside-data-cli-dotdot",
         "outside-data-cli-link", "outside-data-window", "corpus-pipe-device", "corpus-unreadable", "corpus-large",
         "corpus-text-cases", "sigint-resume", "oom-setup", "oom-step", "oom-window", "optimizer-change", "threads",
         "unexpected-members", "huge-step", "checkpoint-parts"}


@pytest.fixture(scope="module")
def cases() -> dict[str, dict]:
    doc = json.loads(RESULTS.read_text())
    assert doc["scale"] == "full", "the docs report the full-scale run: python benchmarks/reliability.py"
    assert "failed" not in doc["pytest"] and "passed" in doc["pytest"]
    return {c["case"]: c for c in doc["cases"]}


def test_every_case_is_reported_with_what_was_tried_how_often_and_what_happened(cases):
    assert CASES <= set(cases), f"missing from the results: {sorted(CASES - set(cases))}"
    for name, case in cases.items():
        assert case["scale"] == "full" and case["times"] >= 1 and case["tried"] and case["result"], name


def test_the_counts_the_issue_asks_for(cases):
    fuzz = cases["fuzzed-files"]["figures"]
    assert cases["fuzzed-files"]["times"] >= 10_000
    assert fuzz["other_exceptions"] == 0 and fuzz["writes"] == 0 and fuzz["train_other_exceptions"] == 0
    assert fuzz["loaded"] + fuzz["refused"] == cases["fuzzed-files"]["times"]
    kills = cases["sigkill-during-save"]
    assert kills["times"] >= 100 and kills["figures"]["litter_after_open"] == 0
    assert kills["figures"]["version_a"] + kills["figures"]["version_b"] == kills["times"]
    assert cases["zip-bomb-manifest"]["figures"]["inflated_mib"] >= 1024
    assert cases["corpus-large"]["figures"]["corpus_mb"] >= 200
    assert cases["corpus-large"]["figures"]["peak_rss_mib"] < 1200
    assert cases["carry-batch"]["figures"]["peak_rss_mib"] < 1500
    assert cases["sigint-resume"]["times"] >= 10
