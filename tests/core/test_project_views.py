"""What the window's views last showed is kept in the project file (``project.views``): written only when there is
some, read back as it was, and a file without it (or with a damaged one) still opens."""

from __future__ import annotations

import json
import zipfile

from tests.helpers import small_project
from workbench.core.project import Project
from workbench.core.projectfile import load_project, save_project


def test_views_round_trip_through_the_file_and_old_files_open_without_them(reg, tmp_path):
    project = small_project(reg)
    path = tmp_path / "p.seqwb"
    save_project(project, path)
    with zipfile.ZipFile(path) as z:
        assert "views" not in json.loads(z.read("project.json"))        # nothing kept: the file is as before
    assert load_project(path, registry=reg).views == {}

    kept = {"input": {"source": "text", "text": "x = 'a'\n"}, "recorded": {"source": "text", "value": "x = 'a'\n",
                                                                          "weights": "current"},
            "view": {"layer": "rnn.1", "quantity": "c", "unit": 7}}
    project.views["hidden_units"] = kept
    save_project(project, path)
    back = load_project(path, registry=reg)
    assert back.views == {"hidden_units": kept}
    assert back.graph.content_hash() == project.graph.content_hash()      # never part of the model

    # a damaged block is dropped, not fatal: views are never worth refusing a project for
    doc = project.to_json()
    assert Project.from_json({**doc, "views": ["not", "a", "dict"]}).views == {}
    assert Project.from_json({**doc, "views": {"hidden_units": 3, "other": {}}}).views == {"other": {}}
