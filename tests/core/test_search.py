"""Looking inside decoding: top-k on the tree, forced prefixes, attention along a hypothesis, tree documents and
their layout, and the CLI twin (``seqwb decode --tree / --prefix / --best / --attention``)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.helpers import small_project, write_corpus
from workbench.core.decode import DecodeResult, PrefixedTask, run_decoder
from workbench.core.projectfile import save_project
from workbench.core.project import available_weights
from workbench.core.search import (DecodeSession, check_document, hypothesis_at, layout_tree,
                                   prefix_of, read_document)
from workbench.core.settings import template_project
from workbench.core.training.trainer import Trainer

TINY = {"task.demo_train": "300", "task.demo_valid": "16", "task.demo_test": "16", "task.bleu_sentences": "4",
        "hidden_size": "16", "embed_size": "8", "batch_size": "16", "eval_every": "20", "sample_every": "0",
        "probe_every": "0", "eval_batches": "1", "threads": "1"}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(reg, tmp_path_factory):
    """A tiny date-normalisation seq2seq with attention, trained 60 steps (validated every 20: best weights)."""
    folder = tmp_path_factory.mktemp("dates")
    project, _ = template_project(reg.template("seq2seq-attention"), TINY, reg)
    trainer = Trainer(project, reg, base_dir=folder)
    trainer.fit(steps=60)
    trainer.checkpoint()
    path = folder / "dates.seqwb"
    save_project(project, path)
    return project, folder, path


@pytest.fixture(scope="module")
def session(reg):
    return DecodeSession(reg)


def sources(project, folder, session, n=4):
    return [s for s, _ in session.task(project, folder).pairs("valid")[:n]]


# ---- top-k ---------------------------------------------------------------------------------------------------

def test_topk_is_kept_on_every_expanded_node(trained, session):
    project, folder, _ = trained
    doc = session.decode(project, folder, "beam", {"width": 3, "n_best": 2, "topk": 4, "max_len": 14},
                         sources(project, folder, session)[0])
    nodes = doc["tree"]
    parents = {n["parent"] for n in nodes if n["parent"] is not None}
    assert parents, "the search expanded something"
    for nid in parents:
        top = nodes[nid]["topk"]
        assert len(top) == 4, f"expanded node {nid} keeps the 4 most likely next tokens"
        probs = [t["prob"] for t in top]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        assert all(t["label"] for t in top)
        # a child whose token is in its parent's top-k has exactly that log-probability
        by_token = {t["token"]: t["prob"] for t in top}
        for child in (n for n in nodes if n["parent"] == nid and n["token"] in by_token):
            assert child["logprob"] == pytest.approx(math.log(by_token[child["token"]]), abs=1e-4)
    assert all("topk" not in n for n in nodes if n["id"] not in parents), "nodes never expanded have none"
    plain = session.decode(project, folder, "beam", {"width": 3, "topk": 0, "max_len": 14},
                           sources(project, folder, session)[0])
    assert not any("topk" in n for n in plain["tree"])


# ---- forced prefixes ------------------------------------------------------------------------------------------

def test_forcing_a_prefix_of_the_best_hypothesis_reproduces_it(reg, trained, session):
    """The forced search is the full search restricted to the prefix's subtree: the best hypothesis keeps its rank
    among fewer candidates at every step, so it is found again, unless the restricted search found a better one
    that the full search had pruned (an <eos> that ranked below the beam among all candidates)."""
    project, folder, _ = trained
    settings = {"width": 3, "n_best": 3, "alpha": 0.6, "max_len": 16}
    same = better = 0
    for source in sources(project, folder, session, 4):
        full = session.decode(project, folder, "beam", settings, source)
        best, best_norm = full["tokens"], full["alternatives"][0]["normalized_score"]
        assert len(best) >= 3
        for cut in (1, len(best) // 2, len(best) - 1):
            forced = session.decode(project, folder, "beam", settings, source, prefix=best[:cut])
            chain = [n for n in forced["tree"] if n["status"] == "forced"]
            assert [n["token"] for n in chain] == best[:cut] and [n["step"] for n in chain] == list(range(cut))
            assert forced["prefix"] == best[:cut] and forced["search"]["prefix"] == best[:cut]
            top = forced["alternatives"][0]
            if forced["tokens"] == best:
                same += 1
                assert forced["score"] == pytest.approx(full["score"], abs=1e-4)
                assert top["normalized_score"] == pytest.approx(best_norm, abs=1e-4)
            else:
                better += 1
                assert top["normalized_score"] > best_norm - 1e-6, "never worse than the unforced best"
                assert forced["tokens"][:cut] == best[:cut]
                # ... and the full search never finished it: it pruned it (or one of its ancestors)
                assert not any(a["tokens"] == forced["tokens"] for a in full["alternatives"])
            # forced nodes carry the log-probabilities the unforced search gave the same tokens
            full_chain = [full["tree"][i] for i in sorted(_path(full, full["alternatives"][0]["node"]))][:cut]
            assert [n["score"] for n in chain] == pytest.approx([n["score"] for n in full_chain], abs=1e-4)
    assert same > 2 * better, (same, better)
    # a prefix typed as text goes through the task's target vocabulary
    typed = session.decode(project, folder, "beam", settings, source, prefix_text="19")
    assert typed["text"].startswith("19") and typed["prefix_text"] == "19"
    assert typed["tree"][1]["label"] == "1" and typed["tree"][2]["label"] == "9"


def _path(doc, nid):
    out = set()
    while nid is not None and nid != 0:
        out.add(nid)
        nid = doc["tree"][nid]["parent"]
    return out


def test_any_decoder_takes_a_prefix_through_the_task(reg, trained, session):
    project, folder, _ = trained
    loaded = session.models.load(project, folder)
    task, model = loaded.task, loaded.model
    source = sources(project, folder, session)[1]
    greedy = run_decoder(reg.decoder("greedy"), model, task, {"max_len": 16}, prompt=source)
    for cut in (1, 4):
        again = run_decoder(reg.decoder("greedy"), model, task, {"max_len": 16}, prompt=source,
                            prefix=greedy.tokens[:cut])
        assert again.tokens == greedy.tokens and again.score == pytest.approx(greedy.score, abs=1e-4)
    # a decoder with a tree but no prefix keyword: its tree gets the forced chain grafted in front
    beam = reg.decoder("beam").load()

    def no_prefix(model, task, params, *, prompt="", device=None, generator=None):
        return beam(model, task, params, prompt=prompt, device=device, generator=generator)

    from workbench.schema.params import params_from_dict
    params = params_from_dict(reg.decoder("beam").params, {"width": 2, "max_len": 16})
    forced = PrefixedTask(task, greedy.tokens[:3])
    result = forced.extend(no_prefix(model, forced, params, prompt=source))
    nodes = result.tree.nodes
    assert [n.status for n in nodes[1:4]] == ["forced"] * 3 and [n.token for n in nodes[1:4]] == greedy.tokens[:3]
    for n in nodes[1:]:
        assert n.parent < n.id and nodes[n.parent].step == n.step - 1
        assert n.score == pytest.approx(nodes[n.parent].score + n.logprob, abs=1e-4)
    assert result.tokens[:3] == greedy.tokens[:3]
    assert result.tree.path(result.alternatives[0]["node"])[:len(result.tokens)] == result.tokens
    with pytest.raises(ValueError, match="end-of-sequence"):
        run_decoder(reg.decoder("greedy"), model, task, {"max_len": 5}, prompt=source, prefix=[task.eos_id])


def test_greedy_documents_get_a_one_path_tree(trained, session):
    project, folder, _ = trained
    source = sources(project, folder, session)[0]
    doc = session.decode(project, folder, "greedy", {"max_len": 16}, source, prefix_text="1")
    nodes = doc["tree"]
    assert [n["parent"] for n in nodes] == [None] + list(range(len(nodes) - 1))
    assert nodes[1]["status"] == "forced" and doc["tokens"][0] == nodes[1]["token"]
    assert [n["token"] for n in nodes[1:] if n["label"] != "<eos>"] == doc["tokens"]
    assert nodes[-1]["score"] == pytest.approx(doc["score"], abs=1e-4)
    assert layout_tree(doc).best_path == [n["id"] for n in nodes[1:]]


# ---- attention ----------------------------------------------------------------------------------------------

def test_attention_along_a_hypothesis(trained, session):
    project, folder, _ = trained
    source = sources(project, folder, session)[0]
    doc = session.decode(project, folder, "beam", {"width": 3, "max_len": 16}, source)
    best = doc["alternatives"][0]
    att = session.attention(project, folder, source, best["tokens"], best["finished"])
    w = att["weights"]
    assert w.shape == (len(best["tokens"]) + best["finished"], len(source))
    assert np.allclose(w.sum(1), 1.0, atol=1e-5) and (w >= 0).all()
    assert att["source"] == list(source) and att["target"][-1] == "<eos>" and att["node"] == "decoder"
    # the step path along the hypothesis gives the weights the whole-sequence path gives with teacher forcing
    loaded = session.models.load(project, folder)
    task, model = loaded.task, loaded.model
    src = torch.tensor(task.encode(source)).view(-1, 1)
    target_in = torch.tensor([1] + best["tokens"]).view(-1, 1)     # <bos> + hypothesis
    with torch.no_grad():
        model({"source": src, "target_in": target_in, "lengths": torch.tensor([len(source)])},
              model.start(1, {"source": src}))
    forward = model.blocks["decoder"].attention_weights()[:, 0].numpy()
    assert np.allclose(forward, w, atol=1e-5)
    # a node of the tree names its hypothesis
    tokens, finished = hypothesis_at(doc, best["node"])
    assert tokens == best["tokens"] and finished == best["finished"]


def test_a_model_without_attention_has_no_map(reg, tmp_path, session):
    project = small_project(reg, hidden_size=8, layers=1, **{"task.corpus": str(write_corpus(tmp_path))})
    assert DecodeSession(reg).attention(project, tmp_path, "def ", [1, 2, 3], False) is None


# ---- documents and layout -----------------------------------------------------------------------------------

def crossings(layout):
    """Edges between the same two columns that cross."""
    segs = [(layout.pos[a], layout.pos[b]) for a, b in layout.edges]
    n = 0
    for i, ((c1, r1), (_, s1)) in enumerate(segs):
        for (c2, r2), (_, s2) in segs[i + 1:]:
            if c1 == c2 and (r1 - r2) * (s1 - s2) < 0:
                n += 1
    return n


def test_layout_is_planar_compact_and_folds(trained, session):
    project, folder, _ = trained
    doc = session.decode(project, folder, "beam", {"width": 4, "n_best": 3, "max_len": 16},
                         sources(project, folder, session)[2])
    full = layout_tree(doc)
    assert len(full.pos) == len(doc["tree"]) and crossings(full) == 0
    assert full.rows <= 8, "a column holds at most the 2K candidates of its step"
    assert full.kind[0] == "root" and all(full.kind[n] == "best" for n in full.best_path)
    assert sorted(full.rank.values()) == list(range(len(doc["alternatives"])))
    assert {full.kind[n] for n in full.rank} <= {"best", "nbest"}
    kinds = set(full.kind.values())
    assert {"best", "pruned"} <= kinds
    # pruned candidates hidden: counted on their parents
    lean = layout_tree(doc, show_pruned=False)
    n_pruned = sum(1 for n in doc["tree"] if n["status"] == "pruned")
    assert len(lean.pos) == len(doc["tree"]) - n_pruned and sum(lean.hidden.values()) == n_pruned
    assert crossings(lean) == 0 and lean.best_path == full.best_path
    # folding a node of the best path hides everything after it; expanding a parent shows its pruned children
    mid = full.best_path[2]
    folded = layout_tree(doc, folded=[mid])
    assert all(n not in folded.pos for n in full.best_path[3:]) and folded.hidden[mid] > 0
    parent = next(iter(lean.hidden))
    assert any(doc["tree"][c]["parent"] == parent for c in layout_tree(doc, show_pruned=False,
                                                                        expanded=[parent]).pos)
    # the prefix of a node is its path (a final <eos> left out)
    tokens, finished = hypothesis_at(doc, full.best_path[-1])
    assert prefix_of(doc, full.best_path[-1]) == doc["tokens"] == tokens


def test_documents_are_checked(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not a search-tree file"):
        read_document(bad)
    bad.write_text("{")
    with pytest.raises(ValueError, match="not a search-tree file"):
        read_document(bad)
    doc = {"format": "seqwb-search-tree", "version": 1, "tree": [{"id": 0, "parent": None}, {"id": 1, "parent": 5}]}
    with pytest.raises(ValueError, match="bad parent"):
        check_document(doc)


# ---- the CLI twin -------------------------------------------------------------------------------------------

def _close(a, b, path="doc"):
    """Equal JSON, floats to 1e-5 (the CLI and the test may run different thread counts)."""
    if isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=1e-5, rel=1e-5), path
    elif isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def test_cli_tree_and_attention_are_what_the_view_holds(trained, session, tmp_path, subprocess_env):
    project, folder, path = trained
    source = sources(project, folder, session)[3]
    tree_file, att_file = tmp_path / "tree.json", tmp_path / "att.npz"
    out = subprocess.run([sys.executable, "-m", "workbench", "decode", str(path), "--decoder", "beam", "--set",
                          "width=5", "--set", "n_best=3", "--input", source, "--prefix", "2", "--best",
                          "--tree", str(tree_file), "--attention", str(att_file), "--json"],
                         capture_output=True, text=True, env=subprocess_env(), cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout)
    written = read_document(tree_file)
    assert {k: v for k, v in printed.items() if k != "prompt"} == written
    # the view asks the same session the same question
    settings = dict(project.decode.params, width=5, n_best=3)
    doc = session.decode(project, folder, "beam", settings, source, prefix_text="2", weights="best")
    _close(written, doc)
    assert written["weights"] == "best" and written["step"] == available_weights(project)["best"]["step"]
    assert written["prefix_text"] == "2" and written["text"].startswith("2")
    assert layout_tree(written).to_json() == layout_tree(doc).to_json()
    best = doc["alternatives"][0]
    att = session.attention(project, folder, source, best["tokens"], best["finished"], weights="best")
    saved = np.load(att_file)
    assert np.allclose(saved["weights"], att["weights"], atol=1e-5)
    assert list(saved["source"]) == att["source"] and list(saved["target"]) == att["target"]
    assert str(saved["node"]) == "decoder" and saved["weights"].shape == (len(att["target"]), len(source))


def test_cli_refuses_what_it_cannot_do(reg, tmp_path, subprocess_env):
    project, _ = template_project(reg.template("seq2seq-attention"), TINY, reg)
    path = tmp_path / "fresh.seqwb"
    save_project(project, path)
    out = subprocess.run([sys.executable, "-m", "workbench", "decode", str(path), "--best"], capture_output=True,
                         text=True, env=subprocess_env(), cwd=tmp_path, timeout=120)
    assert out.returncode == 2 and "no best weights" in out.stderr


def test_result_round_trips_through_json(trained, session):
    project, folder, _ = trained
    loaded = session.models.load(project, folder)
    result = run_decoder(session.registry.decoder("beam"), loaded.model, loaded.task, {"width": 2, "max_len": 10},
                         prompt=sources(project, folder, session)[0])
    again = DecodeResult.from_json(json.loads(json.dumps(result.to_json())))
    assert again.to_json() == result.to_json()
