"""pytest plugin (auto-loaded through the ``pytest11`` entry point): contract checks as fixtures.

A plugin author writes::

    def test_my_cell_contract(seqwb_check_cell):
        seqwb_check_cell("my-cell")        # a registered cell id

and gets the same checks the built-in cells pass.  Importing this module imports neither torch nor Qt.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def seqwb_registry():
    """A fresh registry of every installed plugin."""
    from workbench.plugin_system import discover
    return discover()


@pytest.fixture
def seqwb_check_cell(seqwb_registry):
    """``seqwb_check_cell(cell_id)`` runs the cell contract checks on a registered cell."""
    def check(cell_id: str) -> None:
        from workbench.testing.contracts import check_cell_spec
        check_cell_spec(seqwb_registry.cell(cell_id))
    return check
