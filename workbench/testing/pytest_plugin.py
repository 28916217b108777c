"""pytest plugin (auto-loaded through the ``pytest11`` entry point): the plugin contracts as fixtures.

A plugin author writes::

    def test_my_cell(seqwb_check_cell):
        seqwb_check_cell("my-cells.mgu")           # a registered cell id

    def test_everything_my_distribution_adds(seqwb_check_plugin):
        seqwb_check_plugin("my-cells")              # every contribution of the distribution, every kind

and gets the same checks the built-in contributions pass (:mod:`workbench.testing.contracts`).  A failure names
the contribution, its plugin, the check and the likely fix.  ``params`` may be a parameters dataclass or a dict
of settings (``{"hidden_size": 8}``).  Importing this module imports neither torch nor Qt.
"""

from __future__ import annotations

from typing import Any

import pytest


def _params(spec: Any, params: Any) -> Any:
    if params is None or not isinstance(params, dict):
        return params
    from workbench.schema.params import params_from_dict
    return params_from_dict(spec.params, params, spec.id)


@pytest.fixture
def seqwb_registry():
    """A fresh registry of every installed plugin."""
    from workbench.plugin_system import discover
    return discover()


@pytest.fixture
def seqwb_check_cell(seqwb_registry):
    """``seqwb_check_cell(cell_id, params=None)``: the cell contract (state shapes, finite outputs, gates,
    sequence and sequence_traced against stepping, recurrent matrices, gradcheck, init, after_step, the build
    trial)."""
    def check(cell_id: str, params: Any = None) -> None:
        from workbench.testing.contracts import check_cell_spec
        spec = seqwb_registry.cell(cell_id)
        check_cell_spec(spec, _params(spec, params))
    return check


@pytest.fixture
def seqwb_check_block(seqwb_registry):
    """``seqwb_check_block(block_id, params=None, in_sizes=None, inputs=None)``: the block contract (build,
    declared ports, output layouts, finite outputs, stepping against forward)."""
    def check(block_id: str, params: Any = None, in_sizes: dict | None = None, inputs: dict | None = None) -> None:
        from workbench.testing.contracts import check_block_spec
        spec = seqwb_registry.block(block_id)
        check_block_spec(spec, seqwb_registry, _params(spec, params), in_sizes, inputs)
    return check


@pytest.fixture
def seqwb_check_task(seqwb_registry):
    """``seqwb_check_task(task_id, params=None, base_dir=None) -> task``: the task contract (data, sizes,
    batches, loss, count, loss_last_step as the probe calls it, metrics)."""
    def check(task_id: str, params: Any = None, base_dir: Any = None) -> Any:
        from workbench.testing.contracts import check_task_spec
        spec = seqwb_registry.task(task_id)
        return check_task_spec(spec, _params(spec, params), base_dir)
    return check


@pytest.fixture
def seqwb_check_decoder(seqwb_registry):
    """``seqwb_check_decoder(decoder_id, settings=None)``: the decoder contract (result fields, the end token,
    width 1 equals greedy, the search tree, determinism)."""
    def check(decoder_id: str, settings: dict | None = None) -> None:
        from workbench.testing.contracts import check_decoder_spec
        check_decoder_spec(seqwb_registry.decoder(decoder_id), settings)
    return check


@pytest.fixture
def seqwb_check_template(seqwb_registry):
    """``seqwb_check_template(template_id, params=None) -> dict``: the template contract (``ui=`` hints, the
    project document against the template format)."""
    def check(template_id: str, params: Any = None) -> dict:
        from workbench.testing.contracts import check_template_spec
        spec = seqwb_registry.template(template_id)
        return check_template_spec(spec, seqwb_registry, _params(spec, params))
    return check


@pytest.fixture
def seqwb_check_feature_track(seqwb_registry):
    """``seqwb_check_feature_track(track_id)``: one finite number per character."""
    def check(track_id: str) -> None:
        from workbench.testing.contracts import check_feature_track_spec
        check_feature_track_spec(seqwb_registry.get("feature_track", track_id))
    return check


@pytest.fixture
def seqwb_check_plugin(seqwb_registry):
    """``seqwb_check_plugin(distribution)``: every contribution of an installed distribution, each with its
    default parameters; fails listing every failed check, and fails if the distribution did not load or has
    nothing registered.  (A task or block that needs data or sizes its defaults do not give is listed as not
    checked: check it with ``seqwb_check_task`` / ``seqwb_check_block`` and the right arguments.)"""
    def check(distribution: str) -> list:
        from workbench.plugin_system.user_settings import normalize
        from workbench.testing.contracts import check_registry
        load = [f.message() for f in seqwb_registry.failures if normalize(f.distribution) == normalize(distribution)]
        results = check_registry(seqwb_registry, distributions={distribution})
        if load:
            pytest.fail("\n".join(load), pytrace=False)
        if not results:
            pytest.fail(f"no contribution of the distribution {distribution!r} is registered", pytrace=False)
        failed = [r.message for r in results if r.status == "failed"]
        if failed:
            pytest.fail("\n".join(failed), pytrace=False)
        return results
    return check
