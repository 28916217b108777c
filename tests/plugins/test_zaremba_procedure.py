"""The word-lm-ptb templates train by Zaremba et al.'s own procedure: one step of the template equals one step of
a plain loop written in the paper's convention (benchmarks/zaremba_side_by_side.py), from the same weights."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from tests.conftest import REPO_ROOT
from workbench.core.settings import template_project
from workbench.core.training.trainer import Trainer
from workbench_plugins.word_lm import write_ptb_files

pytestmark = pytest.mark.usefixtures("one_thread")


def side_by_side_module():
    spec = importlib.util.spec_from_file_location("zaremba_side_by_side",
                                                  REPO_ROOT / "benchmarks" / "zaremba_side_by_side.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ptb")
    write_ptb_files(folder, prefix="ptb", max_words=8000, max_vocab=600)
    return folder


def one_step(reg, corpus, size: str, **settings):
    """The template's first step, and the plain loop's first step from the same weights and the same words."""
    zs = side_by_side_module()
    project, _ = template_project(reg.template(f"word-lm-ptb-{size}"),
                                  {"data_dir": str(corpus), "sample_every": "0", "probe_every": "0",
                                   "eval_every_epochs": "0", **settings}, reg)
    trainer = Trainer(project, reg, base_dir=corpus, threads=1)
    trainer.setup()
    cfg = project.train
    plain = zs.PlainZarembaLM(trainer.task.sizes["vocab"], cfg_units(trainer), 0.0)
    plain.load_workbench_weights(trainer.model.state_dict())
    trainer.model.eval()    # dropout off on both sides: the step is compared, not the masks
    trainer.model.train = lambda mode=True: trainer.model   # keep it off through fit()
    trainer.fit(steps=1, final_eval=False)
    x, y = next(zs.chunks(zs.streams(trainer.task._splits["train"], cfg.batch_size), cfg.chunk_len))
    zs.paper_step(plain, torch.optim.SGD(plain.parameters(), lr=cfg.lr), x, y, None, cfg.clip_norm)
    ours, theirs = zs.workbench_to_plain(trainer.model.state_dict()), plain.state_dict()
    return max(float((ours[k] - theirs[k]).abs().max()) for k in theirs), trainer


def cfg_units(trainer) -> int:
    return int(trainer.model.blocks["embed"].embed.weight.shape[1])


def test_one_step_of_the_small_template_is_one_step_of_the_papers_procedure(reg, corpus):
    diff, trainer = one_step(reg, corpus, "small")
    assert trainer.cfg.loss_reduction == "sum_over_time" and trainer.cfg.lr == 1.0 and trainer.cfg.clip_norm == 5.0
    assert diff < 1e-6


def test_the_mean_over_tokens_is_another_procedure_with_a_gradient_20_times_smaller(reg, corpus):
    diff, mean = one_step(reg, corpus, "small", loss_reduction="mean", clip_norm="0")
    assert diff > 1e-3
    _, summed = one_step(reg, corpus, "small", clip_norm="0")
    # the same weights and words: the norm plotted (and clipped) scales with the 20 unrolled steps; the logged
    # loss is per word either way
    ratio = summed.run.series["train/grad_norm"].value[0] / mean.run.series["train/grad_norm"].value[0]
    assert ratio == pytest.approx(20.0, rel=1e-4)
    assert summed.run.series["train/loss"].value[0] == pytest.approx(mean.run.series["train/loss"].value[0])


def test_medium_and_large_state_the_papers_settings(reg):
    for size, units, dropout, epochs, clip, scale in (("medium", 650, 0.5, 39, 5.0, 0.05),
                                                       ("large", 1500, 0.65, 55, 10.0, 0.04)):
        project, _ = template_project(reg.template(f"word-lm-ptb-{size}"), {}, reg)
        cfg, nodes = project.train, project.graph.nodes
        assert (cfg.epochs, cfg.clip_norm, cfg.init_scale, cfg.chunk_len, cfg.batch_size) == (epochs, clip, scale,
                                                                                               35, 20)
        assert cfg.loss_reduction == "sum_over_time" and cfg.optimizer == "sgd" and cfg.lr == 1.0
        assert nodes["rnn"].params["hidden_size"] == units and nodes["rnn"].params["dropout"] == dropout
        assert nodes["drop_in"].params["p"] == nodes["drop_out"].params["p"] == dropout
        assert "82.7" in project.notes if size == "medium" else "78.4" in project.notes
