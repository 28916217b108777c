"""Model export: the exported file gives the model's outputs (TorchScript always, ONNX under onnxruntime), on
batch sizes and lengths other than the example's; models that cannot be exported get the reason; nothing is
written then."""

import importlib.util
import io
import json
import subprocess
import sys
import zipfile

import pytest
import torch

from workbench.core import export as export_mod
from workbench.core.export import ExportError, export_model
from workbench.core.projectfile import load_project, save_project
from workbench.core.settings import template_project
from workbench.core.training.session import ModelSession
from workbench.core.training.trainer import Trainer
from workbench.plugin_system import discover

TINY = {"hidden_size": "8", "batch_size": "8", "eval_every": "0", "probe_every": "0", "sample_every": "0",
        "threads": "1"}
HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))


@pytest.fixture(scope="module")
def reg():
    return discover()


def _trained(reg, folder, template="adding-problem-lstm", steps=5, **settings):
    torch.set_num_threads(1)
    project, _ = template_project(reg.template(template), {**TINY, **settings}, reg)
    trainer = Trainer(project, reg, base_dir=folder)
    trainer.fit(steps=steps)
    trainer.checkpoint()
    path = folder / f"{template}.seqwb"
    save_project(project, path)
    return load_project(path, registry=reg), path


@pytest.fixture(scope="module")
def lstm_project(reg, tmp_path_factory):
    return _trained(reg, tmp_path_factory.mktemp("export"))


def _reference(reg, project, folder, inputs):
    """The original model's outputs on ``inputs`` (name -> tensor)."""
    model = ModelSession(reg).load(project, folder, "current", "cpu").model
    with torch.no_grad():
        out, _ = model(dict(inputs), None)
    return out


def _other_shapes(seed=0):
    """An adding-problem input of a batch size and a length that the export's own examples do not use."""
    g = torch.Generator().manual_seed(seed)
    T, B = 37, 5
    x = torch.zeros(T, B, 2)
    x[:, :, 0] = torch.rand(T, B, generator=g)
    x[3, :, 1] = 1.0
    x[20, :, 1] = 1.0
    return {"sequence": x}


def test_torchscript_gives_the_models_outputs_on_other_shapes(reg, lstm_project, tmp_path):
    project, path = lstm_project
    out = tmp_path / "model.pt"
    result = export_model(project, reg, out, "torchscript", base_dir=path.parent)
    assert result.dynamic == {"sequence": ["time", "batch"]}
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-5
    assert result.inputs == [{"name": "sequence", "dtype": "float32", "shape": ["time", "batch", 2]}]
    assert result.outputs == [{"name": "sum", "dtype": "float32", "shape": ["batch", 1]}]

    extra = {"seqwb.json": ""}
    loaded = torch.jit.load(str(out), _extra_files=extra)
    meta = json.loads(extra["seqwb.json"])
    assert meta["task"] == "adding-problem" or meta["task"] == project.task.id
    assert meta["trained"] is True and meta["step"] == 5 and meta["layout"] == "time-major"

    inputs = _other_shapes()
    expected = _reference(reg, project, path.parent, inputs)["sum"]
    with torch.no_grad():
        (got,) = loaded(inputs["sequence"])
    assert got.shape == (5, 1)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    # the weights are the trained ones, not a fresh initialisation
    fresh, _ = template_project(reg.template("adding-problem-lstm"), TINY, reg)
    untrained = ModelSession(reg).load(fresh, path.parent, "current", "cpu").model
    with torch.no_grad():
        assert not torch.allclose(untrained(inputs, None)[0]["sum"], expected)


def test_padded_task_exports_with_its_lengths_input(reg, tmp_path):
    project, path = _trained(reg, tmp_path, "temporal-order-lstm", steps=2)
    out = tmp_path / "order.pt"
    result = export_model(project, reg, out, "torchscript", base_dir=path.parent)
    assert [r["name"] for r in result.inputs] == ["tokens", "lengths"]
    assert result.dynamic["lengths"] == ["batch"]
    loaded = torch.jit.load(str(out))
    tokens = torch.randint(1, 5, (23, 3))
    lengths = torch.tensor([23, 17, 9])
    expected = _reference(reg, project, path.parent, {"tokens": tokens, "lengths": lengths})["logits"]
    with torch.no_grad():
        (got,) = loaded(tokens, lengths)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


@pytest.mark.skipif(not HAVE_ONNX, reason="onnx, onnxscript and onnxruntime are not installed "
                                          "(pip install 'sequence-workbench[export]')")
def test_onnx_gives_the_models_outputs_under_onnxruntime(reg, lstm_project, tmp_path):
    import onnx
    import onnxruntime

    project, path = lstm_project
    out = tmp_path / "model.onnx"
    result = export_model(project, reg, out, "onnx", base_dir=path.parent)
    assert result.checked_with == "onnxruntime"
    assert result.dynamic == {"sequence": ["time", "batch"]}
    proto = onnx.load(str(out))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["seqwb"])["outputs"][0]["name"] == "sum"

    inputs = _other_shapes(1)
    expected = _reference(reg, project, path.parent, inputs)["sum"]
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(out), opts, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"sequence": inputs["sequence"].numpy()})
    torch.testing.assert_close(torch.from_numpy(got), expected, rtol=0, atol=1e-4)


def test_onnx_without_its_packages_says_what_to_install(reg, lstm_project, tmp_path, monkeypatch):
    project, path = lstm_project
    monkeypatch.setattr(export_mod, "_onnx_modules_missing", lambda: ["onnx", "onnxscript"])
    out = tmp_path / "model.onnx"
    with pytest.raises(ExportError, match=r"needs onnx, onnxscript.*pip install"):
        export_model(project, reg, out, "onnx", base_dir=path.parent)
    assert not out.exists()


def test_a_cell_stepped_in_python_is_refused_with_the_reason_and_nothing_written(reg, tmp_path):
    project, path = _trained(reg, tmp_path, steps=1, cell="peephole-lstm")
    out = tmp_path / "model.pt"
    out.write_bytes(b"previous export")
    with pytest.raises(ExportError) as info:
        export_model(project, reg, out, "torchscript", base_dir=path.parent)
    msg = str(info.value)
    assert "free batch and time axes" in msg and "PeepholeLSTMCell" in msg and "Nothing was written" in msg
    assert out.read_bytes() == b"previous export"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model.pt")]  # no temporary left behind


def test_unknown_format_and_missing_folder(reg, lstm_project, tmp_path):
    project, path = lstm_project
    with pytest.raises(ExportError, match="unknown export format 'keras'"):
        export_model(project, reg, tmp_path / "m.keras", "keras", base_dir=path.parent)
    with pytest.raises(ExportError, match="does not exist"):
        export_model(project, reg, tmp_path / "no" / "m.pt", "torchscript", base_dir=path.parent)


def test_cli_export_json_and_refusals(lstm_project, tmp_path, subprocess_env):
    _, path = lstm_project
    out = tmp_path / "cli.pt"
    cmd = [sys.executable, "-m", "workbench", "export", str(path), "-o", str(out), "--set", "threads=1"]
    done = subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["format"] == "torchscript" and report["path"] == str(out) and report["max_abs_diff"] <= 1e-5
    with zipfile.ZipFile(out) as zf:   # a TorchScript archive is a zip with the description inside
        assert any(n.endswith("extra/seqwb.json") for n in zf.namelist())
    before = out.read_bytes()
    again = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert again.returncode == 2 and "exists already" in again.stderr and out.read_bytes() == before
    bad = subprocess.run([*cmd[:-4], "-o", str(tmp_path / "m.bin")], capture_output=True, text=True,
                         env=subprocess_env(), timeout=300)
    assert bad.returncode == 2 and "--format" in bad.stderr
    assert torch.jit.load(io.BytesIO(before)) is not None


def test_metrics_csv_is_every_series_of_every_run_and_samples_text_keeps_each_sample(tmp_path):
    import csv as csv_mod

    from workbench.core.history_export import metrics_csv, samples_text, write_text
    from workbench.core.project import History
    history = History()
    a = history.new_run({})
    for step, loss in enumerate([2.5, 2.25, float("nan")], 1):
        a.log("train/loss", step, loss)
    a.log("valid/loss", 2, 2.0)
    b = history.new_run({})
    b.log("train/loss", 1, 1.0 / 3.0)
    a.samples = [{"step": 1, "text": "def f(x):\n    return x"}, {"step": 3, "text": "é ‘quoted’"}]
    path = tmp_path / "m.csv"
    write_text(path, metrics_csv(history.runs))
    rows = list(csv_mod.reader(path.open(encoding="utf-8")))
    assert rows[0] == ["run", "series", "step", "value"]
    assert rows[1:] == [["run-1", "train/loss", "1", "2.5"], ["run-1", "train/loss", "2", "2.25"],
                        ["run-1", "train/loss", "3", "nan"], ["run-1", "valid/loss", "2", "2.0"],
                        ["run-2", "train/loss", "1", repr(1.0 / 3.0)]]
    assert float(rows[-1][3]) == 1.0 / 3.0          # every digit survives the round trip
    text = samples_text(a)
    assert text.index("step 1") < text.index("def f(x):\n    return x") < text.index("step 3")
    assert "é ‘quoted’" in text and samples_text(b) == ""
