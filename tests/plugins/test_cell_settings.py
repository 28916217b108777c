"""``--set NODE.cell.NAME`` sets a parameter of the cell a node chooses; a cell's setting written anywhere else is
answered with the key to write (issue 17, point 5)."""

from __future__ import annotations

import pytest

from workbench.core.settings import apply_project_settings, template_project
from workbench.plugin_system import discover
from workbench.schema.params import ParamError


@pytest.fixture(scope="module")
def reg():
    return discover()


def _project(reg):
    project, _ = template_project(reg.template("char-lm"), {}, reg)
    return project


def test_node_cell_name_sets_the_cells_own_parameter(reg):
    project = _project(reg)
    assert apply_project_settings(project, {"rnn.cell.forget_bias": "2"}, reg) == ["rnn.cell.forget_bias = 2.0"]
    assert project.graph.nodes["rnn"].params["cell.forget_bias"] == 2.0


@pytest.mark.parametrize("key", ["forget_bias", "rnn.forget_bias"])
def test_a_cell_setting_written_elsewhere_points_to_node_cell_name(reg, key):
    with pytest.raises(ParamError) as info:
        apply_project_settings(_project(reg), {key: "2"}, reg)
    assert str(info.value) == (f"unknown setting {key!r}: it is a setting of the cell a node uses; write "
                               f"rnn.cell.forget_bias=2 (NODE.cell.NAME)")


def test_other_mistakes_keep_their_messages(reg):
    with pytest.raises(ParamError, match=r"^rnn\.hidden_size: expected int, got 'x'$"):
        apply_project_settings(_project(reg), {"rnn.hidden_size": "x"}, reg)
    with pytest.raises(ParamError, match=r"a cell's own settings: NODE\.cell\.NAME; or task\.X / decode\.X$"):
        apply_project_settings(_project(reg), {"nothing_like_it": "1"}, reg)
    with pytest.raises(ParamError, match=r"unknown setting 'forgetbias' \(did you mean 'forget_bias'\?\); "
                                         r"'rnn\.cell' accepts: forget_bias, fused"):
        apply_project_settings(_project(reg), {"rnn.cell.forgetbias": "1"}, reg)
