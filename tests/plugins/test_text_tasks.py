"""Text tasks: word-lm (PTB files, Python docs), sentiment (CSV/TSV, generated reviews), tagging (CoNLL, Python
tokens): readers and their error messages, vocabularies, batching, metrics, learning, the CLI's eval output."""

import json
import math
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from tests.helpers import with_train
from workbench.schema.errors import DataError
from workbench.core.settings import template_project
from workbench.core.training.events import Callback
from workbench.core.training.trainer import Trainer
from workbench.plugin_system import discover
from workbench.schema.params import params_from_dict
from workbench_plugins import classify, tagging, text_data, word_lm


@pytest.fixture(scope="module")
def reg():
    return discover()


def make_task(reg, task_id, tmp_path, **params):
    spec = reg.task(task_id)
    return spec.load()(params_from_dict(spec.params, params, "task"), tmp_path)


class Losses(Callback):
    def __init__(self):
        self.losses = []

    def on_step_end(self, trainer, ev):
        self.losses.append(ev.loss)


def learns(project, tmp_path, steps, factor):
    """Train ``steps`` steps; the mean loss of the last five is below ``factor`` times that of the first five."""
    project = with_train(project, eval_every=0, sample_every=0, probe_every=0, threads=1, steps=steps)
    rec = Losses()
    trainer = Trainer(project, discover(), callbacks=[rec], base_dir=tmp_path)
    trainer.fit(steps=steps, final_eval=False)
    first, last = sum(rec.losses[:5]) / 5, sum(rec.losses[-5:]) / 5
    assert last < factor * first, f"loss {first:.3f} -> {last:.3f}"
    return trainer


# ---- shared pieces -------------------------------------------------------------------------------------------------

def test_macro_f1_and_accuracy_by_hand():
    # rows: true class, columns: predicted class
    scores = text_data.classification_scores([[3, 1], [2, 4]])
    assert scores["accuracy"] == pytest.approx(7 / 10)
    # class 0: tp 3, fp 2, fn 1 -> 6/9; class 1: tp 4, fp 1, fn 2 -> 8/11
    assert scores["macro_f1"] == pytest.approx((6 / 9 + 8 / 11) / 2)
    # a class that is neither a target nor a prediction is left out of the average
    three = text_data.classification_scores([[2, 0, 0], [1, 1, 0], [0, 0, 0]])
    assert three["macro_f1"] == pytest.approx((4 / 5 + 2 / 3) / 2)
    assert text_data.classification_scores([[0, 0], [0, 0]]) == {"accuracy": 0.0, "macro_f1": 0.0}


def test_vocab_order_cap_and_packing():
    from collections import Counter
    v = text_data.build_vocab(Counter({"b": 3, "a": 3, "c": 1, "d": 2}), ["<pad>", "<unk>"], max_vocab=4)
    assert v == ["<pad>", "<unk>", "a", "b"]
    assert text_data.build_vocab(Counter({"b": 3, "c": 1}), ["<unk>"], min_count=2) == ["<unk>", "b"]
    packed = text_data.pack_vocab({"tokens": ["<pad>", "x"], "labels": ["neg", "pos"]})
    assert all(isinstance(s, str) for s in packed)
    assert text_data.unpack_vocab(packed, ("tokens", "labels")) == {"tokens": ["<pad>", "x"], "labels": ["neg", "pos"]}
    assert text_data.unpack_vocab(["a", "b"], ("tokens",)) is None
    assert [text_data.unk_signature(w) for w in ("42", "'x'", "#c", "Foo", "bar")] == \
        ["<unk-num>", "<unk-quote>", "<unk-punct>", "<unk-cap>", "<unk>"]


def test_non_utf8_file_names_the_byte_offset(tmp_path):
    path = tmp_path / "bad.train.txt"
    path.write_bytes(b"good words\nbad \xff byte\n")
    with pytest.raises(DataError, match=r"bad.train.txt is not valid utf-8: byte 0xff at offset 15 \(line 2"):
        word_lm.read_ptb(path)


# ---- word-lm -------------------------------------------------------------------------------------------------------

def write_ptb(folder: Path, prefix="ptb", train=None, valid=None, test=None):
    folder.mkdir(parents=True, exist_ok=True)
    train = train or " the cat sat on the mat \n the dog sat on the log \n a cat saw a dog \n" * 20
    valid = valid or " the cat sat on the log \n a zebra sat \n"
    test = test or " the dog saw the cat \n"
    for split, text in (("train", train), ("valid", valid), ("test", test)):
        (folder / f"{prefix}.{split}.txt").write_text(text, encoding="utf-8")
    return folder


def test_ptb_reader_vocab_and_unknown_words(reg, tmp_path):
    write_ptb(tmp_path / "data")
    task = make_task(reg, "word-lm", tmp_path, data_dir="data")
    task.prepare()
    assert task.vocab[:2] == ["<unk>", "<eos>"] and task.eos_id == 1
    assert task.vocab[2] == "the"  # the most frequent training word
    assert task.sizes == {"vocab": len(task.vocab)}
    assert task._words["valid"][:7] == ["the", "cat", "sat", "on", "the", "log", "<eos>"]
    zebra = task._words["valid"].index("zebra")
    assert task._splits["valid"][zebra].item() == task.vocab.index("<unk>")  # not in the training vocabulary
    assert set(task.data_files) == {"train", "valid", "test"}
    assert task.data_files["train"]["path"] == str(Path("data") / "ptb.train.txt")
    # a capped vocabulary keeps <unk> and <eos>, maps the rest to <unk>
    small = make_task(reg, "word-lm", tmp_path, data_dir="data", max_vocab=4)
    small.prepare()
    assert small.vocab == ["<unk>", "<eos>", "the", "a"]  # ties: alphabetical
    # a reopened project keeps its ids
    again = make_task(reg, "word-lm", tmp_path, data_dir="data")
    again.prepare(vocab=list(reversed(task.vocab)))
    assert again.vocab == list(reversed(task.vocab)) and again.eos_id == again.vocab.index("<eos>")


def test_ptb_batches_are_contiguous_streams(reg, tmp_path):
    write_ptb(tmp_path)
    task = make_task(reg, "word-lm", tmp_path)  # data_dir empty: the project's folder
    task.prepare()
    batches = list(task.batches("train", 4, 5))
    assert len(batches) == task.num_batches("train", 4, 5)
    assert batches[0]["reset"] and not batches[1]["reset"]
    assert batches[0]["tokens"].shape == (5, 4)
    assert torch.equal(batches[0]["tokens"][1:], batches[0]["targets"][:-1])
    assert torch.equal(batches[1]["tokens"][0], batches[0]["targets"][-1])  # the stream continues
    assert [b["tokens"].shape for b in task.batches("train", 4, 5, start=2)] == \
        [b["tokens"].shape for b in batches[2:]]
    assert "the cat sat" in task.sample_text(200)


def test_ptb_missing_data_says_where_it_looked(reg, tmp_path):
    task = make_task(reg, "word-lm", tmp_path, data_dir="ptb")
    with pytest.raises(DataError) as err:
        task.prepare()
    msg = str(err.value)
    for part in ("looked for *.train.txt, *.valid.txt and *.test.txt in", str(tmp_path / "ptb"), "(no such folder)",
                 "Nothing is downloaded", "point task.data_dir at the folder holding your own copy"):
        assert part in msg, msg
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "x.train.txt").write_text("a b\n")
    with pytest.raises(DataError, match=r"found no \*\.valid\.txt"):
        make_task(reg, "word-lm", tmp_path, data_dir="only").prepare()


def test_ptb_explicit_paths_and_ambiguous_folders(reg, tmp_path):
    write_ptb(tmp_path / "d", prefix="a")
    write_ptb(tmp_path / "d", prefix="b")
    with pytest.raises(DataError, match=r"several files match \*\.train\.txt in .*: a\.train\.txt, b\.train\.txt; "
                                        r"set task\.train"):
        make_task(reg, "word-lm", tmp_path, data_dir="d").prepare()
    task = make_task(reg, "word-lm", tmp_path, train="d/a.train.txt", valid="d/b.valid.txt", test="d/b.test.txt")
    task.prepare()
    assert task.data_files["valid"]["path"] == str(Path("d") / "b.valid.txt")
    with pytest.raises(DataError, match="word-lm data file not found: .*nope.txt"):
        make_task(reg, "word-lm", tmp_path, train="nope.txt", valid="d/a.valid.txt").prepare()
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "e.train.txt").write_text("\n\n")
    (tmp_path / "e" / "e.valid.txt").write_text("a\n")
    with pytest.raises(DataError, match="e.train.txt has no words"):
        make_task(reg, "word-lm", tmp_path, data_dir="e").prepare()


def test_python_docs_corpus_is_ptb_like():
    src = ('"""Module docstring. It has two sentences!"""\n'
           'x = "# not a comment"\n'
           '# A comment block\n# that goes on here.\n'
           'y = 1  # a trailing comment is code commentary\n'
           'def f():\n    """Return 42 items; see f(x)."""\n'
           '    s = """\nnot a docstring: it does not start the line\n"""\n')
    paragraphs = word_lm.doc_paragraphs(src)
    assert paragraphs == ["Module docstring. It has two sentences!", "A comment block that goes on here.",
                          "Return 42 items; see f(x)."]
    sentences = [s for p in paragraphs for s in word_lm.paragraph_sentences(p)]
    assert sentences[0] == ["module", "docstring", "."]
    assert ["return", "N", "items", ";", "see", "f", "(", "x", ")", "."] in sentences
    corpus = word_lm.python_docs_sentences(20_000)
    assert corpus["train"] and corpus["valid"]
    words = [w for s in corpus["train"] for w in s]
    assert all(w == w.lower() or w == "N" for w in words) and "the" in words


def test_write_ptb_files_feeds_the_ptb_template(reg, tmp_path):
    paths = word_lm.write_ptb_files(tmp_path, max_words=20_000, max_vocab=500)
    assert sorted(p.name for p in paths.values()) == ["python-docs.test.txt", "python-docs.train.txt",
                                                      "python-docs.valid.txt"]
    first = paths["train"].read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(" ") and first.endswith(" ")  # PTB's own spacing
    project, _ = template_project(reg.template("word-lm-ptb-small"), {"hidden_size": "8", "embed_size": "8"}, reg)
    assert project.train.epochs == 13 and project.train.optimizer == "sgd" and project.train.lr == 1.0
    assert (project.train.schedule, project.train.decay_start, project.train.decay_factor) == ("step", 4, 0.5)
    assert (project.train.init, project.train.init_scale, project.train.chunk_len) == ("uniform", 0.1, 20)
    trainer = Trainer(with_train(project, batch_size=4), reg, base_dir=tmp_path)
    trainer.setup()
    assert trainer.task.sizes["vocab"] == 500


def test_word_lm_learns_and_generates_a_sentence(reg, tmp_path):
    write_ptb(tmp_path)
    project, _ = template_project(reg.template("word-lm-ptb-small"), {
        "hidden_size": "32", "embed_size": "16", "layers": "1", "batch_size": "4", "chunk_len": "10",
        "optimizer": "adam", "lr": "0.01", "init": "default"},
        reg)
    trainer = learns(project, tmp_path, 40, 0.6)
    text = trainer.sample(length=20).text
    assert isinstance(text, str)
    metrics = trainer.evaluate("valid")
    assert set(metrics) == {"loss", "ppl"} and metrics["ppl"] == pytest.approx(math.exp(metrics["loss"]))


# ---- sentiment -----------------------------------------------------------------------------------------------------

def test_generated_reviews_need_word_order():
    rows = classify.synthetic_reviews(3000)
    assert rows == classify.synthetic_reviews(3000)  # deterministic
    assert {lab for _, lab in rows} == {"positive", "negative"}
    # Which polar words, negations and connectives a review has, in any order, does not decide its label: it takes
    # the order (what 'not' applies to, which side of 'but' a clause is on)
    polar = {w: "+" for w in classify._POSITIVE + ("liked", "like", "enjoyed", "enjoy", "loved", "love", "admired",
                                                   "admire")}
    polar.update({w: "-" for w in classify._NEGATIVE + ("hated", "hate", "disliked", "dislike")})
    keep = {"not", "never", "hardly", "didn't", "but", "although", "even", "though", "and"}
    labels_of_bag = defaultdict(set)
    bags = []
    for text, lab in rows:
        bag = tuple(sorted(polar.get(w, w) for w in text.split() if w in polar or w in keep))
        labels_of_bag[bag].add(lab)
        bags.append(bag)
    ambiguous = sum(len(labels_of_bag[b]) == 2 for b in bags) / len(bags)
    assert ambiguous > 0.3, ambiguous
    texts = " ".join(t for t, _ in rows)
    for phrase in (" not ", " but ", "although", "even though", " very ", "didn't"):
        assert phrase in texts


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_table_reader_csv_tsv_columns_and_quotes(tmp_path):
    csv_path = write_csv(tmp_path / "a.csv", 'id,text,label\n1,"good, really good",pos\n\n2,"multi\nline",neg\n'
                                             '3,bad,neg\n')
    rows = classify.read_table(csv_path)
    assert rows == [("good, really good", "pos", 2), ("multi\nline", "neg", 4), ("bad", "neg", 6)]
    tsv = write_csv(tmp_path / "a.tsv", "neg\tawful, truly\npos\tfine\n")
    assert classify.read_table(tsv, header=False, text_column="1", label_column="0") == \
        [("awful, truly", "neg", 1), ("fine", "pos", 2)]
    semi = write_csv(tmp_path / "a.txt", "Text;Label\nok;pos\n")
    assert classify.read_table(semi, delimiter="semicolon") == [("ok", "pos", 2)]  # names match case-insensitively


@pytest.mark.parametrize("content,kwargs,message", [
    ("text,label\ngood,pos\nbad,neg,extra\n", {}, r"a.csv:3: expected 2 fields \(like the header\), found 3"),
    ("good,pos\nbad\n", {"header": False, "text_column": "0", "label_column": "1"},
     r"a.csv:2: expected 2 fields \(like the first row\), found 1"),
    ("words,label\ngood,pos\n", {}, r"a.csv:1: no column 'text' in the header \(columns: words, label\)"),
    ("good,pos\n", {"header": False}, r"task.header is off, so task.text_column must be a column number"),
    ("text,label\ngood,pos\n", {"text_column": "5"}, r"a.csv:1: task.text_column is column 5 but the header has 2"),
    ("text,label\n,pos\n", {}, r"a.csv:2: the text is empty"),
    ("text,label\ngood,\n", {}, r"a.csv:2: the label is empty"),
    ("text,label\n", {}, r"a.csv has no examples"),
])
def test_table_reader_errors_name_file_and_line(tmp_path, content, kwargs, message):
    path = write_csv(tmp_path / "a.csv", content)
    with pytest.raises(DataError, match=message):
        classify.read_table(path, **kwargs)


def test_sentiment_task_splits_labels_and_unknown_validation_labels(reg, tmp_path):
    write_csv(tmp_path / "train.csv", "text,label\n" + "a fine film,pos\nan awful film,neg\n" * 10)
    write_csv(tmp_path / "valid.csv", "text,label\na fine film,pos\nodd,meh\n")
    task = make_task(reg, "sentiment", tmp_path, path="train.csv", valid_path="valid.csv", min_count=1)
    with pytest.raises(DataError, match=r"valid.csv:3: label 'meh' is not one of the labels of the training data "
                                        r"\(neg, pos\)"):
        task.prepare()
    task = make_task(reg, "sentiment", tmp_path, path="train.csv", min_count=1, valid_fraction=0.2,
                     test_fraction=0.1)
    task.prepare()
    assert task.labels == ["neg", "pos"] and task.sizes == {"vocab": 7, "classes": 2}
    assert [len(task._examples[s]) for s in ("train", "valid", "test")] == [14, 4, 2]
    # the classes are kept with the vocabulary; a reopened project may not meet a new one
    write_csv(tmp_path / "more.csv", "text,label\na fine film,pos\nso-so,mixed\n")
    reopened = make_task(reg, "sentiment", tmp_path, path="more.csv", valid_fraction=0.0, test_fraction=0.0)
    with pytest.raises(DataError, match=r"more.csv:3: label 'mixed' is not one of the project's classes"):
        reopened.prepare(vocab=task.vocab)
    with pytest.raises(DataError, match="not made by a sequence-classification task"):
        make_task(reg, "sentiment", tmp_path, path="train.csv").prepare(vocab=["<unk>", "<eos>"])


def test_sentiment_batches_and_metrics(reg, tmp_path):
    task = make_task(reg, "sentiment", tmp_path, examples=200)
    task.prepare()
    assert task.labels == ["negative", "positive"]
    batches = list(task.batches("train", 8, 999, epoch=1, seed=3))
    assert len(batches) == task.num_batches("train", 8, 999) == math.ceil(len(task._examples["train"]) / 8)
    b = batches[0]
    T, B = b["tokens"].shape
    assert b["targets"].shape == (B,) and b["lengths"].shape == (B,) and int(b["lengths"].max()) == T
    for i, n in enumerate(b["lengths"].tolist()):
        assert (b["tokens"][n:, i] == 0).all() and (b["tokens"][:n, i] != 0).all()
    # a pure function of its arguments; epochs differ
    again = list(task.batches("train", 8, 999, epoch=1, seed=3, start=2))
    assert all(torch.equal(x["tokens"], y["tokens"]) for x, y in zip(again, batches[2:]))
    other = next(iter(task.batches("train", 8, 999, epoch=2, seed=3)))
    assert not torch.equal(other["targets"], b["targets"]) or not torch.equal(other["tokens"], b["tokens"])
    # metrics by hand: predictions 0, 1, 1, 0 against targets 0, 1, 0, 0
    batch = {"targets": torch.tensor([0, 1, 0, 0]), "lengths": torch.tensor([3, 2, 1, 1])}
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 2.0], [2.0, 0.0]])
    acc = {}
    task.eval_update(acc, {"logits": logits}, batch)
    m = task.eval_finish(acc)
    assert m["accuracy"] == 0.75 and m["confusion"] == [[2, 1], [0, 1]]
    assert m["macro_f1"] == pytest.approx((4 / 5 + 2 / 3) / 2)
    assert m["loss"] == pytest.approx(float(torch.nn.functional.cross_entropy(logits, batch["targets"])))
    # the per-step path's [T, B, C] outputs are read at each sequence's last step
    stepped = torch.zeros(3, 4, 2)
    stepped[batch["lengths"] - 1, torch.arange(4)] = logits
    assert torch.allclose(task.loss({"logits": stepped}, batch), task.loss({"logits": logits}, batch))
    probe = task.probe_batch(2, 3)
    assert probe["tokens"].shape[0] <= 3 and probe["targets"].shape == (2,)
    assert task.sample_text(300) and task.encode("not good") == [task._index["not"], task._index["good"]]


def test_sentiment_learns_on_generated_reviews(reg, tmp_path):
    project, _ = template_project(reg.template("sentiment"), {
        "hidden_size": "24", "embed_size": "16", "batch_size": "16", "lr": "0.01", "task.examples": "400"}, reg)
    learns(project, tmp_path, 150, 0.7)


def test_eval_json_prints_the_confusion_matrix(reg, tmp_path, capsys):
    from workbench.cli import main
    path = tmp_path / "s.seqwb"
    assert main(["new", "sentiment", "-o", str(path), "--set", "hidden_size=8", "--set", "embed_size=8",
                 "--set", "task.examples=120"]) == 0
    assert main(["train", str(path), "--steps", "3", "--json", "--set", "batch_size=8", "--set", "eval_every=0",
                 "--set", "probe_every=3", "--set", "probe_batch=2", "--set", "threads=1"]) == 0
    capsys.readouterr()
    assert main(["eval", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    conf = out["metrics"]["confusion"]
    assert len(conf) == 2 and all(len(row) == 2 for row in conf) and sum(map(sum, conf)) == 12
    assert 0 <= out["metrics"]["accuracy"] <= 1 and 0 <= out["metrics"]["macro_f1"] <= 1
    assert main(["eval", str(path)]) == 0
    assert "confusion [[" in capsys.readouterr().out


# ---- tagging -------------------------------------------------------------------------------------------------------

CONLL = "The\tDET\ncat\tNOUN\nsat\tVERB\n\n-DOCSTART-\tO\n\nA\tDET\ndog\tNOUN\n\n\nran\tVERB\n"


def test_conll_reader(tmp_path):
    path = write_csv(tmp_path / "t.conll", CONLL)
    sents = tagging.read_conll(path)
    assert [[(w, t) for w, t, _ in s] for s in sents] == [
        [("The", "DET"), ("cat", "NOUN"), ("sat", "VERB")], [("A", "DET"), ("dog", "NOUN")], [("ran", "VERB")]]
    assert sents[1][0][2] == 7  # line numbers kept for messages
    spaced = write_csv(tmp_path / "c.txt", "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n")
    assert [(w, t) for w, t, _ in tagging.read_conll(spaced, separator="whitespace")[0]] == \
        [("EU", "B-ORG"), ("rejects", "O")]


@pytest.mark.parametrize("content,message", [
    ("The\tDET\ncat NOUN\n", r"t.conll:2: expected token<TAB>tag, found no tab in 'cat NOUN'"),
    ("The\tDET\tX\n", r"t.conll:1: expected token<TAB>tag, found 3 fields"),
    ("The\tDET\n\tNOUN\n", r"t.conll:2: the token is empty"),
    ("The\t\n", r"t.conll:1: the tag is empty"),
    ("\n\n", r"t.conll has no sentences"),
])
def test_conll_reader_errors(tmp_path, content, message):
    path = write_csv(tmp_path / "t.conll", content)
    with pytest.raises(DataError, match=message):
        tagging.read_conll(path)


def test_python_tokens_are_tagged_by_category():
    src = "class A(Base):\n    def run(self, x=0x1F):  # go\n        return len(self.items) + self.n\n"
    lines = [tagging._tag_line(line) for line in tagging.python_lines(src)]
    assert lines[0] == [("class", "keyword"), ("A", "class"), ("(", "operator"), ("Base", "name"),
                        (")", "operator"), (":", "operator")]
    assert ("run", "function") in lines[1] and ("0x1F", "number") in lines[1] and ("# go", "comment") in lines[1]
    assert lines[2] == [("return", "keyword"), ("len", "builtin"), ("(", "operator"), ("self", "name"),
                        (".", "operator"), ("items", "attribute"), (")", "operator"), ("+", "operator"),
                        ("self", "name"), (".", "operator"), ("n", "attribute")]
    assert [t for _, t in tagging._tag_line(tagging.python_lines("obj.save('x')\n")[0])] == \
        ["name", "operator", "call", "operator", "string", "operator"]
    corpus = tagging.python_tag_sentences(300)
    assert sum(len(v) for v in corpus.values()) >= 300
    assert {t for s in corpus["train"] for _, t in s} <= set(tagging.PYTHON_TAGS)


def test_tagging_task_batches_ignore_padding(reg, tmp_path):
    write_csv(tmp_path / "t.conll", "\n".join([CONLL] * 3))
    write_csv(tmp_path / "v.conll", "The\tDET\nzebra\tNOUN\n\nA\tADJ\n")
    with pytest.raises(DataError, match=r"v.conll:4: tag 'ADJ' is not one of the tags of the training data "
                                        r"\(DET, NOUN, VERB\)"):
        make_task(reg, "tagging", tmp_path, path="t.conll", valid_path="v.conll").prepare()
    task = make_task(reg, "tagging", tmp_path, path="t.conll", valid_fraction=0.0, test_fraction=0.0,
                     max_len=2, min_count=1)
    task.prepare()
    assert task.tags == ["DET", "NOUN", "VERB"] and task.sizes["tags"] == 3
    assert sorted(len(ids) for ids, _ in task._examples["train"]) == [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]
    b = task.make_batch([([5, 6], [0, 1]), ([7], [2])])
    assert b["tokens"].tolist() == [[5, 7], [6, 0]] and b["targets"].tolist() == [[0, 2], [1, -100]]
    assert task.count(b) == 3
    # predictions at the padded position are wrong on purpose: they must not count
    logits = torch.full((2, 2, 3), -5.0)
    logits[0, 0, 0] = logits[1, 0, 1] = logits[0, 1, 2] = 5.0
    logits[1, 1, 0] = 50.0
    acc = {}
    task.eval_update(acc, {"logits": logits}, b)
    m = task.eval_finish(acc)
    assert m["accuracy"] == 1.0 and m["macro_f1"] == 1.0 and m["loss"] < 0.01
    # unknown words get a shape class
    assert task.decode([task._id("Zebra"), task._id("1999"), task._id("cat")]) == "<unk-cap> <unk-num> cat"
    # L_T: each sentence's last token
    assert float(task.loss_last_step({"logits": logits}, b)) < 0.01


def test_tagging_learns_python_tokens(reg, tmp_path):
    project, _ = template_project(reg.template("tagging"), {
        "hidden_size": "24", "embed_size": "16", "batch_size": "16", "lr": "0.01", "task.max_sentences": "600"},
        reg)
    trainer = learns(project, tmp_path, 40, 0.5)
    assert trainer.task.sample_text(200)
    assert trainer.task.encode("x = len(y)") == [trainer.task._id(w) for w in ("x", "=", "len", "(", "y", ")")]
