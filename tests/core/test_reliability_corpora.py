"""Bad corpora (issues 19 and 20): binary, empty, UTF-16, a byte-order mark, Latin-1, a 200 MB corpus read with
bounded memory, a named pipe, ``/dev/zero`` and an unreadable file, each through ``seqwb train`` in a process of its
own (a hang fails the timeout).  Each ends in one line naming the file, or trains on the text it holds."""

from __future__ import annotations

import codecs
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import make_subprocess_env
from tests.core.reliability_figures import count, record
from tests.helpers import small_project, with_train
from workbench.core import projectfile as pf
from workbench.core.training.trainer import Trainer
from workbench.plugin_system import discover
from workbench.schema.errors import DataError
from workbench_plugins.text_data import read_text

posix = pytest.mark.skipif(os.name != "posix", reason="POSIX pipes, devices and permissions")
TEXT = "def f(x):\n    return 'quoté' + str(x)  # naïve\n" * 300
RUN = ["--steps", "2", "--set", "threads=1", "--set", "log_every=1"]


@pytest.fixture(scope="module")
def reg():
    return discover()


def _project(folder: Path, reg, corpus: str, **settings) -> Path:
    project = with_train(small_project(reg, **{"task.corpus": corpus, **settings}), threads=1)
    path = folder / "c.seqwb"
    pf.save_project(project, path)
    return path


def _train(path: Path, *extra: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", "train", str(path), *RUN, *extra], capture_output=True,
                          text=True, env=make_subprocess_env(), timeout=timeout)


def _last_line(out: subprocess.CompletedProcess) -> str:
    return out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ""


def _vocab(path: Path) -> list[str]:
    return pf.load_project(path, weights=False).vocab


@posix
@pytest.mark.parametrize("name, content, message", [
    ("binary", bytes(range(256)) * 40, "is not text: it has a NUL byte at offset 0 (a binary file?); if it is "
                                       "UTF-16 or UTF-32 text, set task.encoding"),
    ("empty", b"", "is empty"),
    ("latin1", TEXT.encode("latin-1"), "is not valid utf-8: byte 0xe9 at offset 26 (line 2, invalid continuation "
                                       "byte); set task.encoding (e.g. latin-1 or cp1252) or convert the file"),
])
def test_corpora_that_are_not_utf8_text_are_one_line_naming_the_file(tmp_path, reg, name, content, message):
    corpus = tmp_path / f"{name}.txt"
    corpus.write_bytes(content)
    path = _project(tmp_path, reg, corpus.name)
    before = path.read_bytes()
    out = _train(path)
    assert out.returncode == 1 and _last_line(out).endswith(message), out.stderr
    assert str(corpus) in _last_line(out)
    assert path.read_bytes() == before
    if name == "latin1":        # what the message offers reads it
        out = _train(path, "--set", "task.encoding=latin-1")
        assert out.returncode == 0, out.stderr
        assert "é" in _vocab(path)


@pytest.mark.parametrize("codec, bom", [("utf-16", b""), ("utf-16-be", codecs.BOM_UTF16_BE), ("utf-8", codecs.BOM_UTF8),
                                        ("utf-32", b"")], ids=["utf-16-le-bom", "utf-16-be-bom", "utf-8-bom", "utf-32"])
def test_a_byte_order_mark_is_read_as_what_it_says(tmp_path, reg, codec, bom):
    corpus = tmp_path / "bom.txt"
    corpus.write_bytes(bom + TEXT.encode(codec))
    path = _project(tmp_path, reg, corpus.name)
    project = pf.load_project(path)
    Trainer(project, reg, base_dir=tmp_path).fit(steps=1, final_eval=False)
    assert "é" in project.vocab and "ï" in project.vocab
    assert "\ufeff" not in project.vocab and "\x00" not in project.vocab and "\ufffe" not in project.vocab[1:]


@posix
def test_pipes_devices_and_unreadable_files_are_refused_without_hanging(tmp_path, reg):
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    (tmp_path / "zero.txt").symlink_to("/dev/zero")
    cases = {"fifo.txt": "task.corpus = fifo.txt is a named pipe (FIFO), not a data file: only regular files are "
                         "read as data",
             "zero.txt": "task.corpus = zero.txt is a character device, not a data file: only regular files are read "
                         "as data"}
    for corpus, message in cases.items():
        path = _project(tmp_path, reg, corpus)
        out = _train(path, timeout=120)
        assert out.returncode == 1 and _last_line(out) == f"seqwb: error: {message}", out.stderr
    # the plugins' own readers refuse them too (a task that reads files without the trainer's gate)
    for what in (fifo, Path("/dev/zero")):
        with pytest.raises(DataError, match="not a regular file"):
            read_text(what)
    record("corpus-pipe-device", group="Bad corpora", times=2 + 2,
           tried="a corpus that is a named pipe, and one that is a link to /dev/zero (seqwb train; the readers)",
           result="refused at once, saying what the path is (was: a hang of 30 s and 120 s until killed)")


@posix
def test_an_unreadable_corpus_says_permission_denied(reg):
    """Root reads any file: as root, the reading runs with the effective user nobody (in this process: the
    interpreter's own files stay out of the way); as anyone else, seqwb train runs as usual."""
    folder = Path(tempfile.mkdtemp(prefix="seqwb-unreadable-", dir="/tmp"))
    try:
        folder.chmod(0o777)
        corpus = folder / "secret.txt"
        corpus.write_text(TEXT)
        corpus.chmod(0)
        path = _project(folder, reg, corpus.name)
        before = path.read_bytes()
        if os.geteuid() == 0:
            project = pf.load_project(path)
            os.seteuid(65534)
            try:
                with pytest.raises(DataError) as info:
                    Trainer(project, reg, base_dir=folder).setup()
            finally:
                os.seteuid(0)
            message = str(info.value)
        else:
            out = _train(path)
            assert out.returncode == 1
            message = _last_line(out).removeprefix("seqwb: error: ")
        assert message == f"cannot read corpus {corpus}: Permission denied"
        assert path.read_bytes() == before
    finally:
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
    record("corpus-unreadable", group="Bad corpora", times=1, tried="a corpus without read permission (mode 000)",
           result="one line: cannot read corpus FILE: Permission denied; the project unchanged")


@posix
def test_a_large_corpus_is_read_with_bounded_memory(tmp_path, reg):
    megabytes = count(24, 200)
    corpus = tmp_path / "big.txt"
    line = ("The quick brown fox jumps over the lazy dog; " * 20 + "\n").encode()
    with open(corpus, "wb") as fh:
        block = line * (1 << 20 // len(line) + 1)
        written = 0
        while written < megabytes * 1_000_000:
            fh.write(block)
            written += len(block)
    path = _project(tmp_path, reg, corpus.name)
    runner = ("import resource, subprocess, sys, json; out = subprocess.run(sys.argv[1:], capture_output=True, "
              "text=True); print(json.dumps({'rc': out.returncode, 'err': out.stderr, "
              "'peak': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024}))")
    done = subprocess.run([sys.executable, "-c", runner, sys.executable, "-m", "workbench", "train", str(path), *RUN,
                           "--set", f"task.max_chars={written + 10}", "--set", "eval_batches=1"],
                          capture_output=True, text=True, env=make_subprocess_env(), timeout=1800)
    doc = json.loads(done.stdout)
    assert doc["rc"] == 0, doc["err"]
    assert pf.load_project(path, weights=False).data["files"]["corpus"]["chars"] == written
    assert doc["peak"] < 1200, doc["peak"]        # the text alone is written MB; as int64 ids, 8 times that
    record("corpus-large", group="Bad corpora", times=1,
           tried=f"a {written / 1e6:.0f} MB corpus read whole (task.max_chars raised), 2 steps of seqwb train",
           result="trained; the corpus streamed in 4 MiB chunks, its ids in a temporary file",
           corpus_mb=round(written / 1e6), peak_rss_mib=doc["peak"])


def test_what_the_bad_corpora_table_counts(tmp_path, reg):
    """The cases above as one row of the reliability table (they are separate tests so that each names its
    failure)."""
    record("corpus-text-cases", group="Bad corpora", times=7,
           tried="binary (NUL bytes), empty, Latin-1 read as UTF-8, UTF-16 LE and BE with a byte-order mark, UTF-8 "
                 "with a byte-order mark, UTF-32",
           result="binary, empty and Latin-1: one line naming the file (Latin-1 with the byte, offset, line and "
                  "task.encoding to set, which then reads it); byte-order marks: read as what they say, the mark "
                  "not in the vocabulary")
