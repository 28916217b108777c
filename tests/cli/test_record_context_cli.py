"""``seqwb record`` and ``seqwb units`` on an encoder–decoder and a captioner (subprocesses on real files): the
twin of the window's Hidden units tab for models that read a context first."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.cli.test_cli import seqwb

FAST = ["--set", "batch_size=16", "--set", "eval_every=0", "--set", "sample_every=0", "--set", "probe_every=0"]
S2S = ["--set", "hidden_size=12", "--set", "embed_size=6", "--set", "task.demo_train=160",
       "--set", "task.demo_valid=8", "--set", "task.demo_test=2", "--set", "task.bleu_sentences=0"]
CAPTIONS = ["--set", "hidden_size=12", "--set", "embed_size=6", "--set", "feature_size=8",
            "--set", "task.shapes_train=32", "--set", "task.shapes_valid=6", "--set", "task.shapes_test=2",
            "--set", "task.bleu_sentences=0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A seq2seq and a captioning project, each trained for 6 steps."""
    folder = tmp_path_factory.mktemp("record-context")
    out = {}
    for name, template, sets in (("s2s", "seq2seq-attention", S2S), ("cap", "captioning", CAPTIONS)):
        path = folder / f"{name}.seqwb"
        seqwb("new", template, "-o", path, *sets, check=0)
        seqwb("train", path, "--steps", 6, *FAST, check=0)
        out[name] = path
    return out


def test_record_an_encoder_decoder_over_its_source_and_output(trained, tmp_path):
    path = trained["s2s"]
    npz = tmp_path / "s2s.npz"
    rec = json.loads(seqwb("record", path, "--text", "9 July 1985", "--npz", npz, "--saturation", "--json",
                           "--values", check=0).stdout)
    assert rec["trained"] and rec["step"] == 6 and rec["prompt"] == "9 July 1985" and rec["decoder"] == "beam"
    source, output = rec["parts"]["source"], rec["parts"]["output"]
    assert source["text"] == "9 July 1985" and source["steps"] == 11
    assert source["layers"]["encoder.0"]["h"] == [11, 12]
    T = output["steps"]
    assert output["layers"]["decoder.0"]["f"] == [T, 12] and len(output["labels"]) == T
    assert (output["labels"][-1] == "<eos>") == rec["finished"]
    assert rec["attention"] == {"decoder": [T, 11]}
    weights = np.asarray(rec["attention_values"]["decoder"])
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-5)
    assert set(rec["saturation"]) == {"encoder.0", "decoder.0"}
    assert np.asarray(rec["values"]["encoder.0"]["h"]).shape == (11, 12)
    with np.load(npz, allow_pickle=False) as data:
        assert "".join(data["part/source/text"]) == "9 July 1985" and data["encoder.0/c"].shape == (11, 12)
        assert data["attention/decoder"].shape == (T, 11)
    # the plain text summary says what was produced; without --text it records the project's decode prompt
    plain = seqwb("record", path, check=0).stdout
    assert plain.startswith("input '9 July 1985' -> output ") and "attention decoder: " in plain
    # a file or a sample of characters means nothing to a model that writes its own output
    refused = seqwb("record", path, "--sample", 100, check=2)
    assert "give its input with --text" in refused.stderr


def test_record_a_captioner_over_its_caption(trained):
    rec = json.loads(seqwb("record", trained["cap"], "--text", "3", "--json", check=0).stdout)
    assert list(rec["parts"]) == ["output"] and rec["attention"] == {} and rec["prompt"] == "3"
    output = rec["parts"]["output"]
    assert output["layers"]["generator.0"]["h"] == [output["steps"], 12]
    assert output["text"] == " ".join(output["labels"]) and rec["reference"].startswith("a ")


def test_units_search_the_validation_split_and_list_where_units_switch_on(trained):
    path = trained["s2s"]
    out = json.loads(seqwb("units", path, "--feature", "regex:[A-Za-z]", "--layer", "encoder.0", "--top", 5,
                           "--json", check=0).stdout)
    assert out["scope"] == "valid" and out["steps"] > 8 * 5 and not out["truncated"]
    assert len(out["units"]) == 5 and {u["layer"] for u in out["units"]} == {"encoder.0"}
    unit = out["units"][0]["unit"]
    match = json.loads(seqwb("units", path, "--match", str(unit), "--layer", "encoder.0", "--threshold", -2,
                             "--json", check=0).stdout)["match"]
    # on above -2 (everywhere an LSTM's h can be): one span per validation example, none across two
    assert match["units"] == [unit] and len(match["spans"]) == 8
    assert all("↵" not in span["text"] for span in match["spans"])
    told = seqwb("units", path, "--match", "1,2", check=2)
    assert "--match needs --layer" in told.stderr
