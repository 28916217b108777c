"""loss_reduction: what is back-propagated (and clipped) is the mean over tokens, the sum over time steps of the
batch mean (Zaremba et al. 2014), or the sum over every token (min-char-rnn); the logged loss stays per token."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import small_project, with_train
from workbench.core.settings import template_project
from workbench.core.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


def first_step(reg, project, reduction: str, padded: bool = False):
    """The gradient norm and logged loss of one step, on the first batch (the first with padding, ``padded``)."""
    project = with_train(project, loss_reduction=reduction, clip_norm=0.0, optimizer="sgd", lr=0.1, steps=1,
                         eval_every=0, probe_every=0, sample_every=0, threads=1)
    trainer = Trainer(project, reg)
    trainer.setup()
    batches = trainer._batches()
    batch = next(batches)
    while padded and trainer.task.count(batch) == batch["targets"].numel():
        batch = next(batches)
    event = trainer._train_step(batch)
    return event.metrics["train/grad_norm"], event.metrics["train/loss"], trainer, batch


def template(reg, name: str, **settings):
    project, _ = template_project(reg.template(name), {k: str(v) for k, v in settings.items()}, reg)
    return project


def test_the_gradient_scales_by_the_count_or_the_steps_and_the_logged_loss_does_not(reg):
    mean, loss_mean, trainer, batch = first_step(reg, small_project(reg), "mean")
    summed, loss_sum, _, _ = first_step(reg, small_project(reg), "sum")
    over_time, loss_time, _, _ = first_step(reg, small_project(reg), "sum_over_time")
    T, B = batch["targets"].shape
    assert summed / mean == pytest.approx(T * B, rel=1e-4)
    assert over_time / mean == pytest.approx(T, rel=1e-4)
    assert loss_mean == pytest.approx(loss_sum) == pytest.approx(loss_time)


def test_truncated_bptt_sums_over_the_k2_steps_that_carry_the_gradient(reg):
    mean, *_ = first_step(reg, with_train(small_project(reg), bptt_k2=5), "mean")
    over_time, *_ = first_step(reg, with_train(small_project(reg), bptt_k2=5), "sum_over_time")
    assert over_time / mean == pytest.approx(5, rel=1e-4)


def test_padded_sequences_count_real_tokens_and_classifiers_have_one_step(reg):
    # tagging pads its sentences: "sum" multiplies by the real tokens only
    mean, _, trainer, batch = first_step(reg, template(reg, "tagging", hidden_size=8, batch_size=8), "mean", True)
    summed, *_ = first_step(reg, template(reg, "tagging", hidden_size=8, batch_size=8), "sum", True)
    count = trainer.task.count(batch)
    assert count < batch["targets"].numel()
    assert summed / mean == pytest.approx(count, rel=1e-4)
    # a classifier's loss is one per sequence: summing over time is the mean, summing over all is B times it
    mean, _, trainer, batch = first_step(reg, template(reg, "sentiment", hidden_size=8, batch_size=8), "mean")
    over_time, *_ = first_step(reg, template(reg, "sentiment", hidden_size=8, batch_size=8), "sum_over_time")
    summed, *_ = first_step(reg, template(reg, "sentiment", hidden_size=8, batch_size=8), "sum")
    assert trainer.task.loss_steps(batch) == 1
    assert over_time == pytest.approx(mean, rel=1e-5) and summed / mean == pytest.approx(8, rel=1e-4)


def test_steps_whose_targets_are_all_padding_carry_no_loss():
    from workbench.core.tasks import Task

    class Tagged(Task):
        time_major = ("tokens", "targets")

    task = Tagged(None)
    targets = torch.full((6, 3), -100)
    targets[1, 0] = targets[2, 2] = targets[4, 1] = 7      # three steps have a target, three are all padding
    assert task.loss_steps({"tokens": torch.zeros(6, 3), "targets": targets}) == 3
    task.target_padding = 0                                 # a task that pads with id 0 (translation) says so
    assert task.loss_steps({"targets": torch.zeros(6, 3, dtype=torch.long)}) == 0
    assert task.loss_steps({"targets": torch.ones(5, 2)}) == 5          # real-valued targets: every step
    assert task.loss_steps({"targets": torch.ones(4, dtype=torch.long)}) == 1   # one target per example


def test_the_setting_round_trips_and_is_checked(reg, tmp_path):
    from workbench.core.projectfile import load_project, save_project
    from workbench.core.settings import apply_project_settings
    from workbench.schema.params import ParamError
    project = small_project(reg)
    assert project.train.loss_reduction == "mean"
    apply_project_settings(project, {"loss_reduction": "sum_over_time"}, reg)
    save_project(project, tmp_path / "p.seqwb")
    assert load_project(tmp_path / "p.seqwb", registry=reg).train.loss_reduction == "sum_over_time"
    with pytest.raises(ParamError, match="loss_reduction"):
        apply_project_settings(project, {"loss_reduction": "average"}, reg)
