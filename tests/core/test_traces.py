"""Run traces without Qt: decimation keeps a long run's shape in fixed memory, epochs and probes are read the same
way from events and from the record, and a run's live events build the traces its saved record builds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.helpers import small_project, with_train
from workbench.core.project import Run
from workbench.core.traces import (HEATMAP_ROWS, LOG_FLOOR, SAMPLES_KEPT, SERIES_CAPACITY, Decimator, RunTraces,
                                   last_step, log10_row, reduce_for, trailing_mean)
from workbench.core.training.events import (EPOCH, GRAD_NORM, LOSS, Callback, EvalEvent, ProbeEvent, SampleEvent,
                                            StepEvent)


# ---- decimation -----------------------------------------------------------------------------------------------

def test_every_point_is_kept_until_the_arrays_fill_then_neighbours_merge_pairwise():
    dec = Decimator(8, "mean")
    for x in range(8):
        dec.append(x, 10.0 * x)
    x, y = dec.data()
    assert list(x) == list(range(8)) and list(y) == [10.0 * v for v in range(8)] and dec.stride == 1
    dec.append(8, 80.0)                  # full: pairs merge (x and y by their mean), the new point goes after them
    x, y = dec.data()
    assert list(x) == [0.5, 2.5, 4.5, 6.5, 8.0] and list(y) == [5.0, 25.0, 45.0, 65.0, 80.0]
    assert dec.stride == 2 and dec.count == 9
    dec.append(9, 90.0)                  # from now on two new points fold into one: the first is provisional
    assert dec.n == 5 and len(dec) == 6 and dec.data()[0][-1] == 9.0 and dec.last() == 90.0
    dec.append(10, 100.0)
    x, y = dec.data()
    assert dec.n == len(dec) == 6 and x[-1] == 9.5 and y[-1] == 95.0 and dec.last() == 95.0


def test_a_long_series_keeps_its_mean_and_its_peaks_in_fixed_memory():
    rng = np.random.default_rng(0)
    steps = np.arange(1, 64 * 128 + 1, dtype=np.float64)
    values = rng.uniform(0.0, 1.0, len(steps))
    values[5000] = 100.0                                   # an exploding gradient, once
    mean, peak = Decimator(64, "mean"), Decimator(64, "max")
    mean.extend(steps, values)
    peak.extend(steps, values)
    x, y = mean.data()
    assert len(x) == 64 and mean.stride == 128
    assert np.allclose(x, steps.reshape(64, 128).mean(axis=1))          # bucket centres, evenly spread
    assert np.allclose(y, values.reshape(64, 128).mean(axis=1))
    assert math.isclose(float(y.mean()), float(values.mean()))          # equal buckets: the run's mean stays
    _, top = peak.data()
    assert np.array_equal(top, values.reshape(64, 128).max(axis=1)) and top.max() == 100.0


def test_points_arriving_a_tick_at_a_time_keep_the_spike_and_span_the_run():
    dec = Decimator(64, "max")
    values = [1.0] * 10_000
    values[7777] = 100.0
    for start in range(0, 10_000, 37):                   # as the ticks bring them
        dec.extend(list(range(start, min(start + 37, 10_000))), values[start:start + 37])
    x, y = dec.data()
    assert len(x) <= 65 and x[0] < 10_000 / 30 and x[-1] > 9_800 and y.max() == 100.0 and dec.count == 10_000


def test_rows_fold_like_numbers():
    dec = Decimator(4, "mean", width=3)
    for step in range(1, 6):
        dec.append(step, [step, 2.0 * step, -step])
    steps, rows = dec.data()
    assert rows.shape == (3, 3) and list(steps) == [1.5, 3.5, 5.0]
    assert np.allclose(rows[0], [1.5, 3.0, -1.5]) and np.allclose(rows[-1], [5.0, 10.0, -5.0])


def test_a_record_of_200000_steps_loads_into_fixed_memory():
    run = Run(id="run-1")
    for step in range(1, 200_001):
        run.log(LOSS, step, 1.0 / step)
    traces = RunTraces.from_run(run)     # how fast: benchmarks/gui_latency.py, not a timed test
    loss = traces.series[LOSS]
    assert len(loss) <= SERIES_CAPACITY + 1 and loss.data()[0][-1] > 199_000 and traces.last_step == 200_000


def test_the_small_helpers():
    assert list(trailing_mean(np.array([1.0, 2.0, 3.0, 4.0]), 3)) == [1.0, 1.5, 2.0, 3.0]
    assert list(trailing_mean(np.array([1.0, 5.0]), 1)) == [1.0, 5.0]
    assert list(log10_row([100.0, 0.0, math.nan, math.inf, 1e-20])) == [2.0, -12.0, -12.0, -12.0, -12.0]
    assert LOG_FLOOR == 1e-12
    assert reduce_for(GRAD_NORM) == reduce_for("grad/rnn.0") == reduce_for("grad_clipped/head") == "max"
    assert reduce_for(LOSS) == reduce_for("valid/loss") == "mean"
    run = Run(id="run-1")
    assert last_step(run) == 0
    run.log(LOSS, 7, 1.0)
    assert last_step(run) == 7


# ---- one run's traces -----------------------------------------------------------------------------------------

def step(n: int, epoch: int = 0, **metrics: float) -> tuple[str, StepEvent]:
    return "step", StepEvent(n, epoch, {LOSS: 1.0 / n, EPOCH: epoch, **metrics})


def test_epoch_starts_come_from_the_step_events_and_from_the_record_alike():
    epochs = [0, 0, 1, 1, 1, 2, 4]
    live = RunTraces("run-1")
    live.add_events([step(i + 1, e) for i, e in enumerate(epochs[:3])])
    live.add_events([step(i + 1, e) for i, e in enumerate(epochs) if i >= 3])
    assert live.epoch_starts == [(3, 1), (6, 2), (7, 4)] and EPOCH not in live.series
    run = Run(id="run-1")
    for i, e in enumerate(epochs):
        run.log(EPOCH, i + 1, e)
    assert RunTraces.from_run(run).epoch_starts == live.epoch_starts


def test_probes_become_rows_of_log10_norms_per_layer_and_a_new_length_starts_again():
    traces = RunTraces("run-1")
    probe = {"rnn.0": {"dLT_dh": [1e-3, 1e-2, 1.0], "dL_dh": [1.0, 1.0, 10.0]},
             "rnn.1": {"dLT_dh": [0.0, 1.0, 1.0]}}
    traces.add_events([("probe", ProbeEvent(5, probe, {"rnn.0/W_hh": 1.2})),
                       ("probe", ProbeEvent(10, probe, {"rnn.0/W_hh": 0.9}))])
    assert traces.layers == ["rnn.0", "rnn.1"] and traces.gtt_latest_step == 10
    steps, rows = traces.gtt[("rnn.0", "dLT_dh")].data()
    assert list(steps) == [5.0, 10.0] and np.allclose(rows, [[-3.0, -2.0, 0.0]] * 2)
    assert np.allclose(traces.gtt[("rnn.1", "dLT_dh")].data()[1][0], [-12.0, 0.0, 0.0])    # a zero at the floor
    assert ("rnn.1", "dL_dh") not in traces.gtt
    assert list(traces.series["sigma/rnn.0/W_hh"].data()[1]) == [1.2, 0.9]
    assert traces.gtt[("rnn.0", "dL_dh")].capacity == HEATMAP_ROWS
    longer = {"rnn.0": {"dLT_dh": [1.0] * 5}}
    traces.add_events([("probe", ProbeEvent(15, longer, {}))])
    steps, rows = traces.gtt[("rnn.0", "dLT_dh")].data()
    assert list(steps) == [15.0] and rows.shape == (1, 5)
    assert traces.gtt_latest["rnn.0"] == {"dLT_dh": [1.0] * 5}


def test_step_events_add_the_series_their_step_recorded_by_name():
    traces = RunTraces("run-1", {"cells": ["lstm", "gru"], "train": {"steps": 300, "epochs": 0}})
    before = traces.version
    info = traces.add_events([step(1, **{GRAD_NORM: 3.0, "grad/rnn.0": 2.0, "train/lr": 0.01}),
                              step(2, **{GRAD_NORM: math.nan, "grad/rnn.0": 1.0, "train/lr": 0.01}),
                              ("eval", EvalEvent(2, 0, "valid", {"loss": 0.5, "ppl": 1.6, "confusion": [[1]]},
                                                 True)),
                              *[("sample", SampleEvent(s, f"text {s}")) for s in range(SAMPLES_KEPT + 2)]])
    assert info["step"].step == 2 and traces.last_step == 2 and traces.version > before
    assert traces.keys("train/") == ["grad_norm", "loss", "lr"] and traces.keys("grad/") == ["rnn.0"]
    assert list(traces.series[GRAD_NORM].data()[1]) == [3.0]            # the NaN of step 2 is not drawn
    assert list(traces.series["grad/rnn.0"].data()[0]) == [1.0, 2.0]
    assert traces.metric_names() == ["ppl"] and list(traces.series["valid/loss"].data()[0]) == [2.0]
    assert traces.samples == [(s, f"text {s}") for s in range(2, SAMPLES_KEPT + 2)]
    assert traces.label == "run-1 (lstm+gru)" and traces.planned_steps() == 300
    assert RunTraces("run-2", {"train": {"steps": 300, "epochs": 2}}).planned_steps() == 0
    assert traces.add_events([("sample", SampleEvent(9, "x"))]) == {"step": None}


# ---- live events and the record --------------------------------------------------------------------------------

class Events(Callback):
    """Every event a run reports, as the window's run bridge hands them to the dashboard."""

    def __init__(self):
        self.events: list[tuple[str, object]] = []

    def on_step_end(self, trainer, event):
        self.events.append(("step", event))

    def on_eval_end(self, trainer, event):
        self.events.append(("eval", event))

    def on_probe_end(self, trainer, event):
        self.events.append(("probe", event))

    def on_sample(self, trainer, event):
        self.events.append(("sample", event))


@pytest.mark.usefixtures("one_thread")
def test_a_runs_live_events_build_the_traces_its_record_builds(reg):
    from workbench.core.training.trainer import Trainer
    project = with_train(small_project(reg, hidden_size=8, layers=2, embed_size=4, eval_every=4, probe_every=3,
                                       sample_every=5, sample_len=12), steps=17)
    seen = Events()
    trainer = Trainer(project, reg, callbacks=[seen])
    trainer.fit(steps=17)
    run = project.history.current
    assert {kind for kind, _ in seen.events} == {"step", "eval", "probe", "sample"}

    live = RunTraces(run.id, run.settings)
    for start in range(0, len(seen.events), 7):            # a few events a tick, as the window gets them
        live.add_events(seen.events[start:start + 7])
    record = RunTraces.from_run(run)

    assert live.last_step == record.last_step == 17 and last_step(run) == 17
    assert sorted(live.series) == sorted(record.series)
    assert {"train/loss", "train/grad_norm", "valid/loss"} <= set(live.series) and live.keys("grad/")
    for key in live.series:
        (lx, ly), (rx, ry) = live.series[key].data(), record.series[key].data()
        assert np.array_equal(lx, rx) and np.allclose(ly, ry), key
    assert live.layers == record.layers and len(live.layers) == 2
    assert sorted(live.gtt) == sorted(record.gtt)
    for key in live.gtt:
        (lx, ly), (rx, ry) = live.gtt[key].data(), record.gtt[key].data()
        assert np.array_equal(lx, rx) and np.allclose(ly, ry), key
    assert live.gtt_latest == record.gtt_latest and live.gtt_latest_step == record.gtt_latest_step == 15
    assert live.samples == record.samples and len(live.samples) == 3
    assert live.epoch_starts == record.epoch_starts
