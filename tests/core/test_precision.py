"""Training precision: what auto resolves to (from the hardware's flags), the float32 fallback for parts that
cannot, reduced precision actually used in the forward pass, and the setting in the file and on the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tests.conftest import make_subprocess_env
from tests.helpers import small_project, with_train
from workbench.core import precision
from workbench.core.project import Project
from workbench.core.projectfile import load_project, save_project
from workbench.core.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


def test_auto_follows_the_cpus_flags_and_explicit_choices_are_kept_where_they_can_be():
    assert precision.resolve("auto", CPU, cpu_bf16=True).name == "bf16"
    no = precision.resolve("auto", CPU, cpu_bf16=False)
    assert no.name == "fp32" and "no native bfloat16" in no.reason
    assert precision.resolve("fp32", CPU, cpu_bf16=True).name == "fp32"
    assert precision.resolve("bf16", CPU, cpu_bf16=False).name == "bf16"     # asked for: emulated, but allowed
    assert precision.resolve("fp16", CPU).name == "fp32"                     # float16 training needs CUDA
    assert precision.resolve("auto", torch.device("mps")).name == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.resolve("fp8", CPU)
    # the flags come from the CPU, not from its name
    assert precision.cpu_has_bf16(frozenset({"avx512f", "avx512_bf16"}))
    assert precision.cpu_has_bf16(frozenset({"amx_bf16", "amx_tile"}))
    assert not precision.cpu_has_bf16(frozenset({"avx512f", "avx512bw", "avx2"}))
    bf16 = precision.Precision("bf16")
    assert bf16.reduced and not bf16.scaler and bf16.dtype() is torch.bfloat16 and bf16.label() == "bf16 autocast"
    assert precision.Precision("fp16").label() == "fp16 autocast + scaler"


def test_bf16_trains_with_a_float32_loss_and_weights(reg, monkeypatch):
    project = with_train(small_project(reg, threads=1), precision="bf16", steps=3, eval_every=0)
    seen = {}
    trainer = Trainer(project, reg)
    trainer.setup()
    real_loss = trainer.task.loss

    def loss(outputs, batch):
        seen["logits"] = outputs["logits"].dtype
        seen["autocast"] = torch.is_autocast_enabled("cpu")
        return real_loss(outputs, batch)

    monkeypatch.setattr(trainer.task, "loss", loss)
    inside, head = [], []
    trainer.model.blocks["rnn"].register_forward_hook(lambda m, i, o: inside.append(o[0]["y"].dtype))
    trainer.model.blocks["head"].register_forward_hook(lambda m, i, o: head.append(o[0]["y"].dtype))
    trainer.fit(final_eval=False)
    assert trainer.precision.name == "bf16" and not trainer.notices
    assert inside and set(inside) == {torch.bfloat16}              # the recurrent layers ran in bfloat16
    assert head and set(head) == {torch.float32}                   # the scores the softmax reads did not
    assert seen == {"logits": torch.float32, "autocast": False}     # the loss did not
    assert all(p.dtype is torch.float32 for p in trainer.model.parameters())
    assert all(v.dtype is torch.float32 for st in trainer.optimizer.state.values() for v in st.values()
               if torch.is_tensor(v) and v.is_floating_point())
    assert project.history.current.settings["precision"] == "bf16"
    assert all(torch.isfinite(torch.tensor(project.history.current.series["train/loss"].value)))
    # the carried state is kept in float32 (checkpoints and resuming do not depend on the precision)
    assert all(t.dtype is torch.float32 for t in trainer._carry["rnn"][0])


def test_a_cell_that_cannot_falls_back_to_float32_with_one_notice(reg):
    project = small_project(reg, threads=1, cell="peephole-lstm")
    project = with_train(project, precision="bf16", steps=2, eval_every=0)
    trainer = Trainer(project, reg)
    trainer.fit(final_eval=False)
    assert trainer.precision.name == "fp32"
    notes = [n for n in trainer.notices if "does not support bf16" in n]
    assert len(notes) == 1 and "PeepholeLSTMCell" in notes[0] and "node rnn" in notes[0]
    # a fused LSTM can; the same LSTM with its hand-written path cannot, and says so
    lstm = small_project(reg, threads=1)
    lstm.graph.nodes["rnn"].params["cell.fused"] = False
    trainer = Trainer(with_train(lstm, precision="bf16"), reg)
    trainer.setup()
    assert trainer.precision.name == "fp32" and "LSTMCell" in trainer.notices[-1]


def test_the_setting_round_trips_through_the_file_and_the_cli(reg, tmp_path):
    project = with_train(small_project(reg), precision="auto")
    path = tmp_path / "p.seqwb"
    save_project(project, path)
    assert load_project(path, registry=reg).train.precision == "auto"
    env = make_subprocess_env()
    out = subprocess.run([sys.executable, "-m", "workbench", "train", str(path), "--steps", "2", "--json",
                          "--set", "precision=bf16", "--set", "threads=1", "--set", "eval_every=0"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert load_project(path, registry=reg).history.current.settings["precision"] == "bf16"
    bad = subprocess.run([sys.executable, "-m", "workbench", "train", str(path), "--set", "precision=half"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and "precision" in bad.stderr and "auto" in bad.stderr


def test_files_from_before_precision_keep_their_meaning(reg):
    doc = small_project(reg).to_json()
    for amp, expected in ((True, "fp16"), (False, "fp32")):
        train = {k: v for k, v in doc["train"].items() if k != "precision"}
        train["amp"] = amp
        assert Project.from_json({**doc, "train": train}).train.precision == expected
    assert json.dumps(doc)   # plain JSON
