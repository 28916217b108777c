"""``seqwb plugin new NAME``: a new plugin package that installs, loads and passes its tests as generated.

The package holds one cell — a leaky tanh RNN, small enough to read in a minute and a real, trainable cell — for
the author to edit into theirs, the registration module with its ``SEQWB_API`` range, tests that run the cell
contract through the pytest plugin Sequence Workbench installs, a ``pyproject.toml`` with the entry point, and
a README that says how to test and publish it.  Nothing here imports torch or Qt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from workbench import __version__
from workbench.schema.errors import WorkbenchError
from workbench.hookspecs import API_VERSION, ENTRY_POINT_GROUP

__all__ = ["ScaffoldError", "PluginNames", "plugin_names", "render", "scaffold"]


class ScaffoldError(WorkbenchError):
    """The name is not usable, or the target folder is in the way."""


@dataclass(frozen=True)
class PluginNames:
    distribution: str   # seqwb-my-cell      (what pip installs; the seqwb- prefix makes plugins easy to find)
    package: str        # seqwb_my_cell      (the import name)
    cell_id: str        # seqwb-my-cell.my-cell (namespaced by the distribution; saved in project files)
    entry_point: str    # my-cell
    class_name: str     # MyCellCell
    title: str          # My cell


def plugin_names(name: str) -> PluginNames:
    """Names derived from ``NAME`` (``my-cell`` or ``seqwb-my-cell``).  The cell's id is namespaced by the
    distribution (``seqwb-my-cell.my-cell``): a distribution owns the ids under its name, so no other plugin can
    take the cell over."""
    raw = (name or "").strip().lower().replace("_", "-")
    if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", raw):
        raise ScaffoldError(f"plugin name {name!r}: use lower-case letters, digits and single dashes, starting "
                            f"with a letter (e.g. my-cell)")
    short = raw[len("seqwb-"):] if raw.startswith("seqwb-") else raw
    if not short:
        raise ScaffoldError(f"plugin name {name!r}: say what it is after 'seqwb-' (e.g. seqwb-my-cell)")
    words = short.split("-")
    return PluginNames(distribution=f"seqwb-{short}", package="seqwb_" + short.replace("-", "_"),
                       cell_id=f"seqwb-{short}.{short}",
                       entry_point=short, class_name="".join(w.capitalize() for w in words) + "Cell",
                       title=" ".join(words).capitalize())


def _major_range() -> str:
    major = int(API_VERSION.split(".")[0])
    return f">={API_VERSION},<{major + 1}"


def render(n: PluginNames) -> dict[str, str]:
    """Relative path -> file content."""
    pkg = n.package
    return {
        "pyproject.toml": f'''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{n.distribution}"
version = "0.1.0"
description = "{n.title}: a recurrent cell for Sequence Workbench"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["sequence-workbench>={__version__}", "torch"]

[project.optional-dependencies]
test = ["pytest>=8"]

# Sequence Workbench finds plugins through this entry-point group.
[project.entry-points."{ENTRY_POINT_GROUP}"]
{n.entry_point} = "{pkg}.plugin"

[tool.setuptools]
packages = ["{pkg}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
''',
        f"{pkg}/__init__.py": f'''"""{n.title}: a Sequence Workbench plugin."""

__version__ = "0.1.0"
''',
        f"{pkg}/plugin.py": f'''"""Registration: plain data only.  Do not import torch here; the cell's module is named by a "module:attr"
string and imported when a model first uses the cell."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.api import CellSpec, hookimpl, param

#: the plugin-API versions this plugin is written for; Sequence Workbench {API_VERSION} checks it before loading it
SEQWB_API = "{_major_range()}"
VERSION = "0.1.0"


@dataclass
class {n.class_name}Params:
    # Every parameter needs a default; param() gives the inspector form, `--set` and the file reader its limits.
    leak: float = param(0.5, min=0.0, max=1.0,
                        help="how much of the new value replaces the old state each step (1: a plain tanh RNN)")


@hookimpl
def seqwb_cells() -> list[CellSpec]:
    return [
        CellSpec(
            # namespaced by this distribution; saved in project files: never change it once published (or list
            # the old id in former_ids, so that projects saved with it still open)
            id="{n.cell_id}",
            title="{n.title}",
            version=VERSION,
            params={n.class_name}Params,
            factory="{pkg}.cell:{n.class_name}",  # imported only when a model uses the cell
            gates=(),                             # names of the gate activations step() reports, if any
            state_names=("h",),
            description="A leaky tanh RNN: h = (1 - a) * h + a * tanh(W x + U h + b).",
        ),
    ]
''',
        f"{pkg}/cell.py": f'''"""The cell.  Edit it into yours; `pytest` checks it against the cell contract."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from workbench.api import Cell, State


class {n.class_name}(Cell):
    """A leaky-integrator tanh RNN (the leaky units of Jaeger et al. 2007, "Optimization and applications of echo
    state networks with leaky-integrator neurons"), trained by backpropagation:

        h_t = (1 - a) * h_{{t-1}} + a * tanh(W x_t + U h_{{t-1}} + b)

    How a cell is put together:
    - ``input_projection`` maps the inputs of all timesteps at once (one matrix product: fast);
    - ``step_projected`` does one timestep from the projected input and the state; fill ``gates`` (a dict) with
      each gate's activations when it is given one, under the names of the spec's ``gates``;
    - ``recurrent_weights`` names the hidden-to-hidden matrices (the spectral-norm probe plots them);
    - the state is a tuple of ``[batch, hidden]`` tensors named by ``state_names`` (``h`` first).
    ``sequence`` (the whole-sequence path) defaults to a loop over ``step_projected``; override it if you have a
    fused kernel, sharing the same parameters, and declare ``has_fused = True`` (checked against the step when a
    model is built).
    """

    gate_names = ()
    state_names = ("h",)
    split_step = True      # the step comes in the two parts below

    def __init__(self, input_size: int, hidden_size: int, params=None):
        super().__init__(input_size, hidden_size)
        if params is None:
            from {pkg}.plugin import {n.class_name}Params
            params = {n.class_name}Params()
        self.params = params
        self.input_linear = nn.Linear(self.input_size, self.hidden_size)          # W, b
        self.U = nn.Parameter(torch.empty(self.hidden_size, self.hidden_size))    # U
        nn.init.orthogonal_(self.U)

    def input_projection(self, x: Tensor) -> Tensor:
        return self.input_linear(x)                                              # W x_t + b, every t at once

    def step_projected(self, xp_t: Tensor, state: State, gates: Optional[dict] = None) -> tuple[Tensor, State]:
        (h,) = state
        a = self.params.leak
        h = (1 - a) * h + a * torch.tanh(xp_t + h @ self.U.T)
        return h, (h,)

    def recurrent_weights(self) -> dict[str, Tensor]:
        return {{"U": self.U}}
''',
        "tests/test_cell.py": f'''"""The fixtures come from Sequence Workbench's pytest plugin (installed with it): every plugin gets the same
contract checks as the built-in cells."""

import torch

torch.set_num_threads(1)


def test_cell_contract(seqwb_check_cell):
    # state shapes; finite outputs; gates; sequence() and sequence_traced() equal stepping (outputs, states,
    # gradients); gradcheck; init and after_step; the trial that building a model runs
    seqwb_check_cell("{n.cell_id}")


def test_every_contribution_passes_its_contract(seqwb_check_plugin):
    # every cell, block, task, decoder, template and feature track this distribution registers
    seqwb_check_plugin("{n.distribution}")


def test_the_plugin_is_registered(seqwb_registry):
    spec = seqwb_registry.cell("{n.cell_id}")
    assert spec.distribution == "{n.distribution}"
    assert not [f for f in seqwb_registry.failures if f.distribution == "{n.distribution}"]


def test_leak_one_is_a_plain_tanh_rnn(seqwb_registry):
    spec = seqwb_registry.cell("{n.cell_id}")
    cell = spec.load()(3, 4, spec.params(leak=1.0))
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    out, _ = cell.step(x, (h,))
    expected = torch.tanh(cell.input_linear(x) + h @ cell.U.T)
    torch.testing.assert_close(out, expected)
''',
        "README.md": f'''# {n.distribution}

A recurrent cell for [Sequence Workbench](https://pypi.org/project/sequence-workbench/), made with
`seqwb plugin new {n.entry_point}`. It starts as a leaky tanh RNN; edit `{pkg}/cell.py` (the cell) and
`{pkg}/plugin.py` (its id, title and parameters) into yours.

## Develop

```sh
pip install -e .                # Sequence Workbench must be installed in the same environment
seqwb plugins                   # the cell "{n.cell_id}" is listed with this distribution
seqwb new char-lm -o try.seqwb --set cell={n.cell_id} --set hidden_size=128
seqwb train try.seqwb --steps 200
pytest                          # the contract checks, from Sequence Workbench's pytest plugin
seqwb plugins --check --only {n.distribution}   # the same checks; exits non-zero on a failure (for CI)
```

## Publish

```sh
pip install build twine
python -m build                 # dist/{pkg}-0.1.0.tar.gz and the wheel
twine upload dist/*             # to PyPI (try https://test.pypi.org first: twine upload -r testpypi dist/*)
```

Keep the `seqwb-` prefix in the name so people can find plugins on PyPI. The cell's id, `{n.cell_id}`, is
namespaced by the distribution's name, so no other plugin can register it; keep it stable (project files store
it), or list the old id in the spec's `former_ids`. Widen `SEQWB_API` in `{pkg}/plugin.py` only after testing with
the new plugin API.
''',
        ".gitignore": "__pycache__/\n*.egg-info/\nbuild/\ndist/\n",
    }


def scaffold(name: str, parent: str | Path = ".") -> tuple[PluginNames, Path, list[Path]]:
    """Write the package for ``name`` into ``parent/<distribution>``; refuses a folder that exists and is not
    empty (nothing is overwritten).  Returns the names, the folder and the files written."""
    from workbench.atomic import atomic_write
    names = plugin_names(name)
    root = Path(parent) / names.distribution
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ScaffoldError(f"{root} exists and is not empty; choose another name or folder (nothing was written)")
    written = []
    for rel, text in render(names).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "w") as fh:
            fh.write(text)
        written.append(path)
    return names, root, written
