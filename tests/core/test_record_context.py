"""Hidden units of models that read a context first, and unit search over the whole validation split.

An encoder–decoder is recorded over its source (the encoder's states and gates, what stepping its cells gives) and
over the output the project's decoder produced (the decoder's states and gates at every output step, and the
attention weights the decoding view shows for that hypothesis); a captioner over its caption.  A corpus recording
holds one quantity of every layer over the validation split in float16; its unit search and span matches are those
of the recording functions, and spans never run from one example into the next.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.core import corpus, recording
from workbench.core.record_context import joined, reads_context
from workbench.core.search import DecodeSession, follow_path
from workbench.core.settings import template_project

pytestmark = pytest.mark.usefixtures("one_thread")

S2S = {"hidden_size": "12", "embed_size": "6", "task.demo_train": "120", "task.demo_valid": "9",
       "task.demo_test": "3", "task.bleu_sentences": "0"}
CAPTIONS = {"hidden_size": "12", "embed_size": "6", "feature_size": "8", "task.shapes_train": "24",
            "task.shapes_valid": "5", "task.shapes_test": "2", "task.bleu_sentences": "0"}
PROMPT = "9 July 1985"


def seq2seq(reg, **encoder):
    project, _ = template_project(reg.template("seq2seq-attention"), S2S, reg)
    project.decode.decoder, project.decode.params = "greedy", {"max_len": 14}
    project.graph.nodes["encoder"].params.update(encoder)
    return project


def captioner(reg):
    project, _ = template_project(reg.template("captioning"), CAPTIONS, reg)
    project.decode.params = {"width": 3, "alpha": 0.0, "n_best": 2, "max_len": 8}
    return project


def test_an_encoder_decoder_is_recorded_over_its_source_and_over_the_output_it_produced(reg, tmp_path):
    project = seq2seq(reg)
    recorder = recording.Recorder(reg)
    rec = recorder.record(project, PROMPT, tmp_path)
    loaded = recorder.session.load(project, tmp_path)
    model, task = loaded.model, loaded.task
    assert reads_context(model) and recording.is_multipart(rec)
    assert list(recording.parts(rec)) == ["source", "output"]
    assert recording.layer_names(rec) == ["encoder.0", "decoder.0"]
    assert recording.part_of(rec, "encoder.0") == "source" and recording.part_of(rec, "decoder.0") == "output"

    # the source: the prompt as the task reads it, every state and gate of the encoder's LSTM, as stepping gives
    source = recording.parts(rec)["source"]
    ids = task.encode(PROMPT)
    assert source["text"] == PROMPT and source["tokens"] == ids and source["labels"] == task.source_labels(ids)
    assert list(source["offsets"]) == list(range(len(PROMPT)))
    assert recording.quantities(rec, "encoder.0") == ["h", "c", "i", "f", "g", "o"]
    values = model._run_context({(model.in_node, "source"): torch.tensor(ids).view(-1, 1)})
    cell = model.block("encoder").cells[0]
    state = cell.init_state(1)
    for s, x_s in enumerate(values[("embed", "y")][:, 0].unbind(0)):
        gates: dict = {}
        h, state = cell.step(x_s.view(1, -1), state, gates)
        want = {"h": state[0], "c": state[1], **gates}
        for q, v in want.items():
            np.testing.assert_allclose(source["layers"]["encoder.0"][q][s], v[0].detach().numpy(), atol=1e-5,
                                       err_msg=f"encoder.0/{q} at {s}")
    np.testing.assert_allclose(source["layers"]["encoder.0"]["h"], values[("encoder", "y")][:, 0].detach().numpy(),
                               atol=1e-5)
    assert model.block("encoder").record_into is None          # recording leaves nothing switched on

    # the output: what the project's decoder produced, <eos> last when it finished, one step per output token
    doc = DecodeSession(reg).decode(project, tmp_path, "greedy", {"max_len": 14}, PROMPT)
    output = recording.parts(rec)["output"]
    finished = rec["meta"]["finished"]
    assert output["tokens"] == doc["tokens"] + ([task.eos_id] if finished else [])
    assert rec["meta"]["output"] == doc["text"] and rec["meta"]["prompt"] == PROMPT
    text, offsets = joined(output["labels"])
    assert output["text"] == text and list(output["offsets"]) == list(offsets)
    T = len(output["tokens"])
    assert recording.activations(rec, "decoder.0", "h").shape == (T, 12)
    # the decoder's states at output step t are those of the step that produced token t, as the decoding view's
    # re-run along the hypothesis computes them; its attention rows are the decoding view's attention map
    trace = follow_path(model, task, PROMPT, doc["tokens"], finished=finished)
    np.testing.assert_allclose(rec["attention"]["decoder"], trace.attention["decoder"], atol=1e-6)
    assert rec["attention"]["decoder"].shape == (T, len(ids))
    np.testing.assert_allclose(rec["attention"]["decoder"].sum(1), 1.0, atol=1e-5)
    state = model.start(1, {"source": torch.tensor(ids).view(-1, 1)})
    token = 1                                        # <bos>
    for t in range(T):
        step_trace: dict = {}
        _, state = model.step_graph({"target_in": torch.tensor([token])}, state, step_trace)
        np.testing.assert_allclose(output["layers"]["decoder.0"]["c"][t], step_trace["decoder.0"]["c"][0].detach().numpy(),
                                   atol=1e-5)
        token = output["tokens"][t]

    # gate saturation and the exports cover both parts; the .npz reads back into the same parts
    assert set(recording.gate_saturation(rec)) == {"encoder.0", "decoder.0"}
    recording.save_npz(rec, tmp_path / "s2s.npz")
    back = recording.load_npz(tmp_path / "s2s.npz")
    assert list(recording.parts(back)) == ["source", "output"]
    assert recording.parts(back)["source"]["text"] == PROMPT and recording.parts(back)["output"]["text"] == text
    np.testing.assert_array_equal(back["attention"]["decoder"], rec["attention"]["decoder"])
    for key, want in recording.recording_arrays(rec).items():
        if key != "meta":
            np.testing.assert_array_equal(recording.recording_arrays(back)[key], want, err_msg=key)
    recording.write_csv(rec, "encoder.0", "h", tmp_path / "enc.csv")
    rows = (tmp_path / "enc.csv").read_text().splitlines()
    assert len(rows) == 1 + len(ids) and rows[1].startswith("0,0,9,")


def test_a_bidirectional_encoder_records_its_backward_layer_in_source_order(reg, tmp_path):
    project = seq2seq(reg, bidirectional=True)
    recorder = recording.Recorder(reg)
    rec = recorder.record(project, PROMPT, tmp_path)
    model = recorder.session.load(project, tmp_path).model
    ids = recorder.session.task(project, tmp_path).encode(PROMPT)
    assert recording.layer_names(rec)[:2] == ["encoder.0", "encoder.0.bwd"]
    y = model._run_context({(model.in_node, "source"): torch.tensor(ids).view(-1, 1)})[("encoder", "y")][:, 0]
    both = np.concatenate([recording.activations(rec, "encoder.0", "h"),
                           recording.activations(rec, "encoder.0.bwd", "h")], 1)
    np.testing.assert_allclose(both, y.detach().numpy(), atol=1e-5)       # position s of the source in both directions


def test_a_captioner_is_recorded_over_its_caption_word_by_word(reg, tmp_path):
    project = captioner(reg)
    recorder = recording.Recorder(reg)
    rec = recorder.record(project, "2", tmp_path)
    task = recorder.session.task(project, tmp_path)
    assert list(recording.parts(rec)) == ["output"]        # an image encoder has no recurrent layer to show
    output = recording.parts(rec)["output"]
    assert recording.layer_names(rec) == ["generator.0"] and not rec["attention"]
    words = output["labels"]
    assert output["text"] == " ".join(words)
    assert [output["text"][o:o + len(w)] for o, w in zip(output["offsets"], words)] == words
    assert rec["meta"]["reference"] == task.reference("2") and rec["meta"]["decoder"] == "beam"
    assert recording.activations(rec, "generator.0", "h").shape == (len(words), 12)


def test_the_validation_split_of_an_encoder_decoder_is_every_example_one_after_another(reg, tmp_path):
    project = seq2seq(reg)
    recorder = recording.Recorder(reg)
    rec = recorder.record_corpus(project, tmp_path, quantity="c")
    task = recorder.session.task(project, tmp_path)
    sources = [s for s, _ in task.pairs("valid")]
    source, output = recording.parts(rec)["source"], recording.parts(rec)["output"]
    assert rec["meta"]["corpus"] == "valid" and rec["meta"]["examples"] == len(sources) == 9
    assert not rec["meta"]["truncated"]
    assert source["text"] == "\n".join(sources) and len(source["segments"]) == 9
    assert list(source["layers"]["encoder.0"]) == ["c"] and source["layers"]["encoder.0"]["c"].dtype == np.float16
    # each example as it is recorded alone
    third = recorder.record(project, sources[2], tmp_path)
    a, b = source["segments"][2], source["segments"][3]
    np.testing.assert_allclose(source["layers"]["encoder.0"]["c"][a:b].astype(np.float32),
                               recording.activations(third, "encoder.0", "c"), atol=2e-3)
    assert source["text"][source["offsets"][a]:].startswith(sources[2])
    # a unit on everywhere: its spans are the examples, never one run over all of them
    always = {"layers": {"x.0": {"h": np.ones((len(output["tokens"]), 1), np.float16)}}}
    spans = recording.matching_spans({**output, **always}, "x.0", "h", [0], 0.5)
    ends = [*output["segments"][1:], len(output["tokens"])]
    assert spans == list(zip(output["segments"].tolist(), [int(e) for e in ends]))
    # unit search runs over each part's own text; a part where the feature is constant (an untrained decoder's
    # output of one repeated character) is left out
    rows = recording.search_parts(rec, "regex:[0-9]", "c", registry=reg)
    varies = len(set(recording.step_track(output, "regex:[0-9]", reg).tolist())) > 1
    assert {layer for layer, _, _ in rows} == ({"encoder.0", "decoder.0"} if varies else {"encoder.0"})


def test_unit_search_over_parts_correlates_each_part_with_its_own_text_and_merges_by_r(reg):
    rng = np.random.default_rng(1)

    def part(text, layer, planted):
        track = np.asarray([ch.isdigit() for ch in text], dtype=np.float64)
        values = rng.standard_normal((len(text), 4))
        values[:, planted] = track * 2 - 1 + 0.1 * rng.standard_normal(len(text))
        return recording.annotate({"text": text, "tokens": list(range(len(text))), "layers": {layer: {"h": values}}})

    rec = {"parts": {"source": part("3 March 2021, 9 May 1985", "enc.0", 2),
                     "output": part("2021-03-03\n1985-05-09", "dec.0", 1)}, "meta": {}}
    rows = recording.search_parts(rec, "regex:[0-9]", registry=reg)
    assert rows[0][:2] in {("enc.0", 2), ("dec.0", 1)} and rows[1][:2] in {("enc.0", 2), ("dec.0", 1)}
    assert rows[0][2] > 0.9 and rows[1][2] > 0.9 and len(rows) == 8
    assert [abs(r) for _, _, r in rows] == sorted((abs(r) for _, _, r in rows), reverse=True)
    only = recording.search_parts(rec, "regex:[0-9]", layers=["dec.0"], registry=reg)
    assert {layer for layer, _, _ in only} == {"dec.0"} and only[0][1] == 1
    with pytest.raises(ValueError, match="constant"):
        recording.search_parts(rec, "regex:x", registry=reg)


def test_the_validation_split_of_a_language_model_is_one_float16_recording_cut_to_the_budget(reg, tmp_path):
    from tests.helpers import small_project
    project = small_project(reg, hidden_size=16, embed_size=8)
    recorder = recording.Recorder(reg)
    whole = recorder.record_corpus(project, tmp_path)
    task = recorder.session.task(project, tmp_path)
    text = task.sample_text(10 ** 9)
    assert whole["text"] == text and not whole["meta"]["truncated"] and whole["meta"]["chars"] == len(text)
    assert set(whole["layers"]) == {"rnn.0", "rnn.1"} and list(whole["layers"]["rnn.1"]) == ["h"]
    full = recorder.record(project, text[:600], tmp_path)
    np.testing.assert_allclose(whole["layers"]["rnn.1"]["h"][:600].astype(np.float32), full["layers"]["rnn.1"]["h"],
                               atol=2e-3)
    loaded = recorder.session.load(project, tmp_path)
    per_step = corpus.step_bytes(loaded.model, "h")
    assert per_step == 2 * (16 + 16)
    cut = corpus.record_corpus(loaded, "h", budget=per_step * 500)
    assert cut["meta"]["truncated"] and cut["text"] == text[:500]
    with pytest.raises(Exception, match="no recurrent layer of this model has 'z'"):
        corpus.record_corpus(loaded, "z")


def test_correlations_in_slices_equal_the_whole_formula(monkeypatch):
    rng = np.random.default_rng(0)
    values = rng.standard_normal((1000, 7)).astype(np.float16)
    track = (rng.random(1000) < 0.3).astype(np.float64)
    a = values.astype(np.float64) - values.astype(np.float64).mean(0)
    t = track - track.mean()
    want = (t @ a) / (np.sqrt((a * a).sum(0)) * np.sqrt(t @ t))
    monkeypatch.setattr(recording, "CORRELATION_ROWS", 7 * 64)        # 64 steps a slice: 16 slices
    np.testing.assert_allclose(recording.correlations(values, track), want, atol=1e-12)


def test_a_recording_of_an_output_reads_back_from_its_npz_with_no_source(reg, tmp_path):
    project = captioner(reg)
    rec = recording.Recorder(reg).record(project, "0", tmp_path)
    recording.save_npz(rec, tmp_path / "cap.npz")
    back = recording.load_npz(tmp_path / "cap.npz")
    assert list(recording.parts(back)) == ["output"] and back["attention"] == {}
    assert recording.parts(back)["output"]["labels"] == recording.parts(rec)["output"]["labels"]
    np.testing.assert_array_equal(recording.activations(back, "generator.0", "o"),
                                  recording.activations(rec, "generator.0", "o"))
