"""Runs across files and over time: the trainer records when its steps happened, traces place steps on a time axis,
other project files' runs are read as traces that name their file, and the runs filter matches names."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from tests.helpers import small_project, with_train
from workbench.core.projectfile import save_project
from workbench.core.training.events import WALL_TIME, started_timestamp
from workbench.core.training.trainer import Trainer
from workbench.core.traces import RunTraces, run_matches, runs_from_file, time_of

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_run_records_its_wall_time_every_log_every_steps_and_traces_place_steps_by_it(reg, tmp_path):
    project = with_train(small_project(reg, hidden_size=8, embed_size=4), log_every=4)
    trainer = Trainer(project, reg, base_dir=tmp_path)
    trainer.setup()
    trainer.fit(steps=9)
    run = project.history.current
    times = run.series[WALL_TIME]
    assert times.step == [1, 4, 8]
    assert times.value == sorted(times.value) and times.value[0] >= 0
    start = started_timestamp(run.started)
    assert math.isfinite(start) and abs(start + times.value[-1] - time.time()) < 120

    traces = RunTraces.from_run(run)
    assert traces.has_times() and traces.started == run.started
    steps = np.array([1.0, 2.5, 8.0])
    rel = time_of(traces, steps, "relative")
    np.testing.assert_allclose(rel, np.interp(steps, times.step, times.value))
    np.testing.assert_allclose(time_of(traces, steps, "wall"), rel + start)
    np.testing.assert_array_equal(time_of(traces, steps, "step"), steps)
    # a run recorded before wall times were kept cannot be placed in time
    del run.series[WALL_TIME]
    old = RunTraces.from_run(run)
    assert not old.has_times() and time_of(old, steps, "relative") is None


def test_another_files_runs_are_read_as_traces_that_name_the_file(reg, tmp_path):
    project = small_project(reg)
    for n in range(2):
        run = project.history.new_run({"cells": ["gru"]})
        for s in range(1, 6):
            run.log("train/loss", s, 1.0 / (s + n))
    path = tmp_path / "other.seqwb"
    save_project(project, path)
    before = path.read_bytes()
    name, runs = runs_from_file(path)
    assert name == project.name and [t.run_id for t in runs] == ["run-1", "run-2"]
    t = runs[1]
    assert t.source == str(path) and t.file == "other.seqwb" and t.key == "other.seqwb/run-2"
    assert t.label == "other.seqwb: run-2 (gru)"
    np.testing.assert_allclose(t.series["train/loss"].data()[1], [1 / (s + 1) for s in range(1, 6)])
    assert path.read_bytes() == before                      # read-only
    own = RunTraces.from_run(project.history.runs[0])
    assert own.key == "run-1" and own.label == "run-1 (gru)"


@pytest.mark.parametrize("pattern, names, expected", [
    ("", ("run-1 (lstm)",), True),
    ("lstm", ("run-1 (LSTM)",), True),                      # case-insensitive
    ("lstm|gru", ("b.seqwb: run-2 (gru)",), True),          # a regular expression
    ("^run-1 ", ("run-12 (rnn)",), False),
    ("run-[", ("run-[x]",), True),                          # not a valid expression: plain text
    ("other", ("run-1 (rnn)", "other.seqwb"), True),        # the file's name counts
    ("tanh", ("run-1 (rnn)",), False),
])
def test_the_runs_filter(pattern, names, expected):
    assert run_matches(pattern, *names) is expected
