"""Seq2seq: data, vocabularies, batches, encoder / attention decoder (paths agree, masking, weights), training."""

from __future__ import annotations

import datetime as dt

import pytest
import torch

from workbench.core.build import build_model
from workbench.schema.errors import DataError
from workbench.core.graph import analyze
from workbench.core.settings import template_project
from workbench.core.training.evaluation import evaluate_model
from workbench.core.training.trainer import Trainer
from workbench.schema.params import params_from_dict
from workbench_plugins import translation
from workbench_plugins.translation import BOS, EOS, PAD, generate_dates

TINY = {"task.demo_train": "300", "task.demo_valid": "20", "task.demo_test": "20", "task.bleu_sentences": "12",
        "hidden_size": "16", "embed_size": "8", "batch_size": "8", "eval_every": "0", "sample_every": "0",
        "probe_every": "0", "eval_batches": "2", "threads": "1"}


pytestmark = pytest.mark.usefixtures("one_thread")


def make_task(reg, tmp_path=None, **params):
    spec = reg.task("seq2seq")
    settings = {"demo_train": 300, "demo_valid": 20, "demo_test": 20, "bleu_sentences": 12}
    settings.update(params)
    task = spec.load()(params_from_dict(spec.params, settings, "task"), tmp_path)
    task.prepare()
    return task


def make_model(reg, task, seed=0, **settings):
    tpl = {k: str(v) for k, v in TINY.items() if not k.startswith("task.")}
    tpl.update({k: str(v) for k, v in settings.items()})
    project, _ = template_project(reg.template("seq2seq-attention"), tpl, reg)
    torch.manual_seed(seed)
    model = build_model(project.graph, reg, reg.task("seq2seq"), task.sizes)
    model.eval()
    return model, project


def mixed_batch(task, n=5):
    """A validation batch whose sources have different lengths (so there is padding)."""
    batch = next(task.batches("valid", n, 0))
    assert len(set(batch["source_lengths"].tolist())) > 1
    return batch


# ---- data ---------------------------------------------------------------------------------------------------------

def test_generated_dates_are_seeded_distinct_and_correct():
    a, b = generate_dates(300, 7), generate_dates(300, 7)
    assert a == b and a != generate_dates(300, 8)
    assert len({s for s, _ in a}) == 300
    for source, target in a:
        date = dt.date.fromisoformat(target)
        assert str(date.year) in source
        lowered = source.lower()
        assert (date.strftime("%B").lower() in lowered or date.strftime("%b").lower() in lowered
                or f"{date.month:02d}" in source)
    assert translation.format_date(dt.date(2021, 3, 3), 0) == "3 March 2021"
    assert translation.format_date(dt.date(2021, 3, 3), 1) == "March 3, 2021"
    assert translation.format_date(dt.date(2021, 3, 3), 2) == "03/03/2021"


def test_vocabularies_batches_and_padding(reg):
    task = make_task(reg)
    assert task.source_vocab[:4] == task.target_vocab[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert set(task.target_vocab[4:]) == set("0123456789-")
    assert task.sizes == {"source_vocab": len(task.source_vocab), "target_vocab": len(task.target_vocab)}
    assert task.eos_id == EOS
    batch = mixed_batch(task)
    src, lengths = batch["source"], batch["source_lengths"]
    assert src.shape == (int(lengths.max()), 5)
    assert torch.equal(batch["lengths"], lengths)
    for b in range(5):
        assert (src[:lengths[b], b] != PAD).all() and (src[lengths[b]:, b] == PAD).all()
    tin, tout = batch["target_in"], batch["targets"]
    assert (tin[0] == BOS).all()
    assert torch.equal(tin[1:], torch.where(tout[:-1] == EOS, torch.zeros_like(tout[:-1]), tout[:-1]))
    for b, (source, target) in enumerate(task.pairs("valid")[:5]):
        L = int(batch["target_lengths"][b])
        assert tout[L - 1, b] == EOS and task.decode(tout[:L - 1, b].tolist()) == target
        assert task.encode(source) == src[:lengths[b], b].tolist()
    # batches are a pure function of their arguments; epochs reshuffle
    e0 = [b["source"] for b in task.batches("train", 32, 0, epoch=0, seed=3)]
    again = [b["source"] for b in task.batches("train", 32, 0, epoch=0, seed=3, start=4)]
    assert all(torch.equal(x, y) for x, y in zip(e0[4:], again)) and len(e0) == task.num_batches("train", 32, 0)
    e1 = next(task.batches("train", 32, 0, epoch=1, seed=3))["source"]
    assert e1.shape != e0[0].shape or not torch.equal(e1, e0[0])
    # a reopened project keeps its token ids
    again_task = make_task(reg, demo_seed=5)
    again_task.prepare(vocab=task.vocab)
    assert again_task.source_vocab == task.source_vocab and again_task.target_vocab == task.target_vocab
    with pytest.raises(DataError, match="not a seq2seq vocabulary"):
        again_task.prepare(vocab=["a", "b"])


def test_tsv_files_and_clear_errors(reg, tmp_path):
    good = tmp_path / "pairs.tsv"
    good.write_text("hello world\tbonjour le monde\n\nthe cat\tle chat\tCC-BY\n" * 10, encoding="utf-8")
    task = make_task(reg, tmp_path, train_file="pairs.tsv", level="word", valid_fraction=0.1, test_fraction=0.1)
    assert "bonjour" in task.target_vocab and "hello" in task.source_vocab
    assert task.encode("hello cat") == [task.source_vocab.index("hello"), task.source_vocab.index("cat")]
    assert task.bleu_tokenizer() == "13a"
    assert task.data_files["train"]["path"] == "pairs.tsv"

    (tmp_path / "notab.tsv").write_text("a\tb\nc\td\nno tab here\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"notab.tsv, line 3: expected 'source<TAB>target'"):
        make_task(reg, tmp_path, train_file="notab.tsv")
    (tmp_path / "empty.tsv").write_text("a\tb\nc\t \n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty.tsv, line 2: the target is empty"):
        make_task(reg, tmp_path, train_file="empty.tsv")
    (tmp_path / "latin.tsv").write_bytes("a\tb\ncaf\u00e9\tx\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.tsv, line 2: not valid utf-8: byte 0xe9 at offset 7"):
        make_task(reg, tmp_path, train_file="latin.tsv")
    with pytest.raises(DataError, match="TSV file not found"):
        make_task(reg, tmp_path, train_file="missing.tsv")


# ---- blocks ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("attention,extra", [
    ("none", {}), ("dot", {}), ("general", {}), ("additive", {}), ("general", {"decoder.input_feeding": "true"}),
    ("general", {"decoder.layers": "2", "encoder.layers": "2", "encoder.bidirectional": "true"}),
])
def test_forward_equals_step_path_and_padding_is_invisible(reg, attention, extra):
    task = make_task(reg)
    model, _ = make_model(reg, task, attention=attention, **extra)
    batch = mixed_batch(task)
    with torch.no_grad():
        fwd, _ = model(batch)
        steps, _ = model.run_steps(batch)
    assert torch.allclose(fwd["logits"], steps["logits"], atol=1e-5), "forward and step paths disagree"
    # each example alone (no padding at all) gives the same scores as inside the padded batch
    with torch.no_grad():
        for b in range(batch["source"].shape[1]):
            S, T = int(batch["source_lengths"][b]), int(batch["target_lengths"][b])
            alone = {"source": batch["source"][:S, b:b + 1], "target_in": batch["target_in"][:T, b:b + 1]}
            out, _ = model(alone)
            assert torch.allclose(out["logits"][:, 0], fwd["logits"][:T, b], atol=1e-5), f"example {b}"


def test_attention_weights_from_forward_and_step(reg):
    task = make_task(reg)
    model, _ = make_model(reg, task, attention="general")
    batch = mixed_batch(task)
    decoder = model.blocks["decoder"]
    with torch.no_grad():
        model(batch)
    w = decoder.attention_weights()
    T, B = batch["target_in"].shape
    S = batch["source"].shape[0]
    assert w.shape == (T, B, S)
    assert torch.allclose(w.sum(-1), torch.ones(T, B), atol=1e-5)
    pad = (batch["source"] == PAD).t().unsqueeze(0).expand(T, B, S)
    assert pad.any() and (w[pad] == 0).all(), "attention must not look at padding"
    # the step path writes the same weights into the trace
    traces = []
    with torch.no_grad():
        model.run_steps(batch, on_step=lambda t, trace: traces.append(trace))
    assert "decoder.attention" in traces[0] and "decoder.0" in traces[0]
    stepped = torch.stack([tr["decoder.attention"]["weights"] for tr in traces], 0)
    assert torch.allclose(stepped, w, atol=1e-5)
    # Bahdanau attention through the step loop keeps them too
    model2, _ = make_model(reg, task, attention="additive")
    with torch.no_grad():
        model2(batch)
    w2 = model2.blocks["decoder"].last_attention
    assert w2.shape == (T, B, S) and (w2[pad] == 0).all()


def test_encoder_state_initialises_the_decoder_and_bridge(reg):
    task = make_task(reg)
    model, _ = make_model(reg, task, attention="none")
    batch = mixed_batch(task)
    with torch.no_grad():
        out, _ = model(batch)
        enc = model.blocks["encoder"]({"x": model.blocks["embed"]({"x": batch["source"]})[0]["y"],
                                       "source": batch["source"]})[0]
    (h, c), = enc["state"]
    # the final state is taken at each sequence's last real token, and outputs are zero on padding
    for b in range(batch["source"].shape[1]):
        S = int(batch["source_lengths"][b])
        assert torch.allclose(enc["y"][S - 1, b], h[b])
        assert (enc["y"][S:, b] == 0).all()
    # without the encoder state the decoder's scores change: the state does initialise it
    decoder = model.blocks["decoder"]
    with torch.no_grad():
        alone, _ = decoder({"x": batch["target_in"]})
    assert not torch.allclose(alone["y"], out["logits"])
    # different sizes on both sides go through a learned bridge
    model3, _ = make_model(reg, task, **{"encoder.hidden_size": "24"})
    assert model3.blocks["decoder"].bridge is not None
    with torch.no_grad():
        fwd, _ = model3(batch)
        steps, _ = model3.run_steps(batch)
    assert torch.allclose(fwd["logits"], steps["logits"], atol=1e-5)


def test_port_types_and_sizes_refuse_nonsense(reg):
    task = make_task(reg)
    _, project = make_model(reg, task)
    from workbench.core.graph import check_link
    g = project.graph
    spec = reg.task("seq2seq")
    assert "type mismatch" in check_link(g, "encoder", "state", "decoder", "memory", reg, spec)
    assert "type mismatch" in check_link(g, "encoder", "y", "decoder", "init", reg, spec)
    assert "type mismatch" in check_link(g, "embed", "y", "decoder", "x", reg, spec)
    assert check_link(g, "encoder", "y", "decoder", "memory", reg, spec) is None
    g.nodes["decoder"].params["attention"] = "dot"
    g.nodes["decoder"].params["hidden_size"] = 20
    report = analyze(g, reg, spec, task.sizes)
    assert any("dot attention needs memory size" in p for p in report.problems)


def test_teacher_forcing_ratio_feeds_predictions_while_training(reg):
    task = make_task(reg)
    batch = mixed_batch(task)
    forced, _ = make_model(reg, task, seed=3)
    mixed, _ = make_model(reg, task, seed=3, teacher_forcing="0.0")
    mixed.load_state_dict(forced.state_dict())
    with torch.no_grad():
        a = forced(batch)[0]["logits"]
        b = mixed(batch)[0]["logits"]            # eval mode: always the true previous token
        assert torch.allclose(a, b, atol=1e-5)
        mixed.train()
        c = mixed(batch)[0]["logits"]            # training with ratio 0: its own predictions
    assert torch.allclose(a[0], c[0], atol=1e-5) and not torch.allclose(a[1:], c[1:], atol=1e-3)
    # ... and the gradient still flows through the loop
    mixed.train()
    loss = task.loss(mixed(batch)[0], batch)
    loss.backward()
    assert all(q.grad is not None and q.grad.abs().sum() > 0 for q in mixed.blocks["encoder"].parameters())


def test_trains_evaluates_with_bleu_and_decodes(reg, tmp_path):
    project, _ = template_project(reg.template("seq2seq-attention"), TINY, reg)
    trainer = Trainer(project, reg, base_dir=tmp_path)
    trainer.fit(steps=30)
    metrics = trainer.evaluate("valid")
    assert set(metrics) >= {"loss", "ppl", "bleu", "exact"}
    assert 0.0 <= metrics["bleu"] <= 100.0 and 0.0 <= metrics["exact"] <= 1.0
    first = trainer.run.series["train/loss"].value[0]
    assert trainer.run.series["train/loss"].value[-1] < first
    # BLEU is sacrebleu's corpus BLEU over the greedy decodes
    import sacrebleu
    task, model = trainer.task, trainer.model
    model.eval()
    hyps = []
    from workbench.core.decode import run_decoder
    for source, _ in task.pairs("valid")[:12]:
        hyps.append(run_decoder(reg.decoder("greedy"), model, task, {"max_len": task.max_decode_len()},
                                prompt=source).text)
    refs = [t for _, t in task.pairs("valid")[:12]]
    assert metrics["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], tokenize="char").score, abs=1e-6)
    # the gradient-through-time probe runs on the step path of the conditioned model
    ev = trainer.probe()
    assert "decoder.0" in ev.gtt and "decoder.attention" in ev.gtt
    assert len(ev.gtt["decoder.0"]["dLT_dh"]) == trainer.probe_batch()["target_in"].shape[0]
    assert {"encoder.0", "decoder.0", "decoder"} <= set(model.parameter_groups())
    # the test split evaluates too
    test_metrics = evaluate_model(model, task, "test", 8, 0, 1)
    assert "bleu" in test_metrics
