"""Fixtures shared by the tests of the built-in plugins and of the plugin system (the same as the engine's tests
in tests/core have: each folder keeps its own so that neither depends on the other's conftest)."""

import pytest
import torch

from workbench.plugin_system import discover


@pytest.fixture(scope="module")
def reg():
    """The installed plugins (a module may define its own ``reg`` instead)."""
    return discover()


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a whole module (``pytestmark = pytest.mark.usefixtures("one_thread")``): tiny models
    gain nothing from more, and on a shared machine two threads can be many times slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
