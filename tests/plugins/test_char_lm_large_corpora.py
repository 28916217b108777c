"""Big corpora (issue 8): the char LM reads its corpus in chunks with bounded memory, keeps a huge corpus on disk as
token ids, gives exactly the batches the in-memory reading gave, and reports the vocabulary scan's progress."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers import small_project, with_train
from workbench import cli
from workbench.schema.errors import DataError
from workbench.core.training.events import Callback
from workbench.core.training.trainer import Trainer
from workbench.plugin_system import discover
from workbench_plugins import char_lm
from workbench_plugins.char_lm import CharLMTask, DiskTokens, LazyStreams
from workbench_plugins.tasks import CharLMParams

torch.set_num_threads(1)

# multi-byte characters everywhere, so that chunk boundaries cut characters in half
TEXT = ("def f(x):\n    return 'naïve café' + str(x)  # Größe 東京 ✓\n" * 60
        + "ελληνικά — “quotes” …\n" * 40)


def reference(text: str, valid: float, test: float, vocab=None):
    """What the char LM computed when it decoded the whole file at once (the behaviour to keep)."""
    n = len(text)
    n_valid, n_test = int(n * valid), int(n * test)
    n_train = n - n_valid - n_test
    parts = {"train": text[:n_train], "valid": text[n_train:n_train + n_valid], "test": text[n_train + n_valid:]}
    if vocab is None:
        vocab = [char_lm.UNK] + sorted(set(parts["train"]) - {char_lm.UNK})
    index = {ch: i for i, ch in enumerate(vocab)}
    return vocab, {k: torch.tensor([index.get(c, 0) for c in v], dtype=torch.long) for k, v in parts.items()}


def make_task(tmp_path: Path, text: str, **params) -> CharLMTask:
    path = tmp_path / "corpus.txt"
    path.write_bytes(text.encode(params.pop("file_encoding", "utf-8")))
    return CharLMTask(CharLMParams(corpus="corpus.txt", **params), tmp_path)


def all_batches(task: CharLMTask, split: str, batch_size: int, chunk_len: int) -> list[dict]:
    return list(task.batches(split, batch_size, chunk_len))


@pytest.mark.parametrize("chunk_bytes", [5, 64, 1 << 20])
@pytest.mark.parametrize("on_disk", [False, True])
def test_chunked_reading_gives_the_same_vocab_ids_and_batches(tmp_path, monkeypatch, chunk_bytes, on_disk):
    monkeypatch.setattr(char_lm, "CHUNK_BYTES", chunk_bytes)
    if on_disk:
        monkeypatch.setattr(char_lm, "IN_MEMORY_CHARS", 0)
    task = make_task(tmp_path, TEXT, valid_fraction=0.1, test_fraction=0.05)
    task.prepare()
    vocab, splits = reference(TEXT, 0.1, 0.05)
    assert task.vocab == vocab
    assert isinstance(task._splits["train"], DiskTokens) is on_disk
    assert task.data_files["corpus"]["chars"] == len(TEXT)
    assert task.sample_text(100) == TEXT[len(splits["train"]):][:100]
    for split in ("train", "valid", "test"):
        expected = splits[split]
        n = expected.numel() // 4
        streams = expected[:n * 4].view(4, n).t()
        got = all_batches(task, split, 4, 16)
        assert len(got) == task.num_batches(split, 4, 16) == -(-(n - 1) // 16)
        for index, batch in enumerate(got):
            i = index * 16
            length = min(16, n - 1 - i)
            assert torch.equal(batch["tokens"], streams[i:i + length]), (split, index)
            assert torch.equal(batch["targets"], streams[i + 1:i + 1 + length]), (split, index)
            assert batch["tokens"].dtype == torch.long and batch["reset"] == (index == 0)
    probe = task.probe_batch(2, 8)
    assert probe["tokens"].shape == (8, 2)


def test_a_saved_vocabulary_is_reused_and_unknown_characters_map_to_unk(tmp_path, monkeypatch):
    monkeypatch.setattr(char_lm, "IN_MEMORY_CHARS", 0)
    vocab = [char_lm.UNK, "\n", " ", "a", "b"]
    task = make_task(tmp_path, "ab ba\nabc é\n" * 50, valid_fraction=0.1, test_fraction=0.1)
    task.prepare(vocab=vocab)
    assert task.vocab == vocab
    _, splits = reference("ab ba\nabc é\n" * 50, 0.1, 0.1, vocab)
    streams = task._streams("train", 1)
    assert isinstance(streams, LazyStreams)
    assert torch.equal(streams[0:streams.shape[0]][:, 0], splits["train"][:streams.shape[0]])


def test_the_same_training_run_from_memory_and_from_disk(tmp_path, monkeypatch):
    """Training reads the same batches either way: the losses agree exactly."""
    reg = discover()
    (tmp_path / "corpus.txt").write_text(TEXT * 3, encoding="utf-8")

    class Losses(Callback):
        def __init__(self):
            self.losses = []

        def on_step_end(self, trainer, ev):
            self.losses.append(ev.loss)

    runs = []
    for limit in (10 ** 9, 0):
        monkeypatch.setattr(char_lm, "IN_MEMORY_CHARS", limit)
        project = with_train(small_project(reg, **{"task.corpus": "corpus.txt"}), threads=1)
        cb = Losses()
        Trainer(project, reg, callbacks=[cb], base_dir=tmp_path).fit(steps=6)
        runs.append(cb.losses)
    assert runs[0] == runs[1]


def test_vocabulary_scan_reports_progress(tmp_path, monkeypatch):
    monkeypatch.setattr(char_lm, "CHUNK_BYTES", 1000)
    task = make_task(tmp_path, TEXT)
    seen: list[tuple[str, int, int]] = []
    task.prepare(progress=lambda stage, done, total: seen.append((stage, done, total)))
    size = len(TEXT.encode("utf-8"))
    stages = [s for s, _, _ in seen]
    assert set(stages) == {"counting characters", "vocabulary scan", "encoding"}
    scan = [(d, t) for s, d, t in seen if s == "vocabulary scan"]
    assert len(scan) >= 3 and all(t == size for _, t in scan)
    assert [d for d, _ in scan] == sorted(d for d, _ in scan)  # moves forward
    assert seen[-1] == ("encoding", size, size)


def test_trainer_passes_progress_to_callbacks_and_the_cli_prints_it(tmp_path, monkeypatch, capsys):
    reg = discover()
    big = tmp_path / "big.txt"
    big.write_bytes(b"hello world, a slightly larger corpus\n" * 60_000)  # 2.3 MB: progress is shown
    project = with_train(small_project(reg, **{"task.corpus": "big.txt", "task.max_chars": 10 ** 7}), threads=1)

    class Progress(Callback):
        def __init__(self):
            self.events = []

        def on_data_progress(self, trainer, stage, done, total):
            self.events.append((stage, done, total))

    cb = Progress()
    Trainer(project, reg, callbacks=[cb], base_dir=tmp_path).setup()
    assert ("vocabulary scan", big.stat().st_size, big.stat().st_size) in cb.events

    from workbench.core.projectfile import save_project
    fresh = small_project(reg, **{"task.corpus": "big.txt", "task.max_chars": 10 ** 7})  # no vocabulary yet
    save_project(fresh, tmp_path / "p.seqwb")
    assert cli.main(["train", str(tmp_path / "p.seqwb"), "--steps", "1", "--set", "eval_batches=1"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert "seqwb: reading data: vocabulary scan 100% (2 of 2 MB)" in err
    assert any(line.startswith("seqwb: reading data: counting characters") for line in err)


def test_bad_byte_in_a_later_chunk_names_the_absolute_offset_and_line(tmp_path, monkeypatch):
    monkeypatch.setattr(char_lm, "CHUNK_BYTES", 16)
    data = ("line one\n" * 10).encode() + "caf\u00e9".encode("latin-1") + b"\n"
    (tmp_path / "corpus.txt").write_bytes(data)
    task = CharLMTask(CharLMParams(corpus="corpus.txt"), tmp_path)
    with pytest.raises(DataError) as info:
        task.prepare()
    assert str(info.value) == (f"{tmp_path / 'corpus.txt'} is not valid utf-8: byte 0xe9 at offset 93 (line 11, "
                               f"invalid continuation byte); set task.encoding (e.g. latin-1 or cp1252) or "
                               f"convert the file")
    latin = CharLMTask(CharLMParams(corpus="corpus.txt", encoding="latin-1", valid_fraction=0.0, test_fraction=0.0),
                       tmp_path)
    latin.prepare()
    assert "é" in latin.vocab
