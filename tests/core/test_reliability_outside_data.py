"""A shared file stays in its folder (issue 19, point 3), on the command line: data paths that lead outside the
project file's folder (absolute paths, ``..``, links that point out) are not read until confirmed with
``--allow-outside-data``, which is remembered for that file; paths the user types are the user's own; paths inside
the folder are stored relative.  The window's side is tests/gui/test_shared_file.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.reliability_figures import record
from tests.helpers import small_project, with_train, write_corpus
from workbench import cli
from workbench.core import data_access
from workbench.core import projectfile as pf
from workbench.core.training.trainer import Trainer
from workbench.plugin_system import discover

SECRET = "PRIVATE KEY zqxjv\n" * 400      # letters the project's own corpus never has: z q x j v K Y
RUN = ["--steps", "2", "--set", "threads=1"]


@pytest.fixture(scope="module")
def reg():
    return discover()


@pytest.fixture(autouse=True)
def fresh_process_state():
    data_access.forget_blocks()
    yield
    data_access.forget_blocks()


def _shared(tmp_path: Path, reg, corpus_value) -> tuple[Path, Path]:
    """A project received from someone: in ``shared/``, naming ``corpus_value`` (which may point at the secret in
    ``home/``)."""
    home, shared = tmp_path / "home", tmp_path / "shared"
    home.mkdir(parents=True)
    shared.mkdir(parents=True)
    secret = home / "id_rsa"
    secret.write_text(SECRET)
    write_corpus(shared)
    value = corpus_value(secret, shared)
    project = with_train(small_project(reg, **{"task.corpus": value}), threads=1)
    path = shared / "c.seqwb"
    pf.save_project(project, path)
    return path, secret


CASES = {
    "absolute": lambda secret, shared: str(secret),
    "dotdot": lambda secret, shared: "../home/id_rsa",
    "link": lambda secret, shared: ((shared / "data.txt").symlink_to(secret), "data.txt")[1],
}


@pytest.mark.parametrize("case", list(CASES))
def test_data_outside_the_folder_is_not_read_without_confirmation(tmp_path, reg, capsys, case):
    path, secret = _shared(tmp_path, reg, CASES[case])
    before = path.read_bytes()
    for command in (["train", str(path), *RUN], ["eval", str(path)], ["data", str(path)]):
        assert cli.main(command) == 1, command
        err = capsys.readouterr().err
        assert err.startswith(f"seqwb: error: {path} names data outside its folder (task.corpus = "), err
        assert str(secret) in err and "--allow-outside-data" in err
    assert path.read_bytes() == before                  # nothing trained on it, nothing written
    assert cli.main(["info", str(path)]) == 0          # a command that reads no data opens it, and says so
    assert ("data outside the project's folder, read only once confirmed (--allow-outside-data): task.corpus = "
            in capsys.readouterr().out)
    # confirmed: read, and remembered for this file
    assert cli.main(["train", str(path), *RUN, "--allow-outside-data"]) == 0
    assert "as --allow-outside-data allows (remembered for this file)" in capsys.readouterr().err
    assert set("zqxjvKY") <= set(pf.load_project(path, weights=False).vocab)
    data_access.forget_blocks()                         # a new process: only the remembered choice is left
    assert cli.main(["train", str(path), *RUN]) == 0
    # the same file elsewhere (another copy, another folder) is another file: asked again
    copy = tmp_path / "elsewhere" / "c.seqwb"
    copy.parent.mkdir()
    copy.write_bytes(before)
    if case == "absolute":
        assert cli.main(["train", str(copy), *RUN]) == 1
        assert "names data outside its folder" in capsys.readouterr().err
    record(f"outside-data-cli-{case}", group="Shared files", times=6,
           tried={"absolute": "a corpus named by its absolute path outside the folder",
                  "dotdot": "a corpus named ../home/id_rsa",
                  "link": "a corpus that is a link inside the folder to a file outside"}[case]
           + ": seqwb train, eval and data, then --allow-outside-data, then train again",
           result="not read: one line naming the setting and the path, the file unchanged; confirmed with "
                  "--allow-outside-data it is read and remembered for that file (not for a copy elsewhere)")


def test_paths_the_user_types_are_the_users_own(tmp_path, reg, capsys):
    path, secret = _shared(tmp_path, reg, CASES["absolute"])
    other = tmp_path / "home" / "mine.txt"
    other.write_text("my own words " * 400)
    assert cli.main(["train", str(path), *RUN, "--set", f"task.corpus={other}"]) == 0
    data_access.forget_blocks()
    assert cli.main(["train", str(path), *RUN]) == 0     # saved with it: remembered as the user's choice
    # --set of another task setting does not confirm the file's own outside path
    path2, _ = _shared(tmp_path / "b", reg, CASES["absolute"])
    assert cli.main(["train", str(path2), *RUN, "--set", "task.valid_fraction=0.2"]) == 1


def test_paths_inside_the_folder_are_stored_relative(tmp_path, reg):
    corpus = write_corpus(tmp_path)
    out = tmp_path / "new.seqwb"
    assert cli.main(["new", "char-lm", "-o", str(out), "--set", f"task.corpus={corpus}"]) == 0
    assert pf.load_project(out, weights=False).task.params["corpus"] == "corpus.txt"
    assert cli.main(["train", str(out), *RUN]) == 0


def test_a_project_built_in_code_reads_what_it_names(tmp_path, reg):
    """Only files that were opened are held back: scripts and tests that build a project read their own paths."""
    secret = tmp_path / "elsewhere.txt"
    secret.write_text(SECRET)
    folder = tmp_path / "p"
    folder.mkdir()
    project = with_train(small_project(reg, **{"task.corpus": str(secret)}), threads=1)
    Trainer(project, reg, base_dir=folder).fit(steps=1, final_eval=False)
    assert "z" in project.vocab
