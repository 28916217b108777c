"""The project file (workbench.core.projectfile): round trips, safety (no pickle), atomic saves, clear errors,
migrations."""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import json
import os
import pickle
import pkgutil
import shutil
import struct
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import safetensors.numpy
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench
from workbench.core import projectfile as pf
from workbench.schema.errors import MissingPluginError, ProjectFileError
from workbench.core.graph import Graph
from workbench.core.project import (Checkpoint, DecodeConfig, History, Project, Run, Series, TaskConfig,
                                    TrainConfig)
from workbench.plugin_system.loader import Registry
from workbench.schema.params import param
from workbench.schema.specs import BlockSpec, CellSpec, TaskSpec, with_source

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "projects"


# ---- building projects ------------------------------------------------------------------------------------------

def make_graph() -> Graph:
    graph = Graph()
    graph.add_node("task-input", id="input", pos=(0, 0))
    graph.add_node("rnn", {"cell": "mgu", "hidden_size": 16}, id="rnn1", pos=(150.5, -20))
    graph.add_node("rnn", {"hidden_size": 8}, id="rnn2", pos=(300, 0))
    graph.add_node("task-output", id="output", pos=(450, 0))
    graph.connect("input", "tokens", "rnn1", "x")
    graph.connect("rnn1", "y", "rnn2", "x")
    graph.connect("rnn2", "y", "output", "logits")
    graph.ui["note"] = {"text": "a comment box on the canvas"}
    return graph


def make_project(*, checkpoint: bool = True) -> Project:
    """A project with every field set to something other than its default."""
    graph = make_graph()
    history = History()
    run = history.new_run({"lr": 0.5, "nested": {"a": [1, 2, None]}})
    for step in range(1, 6):
        run.log("loss/train", step, 3.0 / step)
        run.log("grad_norm/rnn1/weight_hh", step, float(step) * 0.1)
    run.log("loss/valid", 5, float("nan"))
    run.series["empty"] = Series()
    run.status, run.message = "stopped", "stopped by the user"
    run.gtt.append({"step": 5, "layers": {"rnn1": {"dLT_dh": [0.1, 0.01], "dL_dh": [1.0, 0.5]}}})
    run.samples.append({"step": 5, "text": "héllo \"world\"\n", "decoder": "greedy"})
    second = history.new_run({"lr": 0.25})
    second.log("loss/train", 10, 1.0)
    ckpt = None
    if checkpoint:
        weights = {
            "embed.weight": torch.randn(4, 4),
            "rnn1.weight_hh": torch.randn(3, 4, dtype=torch.float64),
            "rnn1.bias": torch.randn(4).to(torch.bfloat16),
            "counts": torch.tensor([1, -2, 2**62], dtype=torch.int64),
            "mask": torch.tensor([[0, 255], [7, 1]], dtype=torch.uint8),
            "flag": torch.tensor(True),
        }
        ckpt = Checkpoint(weights=weights, graph_hash=graph.content_hash(), step=1234, epoch=3,
                          optimizer={"state.0.exp_avg": torch.randn(4, 4), "state.0.step": torch.tensor(7.0)},
                          optimizer_meta={"type": "adam", "param_groups": [{"lr": 0.002, "betas": [0.9, 0.999]}]},
                          trainer_state={"position": 5678, "best": 1.5, "rng": {"python": [3, [1, 2], None]}},
                          tensors={"carry.rnn1.h": torch.zeros(2, 16), "rng.torch": torch.arange(5, dtype=torch.uint8)})
    return Project(name="Dickens LM", graph=graph, task=TaskConfig("char-lm", {"text": "data/dickens.txt"}),
                   train=TrainConfig(steps=77, lr=0.01, optimizer="adamw", schedule="cosine", seed=9),
                   decode=DecodeConfig("beam", {"width": 5}, prompt="It was"),
                   history=history, checkpoint=ckpt, vocab=["a", "b", "\n", "é", "\ud800"],
                   data={"files": {"text": {"path": "data/dickens.txt", "sha256": "ab" * 32}}},
                   notes="multi\nline notes ✓")


def assert_tensor_dicts_equal(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert list(got) == list(want)
    for name, tensor in want.items():
        assert got[name].dtype == tensor.dtype, name
        assert got[name].shape == tensor.shape, name
        assert torch.equal(got[name], tensor.detach().cpu()), name


def float_bits(values: list[float]) -> bytes:
    return np.asarray(values, dtype=np.float64).tobytes()  # exact, and NaN compares equal to NaN


def assert_histories_equal(got: History, want: History) -> None:
    assert [r.id for r in got.runs] == [r.id for r in want.runs]
    for g, w in zip(got.runs, want.runs):
        assert (g.started, g.settings, g.status, g.message) == (w.started, w.settings, w.status, w.message)
        assert (g.gtt, g.samples) == (w.gtt, w.samples)
        assert list(g.series) == list(w.series)
        for name in w.series:
            assert g.series[name].step == w.series[name].step
            assert all(type(s) is int for s in g.series[name].step)
            assert float_bits(g.series[name].value) == float_bits(w.series[name].value)


def assert_projects_equal(got: Project, want: Project) -> None:
    assert got.to_json() == want.to_json()
    assert got.graph == want.graph
    assert (got.name, got.task, got.train, got.decode, got.data, got.notes, got.vocab) == \
        (want.name, want.task, want.train, want.decode, want.data, want.notes, want.vocab)
    assert_histories_equal(got.history, want.history)
    if want.checkpoint is None:
        assert got.checkpoint is None
        return
    g, w = got.checkpoint, want.checkpoint
    assert (g.graph_hash, g.step, g.epoch, g.optimizer_meta, g.trainer_state) == \
        (w.graph_hash, w.step, w.epoch, w.optimizer_meta, w.trainer_state)
    assert_tensor_dicts_equal(g.weights, w.weights)
    assert_tensor_dicts_equal(g.optimizer, w.optimizer)
    assert_tensor_dicts_equal(g.tensors, w.tensors)


# ---- editing saved files ------------------------------------------------------------------------------------------

def members_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def write_zip(path: Path, members: list[tuple[str, bytes]]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names some tests plant
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members:
                zf.writestr(name, data)


def rewrite(path: Path, *, replace: dict[str, bytes | None] | None = None, add: list[tuple[str, bytes]] = (),
            manifest: Callable[[dict], None] | None = None, fix_checksums: bool = True) -> Path:
    """Rewrite the project zip at ``path``: replace/drop/add members, edit the manifest, refresh checksums."""
    members = members_of(path)
    for name, data in (replace or {}).items():
        if data is None:
            members.pop(name, None)
        else:
            members[name] = data
    doc = json.loads(members[pf.MANIFEST])
    if fix_checksums:
        for name, data in members.items():
            if name in doc["members"]:
                doc["members"][name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if manifest is not None:
        manifest(doc)
    members[pf.MANIFEST] = json.dumps(doc).encode()
    write_zip(path, list(members.items()) + list(add))
    return path


def snapshot(directory: Path) -> dict[str, tuple[int, int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_size, p.read_bytes())
            for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "project.seqwb"
    pf.save_project(make_project(), path)
    return path


# ---- round trip ---------------------------------------------------------------------------------------------------

def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    project = make_project()
    path = tmp_path / "p.seqwb"
    pf.save_project(project, path)
    assert_projects_equal(pf.load_project(path), project)


def test_round_trip_without_checkpoint_vocab_or_history(tmp_path: Path) -> None:
    project = Project(name="bare", graph=Graph(), task=TaskConfig("copy"))
    path = tmp_path / "bare.seqwb"
    pf.save_project(project, path)
    loaded = pf.load_project(path)
    assert_projects_equal(loaded, project)
    assert loaded.vocab is None and loaded.checkpoint is None and loaded.history.runs == []
    assert pf.WEIGHTS not in members_of(path) and pf.VOCAB not in members_of(path)


def test_round_trip_of_awkward_tensors(tmp_path: Path) -> None:
    base = torch.randn(4, 6)
    param_ = torch.nn.Parameter(torch.randn(3))
    weights = {
        "tied.a": base, "tied.b": base,                 # the same tensor twice (tied embeddings)
        "view.row": base[1], "view.cols": base[:, 2],   # views into it, one of them non-contiguous
        "transposed": torch.randn(3, 5).t(),
        "param": param_,                                 # requires grad
        "scalar": torch.tensor(2.5, dtype=torch.float64),
        "empty": torch.zeros(0, 3), "empty2": torch.zeros(0, dtype=torch.int64),
        "half": torch.randn(5).half(), "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "i32": torch.tensor([-2**31, 2**31 - 1], dtype=torch.int32),
    }
    project = make_project()
    project.checkpoint.weights = weights
    path = tmp_path / "awkward.seqwb"
    pf.save_project(project, path)
    assert_tensor_dicts_equal(pf.load_project(path).checkpoint.weights, weights)
    assert torch.equal(weights["tied.a"], base)  # saving never changes the caller's tensors


def test_loaded_tensors_are_writable_and_independent(saved: Path) -> None:
    weights = pf.load_project(saved).checkpoint.weights
    before = weights["embed.weight"].clone()
    weights["embed.weight"].add_(1.0)  # training continues in place on loaded weights
    assert torch.equal(weights["embed.weight"], before + 1.0)


def test_save_refuses_non_tensor_weights(tmp_path: Path) -> None:
    project = make_project()
    project.checkpoint.weights["bad"] = [1, 2, 3]
    with pytest.raises(TypeError, match=r"checkpoint.weights\['bad'\] is a list"):
        pf.save_project(project, tmp_path / "p.seqwb")
    assert list(tmp_path.iterdir()) == []


def test_manifest_describes_every_member(tmp_path: Path) -> None:
    path = tmp_path / "p.seqwb"
    plugins = [{"kind": "cell", "id": "mgu", "distribution": "seqwb-mgu", "version": "1.0"}]
    pf.save_project(make_project(), path, plugins_used=plugins)
    manifest = pf.read_manifest(path)
    assert manifest["format"] == pf.MAGIC_FORMAT == "seqwb-project"
    assert manifest["format_version"] == pf.FORMAT_VERSION == 1
    assert manifest["app_version"] == workbench.__version__
    assert manifest["plugins"] == plugins
    assert manifest["created"].endswith("+00:00")
    members = members_of(path)
    assert set(manifest["members"]) == set(members) - {pf.MANIFEST} == {
        "project.json", "vocab.json", "history.json", "history.safetensors", "weights.safetensors",
        "optimizer.safetensors", "state.safetensors", "trainer_state.json"}
    for name, entry in manifest["members"].items():
        assert entry == {"size": len(members[name]), "sha256": hashlib.sha256(members[name]).hexdigest()}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            want = zipfile.ZIP_STORED if info.filename.endswith(".safetensors") else zipfile.ZIP_DEFLATED
            assert info.compress_type == want, info.filename
    state = json.loads(members["trainer_state.json"])
    assert set(state) == {"graph_hash", "step", "epoch", "optimizer_meta", "trainer_state"}
    # history.json holds no numbers of the series: they live in history.safetensors
    history = json.loads(members["history.json"])
    assert history["runs"][0]["series"][0] == {"name": "loss/train", "key": "run-1/loss/train"}
    assert "value" not in json.dumps(history["runs"][0]["series"])


def test_quick_load_without_weights(saved: Path) -> None:
    loaded = pf.load_project(saved, weights=False)
    want = make_project().checkpoint
    ckpt = loaded.checkpoint
    assert (ckpt.weights, ckpt.optimizer, ckpt.tensors) == ({}, {}, {})
    assert (ckpt.step, ckpt.epoch, ckpt.optimizer_meta, ckpt.trainer_state) == \
        (want.step, want.epoch, want.optimizer_meta, want.trainer_state)
    assert ckpt.graph_hash == loaded.graph.content_hash()
    assert loaded.history.runs[0].series["loss/train"].step == [1, 2, 3, 4, 5]


def test_quick_load_does_not_read_tensor_members(saved: Path) -> None:
    rewrite(saved, replace={pf.WEIGHTS: b"garbage"}, fix_checksums=False)
    assert pf.load_project(saved, weights=False).checkpoint.step == 1234
    with pytest.raises(ProjectFileError, match="weights.safetensors is corrupt"):
        pf.load_project(saved)


# ---- property tests --------------------------------------------------------------------------------------------

_names = st.text(alphabet="ab/_-.#é", min_size=1, max_size=8)
_points = st.lists(st.tuples(st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=True, allow_infinity=True)),
                   max_size=6)


@st.composite
def histories(draw: st.DrawFn) -> History:
    runs = []
    for _ in range(draw(st.integers(0, 3))):
        run = Run(id=draw(st.text(alphabet="run-/1", min_size=1, max_size=6)),  # duplicates and "/" on purpose
                  started=draw(st.text(max_size=5)), status=draw(st.sampled_from(["new", "finished"])),
                  message=draw(st.text(max_size=10)),
                  settings=draw(st.dictionaries(st.text(max_size=4), st.integers() | st.text(max_size=4), max_size=3)),
                  samples=[{"text": draw(st.text(max_size=10))}])
        for name in draw(st.lists(_names, max_size=4, unique=True)):
            points = draw(_points)
            run.series[name] = Series(step=[p[0] for p in points], value=[p[1] for p in points])
        runs.append(run)
    return History(runs=runs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories())
def test_history_round_trips(tmp_path_factory: pytest.TempPathFactory, history: History) -> None:
    project = Project(name="h", graph=Graph(), task=TaskConfig("t"), history=history)
    path = tmp_path_factory.mktemp("history") / "h.seqwb"
    pf.save_project(project, path, backup=False)
    assert_histories_equal(pf.load_project(path).history, history)


_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int8,
           torch.uint8, torch.bool]


@st.composite
def tensor_dicts(draw: st.DrawFn) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name in draw(st.lists(st.text(alphabet="abc._/0", min_size=1, max_size=6), max_size=5, unique=True)):
        if out and draw(st.booleans()) and draw(st.booleans()):
            out[name] = out[draw(st.sampled_from(sorted(out)))]  # shared with an earlier entry
            continue
        dtype = draw(st.sampled_from(_DTYPES))
        shape = draw(st.lists(st.integers(0, 3), max_size=3))
        gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
        if dtype.is_floating_point:
            tensor = (torch.randn(shape, generator=gen) * 100).to(dtype)
        elif dtype == torch.bool:
            tensor = torch.randint(0, 2, shape, generator=gen).bool()
        else:
            info = torch.iinfo(dtype)
            tensor = torch.randint(info.min, info.max, shape, generator=gen, dtype=dtype)
        if tensor.dim() == 2 and draw(st.booleans()):
            tensor = tensor.t()  # non-contiguous
        out[name] = tensor
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(weights=tensor_dicts(), state=tensor_dicts())
def test_tensor_dicts_round_trip(tmp_path_factory: pytest.TempPathFactory, weights: dict, state: dict) -> None:
    project = Project(name="t", graph=Graph(), task=TaskConfig("t"),
                      checkpoint=Checkpoint(weights=weights, graph_hash="x", tensors=state))
    path = tmp_path_factory.mktemp("tensors") / "t.seqwb"
    pf.save_project(project, path, backup=False)
    loaded = pf.load_project(path).checkpoint
    assert_tensor_dicts_equal(loaded.weights, weights)
    assert_tensor_dicts_equal(loaded.tensors, state)
    assert loaded.optimizer == {}


def _load_must_fail_cleanly(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pf.ProjectFileWarning)
        try:
            pf.load_project(path)
        except ProjectFileError as exc:
            assert str(path) in str(exc)
            return
    raise AssertionError("a broken file loaded")


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=600) | st.binary(max_size=600).map(lambda b: b"PK\x03\x04" + b))
def test_random_bytes_give_project_file_error(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "random.seqwb"
    path.write_bytes(data)
    _load_must_fail_cleanly(path)


@pytest.fixture(scope="module")
def small_file_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("small") / "small.seqwb"
    pf.save_project(make_project(), path)
    return path.read_bytes()


@settings(max_examples=150, deadline=None)
@given(cut=st.floats(0.0, 1.0, exclude_max=True))
def test_truncated_files_give_project_file_error(tmp_path_factory: pytest.TempPathFactory,
                                                 small_file_bytes: bytes, cut: float) -> None:
    path = tmp_path_factory.mktemp("truncated") / "cut.seqwb"
    path.write_bytes(small_file_bytes[:int(cut * len(small_file_bytes))])
    _load_must_fail_cleanly(path)


@settings(max_examples=200, deadline=None)
@given(where=st.floats(0.0, 1.0, exclude_max=True), flip=st.integers(1, 255))
def test_corrupted_bytes_load_or_give_project_file_error(tmp_path_factory: pytest.TempPathFactory,
                                                         small_file_bytes: bytes, where: float, flip: int) -> None:
    data = bytearray(small_file_bytes)
    data[int(where * len(data))] ^= flip
    path = tmp_path_factory.mktemp("flipped") / "flip.seqwb"
    path.write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pf.ProjectFileWarning)
        try:
            pf.load_project(path)  # a flip in an unchecked header field (e.g. a timestamp) may go unnoticed
        except ProjectFileError:
            pass


# ---- no pickle, ever -----------------------------------------------------------------------------------------

class _Payload:
    """Unpickling this creates ``marker``: proof that something was unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def _payload_bytes(marker: Path, canary: Path) -> bytes:
    data = pickle.dumps(_Payload(marker))
    # The payload is live: unpickling a twin of it really does create its marker file.
    with pickle.loads(pickle.dumps(_Payload(canary))):
        pass
    assert canary.exists()
    return data


def test_planted_pickle_members_are_never_read(saved: Path, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled.marker"
    payload = _payload_bytes(marker, tmp_path / "canary")
    torch_style = tmp_path / "weights.pt"
    torch.save({"x": _Payload(marker)}, torch_style)
    rewrite(saved, add=[("data.pkl", payload), ("weights.pt", torch_style.read_bytes()),
                        ("archive/data.pkl", payload)])
    with pytest.warns(pf.ProjectFileWarning, match="data.pkl"):
        loaded = pf.load_project(saved)
    assert loaded.checkpoint is not None
    assert not marker.exists()


@pytest.mark.parametrize("member", [pf.WEIGHTS, pf.OPTIMIZER, pf.STATE, pf.HISTORY_ARRAYS])
def test_pickle_in_a_tensor_member_is_rejected(saved: Path, tmp_path: Path, member: str) -> None:
    marker = tmp_path / "unpickled.marker"
    torch_style = tmp_path / "payload.pt"
    torch.save({"x": _Payload(marker), "w": torch.zeros(2)}, torch_style)
    rewrite(saved, replace={member: torch_style.read_bytes()})  # with a matching checksum
    with pytest.raises(ProjectFileError, match=f"member {member} is not a valid safetensors file"):
        pf.load_project(saved)
    rewrite(saved, replace={member: _payload_bytes(marker, tmp_path / "canary")})
    with pytest.raises(ProjectFileError, match=f"member {member} is not a valid safetensors file"):
        pf.load_project(saved)
    assert not marker.exists()


def projectfile_modules() -> list[Any]:
    names = [info.name for info in pkgutil.iter_modules(pf.__path__)]
    assert {"format", "tensors", "writer", "archive", "reader"} <= set(names)   # a rename must not empty the list
    return [pf] + [importlib.import_module(f"{pf.__name__}.{name}") for name in names]


@pytest.mark.parametrize("module", projectfile_modules(), ids=lambda m: m.__name__.rpartition(".")[2])
def test_projectfile_modules_have_no_way_to_unpickle(module: Any) -> None:
    tree = ast.parse(inspect.getsource(module))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            assert not any(n.split(".")[0] in {"pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
                           for n in names), ast.dump(node)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            assert (node.value.id, node.attr) != ("torch", "load"), "torch.load unpickles"
            assert (node.value.id, node.attr) != ("np", "load"), "numpy.load can unpickle"
        if isinstance(node, ast.keyword):
            assert node.arg != "allow_pickle"


# ---- atomic save ----------------------------------------------------------------------------------------------

def test_save_keeps_the_previous_version_as_backup(tmp_path: Path) -> None:
    path = tmp_path / "p.seqwb"
    first, second = make_project(), make_project()
    second.notes = "second version"
    pf.save_project(first, path)
    assert not (tmp_path / "p.seqwb.bak").exists()
    old_bytes = path.read_bytes()
    pf.save_project(second, path)
    assert (tmp_path / "p.seqwb.bak").read_bytes() == old_bytes
    assert pf.load_project(path).notes == "second version"
    assert pf.load_project(tmp_path / "p.seqwb.bak").notes == first.notes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.seqwb", "p.seqwb.bak"]


def test_save_without_backup(tmp_path: Path) -> None:
    path = tmp_path / "p.seqwb"
    pf.save_project(make_project(), path, backup=False)
    pf.save_project(make_project(), path, backup=False)
    assert [p.name for p in tmp_path.iterdir()] == ["p.seqwb"]


def test_backup_falls_back_to_a_copy_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.seqwb"
    pf.save_project(make_project(), path)
    old_bytes = path.read_bytes()

    def no_links(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    pf.save_project(make_project(checkpoint=False), path)
    assert (tmp_path / "p.seqwb.bak").read_bytes() == old_bytes
    assert pf.load_project(path).checkpoint is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.seqwb", "p.seqwb.bak"]


def test_temporary_file_is_hidden_in_the_same_folder_and_synced(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.seqwb"
    seen: list[list[str]] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    pf.save_project(make_project(), path)
    temps = [name for name in seen[0] if name.startswith(".") and name.endswith(".tmp")]
    assert len(temps) == 1 and "p.seqwb" in temps[0]
    assert len(seen) == 2  # the file, then (best effort) the folder
    assert [p.name for p in tmp_path.iterdir()] == ["p.seqwb"]


def test_target_is_never_missing_during_a_save(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.seqwb"
    pf.save_project(make_project(), path)
    real_replace, real_link = os.replace, os.link
    calls = []

    def check_then(real: Callable) -> Callable:
        def wrapper(src: Any, dst: Any) -> None:
            assert path.exists(), "the project file vanished during the save"
            calls.append((Path(src).name, Path(dst).name))
            real(src, dst)
            assert path.exists(), "the project file vanished during the save"
        return wrapper

    monkeypatch.setattr(os, "replace", check_then(real_replace))
    monkeypatch.setattr(os, "link", check_then(real_link))
    pf.save_project(make_project(), path)
    assert [dst for _, dst in calls][-2:] == ["p.seqwb.bak", "p.seqwb"]


def _fail_final_replace(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.replace

    def replace(src: Any, dst: Any) -> None:
        if Path(dst) == path:
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)


def _fail_fsync(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", fsync)


def _fail_backup(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "link", fail)
    monkeypatch.setattr(shutil, "copy2", fail)


def _fail_zip_write(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def writestr(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(zipfile.ZipFile, "writestr", writestr)


@pytest.mark.parametrize("fail", [_fail_final_replace, _fail_fsync, _fail_backup, _fail_zip_write])
def test_failed_save_leaves_the_target_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 fail: Callable) -> None:
    path = tmp_path / "p.seqwb"
    pf.save_project(make_project(), path)
    before = path.read_bytes()
    fail(path, monkeypatch)
    changed = make_project()
    changed.notes = "never written"
    with pytest.raises((OSError, KeyboardInterrupt)):
        pf.save_project(changed, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_failed_first_save_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.seqwb"
    _fail_fsync(path, monkeypatch)
    with pytest.raises(OSError):
        pf.save_project(make_project(), path)
    assert list(tmp_path.iterdir()) == []


def test_save_keeps_file_permissions(tmp_path: Path) -> None:
    path = tmp_path / "p.seqwb"
    pf.save_project(make_project(), path)
    os.chmod(path, 0o640)
    pf.save_project(make_project(), path)
    assert path.stat().st_mode & 0o777 == 0o640


def test_save_through_a_symlink_updates_the_real_file(tmp_path: Path) -> None:
    real = tmp_path / "real.seqwb"
    link = tmp_path / "link.seqwb"
    pf.save_project(make_project(checkpoint=False), real)
    link.symlink_to(real)
    project = make_project(checkpoint=False)
    project.notes = "through the link"
    pf.save_project(project, link)
    assert link.is_symlink()
    assert pf.load_project(real).notes == "through the link"


# ---- clear errors -------------------------------------------------------------------------------------------------

def _set(key: str, value: Any) -> Callable[[dict], None]:
    def edit(doc: dict) -> None:
        doc[key] = value
    return edit


def _error_of(path: Path, **kwargs: Any) -> str:
    with pytest.raises(ProjectFileError) as info:
        pf.load_project(path, **kwargs)
    return str(info.value)


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "notes.seqwb"
    path.write_text("just some text")
    assert _error_of(path) == f"{path} is not a Sequence Workbench project (not a zip file)"
    path.write_bytes(b"")
    assert _error_of(path) == f"{path} is not a Sequence Workbench project (not a zip file)"


def test_truncated_zip(saved: Path) -> None:
    saved.write_bytes(saved.read_bytes()[:-100])
    assert _error_of(saved) == f"{saved} is truncated or corrupt"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert "cannot be read" in _error_of(tmp_path / "nope.seqwb")
    assert _error_of(tmp_path) == f"{tmp_path} is a folder, not a project file"


def test_zip_that_is_not_a_project(tmp_path: Path) -> None:
    path = tmp_path / "other.zip"
    write_zip(path, [("readme.txt", b"hello")])
    assert _error_of(path) == f"{path} is not a Sequence Workbench project (it has no manifest.json)"


def test_wrong_magic(saved: Path) -> None:
    rewrite(saved, manifest=_set("format", "keras"))
    assert "is not a Sequence Workbench project" in _error_of(saved)
    assert "'keras'" in _error_of(saved)


def test_newer_format_version(saved: Path) -> None:
    def newer(doc: dict) -> None:
        doc["format_version"] = 7
        doc["app_version"] = "9.9"
        doc["members"] = "a layout this version cannot understand"

    rewrite(saved, manifest=newer)
    assert _error_of(saved) == (f"{saved} was made by a newer version: Sequence Workbench 9.9 (file format 7; "
                                f"this version, {workbench.__version__}, reads formats up to 1)")
    assert pf.read_manifest(saved)["format_version"] == 7  # still readable for `seqwb info`


@pytest.mark.parametrize("version", ["1", 1.0, True, None, -1])
def test_malformed_format_version(saved: Path, version: Any) -> None:
    rewrite(saved, manifest=_set("format_version", version))
    assert "format_version" in _error_of(saved)


@pytest.mark.parametrize("member", [pf.MANIFEST, pf.PROJECT, pf.HISTORY, pf.VOCAB, pf.TRAINER_STATE])
@pytest.mark.parametrize("bad", [b"{not json", b"\xff\xfe\x00", b"[" * 100000 + b"]" * 100000])
def test_invalid_json_names_the_member(saved: Path, member: str, bad: bytes) -> None:
    if member == pf.MANIFEST:  # not checksummed, and rewrite() needs to parse it
        write_zip(saved, [(name, bad if name == member else data) for name, data in members_of(saved).items()])
    else:
        rewrite(saved, replace={member: bad})
    message = _error_of(saved)
    assert f"member {member} is not valid JSON" in message
    assert message.startswith(str(saved))


@pytest.mark.parametrize("member", [pf.PROJECT, pf.WEIGHTS, pf.HISTORY_ARRAYS, pf.TRAINER_STATE])
def test_checksum_mismatch(saved: Path, member: str) -> None:
    data = bytearray(members_of(saved)[member])
    data[len(data) // 2] ^= 0x20
    rewrite(saved, replace={member: bytes(data)}, fix_checksums=False)
    assert _error_of(saved) == f"{saved}: member {member} is corrupt (checksum mismatch)"


def test_missing_required_members(saved: Path) -> None:
    original = saved.read_bytes()
    rewrite(saved, replace={pf.PROJECT: None}, manifest=lambda doc: doc["members"].pop(pf.PROJECT))
    assert _error_of(saved) == f"{saved}: member project.json is missing"
    saved.write_bytes(original)
    rewrite(saved, replace={pf.WEIGHTS: None})  # still listed in the manifest
    assert _error_of(saved) == f"{saved}: member weights.safetensors is missing (the file is incomplete)"
    saved.write_bytes(original)
    rewrite(saved, add=[("extra.json", b"{}")], fix_checksums=False)
    with pytest.warns(pf.ProjectFileWarning, match="extra.json"):
        pf.load_project(saved)  # unknown and unlisted: ignored
    saved.write_bytes(original)
    rewrite(saved, replace={pf.TRAINER_STATE: None},
            manifest=lambda doc: doc["members"].pop(pf.TRAINER_STATE))
    assert "trainer_state.json is missing" in _error_of(saved)


def test_member_not_listed_in_manifest(saved: Path) -> None:
    rewrite(saved, manifest=lambda doc: doc["members"].pop(pf.HISTORY))
    assert _error_of(saved) == f"{saved}: member history.json is not listed in the manifest"


@pytest.mark.parametrize("name", ["../evil.json", "/etc/evil", "a/../../evil", "C:\\evil", "\\server\\x",
                                  "dir\\..\\evil"])
def test_path_traversal_names_are_refused(saved: Path, name: str) -> None:
    rewrite(saved, add=[(name, b"{}")])
    assert _error_of(saved) == f"{saved}: member name {name!r} is not allowed (absolute path or '..')"


def test_duplicate_member_names_are_refused(saved: Path) -> None:
    rewrite(saved, add=[(pf.PROJECT, b"{}")])
    assert _error_of(saved) == f"{saved}: duplicate member name(s) 'project.json'"


def test_oversized_members_are_refused_before_reading(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = {name: len(data) for name, data in members_of(saved).items()}
    biggest = max(sizes, key=sizes.__getitem__)
    monkeypatch.setattr(pf.format, "MAX_MEMBER_BYTES", sizes[biggest] - 1)
    assert f"member {biggest!r} is too large ({sizes[biggest]} bytes)" in _error_of(saved)
    monkeypatch.setattr(pf.format, "MAX_MEMBER_BYTES", sizes[biggest])
    monkeypatch.setattr(pf.format, "MAX_TOTAL_BYTES", sum(sizes.values()) - 1)
    assert "the members add up to" in _error_of(saved)


def test_zip_bomb_ratio_is_refused(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rewrite(saved, add=[("padding.bin", bytes(200_000))])  # zeros deflate several hundred-fold
    monkeypatch.setattr(pf.format, "BOMB_MIN_BYTES", 100_000)
    monkeypatch.setattr(pf.format, "BOMB_MAX_RATIO", 50)
    assert "member 'padding.bin' expands" in _error_of(saved)


def test_declared_size_near_4_gib_is_refused_without_reading(saved: Path) -> None:
    # Patch the central directory so a tiny member claims ~4 GiB: the check must trip on the directory alone.
    data = bytearray(saved.read_bytes())
    entry = data.rfind(b"PK\x01\x02" + b"", 0, data.rfind(b"PK\x05\x06"))
    struct.pack_into("<I", data, entry + 24, 0xFFFFFFF0)
    saved.write_bytes(bytes(data))
    message = _error_of(saved)
    # the member's own limit trips first: a trainer_state.json is never gigabytes
    assert message == f"{saved}: member trainer_state.json says it holds 4 GiB, more than the 16 MiB a " \
                      f"trainer_state.json may hold"


@pytest.mark.parametrize("project_json, what", [
    ([1, 2], "expected a JSON object, got list"),
    ({"name": "x", "graph": {}}, "project has no task id"),
    ({"name": "x", "task": {"id": "t"}, "graph": "nodes"}, "member project.json is malformed"),
    ({"name": "x", "task": {"id": "t"}, "graph": {"nodes": [{"id": "a"}]}}, "malformed node"),
    ({"name": "x", "task": {"id": "t"}, "train": {"batch_size": "many"}}, "batch_size"),
    ({"name": "x", "task": {"id": "t"}, "decode": [1]}, "member project.json is malformed"),
])
def test_wrong_json_types_in_project(saved: Path, project_json: Any, what: str) -> None:
    rewrite(saved, replace={pf.PROJECT: json.dumps(project_json).encode()})
    message = _error_of(saved)
    assert what in message and "project.json" in message


@pytest.mark.parametrize("member, value, what", [
    (pf.VOCAB, {"a": 1}, "member vocab.json is malformed"),
    (pf.VOCAB, ["a", 2], "member vocab.json is malformed"),
    (pf.HISTORY, [], "member history.json is malformed"),
    (pf.HISTORY, {"runs": [3]}, "member history.json is malformed"),
    (pf.HISTORY, {"runs": [{"id": 5}]}, "'id' should be str"),
    (pf.HISTORY, {"runs": [{"id": "r", "series": [{"name": "x", "key": "nope"}]}]}, "has no numbers"),
    (pf.HISTORY, {"runs": [{"id": "r", "settings": []}]}, "'settings' should be dict"),
    (pf.TRAINER_STATE, [], "member trainer_state.json is malformed"),
    (pf.TRAINER_STATE, {"graph_hash": "x", "step": "3"}, "'step' should be int"),
    (pf.TRAINER_STATE, {"step": 3}, "'graph_hash' should be str"),
    (pf.MANIFEST, [], "manifest.json is malformed"),
])
def test_wrong_json_types_in_other_members(saved: Path, member: str, value: Any, what: str) -> None:
    if member == pf.MANIFEST:
        write_zip(saved, [(n, json.dumps(value).encode() if n == member else d) for n, d in members_of(saved).items()])
    else:
        rewrite(saved, replace={member: json.dumps(value).encode()})
    assert what in _error_of(saved)


def test_malformed_manifest_tables(saved: Path) -> None:
    original = saved.read_bytes()
    rewrite(saved, manifest=_set("members", []))
    assert "manifest.json is malformed (no member table)" in _error_of(saved)
    saved.write_bytes(original)
    rewrite(saved, manifest=lambda doc: doc["members"].__setitem__(pf.PROJECT, {"size": "big"}))
    assert "bad entry for 'project.json'" in _error_of(saved)


def test_history_arrays_that_do_not_fit(saved: Path) -> None:
    arrays = safetensors.numpy.load(members_of(saved)[pf.HISTORY_ARRAYS])
    arrays["run-1/loss/train/value"] = arrays["run-1/loss/train/value"][:2]
    rewrite(saved, replace={pf.HISTORY_ARRAYS: safetensors.numpy.save(arrays)})
    assert "equal length" in _error_of(saved)


def test_garbage_safetensors(saved: Path) -> None:
    rewrite(saved, replace={pf.WEIGHTS: b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1}"})
    assert f"{saved}: member weights.safetensors is not a valid safetensors file" in _error_of(saved)
    assert "not a valid safetensors file" in _error_of(saved, weights=True)


def test_loading_never_writes(saved: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.seqwb"
    broken.write_bytes(saved.read_bytes()[:500])
    before = snapshot(tmp_path)
    pf.load_project(saved)
    pf.load_project(saved, weights=False)
    pf.read_manifest(saved)
    with pytest.raises(ProjectFileError):
        pf.load_project(broken)
    with pytest.raises(MissingPluginError):
        pf.load_project(saved, registry=Registry())
    assert snapshot(tmp_path) == before


# ---- migrations ---------------------------------------------------------------------------------------------------

@pytest.fixture
def empty_migrations(monkeypatch: pytest.MonkeyPatch) -> dict:
    table: dict = {}
    monkeypatch.setattr(pf.format, "MIGRATIONS", table)
    return table


def test_migrations_start_empty() -> None:
    assert pf.FORMAT_VERSION == 1 and pf.MIGRATIONS == {}


def test_migration_chain_is_applied(saved: Path, monkeypatch: pytest.MonkeyPatch, empty_migrations: dict) -> None:
    seen = []

    def one_to_two(doc: dict) -> dict:
        seen.append((doc["manifest"]["format_version"], sorted(doc)))
        doc["project"]["notes"] = "migrated: " + doc["project"]["notes"]
        doc["project"]["task"]["id"] = "char-lm-v2"
        doc["trainer_state"]["step"] += 1
        doc["history"]["runs"][0]["message"] = "from format 1"
        return doc

    monkeypatch.setattr(pf.format, "FORMAT_VERSION", 2)
    pf.register_migration(1, one_to_two)
    assert empty_migrations == {1: one_to_two}
    loaded = pf.load_project(saved)
    assert seen == [(1, ["history", "manifest", "project", "trainer_state", "vocab"])]
    assert loaded.notes.startswith("migrated: ") and loaded.task.id == "char-lm-v2"
    assert loaded.checkpoint.step == 1235 and loaded.history.runs[0].message == "from format 1"
    # a file written as format 2 needs no migration; one from format 1 always goes through it
    pf.save_project(loaded, saved)
    assert pf.read_manifest(saved)["format_version"] == 2
    assert pf.load_project(saved).notes == loaded.notes and len(seen) == 1


def test_missing_migration_step(saved: Path, monkeypatch: pytest.MonkeyPatch, empty_migrations: dict) -> None:
    monkeypatch.setattr(pf.format, "FORMAT_VERSION", 2)
    assert "no migration from format 1" in _error_of(saved)


def test_old_unknown_format_has_no_migration(saved: Path, empty_migrations: dict) -> None:
    rewrite(saved, manifest=_set("format_version", 0))
    message = _error_of(saved)
    assert message.startswith(f"{saved}: no migration from format 0")


def test_failing_migration_is_a_project_file_error(saved: Path, monkeypatch: pytest.MonkeyPatch,
                                                   empty_migrations: dict) -> None:
    monkeypatch.setattr(pf.format, "FORMAT_VERSION", 2)
    pf.register_migration(1, lambda doc: doc["no such member"])
    assert "migrating from format 1 to 2 failed" in _error_of(saved)


def test_register_migration_checks_its_arguments(empty_migrations: dict) -> None:
    pf.register_migration(0, lambda doc: doc)
    with pytest.raises(ValueError, match="registered already"):
        pf.register_migration(0, lambda doc: doc)
    with pytest.raises(ValueError):
        pf.register_migration(-1, lambda doc: doc)


def test_format1_fixture_still_loads() -> None:
    """Guards against accidental format changes: this file was written by format 1 and must keep loading."""
    path = FIXTURES / "format1-minimal.seqwb"
    manifest = pf.read_manifest(path)
    assert manifest["format_version"] == 1
    assert [(p["kind"], p["id"]) for p in manifest["plugins"]] == [
        ("task", "fixture-task"), ("architecture", "fixture-rnn"), ("cell", "fixture-cell")]
    project = pf.load_project(path)
    assert project.name == "format1-minimal" and project.notes == "fixture"
    assert list(project.graph.nodes) == ["input", "rnn1", "output"]
    assert project.graph.nodes["rnn1"].type == "fixture-rnn"
    assert project.graph.nodes["rnn1"].params == {"cell": "fixture-cell", "hidden_size": 4}
    assert [str(link) for link in project.graph.links] == ["input.tokens -> rnn1.x", "rnn1.y -> output.logits"]
    assert project.graph.ui["rnn1"] == {"x": 200.0, "y": 0.0}
    assert (project.task.id, project.task.params) == ("fixture-task", {"text": "data.txt"})
    assert (project.train.steps, project.train.batch_size, project.decode.prompt) == (3, 2, "a")
    assert project.vocab == ["a", "b", "\n"]
    assert project.data == {"files": {"text": {"path": "data.txt", "sha256": "0" * 64}}}
    run = project.history.runs[0]
    assert (run.id, run.status, run.message, run.settings) == ("run-1", "finished", "done", {"lr": 0.01})
    assert list(run.series) == ["loss/train", "lr"]
    assert run.series["loss/train"] == Series(step=[1, 2, 3], value=[2.0, 1.5, 1.25])
    assert run.series["lr"] == Series()
    assert run.gtt[0]["layers"]["rnn1"]["dLT_dh"] == [0.5, 0.25] and run.samples == [{"step": 3, "text": "ab"}]
    ckpt = project.checkpoint
    assert (ckpt.step, ckpt.epoch, ckpt.optimizer_meta, ckpt.trainer_state) == (
        3, 1, {"type": "adam", "lr": 0.01}, {"position": 12, "best": 1.25})
    assert_tensor_dicts_equal(ckpt.weights, {"rnn1.weight": torch.arange(8, dtype=torch.float32).reshape(2, 4),
                                             "rnn1.bias": torch.tensor([1, 2], dtype=torch.int64)})
    assert_tensor_dicts_equal(ckpt.optimizer, {"state.0.exp_avg": torch.zeros(2, 4)})
    assert_tensor_dicts_equal(ckpt.tensors, {"carry.h": torch.ones(1, 4, dtype=torch.float64)})
    assert ckpt.graph_hash == project.graph.content_hash(), \
        "Graph.content_hash changed: checkpoints saved by earlier versions would no longer match their graph"
    with pytest.raises(MissingPluginError, match="'seqwb-fixtures' 1.0"):
        pf.load_project(path, registry=Registry())


# ---- plugins ------------------------------------------------------------------------------------------------------

@dataclass
class _RNNParams:
    cell: str = param("lstm", ui="cell", help="the recurrent cell")
    hidden_size: int = param(8, min=1)


@dataclass
class _NoParams:
    pass


def make_registry(*, without: tuple[tuple[str, str], ...] = ()) -> Registry:
    registry = Registry()
    specs = [
        ("task", TaskSpec(id="char-lm", title="Char LM", version="2.0", params=_NoParams, factory="m:f"),
         "sequence-workbench", "builtin-tasks"),
        ("architecture", BlockSpec(id="rnn", title="RNN layer", version="1.1", params=_RNNParams, factory="m:f"),
         "sequence-workbench", "builtin-architectures"),
        ("cell", CellSpec(id="lstm", title="LSTM", version="1.0", params=_NoParams, factory="m:f"),
         "sequence-workbench", "builtin-cells"),
        ("cell", CellSpec(id="mgu", title="MGU", version="0.3", params=_NoParams, factory="m:f"),
         "seqwb-mgu", "mgu"),
    ]
    for kind, spec, dist, entry_point in specs:
        if (kind, spec.id) not in without:
            registry.add(kind, with_source(spec, dist, entry_point))
    registry.plugins += [("sequence-workbench", "builtin-tasks", "0.1.0"),
                         ("sequence-workbench", "builtin-architectures", "0.1.0"),
                         ("sequence-workbench", "builtin-cells", "0.1.0"), ("seqwb-mgu", "mgu", "1.0")]
    return registry


def test_project_plugins_used() -> None:
    project = make_project()
    project.graph.add_node("mystery-block", {"cell": "gru"}, id="mystery")
    assert pf.project_plugins_used(project, make_registry()) == [
        {"kind": "task", "id": "char-lm", "distribution": "sequence-workbench", "version": "0.1.0"},
        {"kind": "architecture", "id": "rnn", "distribution": "sequence-workbench", "version": "0.1.0"},
        {"kind": "cell", "id": "mgu", "distribution": "seqwb-mgu", "version": "1.0"},
        {"kind": "cell", "id": "lstm", "distribution": "sequence-workbench", "version": "0.1.0"},  # the default
    ]
    registry = make_registry()
    registry.plugins.clear()  # registered in code: no distribution version known, so the spec's own
    assert pf.project_plugins_used(project, registry)[2]["version"] == "0.3"


def _save_with_plugins(path: Path) -> Project:
    project = make_project()
    pf.save_project(project, path, plugins_used=pf.project_plugins_used(project, make_registry()))
    return project


def test_missing_plugin_names_the_distribution(tmp_path: Path) -> None:
    path = tmp_path / "p.seqwb"
    _save_with_plugins(path)
    before = snapshot(tmp_path)
    with pytest.raises(MissingPluginError) as info:
        pf.load_project(path, registry=make_registry(without=(("cell", "mgu"),)))
    assert str(info.value) == (f"{path}: this project needs cell 'mgu' from the plugin distribution 'seqwb-mgu' 1.0, "
                               f"which is not installed (pip install seqwb-mgu)")
    assert isinstance(info.value, ProjectFileError)
    assert info.value.missing == [{"kind": "cell", "id": "mgu", "distribution": "seqwb-mgu", "version": "1.0"}]
    assert snapshot(tmp_path) == before


def test_missing_contributions_not_in_the_manifest_are_found(tmp_path: Path) -> None:
    path = tmp_path / "p.seqwb"
    project = make_project()
    project.graph.add_node("mystery-block", {}, id="mystery")
    pf.save_project(project, path)  # no plugins_used at all
    message = str(pytest.raises(MissingPluginError, pf.load_project, path, registry=Registry()).value)
    assert "task 'char-lm', which is not installed" in message
    assert "architecture 'rnn', which is not installed" in message
    assert "architecture 'mystery-block', which is not installed" in message
    message = str(pytest.raises(MissingPluginError, pf.load_project, path,
                                registry=make_registry(without=(("cell", "mgu"),))).value)
    assert message == f"{path}: this project needs cell 'mgu', which is not installed; " \
                      f"architecture 'mystery-block', which is not installed"


def test_every_plugin_present_loads(tmp_path: Path) -> None:
    path = tmp_path / "p.seqwb"
    project = _save_with_plugins(path)
    assert_projects_equal(pf.load_project(path, registry=make_registry()), project)


def test_manifest_plugin_of_an_unknown_kind_counts_as_missing(tmp_path: Path) -> None:
    path = tmp_path / "p.seqwb"
    pf.save_project(make_project(), path, plugins_used=[{"kind": "visualiser", "id": "tsne",
                                                         "distribution": "seqwb-viz", "version": "2"}])
    message = str(pytest.raises(MissingPluginError, pf.load_project, path, registry=make_registry()).value)
    assert "visualiser 'tsne' from the plugin distribution 'seqwb-viz' 2" in message
    rewrite(path, manifest=_set("plugins", [{"kind": 1}]))
    assert "bad plugin entry" in _error_of(path, registry=make_registry())


# ---- speed (measured, loosely bounded: the target is well under 0.5 s each on a laptop) --------------------------

def test_ten_million_parameters_save_and_load_quickly(tmp_path: Path) -> None:
    project = make_project()
    project.checkpoint.weights = {f"layer{i}.weight": torch.randn(1000, 1000) for i in range(10)}
    path = tmp_path / "big.seqwb"
    pf.save_project(project, path)  # warm up allocator and page cache
    start = time.perf_counter()
    pf.save_project(project, path)
    saved_in = time.perf_counter() - start
    start = time.perf_counter()
    loaded = pf.load_project(path)
    loaded_in = time.perf_counter() - start
    assert torch.equal(loaded.checkpoint.weights["layer9.weight"], project.checkpoint.weights["layer9.weight"])
    assert saved_in < 2.0 and loaded_in < 2.0, (saved_in, loaded_in)  # generous: shared CI machines are slow
