"""Captioning: generated shapes, user feature files, the conditioned generator, the CNN, training and decoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.core.build import build_model
from workbench.core.decode import run_decoder
from workbench.schema.errors import DataError
from workbench.core.graph import analyze
from workbench.core.settings import template_project
from workbench.core.training.trainer import Trainer
from workbench.schema.params import params_from_dict
from workbench_plugins.captioning import COLOURS, render_shapes

TINY = {"task.shapes_train": "120", "task.shapes_valid": "16", "task.shapes_test": "8",
        "task.bleu_sentences": "16", "hidden_size": "16", "embed_size": "8", "feature_size": "16",
        "image.width": "4", "batch_size": "16", "eval_every": "0", "sample_every": "0", "probe_every": "0",
        "eval_batches": "1", "threads": "1"}


pytestmark = pytest.mark.usefixtures("one_thread")


def make(reg, tmp_path=None, seed=0, **settings):
    values = dict(TINY)
    if settings.get("features_file"):
        values.pop("image.width")  # a feature-encoder has no convolutions
    values.update({k: str(v) for k, v in settings.items()})
    project, _ = template_project(reg.template("captioning"), values, reg)
    spec = reg.task("captioning")
    task = spec.load()(params_from_dict(spec.params, project.task.params, "task"), tmp_path)
    task.prepare()
    torch.manual_seed(seed)
    model = build_model(project.graph, reg, spec, task.sizes).eval()
    return model, task, project


# ---- generated shapes -------------------------------------------------------------------------------------------

def colour_centre(image: np.ndarray, colour: str) -> tuple[float, float]:
    """(x, y) centre of the pixels close to a named colour in a [3, H, W] uint8 image."""
    rgb = np.asarray(COLOURS[colour])[:, None, None] * 255
    close = (np.abs(image.astype(np.float32) - rgb) < 50).all(0)
    ys, xs = np.nonzero(close)
    assert len(xs), f"no {colour} pixels"
    return float(xs.mean()), float(ys.mean())


def test_shapes_are_seeded_and_captions_describe_the_picture():
    images, captions = render_shapes(60, 32, 2, seed=4)
    again, same = render_shapes(60, 32, 2, seed=4)
    assert np.array_equal(images, again) and captions == same
    assert render_shapes(60, 32, 2, seed=5)[1] != captions
    assert images.shape == (60, 3, 32, 32) and images.dtype == np.uint8
    singles = pairs = 0
    for image, caption in zip(images, captions):
        words = caption.split()
        assert words[0] == "a" and words[1] in COLOURS and words[2] in ("circle", "square", "triangle")
        if len(words) == 3:
            singles += 1
            continue
        pairs += 1
        first, second = words[1], words[-2]
        relation = " ".join(words[3:-3])
        (x1, y1), (x2, y2) = colour_centre(image, first), colour_centre(image, second)
        expect = {"above": y1 < y2, "below": y1 > y2, "left of": x1 < x2, "right of": x1 > x2}
        assert expect[relation], f"{caption}: {first} at {(x1, y1)}, {second} at {(x2, y2)}"
    assert singles and pairs
    assert all(len(c.split()) == 3 for c in render_shapes(10, 32, 1, seed=0)[1])


# ---- user features --------------------------------------------------------------------------------------------

def test_features_file_and_clear_errors(reg, tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "feats.npz", features=rng.standard_normal((20, 6)).astype(np.float32))
    (tmp_path / "caps.txt").write_text("".join(f"a thing number {i % 3}\n" for i in range(20)), encoding="utf-8")
    model, task, project = make(reg, tmp_path, **{"features_file": "feats.npz", "captions_file": "caps.txt"})
    assert project.graph.nodes["image"].type == "feature-encoder"
    assert task.sizes["features"] == 6 and "thing" in task.vocab
    batch = next(task.batches("train", 4, 0))
    assert batch["features"].shape == (4, 6) and batch["tokens"].shape[1] == 4
    with torch.no_grad():
        out, _ = model(batch)
    assert out["logits"].shape == (batch["tokens"].shape[0], 4, len(task.vocab))
    assert task.image("0") is None and task.reference("test:1") == "a thing number 1"

    def load(features="feats.npz", captions="caps.txt"):
        spec = reg.task("captioning")
        t = spec.load()(params_from_dict(spec.params, {"features_file": features, "captions_file": captions},
                                         "task"), tmp_path)
        t.prepare()

    (tmp_path / "short.txt").write_text("one\ntwo\n", encoding="utf-8")
    with pytest.raises(DataError, match="short.txt has 2 captions but .*feats.npz has 20 feature rows"):
        load(captions="short.txt")
    (tmp_path / "gap.txt").write_text("one\n\nthree\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"gap.txt, line 2: empty caption"):
        load(captions="gap.txt")
    np.savez(tmp_path / "objects.npz", features=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="without pickle"):
        load(features="objects.npz")
    np.savez(tmp_path / "other.npz", vectors=np.zeros((2, 2)))
    with pytest.raises(DataError, match="has no 'features' array"):
        load(features="other.npz")
    np.savez(tmp_path / "flat.npz", features=np.zeros(5))
    with pytest.raises(DataError, match=r"2-D array \[N, D\]"):
        load(features="flat.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="not a readable .npz"):
        load(features="junk.npz")
    (tmp_path / "latin.txt").write_bytes(("ok\n" * 5 + "caf\u00e9\n").encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.txt, line 6: not valid utf-8: byte 0xe9 at offset 18"):
        load(captions="latin.txt")


# ---- blocks ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("condition", ["init", "every-step"])
def test_conditioned_generator_paths_agree_and_depend_on_the_image(reg, condition):
    model, task, _ = make(reg, condition=condition)
    batch = next(task.batches("valid", 6, 0))
    with torch.no_grad():
        fwd, _ = model(batch)
        steps, _ = model.run_steps(batch)
        assert torch.allclose(fwd["logits"], steps["logits"], atol=1e-5)
        other = dict(batch, features=batch["features"].flip(0))
        changed, _ = model(other)
    # the image conditions every position, from the first word on
    assert not torch.allclose(changed["logits"][0], fwd["logits"][0])
    gen = model.blocks["generator"]
    assert (gen.init_proj is None) == (condition == "every-step")
    first_cell = gen.cells[0]
    assert first_cell.input_size == (8 + 16 if condition == "every-step" else 8)


def test_image_encoder_refuses_wrong_sizes(reg):
    _, task, project = make(reg)
    graph, spec = project.graph, reg.task("captioning")
    assert analyze(graph, reg, spec, task.sizes).ok
    bad = analyze(graph, reg, spec, dict(task.sizes, features=100))
    assert any("expects flattened 3x32x32 images (3072 values)" in p for p in bad.problems)
    graph.nodes["image"].params["stages"] = 6
    assert any("divisible" in p for p in analyze(graph, reg, spec, task.sizes).problems)
    from workbench.core.graph import check_link
    assert "type mismatch" in check_link(graph, "embed", "y", "generator", "v", reg, spec)


def test_trains_evaluates_and_decodes(reg, tmp_path):
    project, _ = template_project(reg.template("captioning"), TINY, reg)
    trainer = Trainer(project, reg, base_dir=tmp_path)
    trainer.fit(steps=12)
    losses = trainer.run.series["train/loss"].value
    assert losses[-1] < losses[0]
    metrics = trainer.evaluate("valid")
    assert set(metrics) >= {"loss", "ppl", "bleu", "exact"}
    model, task = trainer.model, trainer.task
    model.eval()
    greedy = run_decoder(reg.decoder("greedy"), model, task, {"max_len": 12}, prompt="3")
    beam = run_decoder(reg.decoder("beam"), model, task, {"width": 1, "alpha": 0.0, "max_len": 12}, prompt="3")
    assert beam.tokens == greedy.tokens
    wide = run_decoder(reg.decoder("beam"), model, task, {"width": 3, "n_best": 2, "max_len": 12}, prompt="test:2")
    assert len(wide.alternatives) == 2 and wide.tree is not None
    assert task.image("3").shape == (32, 32, 3)
    with pytest.raises(ValueError, match="out of range"):
        task.example("999")
    ev = trainer.probe()
    assert "generator.0" in ev.gtt
