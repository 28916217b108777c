"""Choosing a project's task (Qt-free): the empty project, a project with only a task, replacing the task while
keeping the links whose port types still fit, and the data preview that the inspector and ``seqwb data`` show."""

from __future__ import annotations

import pytest

from workbench.core.data_preview import describe_preview, preview_data
from workbench.core.graph import TASK_INPUT, TASK_OUTPUT, Link
from workbench.core.project import Checkpoint
from workbench.core.projectfile import load_project, project_plugins_used, save_project
from workbench.core.settings import apply_project_settings, template_project
from workbench.core.task_choice import (NO_TASK, analyze_project, apply_task_change, empty_project,
                                        plan_task_change, task_project)
from workbench.core.training.trainer import Trainer
from workbench.schema.errors import TrainingError
from workbench.schema.params import ParamError

REVIEWS = "text,label\n" + "".join(
    f"{'a fine and moving film' if i % 2 else 'a dull and tedious film'} number {i},{'pos' if i % 2 else 'neg'}\n"
    for i in range(40))


def test_an_empty_project_says_what_to_do_saves_and_reopens(reg, tmp_path):
    project = empty_project()
    assert project.task.id == "" and not project.graph.nodes
    assert analyze_project(project, reg).problems == [NO_TASK]
    path = tmp_path / "empty.seqwb"
    save_project(project, path, plugins_used=project_plugins_used(project, reg))
    again = load_project(path, registry=reg)           # no task is not a missing plugin
    assert again.task.id == "" and again.name == "untitled"
    with pytest.raises(TrainingError, match="no task"):
        Trainer(again, reg, base_dir=tmp_path).setup()
    with pytest.raises(ParamError, match="no task yet"):
        apply_project_settings(again, {"task.path": "x.csv"}, reg)


def test_a_task_project_has_the_task_and_its_two_nodes(reg):
    project = task_project(reg.task("sentiment"), reg)
    kinds = sorted(n.type for n in project.graph.nodes.values())
    assert kinds == [TASK_INPUT, TASK_OUTPUT] and project.task.id == "sentiment"
    assert project.name == reg.task("sentiment").title
    # nothing between them yet: the output's input is the only problem
    assert analyze_project(project, reg).problems == ["node output: required input 'logits' (logits) is not "
                                                      "connected"]


def test_replacing_the_task_keeps_the_links_that_fit(reg):
    project, _ = template_project(reg.template("char-lm"), {}, reg)
    project.checkpoint = Checkpoint(weights={}, graph_hash="x")
    project.vocab = ["a", "b"]
    project.data = {"sizes": {"vocab": 2}}
    # word-lm has the same ports: every link stays
    change = plan_task_change(project, reg.task("word-lm"), reg)
    assert change.remove_links == [] and change.add_nodes == [] and change.dropped == []
    # sentiment: tokens[T] in still fits the embedding; logits[T] out does not fit logits (per example)
    change = plan_task_change(project, reg.task("sentiment"), reg)
    assert change.remove_links == [Link("head", "y", "output", "logits")]
    assert change.add_links == [] and len(change.dropped) == 1
    assert "no port of the new task takes logits[T]" in change.dropped[0]
    apply_task_change(project, change)
    assert project.task.id == "sentiment" and project.task.params == {}
    assert Link("input", "tokens", "embed", "x") in project.graph.links
    assert Link("head", "y", "output", "logits") not in project.graph.links
    # what was read from or trained on the old task's data goes with it
    assert project.vocab is None and project.data == {} and project.checkpoint is None


def test_a_link_moves_to_the_port_of_its_type_when_the_name_is_gone(reg):
    project = task_project(reg.task("seq2seq"), reg)
    project.graph.add_node("embedding", id="embed")
    project.graph.connect("input", "source", "embed", "x")
    change = plan_task_change(project, reg.task("char-lm"), reg)
    # seq2seq's "source" is tokens[T]; char-lm's tokens[T] port is "tokens": the link moves there
    assert change.remove_links == [Link("input", "source", "embed", "x")]
    assert change.add_links == [Link("input", "tokens", "embed", "x")]
    # forecasting feeds values[T]: no port fits tokens[T], the link goes
    change = plan_task_change(project, reg.task("forecast"), reg)
    assert change.add_links == [] and "gives tokens[T]" in change.dropped[0]


def test_choosing_the_same_task_keeps_its_settings_and_only_adds_missing_nodes(reg):
    project = task_project(reg.task("sentiment"), reg)
    project.task.params["min_count"] = 1
    project.graph.remove_node("output")
    change = plan_task_change(project, reg.task("sentiment"), reg)
    assert change.task.params == {"min_count": 1}
    assert [n.type for n, _ in change.add_nodes] == [TASK_OUTPUT]


def test_data_preview_reads_splits_vocabulary_examples_and_one_batch(reg, tmp_path):
    (tmp_path / "reviews.csv").write_text(REVIEWS, encoding="utf-8")
    project = task_project(reg.task("sentiment"), reg)
    project.task.params.update({"path": "reviews.csv", "min_count": 1})
    project.train.batch_size = 8
    preview = preview_data(project, reg, tmp_path, examples=3)
    assert preview["splits"] == {"train": {"count": 32, "unit": "examples"},
                                 "valid": {"count": 4, "unit": "examples"},
                                 "test": {"count": 4, "unit": "examples"}}
    assert preview["sizes"]["classes"] == 2 and preview["vocab_size"] == preview["sizes"]["vocab"]
    assert len(preview["examples"]) == 3
    for row in preview["examples"]:
        assert row["targets"] in ("pos", "neg") and "film number" in row["tokens"]
    tensors = {t["key"]: t for t in preview["batch"]["tensors"]}
    assert tensors["tokens"]["axes"] == ["T", "B"] and tensors["tokens"]["shape"][1] == 8
    assert tensors["targets"]["shape"] == [8] and preview["batch"]["batches_per_epoch"] == 4
    text = "\n".join(describe_preview(preview))
    assert "train 32 examples" in text and "tokens: [T=" in text
    assert project.vocab is None and project.data == {}         # the preview changes nothing


def test_data_preview_of_a_stream_counts_tokens(reg, tmp_path):
    (tmp_path / "corpus.txt").write_text("hello world, " * 400, encoding="utf-8")
    project = task_project(reg.task("char-lm"), reg)
    project.task.params["corpus"] = "corpus.txt"
    project.train.batch_size, project.train.chunk_len = 4, 20
    preview = preview_data(project, reg, tmp_path, examples=2)
    assert preview["splits"]["train"]["unit"] == "characters"
    assert sum(s["count"] for s in preview["splits"].values()) == len("hello world, " * 400)
    assert preview["examples"][0]["tokens"].startswith("hello world")
    assert {t["key"]: t["shape"] for t in preview["batch"]["tensors"]}["tokens"] == [20, 4]


def test_data_preview_errors_are_one_clear_line(reg, tmp_path):
    project = task_project(reg.task("sentiment"), reg)
    project.task.params["path"] = "missing.csv"
    from workbench.schema.errors import DataError
    with pytest.raises(DataError, match="missing.csv"):
        preview_data(project, reg, tmp_path)
    with pytest.raises(ValueError, match="no task"):
        preview_data(empty_project(), reg, tmp_path)
