"""``seqwb new --empty``, ``seqwb new --task ID`` and ``seqwb data FILE``: the command line's twins of File ▸ New ▸
Empty project, a task dropped on the canvas and the inspector's data preview (subprocesses on real files)."""

import json

import pytest

from tests.cli.test_cli import seqwb

REVIEWS = "text,label\n" + "".join(
    f"{'a fine and moving film' if i % 2 else 'a dull and tedious film'} number {i},{'pos' if i % 2 else 'neg'}\n"
    for i in range(40))


def test_new_empty_then_info_and_train_say_what_is_missing(tmp_path):
    path = tmp_path / "empty.seqwb"
    out = seqwb("new", "--empty", "-o", path, "--json", check=0)
    assert json.loads(out.stdout)["empty"] is True
    info = json.loads(seqwb("info", path, "--json", check=0).stdout)
    assert info["task"] == "" and info["nodes"] == [] and not info["valid"]
    assert info["problems"][0].startswith("the project has no task")
    proc = seqwb("train", path, check=1)
    assert proc.stderr.strip().splitlines() == ["seqwb: error: the project has no task to train on: choose one "
                                                "first (drag it from the palette's Tasks onto the canvas, or "
                                                "seqwb new --task ID)"]
    proc = seqwb("data", path, check=2)
    assert "no task" in proc.stderr


def test_new_task_and_its_data_preview(tmp_path):
    (tmp_path / "reviews.csv").write_text(REVIEWS, encoding="utf-8")
    path = tmp_path / "s.seqwb"
    seqwb("new", "--task", "sentiment", "-o", path, "--set", "task.path=reviews.csv", "--set", "task.min_count=1",
          "--set", "batch_size=8", check=0)
    info = json.loads(seqwb("info", path, "--json", check=0).stdout)
    assert info["task"] == "sentiment" and sorted(n["type"] for n in info["nodes"]) == ["task-input", "task-output"]
    preview = json.loads(seqwb("data", path, "--json", "--examples", "2", check=0).stdout)
    assert preview["splits"]["train"] == {"count": 32, "unit": "examples"}
    assert preview["sizes"]["classes"] == 2 and len(preview["examples"]) == 2
    assert preview["examples"][0]["targets"] in ("pos", "neg")
    assert {t["key"] for t in preview["batch"]["tensors"]} == {"tokens", "lengths", "targets"}
    text = seqwb("data", path, "--split", "valid", check=0).stdout
    assert "splits: train 32 examples, valid 4 examples, test 4 examples" in text and "first examples (valid)" in text
    # --set previews other settings without changing the file
    before = path.read_bytes()
    proc = seqwb("data", path, "--set", "task.path=nowhere.csv", check=1)
    assert "nowhere.csv" in proc.stderr and path.read_bytes() == before


@pytest.mark.parametrize("args, message", [
    ([], "give a template, --empty or --task ID"),
    (["char-lm", "--empty"], "give only one of a template, --empty and --task"),
    (["--task", "nope"], "unknown task 'nope'"),
    (["--empty", "--set", "task.path=x.csv"], "an empty project has no task to set"),
])
def test_new_refuses_unclear_requests_with_one_line(tmp_path, args, message):
    proc = seqwb("new", *args, "-o", tmp_path / "x.seqwb", check=2)
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.seqwb").exists()
