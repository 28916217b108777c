"""Shared test helpers.

The repository root is put on ``sys.path`` so the tests run from a plain checkout (``pytest`` without
``pip install -e .``); subprocess-based tests get the same through the ``subprocess_env`` fixture.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# No test opens a real window: Qt renders offscreen unless the caller chose a platform.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The plugin loader reads which plugins the user disabled from SEQWB_CONFIG_DIR/plugins.json: tests (and their
# subprocesses) read an empty folder of their own, never the user's settings.
if "SEQWB_CONFIG_DIR" not in os.environ:
    import tempfile
    os.environ["SEQWB_CONFIG_DIR"] = tempfile.mkdtemp(prefix="seqwb-test-config-")

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def make_subprocess_env(*paths_first: str | os.PathLike) -> dict[str, str]:
    """A copy of ``os.environ`` whose ``PYTHONPATH`` is ``paths_first`` then the repository root.

    Anything already on ``PYTHONPATH`` is kept after those, so a CI that adds its own entries still works.
    """
    env = dict(os.environ)
    parts = [str(p) for p in paths_first] + [str(REPO_ROOT)]
    if env.get("PYTHONPATH"):
        parts += [p for p in env["PYTHONPATH"].split(os.pathsep) if p and p not in parts]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")  # never open a window from a test subprocess
    return env


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def subprocess_env():
    """``subprocess_env(*paths)`` -> an environment for ``subprocess.run`` (see :func:`make_subprocess_env`)."""
    return make_subprocess_env


@pytest.fixture(scope="module")
def reg():
    """The installed plugins, discovered once per module (a module or folder may define its own ``reg``)."""
    from workbench.plugin_system import discover
    return discover()


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a whole module (``pytestmark = pytest.mark.usefixtures("one_thread")``): tiny models
    gain nothing from more, and on a shared machine two threads can be many times slower than one."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
