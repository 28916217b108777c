"""A third-party plugin, installed as a real distribution, works end to end.

``tests/fixtures/thirdparty_plugin`` (``seqwb-fixture-cells``: a Minimal Gated Unit cell) and
``tests/fixtures/broken_plugins`` (``seqwb-fixture-broken``: an import error and a raising hook) are pip-installed
into a temporary directory; subprocesses with that directory on ``PYTHONPATH`` see their ``seqwb.plugins`` entry
points through ``importlib.metadata``, exactly as an installed plugin is seen.
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


@pytest.fixture(scope="session")
def plugin_env(tmp_path_factory, subprocess_env) -> dict[str, str]:
    """Install both fixture distributions into a temporary target; the environment that sees them."""
    base = tmp_path_factory.mktemp("thirdparty")
    target = base / "site"
    sources = []
    for name in ("thirdparty_plugin", "broken_plugins"):
        # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
        src = base / "src" / name
        shutil.copytree(FIXTURES / name, src,
                        ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__"))
        sources.append(str(src))
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
           "--disable-pip-version-check", "--no-input", "-q", "--target", str(target), *sources]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=str(base))
    assert proc.returncode == 0, f"pip install of the fixtures failed:\n{proc.stdout}\n{proc.stderr}"
    if not _main_project_installed():
        _link_main_project(target)
    return subprocess_env(target)


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

    assert "fixture-mgu" in report["cells"], report
    mgu = report["cells"]["fixture-mgu"]
    assert mgu["distribution"] == CELLS_DIST
    assert mgu["plugin"] == "fixture-cells"
    assert mgu["version"] == "0.3.0"
    assert mgu["title"] == "Minimal Gated Unit (fixture)"
    assert mgu["factory"] == "seqwb_fixture_cells.mgu:MGUCell"
    assert mgu["params"] == "MGUParams"
    assert tuple(mgu["gates"]) == ("f",) and tuple(mgu["state_names"]) == ("h",)
    assert [CELLS_DIST, "fixture-cells", "0.3.0"] in report["plugins"]

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


@pytest.mark.skipif(not (REPO / "workbench" / "cli.py").exists(), reason="workbench/cli.py does not exist yet")
def test_cli_lists_builds_and_trains_with_the_plugin_cell(plugin_env, tmp_path):
    # seqwb plugins --json: one entry per contribution and per failure
    proc = run_python(["-m", "workbench", "plugins", "--json"], plugin_env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    entries = json.loads(proc.stdout)
    assert isinstance(entries, list)
    ok = [e for e in entries if e.get("kind") == "cell" and e.get("id") == "fixture-mgu"]
    assert len(ok) == 1, entries
    assert ok[0].get("distribution") == CELLS_DIST and ok[0].get("status") == "ok", ok[0]
    errors = [e for e in entries if e.get("status") == "error" and e.get("distribution") == BROKEN_DIST]
    assert errors, entries
    text = json.dumps(errors)
    assert "boom" in text and "ImportError" in text, errors

    # seqwb new char-lm with the plugin's cell
    project = tmp_path / "p.seqwb"
    proc = run_python(["-m", "workbench", "new", "char-lm", "-o", str(project), "--set", "cell=fixture-mgu",
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
    assert '"fixture-mgu"' in saved

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
        assert "fixture-mgu" in first and CELLS_DIST in first, proc.stderr
        assert "Traceback" not in proc.stderr
    assert project.read_bytes() == before


def subprocess_env_without(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the fixture installation folder taken off PYTHONPATH (the repository root stays)."""
    parts = env["PYTHONPATH"].split(os.pathsep)
    bare = dict(env)
    bare["PYTHONPATH"] = os.pathsep.join(p for p in parts if Path(p).resolve() == REPO.resolve()
                                         or not any(Path(p).glob("seqwb_fixture*")))
    return bare
