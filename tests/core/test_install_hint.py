"""The missing-plugin message of a project file: the install command in it is built from a validated distribution
name, and nothing else the file supplies is shown as words of advice (issue 20, "A shared file must not steer the
user").  The same through ``seqwb info`` / ``seqwb train`` on real files is in tests/test_hostile_plugins.py."""

from __future__ import annotations

import pytest

from workbench.core.graph import Graph
from workbench.core.project import Project, TaskConfig
from workbench.core.projectfile.plugins import check_plugins
from workbench.plugin_system.loader import Registry
from workbench.schema.errors import MissingPluginError


def message_for(**entry) -> str:
    project = Project(name="shared", graph=Graph(), task=TaskConfig(id=""))
    manifest = {"plugins": [{"kind": "cell", "id": "turbo.lstm", **entry}]}
    with pytest.raises(MissingPluginError) as info:
        check_plugins(manifest, project, Registry(), "p.seqwb")
    return str(info.value)


@pytest.mark.parametrize("provider", [
    "--index-url https://pypi.evil.example/simple turbo",
    "turbo --extra-index-url=https://pypi.evil.example/simple",
    "https://pypi.evil.example/turbo.whl",
    "./turbo",
    "turbo\n\x1b[2Jpip install evil",
    "-r requirements.txt",
    "a" * 200,
])
def test_a_provider_that_is_not_a_distribution_name_gets_no_install_command(provider):
    message = message_for(distribution=provider, version="1.0")
    assert message == ("p.seqwb: this project needs cell 'turbo.lstm', which is not installed (the file names its "
                       "provider in a form that is not a distribution name, so no install command is suggested: "
                       "find the plugin that provides it yourself)")


def test_a_valid_name_gets_its_command_and_a_bad_version_is_left_out():
    assert message_for(distribution="seqwb-turbo", version="1.0").endswith(
        "cell 'turbo.lstm' from the plugin distribution 'seqwb-turbo' 1.0, which is not installed "
        "(pip install seqwb-turbo)")
    assert message_for(distribution="seqwb-turbo", version="1.0 --pre --index-url https://x").endswith(
        "cell 'turbo.lstm' from the plugin distribution 'seqwb-turbo', which is not installed "
        "(pip install seqwb-turbo)")


def test_the_id_and_kind_from_the_file_are_shown_quoted_and_short():
    project = Project(name="shared", graph=Graph(), task=TaskConfig(id=""))
    manifest = {"plugins": [{"kind": "cell; pip install evil", "id": "x\x1b[2J" + "y" * 500}]}
    with pytest.raises(MissingPluginError) as info:
        check_plugins(manifest, project, Registry(), "p.seqwb")
    message = str(info.value)
    assert "\x1b" not in message and "y" * 100 not in message
    assert message.startswith("p.seqwb: this project needs contribution of kind 'cell; pip install evil' "
                              "'x\\x1b[2Jyyy")
