"""A third-party plugin, installed as a real distribution, works end to end, and cannot be taken over.

``tests/fixtures/thirdparty_plugin`` (``seqwb-fixture-cells``: a Minimal Gated Unit cell) and
``tests/fixtures/broken_plugins`` (``seqwb-fixture-broken``: an import error and a raising hook) are pip-installed
into a temporary directory; subprocesses with that directory on ``PYTHONPATH`` see their ``seqwb.plugins`` entry
points through ``importlib.metadata``, exactly as an installed plugin is seen.

The squatting scenarios install, each into its own folder so that any combination can be put on the path, the
fixture as it was before ids were namespaced (0.2.0, the bare id ``fixture-mgu``) and a second distribution,
``seqwb-fixture-squatter``, that registers the same ids: a project saved with the first is refused, naming both,
and its file stays byte for byte what it was.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
CELLS_DIST = "seqwb-fixture-cells"
MGU = "seqwb-fixture-cells.mgu"      # the fixture's cell, namespaced by its distribution
SQUAT_DIST = "seqwb-fixture-squatter"
BROKEN_DIST = "seqwb-fixture-broken"
GROUP = "seqwb.plugins"


def _main_project_installed() -> bool:
    """True if ``sequence-workbench`` is installed (normally: CI, ``pip install -e .``), built-ins included."""
    try:
        md.distribution("sequence-workbench")
    except md.PackageNotFoundError:
        return False
    return importlib.util.find_spec("workbench_plugins") is not None


def _link_main_project(target: Path) -> None:
    """Make the repository's built-in plugins visible from ``target`` without copying the repository.

    The same as an editable install: a ``*.dist-info`` holding the project's ``seqwb.plugins`` entry points, and
    a ``workbench_plugins`` package that is the repository's ``plugins/`` folder (``workbench`` itself comes from
    the repository root on ``PYTHONPATH``).
    """
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    package_dir = project["tool"]["setuptools"]["package-dir"]["workbench_plugins"]
    init = (REPO / "workbench" / "__init__.py").read_text(encoding="utf-8")
    version = re.search(r"""__version__\s*=\s*["']([^"']+)""", init).group(1)
    info = target / f"sequence_workbench-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: sequence-workbench\nVersion: {version}\n",
                                   encoding="utf-8")
    entry_points = project["project"]["entry-points"][GROUP]
    (info / "entry_points.txt").write_text(
        f"[{GROUP}]\n" + "".join(f"{name} = {value}\n" for name, value in entry_points.items()), encoding="utf-8")
    source = REPO / package_dir
    link = target / "workbench_plugins"
    try:
        os.symlink(source, link, target_is_directory=True)
    except OSError:  # no symlinks (e.g. Windows without developer mode): a package whose path is plugins/
        link.mkdir()
        (link / "__init__.py").write_text(
            f"__path__ = [{str(source)!r}]\n"
            f"exec(compile(open(__path__[0] + '/__init__.py').read(), __path__[0] + '/__init__.py', 'exec'))\n",
            encoding="utf-8")


def _pip_install_to(source: Path, target: Path, base: Path) -> None:
    """``pip install --target`` of a copy of ``source`` (setuptools writes build/ and *.egg-info beside it)."""
    src = base / "src" / f"{target.name}-{source.name}"
    shutil.copytree(source, src, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__"))
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
           "--disable-pip-version-check", "--no-input", "-q", "--target", str(target), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=str(base))
    assert proc.returncode == 0, f"pip install of {source.name} failed:\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture(scope="session")
def main_target(tmp_path_factory) -> Path | None:
    """Where the repository's built-ins are linked when sequence-workbench is not installed (else None)."""
    if _main_project_installed():
        return None
    target = tmp_path_factory.mktemp("main") / "site"
    target.mkdir()
    _link_main_project(target)
    return target


@pytest.fixture(scope="session")
def plugin_env(tmp_path_factory, subprocess_env, main_target) -> dict[str, str]:
    """Install both fixture distributions into a temporary target; the environment that sees them."""
    base = tmp_path_factory.mktemp("thirdparty")
    target = base / "site"
    for name in ("thirdparty_plugin", "broken_plugins"):
        _pip_install_to(FIXTURES / name, target, base)
    return subprocess_env(target, *([main_target] if main_target else []))
def run_python(args, env, cwd, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env=env, cwd=str(cwd), capture_output=True, text=True,
                          timeout=timeout)


# ---- a) discovery through real entry points ----------------------------------------------------------------

DISCOVER = textwrap.dedent("""
    import dataclasses, json, sys
    from workbench.plugin_system import discover

    registry = discover()
    print(json.dumps({
        "cells": {s.id: dataclasses.asdict(s) | {"params": s.params.__name__}
                  for kind, s in registry.all() if kind == "cell"},
        "plugins": registry.plugins,
        "failures": [dataclasses.asdict(f) for f in registry.failures],
        "torch": "torch" in sys.modules,
    }))
""")


def test_discovery_finds_the_installed_plugin_and_survives_the_broken_one(plugin_env, tmp_path):
    proc = run_python(["-c", DISCOVER], plugin_env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])

    assert MGU in report["cells"], report
    mgu = report["cells"][MGU]
    assert mgu["distribution"] == CELLS_DIST
    assert mgu["plugin"] == "fixture-cells"
    assert mgu["version"] == "0.4.0" and tuple(mgu["former_ids"]) == ("fixture-mgu",)
    assert mgu["title"] == "Minimal Gated Unit (fixture)"
    assert mgu["factory"] == "seqwb_fixture_cells.mgu:MGUCell"
    assert mgu["params"] == "MGUParams"
    assert tuple(mgu["gates"]) == ("f",) and tuple(mgu["state_names"]) == ("h",)
    assert [CELLS_DIST, "fixture-cells", "0.4.0"] in report["plugins"]

    broken = {f["entry_point"]: f for f in report["failures"] if f["distribution"] == BROKEN_DIST}
    assert len([f for f in report["failures"] if f["distribution"] == BROKEN_DIST]) == 2, report["failures"]
    assert set(broken) == {"broken-import", "broken-hook"}
    assert broken["broken-import"]["error"].startswith("ImportError: seqwb_fixture_broken.bad_import needs")
    assert broken["broken-import"]["hook"] == ""
    assert broken["broken-hook"]["error"] == "RuntimeError: boom"
    assert broken["broken-hook"]["hook"] == "seqwb_cells"
    assert "Traceback" in broken["broken-hook"]["detail"]
    # the module with the raising hook did register; the one that failed to import did not
    assert [BROKEN_DIST, "broken-hook", "0.1.0"] in report["plugins"]
    assert not any(p[1] == "broken-import" for p in report["plugins"])
    assert not [f for f in report["failures"] if f["distribution"] == CELLS_DIST]

    assert report["torch"] is False, "discovery imported torch"


# ---- b) the cell itself ------------------------------------------------------------------------------------

@pytest.fixture()
def mgu_module(monkeypatch):
    """The fixture package imported from its sources (the installed copy is identical)."""
    monkeypatch.syspath_prepend(str(FIXTURES / "thirdparty_plugin"))
    import seqwb_fixture_cells.mgu as mgu
    import seqwb_fixture_cells.plugin as plugin

    yield mgu, plugin
    for name in [m for m in sys.modules if m == "seqwb_fixture_cells" or m.startswith("seqwb_fixture_cells.")]:
        del sys.modules[name]


def _make_cell(mgu_module, input_size, hidden_size, dtype=None, **params):
    torch = pytest.importorskip("torch")
    _, plugin = mgu_module
    spec = plugin.seqwb_cells()[0]
    spec.check()
    torch.manual_seed(0)
    cell = spec.load()(input_size, hidden_size, plugin.MGUParams(**params))
    return cell.to(dtype) if dtype is not None else cell


def test_the_spec_and_the_cell_agree(mgu_module):
    from workbench.core.cells import Cell

    torch = pytest.importorskip("torch")
    mgu, plugin = mgu_module
    spec = plugin.seqwb_cells()[0]
    cell = _make_cell(mgu_module, 3, 5, gate_bias=-1.5)
    assert isinstance(cell, Cell) and isinstance(cell, mgu.MGUCell)
    assert cell.gate_names == spec.gates == ("f",)
    assert cell.state_names == spec.state_names == ("h",)
    assert set(cell.recurrent_weights()) == {"U_f", "U_h"}
    assert all(w.shape == (5, 5) for w in cell.recurrent_weights().values())
    (h0,) = cell.init_state(2)
    assert h0.shape == (2, 5) and not h0.any()
    assert torch.all(cell.input_projection(torch.zeros(1, 3))[:, :5] == -1.5)  # b_f carries the gate bias


def test_step_follows_the_paper(mgu_module):
    torch = pytest.importorskip("torch")
    cell = _make_cell(mgu_module, 3, 4, dtype=torch.float64, gate_bias=0.5)
    x = torch.randn(2, 3, dtype=torch.float64)
    h = torch.randn(2, 4, dtype=torch.float64)
    W = cell.input_linear.weight
    b = cell.input_linear.bias
    W_f, W_h, b_f, b_h = W[:4], W[4:], b[:4], b[4:]
    U = cell.recurrent_weights()
    f = torch.sigmoid(x @ W_f.T + h @ U["U_f"].T + b_f)
    h_tilde = torch.tanh(x @ W_h.T + (f * h) @ U["U_h"].T + b_h)
    expected = (1 - f) * h + f * h_tilde
    gates = {}
    out, state = cell.step(x, (h,), gates)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)
    assert isinstance(state, tuple) and len(state) == 1 and state[0] is out
    assert set(gates) == {"f"}
    torch.testing.assert_close(gates["f"], f, atol=1e-12, rtol=1e-12)


def test_sequence_equals_stepping(mgu_module):
    torch = pytest.importorskip("torch")
    T, B, I, H = 7, 3, 5, 6
    cell = _make_cell(mgu_module, I, H)
    torch.manual_seed(1)
    x = torch.randn(T, B, I)
    h0 = torch.randn(B, H)

    x1, h01 = x.clone().requires_grad_(), h0.clone().requires_grad_()
    out_seq, (h_seq,) = cell.sequence(x1, (h01,))
    loss_seq = (out_seq ** 2).sum() + h_seq.sin().sum()
    grads_seq = torch.autograd.grad(loss_seq, [x1, h01, *cell.parameters()])

    x2, h02 = x.clone().requires_grad_(), h0.clone().requires_grad_()
    state = (h02,)
    outs = []
    for t in range(T):
        h, state = cell.step(x2[t], state)
        outs.append(h)
    out_step = torch.stack(outs)
    loss_step = (out_step ** 2).sum() + state[0].sin().sum()
    grads_step = torch.autograd.grad(loss_step, [x2, h02, *cell.parameters()])

    assert out_seq.shape == (T, B, H)
    torch.testing.assert_close(out_seq, out_step, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(h_seq, state[0], atol=1e-6, rtol=1e-6)
    names = ["x", "h0"] + [n for n, _ in cell.named_parameters()]
    for name, a, b in zip(names, grads_seq, grads_step):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6, msg=lambda m, name=name: f"gradient of {name}: {m}")


def test_gradcheck(mgu_module):
    torch = pytest.importorskip("torch")
    cell = _make_cell(mgu_module, 2, 3, dtype=torch.float64, gate_bias=0.3)
    torch.manual_seed(2)
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    params = tuple(cell.parameters())  # passed as inputs too: gradcheck perturbs them in place

    def run(x, h0, *_params):
        out, (h,) = cell.sequence(x, (h0,))
        return out, h

    assert torch.autograd.gradcheck(run, (x, h0, *params), eps=1e-6, atol=1e-7)


# ---- c) the acceptance test: the CLI lists, builds and trains with the third-party cell --------------------

def _json_lines(text: str) -> list[dict]:
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"stdout line {number} is not JSON: {line!r}")
    return out


def test_cli_lists_builds_and_trains_with_the_plugin_cell(plugin_env, tmp_path):
    # seqwb plugins --json: one entry per contribution and per failure
    proc = run_python(["-m", "workbench", "plugins", "--json"], plugin_env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    entries = json.loads(proc.stdout)
    assert isinstance(entries, list)
    ok = [e for e in entries if e.get("kind") == "cell" and e.get("id") == MGU]
    assert len(ok) == 1, entries
    assert ok[0].get("distribution") == CELLS_DIST and ok[0].get("status") == "ok", ok[0]
    errors = [e for e in entries if e.get("status") == "error" and e.get("distribution") == BROKEN_DIST]
    assert errors, entries
    text = json.dumps(errors)
    assert "boom" in text and "ImportError" in text, errors

    # seqwb new char-lm with the plugin's cell
    project = tmp_path / "p.seqwb"
    proc = run_python(["-m", "workbench", "new", "char-lm", "-o", str(project), "--set", f"cell={MGU}",
                       "--set", "hidden_size=32", "--set", "layers=1", "--set", "embed_size=16"],
                      plugin_env, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert project.is_file()
    if zipfile.is_zipfile(project):  # the cell choice is in the project's JSON, wherever the format keeps it
        with zipfile.ZipFile(project) as archive:
            saved = "".join(archive.read(n).decode("utf-8", "replace") for n in archive.namelist()
                            if n.endswith(".json"))
    else:
        saved = project.read_text(encoding="utf-8", errors="replace")
    assert f'"{MGU}"' in saved

    # seqwb train: JSON lines, five steps, a finite loss
    proc = run_python(["-m", "workbench", "train", str(project), "--steps", "5", "--json",
                       "--set", "batch_size=4", "--set", "chunk_len=16", "--set", "eval_every=0",
                       "--set", "sample_every=0", "--set", "task.max_chars=20000"], plugin_env, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = _json_lines(proc.stdout)
    steps = [line for line in lines if "step" in line and "loss" in line]
    assert steps, lines
    assert steps[-1]["step"] == 5, steps[-1]
    assert isinstance(steps[-1]["loss"], (int, float)) and math.isfinite(steps[-1]["loss"]), steps[-1]

    # the same project opened where the plugin is not installed: one clear line naming the cell and the
    # distribution to install; the file is untouched
    before = project.read_bytes()
    bare_env = subprocess_env_without(plugin_env)
    for command in (["info", str(project)], ["train", str(project), "--steps", "1"]):
        proc = run_python(["-m", "workbench", *command], bare_env, tmp_path)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        first = proc.stderr.strip().splitlines()[0]
        assert MGU in first and CELLS_DIST in first, proc.stderr
        assert "Traceback" not in proc.stderr
    assert project.read_bytes() == before


def subprocess_env_without(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the fixture installation folder taken off PYTHONPATH (the repository root stays)."""
    parts = env["PYTHONPATH"].split(os.pathsep)
    bare = dict(env)
    bare["PYTHONPATH"] = os.pathsep.join(p for p in parts if Path(p).resolve() == REPO.resolve()
                                         or not any(Path(p).glob("seqwb_fixture*")))
    return bare


# ---- d) --strict and --check: what a plugin's CI gates on ----------------------------------------------------------

def test_strict_exits_non_zero_when_a_plugin_failed_to_load(plugin_env, tmp_path):
    proc = run_python(["-m", "workbench", "plugins", "--strict"], plugin_env, tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "seqwb: 2 plugin problem(s) at loading"
    assert "FAILED" in proc.stdout and "RuntimeError: boom" in proc.stdout
    only = run_python(["-m", "workbench", "plugins", "--strict", "--only", CELLS_DIST], plugin_env, tmp_path)
    assert only.returncode == 0, only.stderr       # the gate of seqwb-fixture-cells' CI: nothing wrong with it


def test_check_runs_the_contract_suite_on_an_installed_plugin(plugin_env, tmp_path):
    proc = run_python(["-m", "workbench", "plugins", "--check", "--only", CELLS_DIST, "--json"], plugin_env,
                      tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    rows = json.loads(proc.stdout)
    assert not [r for r in rows if r["distribution"] == CELLS_DIST and r["status"] != "ok"], rows


@pytest.fixture(scope="session")
def breakers_env(tmp_path_factory, subprocess_env, main_target) -> dict[str, str]:
    base = tmp_path_factory.mktemp("breakers")
    _pip_install_to(FIXTURES / "contract_breakers", base / "site", base)
    return subprocess_env(base / "site", *([main_target] if main_target else []))


def test_check_names_every_broken_contribution_and_exits_non_zero(breakers_env, tmp_path):
    sys.path.insert(0, str(FIXTURES / "contract_breakers"))
    try:
        from seqwb_contract_breakers.plugin import EXPECTED
    finally:
        sys.path.remove(str(FIXTURES / "contract_breakers"))
        for name in [m for m in sys.modules if m.startswith("seqwb_contract_breakers")]:
            del sys.modules[name]
    dist = "seqwb-contract-breakers"
    proc = run_python(["-m", "workbench", "plugins", "--check", "--only", dist, "--json"], breakers_env, tmp_path,
                      timeout=600)
    assert proc.returncode == 1, proc.stderr
    failed = {r["id"]: r for r in json.loads(proc.stdout) if r["status"] == "error"}
    assert {i: r["check"] for i, r in failed.items()} == {i: c for i, c in EXPECTED.items() if c is not None}
    assert all(r["error"].startswith(f"{r['kind'].replace('architecture', 'block').replace('_', ' ')} {r['id']!r} "
                                     f"from plugin breakers (distribution {dist}): {r['check']}: ")
               for r in failed.values())
    text = run_python(["-m", "workbench", "plugins", "--check", "--only", dist], breakers_env, tmp_path,
                      timeout=600)
    assert text.returncode == 1
    assert f"seqwb: {len(failed)} contract check(s) failed" in text.stderr
    assert any(line.startswith("FAILED") and "cell.state-shapes" in line for line in text.stdout.splitlines())


# ---- e) ids are owned: a second distribution cannot take a saved project over --------------------------------------

LEGACY_PLUGIN = '''
"""seqwb-fixture-cells as it was before ids were namespaced."""
from dataclasses import dataclass
from workbench.api import CellSpec, hookimpl, param

SEQWB_API = ">=1,<2"


@dataclass
class MGUParams:
    gate_bias: float = param(0.0, min=-10.0, max=10.0, help="initial bias of the gate f")


@hookimpl
def seqwb_cells():
    return [CellSpec(id="fixture-mgu", title="Minimal Gated Unit (fixture)", version="0.2.0", params=MGUParams,
                     factory="seqwb_fixture_cells.mgu:MGUCell", gates=("f",), state_names=("h",))]
'''

SQUATTER_PLUGIN = '''
"""A second distribution that registers the fixture's ids: the bare one it had, and its namespaced one."""
import torch
from dataclasses import dataclass
from workbench.api import Cell, CellSpec, hookimpl, param

SEQWB_API = ">=1,<2"


@dataclass
class Params:
    gate_bias: float = param(0.0, help="same name, another meaning")


class Squat(Cell):
    def __init__(self, input_size, hidden_size, params=None):
        super().__init__(input_size, hidden_size)
        self.lin = torch.nn.Linear(input_size, hidden_size)

    def step(self, x_t, state, gates=None):
        h = torch.tanh(self.lin(x_t))
        return h, (h,)


@hookimpl
def seqwb_cells():
    return [CellSpec(id=cell_id, title="Squatter", version="6.6.6", params=Params, factory="seqwb_squatter:Squat")
            for cell_id in ("fixture-mgu", "seqwb-fixture-cells.mgu")]
'''


@pytest.fixture(scope="session")
def squat_targets(tmp_path_factory, main_target) -> dict[str, Path]:
    """One folder per distribution: 'cells' (0.4.0, namespaced), 'legacy' (0.2.0, bare id), 'squatter'."""
    base = tmp_path_factory.mktemp("squat")
    legacy = base / "legacy-src"
    shutil.copytree(FIXTURES / "thirdparty_plugin", legacy,
                    ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__"))
    (legacy / "seqwb_fixture_cells" / "plugin.py").write_text(LEGACY_PLUGIN, encoding="utf-8")
    toml = legacy / "pyproject.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('version = "0.4.0"', 'version = "0.2.0"'),
                    encoding="utf-8")
    squatter = base / "squatter-src"
    squatter.mkdir()
    (squatter / "seqwb_squatter.py").write_text(SQUATTER_PLUGIN, encoding="utf-8")
    (squatter / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{SQUAT_DIST}"
        version = "6.6.6"

        [project.entry-points."seqwb.plugins"]
        squat = "seqwb_squatter"

        [tool.setuptools]
        py-modules = ["seqwb_squatter"]
        """), encoding="utf-8")
    targets = {}
    for name, source in (("cells", FIXTURES / "thirdparty_plugin"), ("legacy", legacy), ("squatter", squatter)):
        targets[name] = base / name
        _pip_install_to(source, targets[name], base)
    return targets


@pytest.fixture()
def env_with(squat_targets, subprocess_env, main_target):
    """``env_with("legacy", "squatter")``: an environment in which exactly those distributions are installed."""
    def make(*names: str) -> dict[str, str]:
        return subprocess_env(*(squat_targets[n] for n in names), *([main_target] if main_target else []))
    return make


def seqwb(env, tmp_path, *args, timeout=300) -> subprocess.CompletedProcess:
    return run_python(["-m", "workbench", *args], env, tmp_path, timeout=timeout)


TRAIN = ["--set", "batch_size=4", "--set", "chunk_len=16", "--set", "eval_every=0", "--set", "sample_every=0",
         "--set", "probe_every=0", "--set", "threads=1"]


@pytest.fixture()
def legacy_project(env_with, tmp_path) -> Path:
    """A project trained with seqwb-fixture-cells 0.2.0's bare 'fixture-mgu', as saved before namespacing."""
    env = env_with("legacy")
    project = tmp_path / "legacy.seqwb"
    proc = seqwb(env, tmp_path, "new", "char-lm", "-o", str(project), "--set", "cell=fixture-mgu", "--set",
                 "hidden_size=8", "--set", "layers=1", "--set", "embed_size=4", "--set", "task.max_chars=20000")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = seqwb(env, tmp_path, "train", str(project), "--steps", "2", *TRAIN)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    with zipfile.ZipFile(project) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert {"kind": "cell", "id": "fixture-mgu", "distribution": CELLS_DIST, "version": "0.2.0"} in \
        manifest["plugins"]
    return project


def _refused(env, tmp_path, project: Path) -> list[str]:
    """The first stderr line of every command that opens ``project``; each must fail, the file must not change."""
    def folder() -> dict[str, bytes]:    # the file, its .bak and anything a save would leave beside them
        return {p.name: p.read_bytes() for p in project.parent.iterdir() if p.is_file()}

    before = folder()
    firsts = []
    for command in (["info", str(project)], ["train", str(project), "--steps", "1", *TRAIN],
                    ["decode", str(project), "--input", "a"]):
        proc = seqwb(env, tmp_path, *command)
        assert proc.returncode == 1, (command, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        firsts.append(proc.stderr.strip().splitlines()[0])
    assert folder() == before, "a refused project file (or its folder) was changed"
    return firsts


def test_a_squatter_in_place_of_the_saved_provider_is_refused_naming_both(env_with, tmp_path, legacy_project):
    for first in _refused(env_with("squatter"), tmp_path, legacy_project):
        assert first == (f"seqwb: error: {legacy_project}: refused, so that the project computes what it was saved "
                         f"with: cell 'fixture-mgu' was provided by {CELLS_DIST} 0.2.0 when the project was saved, "
                         f"but here it comes from {SQUAT_DIST}; install {CELLS_DIST} (pip install {CELLS_DIST}) and "
                         f"uninstall or disable {SQUAT_DIST}; the file was not changed"), first


def test_two_providers_of_one_id_are_both_reported_and_neither_is_used(env_with, tmp_path, legacy_project):
    env = env_with("legacy", "squatter")
    rows = json.loads(seqwb(env, tmp_path, "plugins", "--json").stdout)
    assert not [r for r in rows if r["kind"] == "cell" and r["id"] == "fixture-mgu" and r["status"] == "ok"]
    clash = {r["distribution"]: r["error"] for r in rows if r["status"] == "error" and "'fixture-mgu'" in r["error"]}
    assert set(clash) == {CELLS_DIST, SQUAT_DIST}
    assert all(e.startswith(f"cell 'fixture-mgu' is registered by {CELLS_DIST} and {SQUAT_DIST}, so neither is "
                            f"used") for e in clash.values()), clash
    strict = seqwb(env, tmp_path, "plugins", "--strict")
    assert strict.returncode == 1 and "plugin problem(s) at loading" in strict.stderr
    for first in _refused(env, tmp_path, legacy_project):
        assert (f"cell 'fixture-mgu' is registered by {CELLS_DIST} and {SQUAT_DIST} (it was saved with {CELLS_DIST}), "
                f"so neither can be used") in first, first
    # and nobody can choose the squatter by hand either
    proc = seqwb(env, tmp_path, "new", "char-lm", "-o", str(tmp_path / "x.seqwb"), "--set", "cell=fixture-mgu")
    assert proc.returncode == 2 and "so neither is used" in proc.stderr and not (tmp_path / "x.seqwb").exists()


def test_the_renamed_provider_keeps_an_old_project_working_despite_a_squatter(env_with, tmp_path, legacy_project):
    env = env_with("cells", "squatter")
    rows = json.loads(seqwb(env, tmp_path, "plugins", "--json").stdout)
    ok = {r["id"]: r["distribution"] for r in rows if r["kind"] == "cell" and r["status"] == "ok"}
    assert ok[MGU] == CELLS_DIST and ok["fixture-mgu"] == SQUAT_DIST      # the bare id is unowned: first come
    refused = [r["error"] for r in rows if r["distribution"] == SQUAT_DIST and r["status"] == "error"]
    assert refused == [f"cell id '{MGU}' is in the namespace of the distribution '{CELLS_DIST}': {SQUAT_DIST} may "
                       f"register ids '{SQUAT_DIST}.NAME' only (e.g. '{SQUAT_DIST}.mgu'), so that no plugin can take "
                       f"over another's"]
    # the file says fixture-mgu came from seqwb-fixture-cells, which now calls it seqwb-fixture-cells.mgu: the
    # project opens with it (its MGU weights load, and training continues from step 2), not with the squatter's
    proc = seqwb(env, tmp_path, "train", str(legacy_project), "--steps", "3", "--json", *TRAIN)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = _json_lines(proc.stdout)
    steps = [line["step"] for line in lines if "step" in line and "loss" in line]
    assert steps == [3], lines     # one step: from the checkpoint at step 2 to 3
    with zipfile.ZipFile(legacy_project) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        saved = json.loads(archive.read("project.json"))
    assert {"kind": "cell", "id": MGU, "distribution": CELLS_DIST, "version": "0.4.0"} in manifest["plugins"]
    assert saved["graph"]["nodes"][[n["id"] for n in saved["graph"]["nodes"]].index("rnn")]["params"]["cell"] == MGU


def test_a_namespaced_id_cannot_be_squatted(env_with, tmp_path):
    project = tmp_path / "ns.seqwb"
    proc = seqwb(env_with("cells"), tmp_path, "new", "char-lm", "-o", str(project), "--set", f"cell={MGU}",
                 "--set", "hidden_size=8", "--set", "layers=1")
    assert proc.returncode == 0, proc.stderr
    # only the squatter left: it claimed the namespaced id, was refused, so the cell is simply missing
    for first in _refused(env_with("squatter"), tmp_path, project):
        assert first == (f"seqwb: error: {project}: this project needs cell '{MGU}' from the plugin distribution "
                         f"'{CELLS_DIST}' 0.4.0, which is not installed (pip install {CELLS_DIST})"), first
