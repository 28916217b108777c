"""Looking inside (core): feature tracks, unit search, hypothesis selection, saturation, export, CLI twins."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import torch
import pytest

from tests.conftest import make_subprocess_env
from workbench.core import features, recording
from workbench.core.project import available_weights
from workbench_plugins.text_features import track_quotes

CODE = "x = 'ab' + y  # c'x\n    if (a[1]):\n\tz = \"q\\\"r\"\n"


def bits(values) -> str:
    return "".join(str(int(v)) for v in values)


# ---- feature tracks ------------------------------------------------------------------------------------------

def test_quotes_are_on_from_the_opening_quote_to_before_the_closing_one(reg):
    assert bits(features.compute_track("quotes", "a 'bc' d", reg)) == "00111000"
    # an escaped quote stays inside; a quote in a comment opens nothing; triple quotes span lines
    assert bits(features.compute_track("quotes", 'f("x\\"y")', reg)) == "001111100"
    assert bits(features.compute_track("quotes", "# it's\nz", reg)) == "00000000"
    assert bits(features.compute_track("quotes", "'''a\nb'''c", reg)) == "1111110000"
    # an unterminated one-line string ends with its line
    assert bits(features.compute_track("quotes", "'ab\ncd", reg)) == "111000"


def test_comment_brackets_positions_indent_word_starts(reg):
    assert bits(features.compute_track("comment", "a # b\nc '#'", reg)) == "00111000000"
    # a bracket inside a string does not count; an extra closing one does not go below 0
    assert bits(features.compute_track("brackets", "f(a[1], '(')) x", reg)) == "011221111110000"
    assert bits(features.compute_track("line_position", "ab\ncde", reg)) == "012012"
    assert features.compute_track("indent", "a\n    b\n\tc\n", reg).tolist() == [0, 0, 4, 4, 4, 4, 4, 4, 8, 8, 8]
    assert bits(features.compute_track("word_start", "def f_1(x):", reg)) == "10001000100"
    assert bits(features.compute_track("regex:[0-9]+", "a12b3", reg)) == "01101"


def test_tracks_have_one_value_per_character_on_real_code(reg):
    for track in features.feature_tracks(reg):
        assert track(CODE).shape == (len(CODE),), track.name
    assert bits(features.compute_track("quotes", CODE, reg)) == "00001110000000000000000000000000000000001111100"
    assert bits(features.compute_track("comment", CODE, reg)) == "00000000000000111110000000000000000000000000000"


def test_feature_track_registry_is_open_and_checked(reg):
    def vowels(text):
        return np.array([ch in "aeiou" for ch in text], dtype=float)

    try:
        features.register_feature_track("vowels", vowels, title="Vowel")
        assert "vowels" in [t.name for t in features.feature_tracks(reg)]
        assert bits(features.compute_track("vowels", "data", reg)) == "0101"
        with pytest.raises(ValueError, match="registered already"):
            features.register_feature_track("vowels", vowels)
        features.register_feature_track("vowels", lambda text: np.zeros(1), replace=True)
        with pytest.raises(ValueError, match="returned 1 values for 4 characters"):
            features.compute_track("vowels", "data", reg)
    finally:
        features.FEATURE_TRACKS.pop("vowels", None)
    with pytest.raises(ValueError, match="unknown feature 'nope'.*quotes"):
        features.compute_track("nope", "x", reg)
    with pytest.raises(ValueError, match="bad regular expression"):
        features.compute_track("regex:(", "x", reg)
    with pytest.raises(ValueError, match="reserved"):
        features.register_feature_track("regex", vowels)


# ---- synthetic recordings -------------------------------------------------------------------------------------

def planted(text: str, unit: int = 3, H: int = 16, seed: int = 0) -> dict:
    """A recording whose unit ``unit`` of rnn.0's h is high inside quotes; the rest is noise."""
    rng = np.random.default_rng(seed)
    quotes = track_quotes(text)
    h = np.tanh(rng.normal(0, 0.5, (len(text), H))).astype(np.float32)
    h[:, unit] = np.where(quotes > 0, 0.8, -0.6) + rng.normal(0, 0.05, len(text))
    f = (1 / (1 + np.exp(-rng.normal(0, 3, (len(text), H))))).astype(np.float32)
    g = np.tanh(rng.normal(0, 2, (len(text), H))).astype(np.float32)
    rec = {"text": text, "tokens": list(range(len(text))), "layers": {"rnn.0": {"h": h, "f": f, "g": g}}}
    return recording.annotate(rec)


def test_unit_search_ranks_the_planted_unit_first_with_its_sign(reg):
    text = "a = 'quoted' + b\nprint(\"more text\", c)\n" * 5
    rec = planted(text)
    ranked = recording.unit_search(rec, "rnn.0", "h", "quotes", registry=reg)
    assert ranked[0][0] == 3 and ranked[0][1] > 0.95
    assert len(ranked) == 16 and all(abs(ranked[i][1]) >= abs(ranked[i + 1][1]) for i in range(15))
    # the sign is kept: a unit that is low inside quotes is found as well, with r < 0
    rec["layers"]["rnn.0"]["h"][:, 7] = -rec["layers"]["rnn.0"]["h"][:, 3]
    top2 = recording.unit_search(rec, "rnn.0", "h", "quotes", top=2, registry=reg)
    assert {u for u, _ in top2} == {3, 7} and dict(top2)[7] < -0.95
    # the same through an array track and a regex
    assert recording.unit_search(rec, "rnn.0", "h", features.compute_track("quotes", text, reg), top=1, registry=reg)[0][0] in (3, 7)
    assert recording.search_layers(rec, "quotes", "h", top=1, registry=reg)[0][0] == "rnn.0"


def test_unit_search_explains_a_constant_track_and_bad_names(reg):
    rec = planted("no quotes here\n" * 3)
    with pytest.raises(ValueError, match="constant over this text"):
        recording.unit_search(rec, "rnn.0", "h", "quotes", registry=reg)
    with pytest.raises(ValueError, match="no layer 'rnn.9'.*rnn.0"):
        recording.unit_search(rec, "rnn.9", "h", "line_position", registry=reg)
    with pytest.raises(ValueError, match="has no 'c'"):
        recording.unit_search(rec, "rnn.0", "c", "line_position", registry=reg)


def test_word_level_recordings_sample_tracks_at_each_token_start(reg):
    text = "say 'hi' now"
    rec = recording.annotate({"text": text, "tokens": [5, 6, 7], "labels": ["say", "'hi'", "now"],
                      "layers": {"rnn.0": {"h": np.zeros((3, 2), np.float32)}}})
    assert rec["offsets"].tolist() == [0, 4, 9]
    assert recording.step_track(rec, "quotes", reg).tolist() == [0, 1, 0]
    # a token that is not in the text (an unknown word) stays where the last one ended
    assert features.token_offsets("a b c", ["a", "<unk>", "c"]).tolist() == [0, 1, 4]


def test_hypothesis_selection_finds_units_on_over_a_span_and_where_they_switch_on_again():
    T, H = 40, 6
    h = np.full((T, H), -0.5, dtype=np.float32)
    h[10:15, 2] = 0.9        # on exactly over the span, off around it
    h[25:29, 2] = 0.8        # ... and again later
    h[10:15, 4] = 0.9
    h[25:29, 4] = 0.7
    h[33:34, 4] = 0.9        # unit 4 alone: not a match of both
    h[8:17, 1] = 0.9         # on over the span but also around it: not selected
    h[10:13, 5] = 0.9        # on over part of the span only: not selected
    rec = recording.annotate({"text": "x" * T, "tokens": [0] * T, "layers": {"rnn.0": {"h": h}}})
    units = recording.units_on_span(rec, "rnn.0", "h", 10, 15, threshold=0.3)
    assert units == [2, 4]
    assert recording.matching_spans(rec, "rnn.0", "h", units, 0.3) == [(10, 15), (25, 29)]
    assert recording.matching_spans(rec, "rnn.0", "h", units, 0.3, min_units=1) == [(10, 15), (25, 29), (33, 34)]
    assert recording.matching_spans(rec, "rnn.0", "h", units, 0.3, min_length=5) == [(10, 15)]
    assert recording.matching_spans(rec, "rnn.0", "h", [], 0.3) == []
    # a span at the very start has no "before" to be off in
    h[0:3, 3] = 0.9
    assert 3 in recording.units_on_span(rec, "rnn.0", "h", 0, 3, threshold=0.3)
    with pytest.raises(ValueError, match="empty span"):
        recording.units_on_span(rec, "rnn.0", "h", 5, 5, 0.3)


def test_saturation_treats_tanh_gates_on_their_own_scale_and_levels_are_fixed():
    rec = planted("'a' b " * 20)
    sat = recording.gate_saturation(rec)["rnn.0"]
    f, g = rec["layers"]["rnn.0"]["f"], rec["layers"]["rnn.0"]["g"]
    assert "h" not in sat and sat["f"]["range"] == "sigmoid" and sat["g"]["range"] == "tanh"
    np.testing.assert_allclose(sat["f"]["left"], (f < 0.1).mean(0))
    np.testing.assert_allclose(sat["f"]["right"], (f > 0.9).mean(0))
    np.testing.assert_allclose(sat["g"]["left"], (g < -0.9).mean(0))
    np.testing.assert_allclose(sat["g"]["right"], (g > 0.9).mean(0))
    assert recording.display_levels(rec, "rnn.0", "f") == (0.0, 1.0)
    assert recording.display_levels(rec, "rnn.0", "h") == (-1.0, 1.0)
    rec["layers"]["rnn.0"]["c"] = rec["layers"]["rnn.0"]["h"] * 3.3
    rec["kinds"]["rnn.0"]["c"] = "state"
    lo, hi = recording.display_levels(rec, "rnn.0", "c")
    assert lo == -hi and hi in (5.0,)  # 99.5th percentile of |c| (< 3.3) rounded up to a readable number
    assert recording.default_threshold(rec, "rnn.0", "f") == 0.65 and recording.default_threshold(rec, "rnn.0", "h") == 0.3


def test_npz_and_csv_round_trip(tmp_path):
    rec = planted("'a' b\n" * 4)
    rec["meta"] = {"weights": "best", "step": 7, "trained": True}
    recording.save_npz(rec, tmp_path / "r.npz")
    with np.load(tmp_path / "r.npz", allow_pickle=False) as data:
        keys = set(data.files)
        assert {"text", "tokens", "labels", "offsets", "meta", "rnn.0/h", "levels/rnn.0/h",
                "saturation/rnn.0/f", "saturation/rnn.0/g"} <= keys and "saturation/rnn.0/h" not in keys
        assert data["rnn.0/h"].dtype == np.float32 and data["saturation/rnn.0/f"].shape == (2, 16)
        meta = json.loads(str(data["meta"]))
        assert meta["weights"] == "best" and meta["layers"]["rnn.0"] == {"h": "state", "f": "gate", "g": "gate"}
    back = recording.load_npz(tmp_path / "r.npz")
    assert back["text"] == rec["text"] and back["labels"] == rec["labels"]
    np.testing.assert_array_equal(back["layers"]["rnn.0"]["g"], rec["layers"]["rnn.0"]["g"])
    recording.write_csv(rec, "rnn.0", "h", tmp_path / "h.csv")
    import csv
    with open(tmp_path / "h.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:4] == ["step", "offset", "token", "unit_0"] and len(rows) == 1 + len(rec["text"])
    assert rows[1][:3] == ["0", "0", "'"] and rows[6][2] == "\n" and len(rows[6]) == 3 + 16
    assert float(rows[2][3 + 3]) == pytest.approx(rec["layers"]["rnn.0"]["h"][1, 3], abs=1e-5)


# ---- the real thing: a tiny trained project through the CLI ---------------------------------------------------

def seqwb(*args, check=0):
    proc = subprocess.run([sys.executable, "-m", "workbench", *map(str, args)], capture_output=True, text=True,
                          env=make_subprocess_env(), timeout=240)
    assert proc.returncode == check, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory):
    """A char-LM (2 LSTM layers of 16) trained for 12 steps and saved, made in-process (the commands under test
    run as subprocesses)."""
    from tests.helpers import small_project
    from workbench.core.projectfile import project_plugins_used, save_project
    from workbench.core.training.trainer import Trainer
    from workbench.plugin_system import discover
    reg = discover()
    folder = tmp_path_factory.mktemp("inspect")
    project = small_project(reg, hidden_size=16, embed_size=8, eval_batches=1)
    trainer = Trainer(project, reg, base_dir=folder)
    trainer.setup()
    trainer.fit(steps=12)
    trainer.checkpoint()
    path = folder / "p.seqwb"
    save_project(project, path, plugins_used=project_plugins_used(project, reg))
    return path


TEXT = "def f(x):\n    return 'a' + \"b\"  # why\n"


def test_cli_record_npz_is_what_the_views_show(tiny_project, tmp_path):
    from workbench.core.projectfile import load_project
    from workbench.plugin_system import default_registry
    npz = tmp_path / "rec.npz"
    out = json.loads(seqwb("record", tiny_project, "--text", TEXT, "--npz", npz, "--saturation", "--json").stdout)
    assert out["layers"]["rnn.1"]["c"] == [len(TEXT), 16] and out["trained"] and out["weights"] == "current"
    assert out["precision"] == "fp32"
    assert out["saturation"]["rnn.0"]["g"]["range"] == "tanh"
    # the window records through the same Recorder: its arrays are the file's arrays
    reg = default_registry()
    rec = recording.Recorder(reg).record(load_project(tiny_project, registry=reg), TEXT, tiny_project.parent)
    expected = recording.recording_arrays(rec)
    with np.load(npz, allow_pickle=False) as data:
        assert set(data.files) == set(expected)
        for key, want in expected.items():
            if want.dtype.kind == "f":
                np.testing.assert_allclose(data[key], want, rtol=0, atol=1e-6, err_msg=key)
            else:
                np.testing.assert_array_equal(data[key], want, err_msg=key)
    # --best records the weights the end-of-run validation kept
    best = json.loads(seqwb("record", tiny_project, "--text", TEXT, "--best", "--json").stdout)
    assert best["weights"] == "best" and best["step"] == 12


def test_the_recorder_reads_text_in_the_projects_precision(tiny_project, monkeypatch):
    """precision = bf16 (or auto on a CPU with native bfloat16) records under bfloat16 autocast, twice as fast
    (benchmarks/recorder_speed.py): float32 values within bfloat16's precision of a float32 recording, and the
    recording says which; float32 projects, and auto on a CPU without bfloat16, record in float32."""
    import dataclasses

    from workbench.core import precision
    from workbench.core.projectfile import load_project
    from workbench.plugin_system import discover
    reg = discover()
    project = load_project(tiny_project, registry=reg)
    recorder = recording.Recorder(reg)
    exact = recorder.record(project, TEXT, tiny_project.parent)
    assert exact["meta"]["precision"] == "fp32"
    project.train = dataclasses.replace(project.train, precision="bf16")
    reduced = recorder.record(project, TEXT, tiny_project.parent)
    assert reduced["meta"]["precision"] == "bf16"
    for layer, qs in exact["layers"].items():
        for q, want in qs.items():
            got = reduced["layers"][layer][q]
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=0, atol=5e-2, err_msg=f"{layer}/{q}")
    assert any(not np.array_equal(reduced["layers"][k][q], v) for k, qs in exact["layers"].items()
               for q, v in qs.items())                 # it did run in bfloat16
    project.train = dataclasses.replace(project.train, precision="auto")
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda flags=None: False)
    assert recorder.record(project, TEXT, tiny_project.parent)["meta"]["precision"] == "fp32"
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda flags=None: True)
    assert recorder.record(project, TEXT, tiny_project.parent)["meta"]["precision"] == "bf16"


def test_cli_units_json_ranks_units_by_correlation(tiny_project):
    out = json.loads(seqwb("units", tiny_project, "--text", TEXT * 3, "--feature", "quotes", "--top", 5,
                           "--json").stdout)
    assert out["feature"] == "quotes" and out["layers"] == ["rnn.0", "rnn.1"] and len(out["units"]) == 5
    rs = [abs(u["r"]) for u in out["units"]]
    assert rs == sorted(rs, reverse=True) and all(0 <= r <= 1 for r in rs)
    # one layer, a gate, every unit, as a table
    table = seqwb("units", tiny_project, "--text", TEXT * 3, "--feature", "regex:'", "--layer", "rnn.1",
                  "--quantity", "f", "--top", 0).stdout.splitlines()
    assert table[0].startswith(f"Matches of /'/ over {len(TEXT * 3)} characters") and "f of rnn.1" in table[0]
    assert table[1].split() == ["rank", "layer", "unit", "r"] and len(table) == 2 + 16
    assert all(line.split()[1] == "rnn.1" for line in table[2:])
    bad = seqwb("units", tiny_project, "--text", TEXT, "--feature", "nope", check=2)
    assert "unknown feature 'nope'" in bad.stderr
    flat = seqwb("units", tiny_project, "--text", "abc", "--feature", "quotes", check=1)
    assert "constant over this text" in flat.stderr


def test_recorder_refuses_what_would_not_fit_in_memory_and_reuses_its_model(tiny_project, monkeypatch):
    from workbench.schema.errors import DataError
    from workbench.core.projectfile import load_project
    from workbench.plugin_system import discover
    reg = discover()
    project = load_project(tiny_project, registry=reg)
    recorder = recording.Recorder(reg)
    first = recorder.session.load(project, tiny_project.parent)
    assert first.trained and first.step == 12 and recorder.session.load(project, tiny_project.parent).model is first.model
    # 2 layers x (h, c, i, f, g, o) x 16 units x 4 bytes = 768 bytes per character
    assert recording.recording_bytes(first.model, 1000) == 768_000
    monkeypatch.setattr(recording, "MAX_RECORDING_BYTES", 768 * 100)
    with pytest.raises(DataError, match="record at most 100 characters"):
        recorder.record(project, "x" * 101, tiny_project.parent)
    assert recorder.record(project, "x" * 100, tiny_project.parent)["layers"]["rnn.1"]["o"].shape == (100, 16)
    # the validation at the end of the run kept best weights: a model of their own (the decoding view compares
    # the two side by side), kept too
    assert available_weights(project)["best"]["step"] == 12
    best = recorder.session.load(project, tiny_project.parent, weights="best")
    assert best.weights == "best" and best.model is not first.model
    assert recorder.session.load(project, tiny_project.parent, weights="best").model is best.model
    assert all(torch.equal(v, project.checkpoint.tensors[f"best/{k}"]) for k, v in best.model.state_dict().items())
    project.checkpoint.tensors = {k: v for k, v in project.checkpoint.tensors.items() if not k.startswith("best/")}
    with pytest.raises(ValueError, match="no best weights"):
        recorder.session.load(project, tiny_project.parent, weights="best")
