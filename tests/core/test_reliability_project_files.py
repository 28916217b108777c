"""Hostile project files (issue 8), the cases tests/core/test_projectfile.py leaves open: pickle payloads hidden inside
JSON strings, future versions from any app ("made by a newer version: X"), and reading never writes, never
unpickles."""

from __future__ import annotations

import base64
import json
import os
import pickle
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench
from tests.core.test_projectfile import _Payload, make_project, members_of, rewrite
from workbench.core import projectfile as pf
from workbench.schema.errors import ProjectFileError


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "project.seqwb"
    pf.save_project(make_project(), path)
    return path


def _pickle_strings(marker: Path) -> list[str]:
    """A live pickle payload (it creates ``marker`` when unpickled) in the forms a string can carry it."""
    raw = pickle.dumps(_Payload(marker), protocol=0)  # protocol 0 is printable ASCII
    return [raw.decode("latin-1"), base64.b64encode(pickle.dumps(_Payload(marker))).decode("ascii"),
            pickle.dumps(_Payload(marker), protocol=4).decode("latin-1")]


def test_pickle_payloads_inside_json_strings_stay_inert_strings(saved: Path, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled.marker"
    payloads = _pickle_strings(marker)
    members = members_of(saved)
    project_doc = json.loads(members[pf.PROJECT])
    project_doc["notes"] = payloads[0]
    project_doc["name"] = payloads[1]
    project_doc["task"]["params"]["corpus"] = payloads[2]
    history_doc = json.loads(members[pf.HISTORY])
    history_doc["runs"][0]["settings"]["pickled"] = payloads
    history_doc["runs"][0]["message"] = payloads[0]
    state_doc = json.loads(members[pf.TRAINER_STATE])
    state_doc["trainer_state"]["rng"] = {"python": payloads[2]}
    vocab = payloads + ["a"]

    def manifest(doc: dict) -> None:
        doc["plugins"] = [{"kind": "cell", "id": "lstm", "distribution": payloads[1], "version": payloads[0]}]

    rewrite(saved, replace={pf.PROJECT: json.dumps(project_doc).encode(), pf.HISTORY: json.dumps(history_doc).encode(),
                            pf.TRAINER_STATE: json.dumps(state_doc).encode(), pf.VOCAB: json.dumps(vocab).encode()},
            manifest=manifest)
    loaded = pf.load_project(saved)
    assert loaded.notes == payloads[0] and loaded.name == payloads[1]
    assert loaded.task.params["corpus"] == payloads[2]
    assert loaded.history.runs[0].settings["pickled"] == payloads
    assert loaded.checkpoint.trainer_state["rng"] == {"python": payloads[2]}
    assert loaded.vocab == vocab
    assert pf.read_manifest(saved)["plugins"][0]["version"] == payloads[0]
    assert not marker.exists()
    # and they survive a save unchanged, still as strings
    again = tmp_path / "again.seqwb"
    pf.save_project(loaded, again)
    assert pf.load_project(again).notes == payloads[0]
    assert not marker.exists()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(version=st.integers(min_value=pf.FORMAT_VERSION + 1, max_value=10 ** 12),
       app=st.one_of(st.text(min_size=1, max_size=20), st.none(), st.integers(), st.lists(st.integers())))
def test_any_future_version_says_made_by_a_newer_version(tmp_path_factory, version: int, app) -> None:
    path = tmp_path_factory.mktemp("future") / "p.seqwb"
    pf.save_project(make_project(checkpoint=False), path)

    def future(doc: dict) -> None:
        doc["format_version"] = version
        doc["app_version"] = app
        doc["members"] = ["a future layout"]

    rewrite(path, manifest=future)
    before = sorted(os.listdir(path.parent))
    with pytest.raises(ProjectFileError) as info:
        pf.load_project(path)
    shown = app if isinstance(app, str) and app else "unknown"
    assert str(info.value) == (f"{path} was made by a newer version: Sequence Workbench {shown} (file format "
                               f"{version}; this version, {workbench.__version__}, reads formats up to "
                               f"{pf.FORMAT_VERSION})")
    assert sorted(os.listdir(path.parent)) == before  # reading wrote nothing


def test_newer_version_message_reaches_the_cli(saved: Path, capsys) -> None:
    from workbench import cli
    rewrite(saved, manifest=lambda doc: doc.update(format_version=pf.FORMAT_VERSION + 1, app_version="3.1"))
    assert cli.main(["info", str(saved)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"seqwb: error: {saved} was made by a newer version: Sequence Workbench 3.1 (file format "
                          f"{pf.FORMAT_VERSION + 1};")
