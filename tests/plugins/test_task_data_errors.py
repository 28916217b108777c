"""Bad data (issue 8), one case per row with the exact message: non-UTF-8 text (file, byte offset, line, and the
task.encoding setting that fixes it), empty files, a corpus smaller than one batch, ragged TSV/CSV rows (line
number), unknown labels in validation data, features of images of the wrong size, NaN in numeric series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import small_project, with_train
from workbench.schema.errors import DataError
from workbench.core.training.trainer import Trainer
from workbench.plugin_system import discover
from workbench.schema.params import params_from_dict

torch.set_num_threads(1)

ENCODING_HINT = "set task.encoding (e.g. latin-1 or cp1252) or convert the file"


@pytest.fixture(scope="module")
def reg():
    return discover()


def prepared(reg, task_id: str, folder: Path, **params):
    spec = reg.task(task_id)
    task = spec.load()(params_from_dict(spec.params, params, "task"), folder)
    task.prepare()
    return task


def message_of(reg, task_id: str, folder: Path, **params) -> str:
    with pytest.raises(DataError) as info:
        prepared(reg, task_id, folder, **params)
    text = str(info.value)
    assert "\n" not in text
    return text.replace(str(folder) + "/", "")


LATIN = "caf\u00e9".encode("latin-1")

# (task, files to write, task params, exact message with the folder left out)
CASES = {
    # ---- non-UTF-8 text: file, byte offset, line, the encoding setting ----
    "non-utf8 char-lm": ("char-lm", {"c.txt": b"first line\nsecond " + LATIN + b"\n"}, {"corpus": "c.txt"},
                         f"c.txt is not valid utf-8: byte 0xe9 at offset 21 (line 2, invalid continuation byte); "
                         f"{ENCODING_HINT}"),
    "non-utf8 word-lm": ("word-lm", {"w.train.txt": b"a b\n" + LATIN + b" c\n", "w.valid.txt": b"a\n",
                                     "w.test.txt": b"a\n"}, {},
                         f"w.train.txt is not valid utf-8: byte 0xe9 at offset 7 (line 2, invalid continuation "
                         f"byte); {ENCODING_HINT}"),
    "non-utf8 sentiment": ("sentiment", {"s.csv": b"text,label\n" + LATIN + b",pos\n"}, {"path": "s.csv"},
                           f"s.csv is not valid utf-8: byte 0xe9 at offset 14 (line 2, invalid continuation byte); "
                           f"{ENCODING_HINT}"),
    "non-utf8 tagging": ("tagging", {"t.conll": LATIN + b"\tNOUN\n"}, {"path": "t.conll"},
                         f"t.conll is not valid utf-8: byte 0xe9 at offset 3 (line 1, invalid continuation byte); "
                         f"{ENCODING_HINT}"),
    "non-utf8 forecast": ("forecast", {"d.csv": b"t,x\n1,2\n" + LATIN + b",3\n"}, {"csv": "d.csv", "window": 1},
                          "d.csv is not valid UTF-8: byte 0xe9 at offset 11 (line 3, invalid continuation byte); set "
                          "task.encoding (e.g. latin-1 or cp1252) or save the file as UTF-8"),
    # ---- empty files ----
    "empty char-lm": ("char-lm", {"c.txt": b""}, {"corpus": "c.txt"}, "corpus c.txt is empty"),
    "blank char-lm": ("char-lm", {"c.txt": b"  \n\n\t\n"}, {"corpus": "c.txt"}, "corpus c.txt is empty"),
    "empty word-lm": ("word-lm", {"w.train.txt": b"", "w.valid.txt": b"a\n", "w.test.txt": b"a\n"}, {},
                      "w.train.txt has no words"),
    "empty sentiment": ("sentiment", {"s.csv": b""}, {"path": "s.csv"}, "s.csv has no examples"),
    "empty tagging": ("tagging", {"t.conll": b""}, {"path": "t.conll"}, "t.conll has no sentences"),
    "empty seq2seq": ("seq2seq", {"p.tsv": b""}, {"train_file": "p.tsv"}, "p.tsv has no 'source<TAB>target' pairs"),
    "empty forecast": ("forecast", {"d.csv": b""}, {"csv": "d.csv"},
                       "d.csv is empty: a header row with column names is needed"),
    # ---- ragged rows: the line number ----
    "ragged sentiment csv": ("sentiment", {"s.csv": b"text,label\ngood,pos\nbad,neg,extra\n"}, {"path": "s.csv"},
                             "s.csv:3: expected 2 fields (like the header), found 3; check the delimiter "
                             "(task.delimiter) and quoting"),
    "ragged sentiment tsv": ("sentiment", {"s.tsv": b"text\tlabel\ngood\tpos\nbad\n"}, {"path": "s.tsv"},
                             "s.tsv:3: expected 2 fields (like the header), found 1; check the delimiter "
                             "(task.delimiter) and quoting"),
    "ragged tagging": ("tagging", {"t.conll": b"The\tDET\ncat\tNOUN\textra\n"}, {"path": "t.conll"},
                       "t.conll:2: expected token<TAB>tag, found 3 fields in 'cat\\tNOUN\\textra' (for "
                       "space-separated columns set task.separator=whitespace)"),
    "ragged seq2seq": ("seq2seq", {"p.tsv": b"a b\tx y\nc d\n"}, {"train_file": "p.tsv"},
                       "p.tsv, line 2: expected 'source<TAB>target', found no tab"),
    "ragged forecast": ("forecast", {"d.csv": b"t,x,y\n1,2,3\n2,3\n"}, {"csv": "d.csv", "window": 1},
                        "d.csv, line 3: 2 fields, but the header (line 1) has 3"),
    # ---- unknown labels in validation data ----
    "unknown label sentiment": ("sentiment", {"s.csv": b"text,label\n" + b"nice,pos\nbad,neg\n" * 5,
                                              "v.csv": b"text,label\nnice,pos\nodd,meh\n"},
                                {"path": "s.csv", "valid_path": "v.csv"},
                                "v.csv:3: label 'meh' is not one of the labels of the training data (neg, pos)"),
    "unknown tag tagging": ("tagging", {"t.conll": b"The\tDET\ncat\tNOUN\n\n" * 5, "v.conll": b"The\tDET\nred\tADJ\n"},
                            {"path": "t.conll", "valid_path": "v.conll"},
                            "v.conll:2: tag 'ADJ' is not one of the tags of the training data (DET, NOUN)"),
    # ---- NaN and other non-numbers in numeric series ----
    "nan forecast": ("forecast", {"d.csv": b"t,x,y\n1,2,3\n2,NaN,4\n"}, {"csv": "d.csv", "window": 1}, None),
    "inf forecast": ("forecast", {"d.csv": b"t,x,y\n1,2,3\n2,inf,4\n"}, {"csv": "d.csv", "window": 1}, None),
    "nan captioning features": ("captioning", {"c.txt": b"a red square\na blue circle\n"},
                                {"features_file": "f.npz", "captions_file": "c.txt"},
                                "f.npz: 'features' row 1 has a NaN or infinite value"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_data_gives_one_exact_message(reg, tmp_path, case):
    task_id, files, params, expected = CASES[case]
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    if case == "nan captioning features":
        np.savez(tmp_path / "f.npz", features=np.array([[1.0, 2.0], [np.nan, 0.0]], dtype=np.float32))
    if expected is None:  # the forecast reader's wording, checked in full here once
        expected = {"nan forecast": "d.csv, line 3, column 'x': NaN (missing value); fill or drop missing values first",
                    "inf forecast": "d.csv, line 3, column 'x': 'inf' is not a finite number"}[case]
    assert message_of(reg, task_id, tmp_path, **params) == expected


def test_the_encoding_setting_offered_by_the_message_reads_the_file(reg, tmp_path):
    (tmp_path / "c.txt").write_bytes(b"first line\nsecond " + LATIN + b"\n" * 20)
    task = prepared(reg, "char-lm", tmp_path, corpus="c.txt", encoding="latin-1", valid_fraction=0.0,
                    test_fraction=0.0)
    assert "\u00e9" in task.vocab
    (tmp_path / "s.csv").write_bytes(b"text,label\n" + LATIN + b",pos\nbad,neg\n")
    task = prepared(reg, "sentiment", tmp_path, path="s.csv", encoding="cp1252", valid_fraction=0.0,
                    test_fraction=0.0, min_count=1)
    assert "caf\u00e9" in task.vocab
    (tmp_path / "d.csv").write_bytes(b"name,x\n" + b"".join(LATIN + b",%d\n" % i for i in range(30)))
    task = prepared(reg, "forecast", tmp_path, csv="d.csv", inputs="x", window=2, encoding="latin-1")
    assert task.target_name == "x"


def test_corpus_smaller_than_one_batch_names_the_sizes(reg, tmp_path):
    (tmp_path / "tiny.txt").write_text("abcdefghij" * 3)
    project = with_train(small_project(reg, **{"task.corpus": "tiny.txt"}), batch_size=64, threads=1)
    with pytest.raises(DataError) as info:
        Trainer(project, reg, base_dir=tmp_path).fit(steps=1)
    assert str(info.value) == ("the train split has 28 characters: fewer than two per stream at batch size 64; use "
                               "a smaller batch_size or more text")


def test_images_of_another_size_than_the_model_was_trained_on(reg, tmp_path):
    """Captioning on image feature vectors: trained on 6 values per image, then given images of 8 values."""
    from workbench.core.settings import template_project
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "f.npz", features=rng.standard_normal((40, 6)).astype(np.float32))
    (tmp_path / "c.txt").write_text("a red square\na blue circle\n" * 20)
    project, _ = template_project(reg.template("captioning"), {
        "features_file": "f.npz", "captions_file": "c.txt", "hidden_size": "16", "feature_size": "8",
        "batch_size": "8", "eval_every": "0", "sample_every": "0", "probe_every": "0", "eval_batches": "1",
        "task.bleu_sentences": "0", "threads": "1"}, reg)
    trainer = Trainer(project, reg, base_dir=tmp_path)
    trainer.fit(steps=1)
    trainer.checkpoint()
    data_before = dict(project.data)
    np.savez(tmp_path / "f.npz", features=rng.standard_normal((40, 8)).astype(np.float32))
    with pytest.raises(DataError) as info:
        Trainer(project, reg, base_dir=tmp_path).setup()
    assert str(info.value) == ("the data do not fit the trained model: features is 8 (the model was trained with "
                               "6); use data of the same shape, or train a new run (--new-run)")
    assert project.data == data_before  # nothing was changed
    fresh = Trainer(project, reg, base_dir=tmp_path, new_run=True)
    fresh.setup()  # a new run accepts the new size
    assert fresh.task.sizes["features"] == 8


def test_generated_images_of_another_size_than_the_image_encoder_takes(reg, tmp_path):
    from workbench.schema.errors import GraphError
    from workbench.core.settings import template_project
    project, _ = template_project(reg.template("captioning"), {"task.image_size": "16", "threads": "1"}, reg)
    with pytest.raises(GraphError) as info:
        Trainer(project, reg, base_dir=tmp_path).setup()
    assert str(info.value) == ("invalid model graph: node image: expects flattened 3x32x32 images (3072 values) but "
                               "its input has 768; for feature vectors use a feature-encoder")
