"""Data-parallel training: 2 CPU processes (gloo, under torchrun) take the same steps as one process on the
whole batch, rank 0 alone writes the file, the logged loss is the global mean, and the carried state survives.

The two end-to-end tests start real torchrun launches (one torch thread per process); each takes ~10-25 s on the
2-core development machine, depending on its load.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from workbench.cli import main
from workbench.core.distributed import LaunchEnv, launch_command, torchrun_env
from workbench.schema.errors import DataError, TrainingError
from workbench.core.projectfile import load_project
from workbench.core.tasks import StreamLMTask, Task
from workbench.plugin_system import discover

REL = 1e-5   # the order of floating-point sums differs between 1 and 2 processes; nothing else may


@pytest.fixture(scope="module")
def reg():
    return discover()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def close(a: float, b: float, rel: float = REL) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-7)


def run_cli(capsys, argv: list[str]) -> list[dict]:
    capsys.readouterr()
    assert main(argv) == 0
    return events(capsys.readouterr().out)


def run_torchrun(cmd: list[str], cwd: Path, subprocess_env) -> subprocess.CompletedProcess:
    env = subprocess_env()
    env["OMP_NUM_THREADS"] = "1"
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def assert_same_training(single: list[dict], dist: list[dict], steps: int) -> None:
    """Same loss curve, gradient norms and validation, each printed exactly once (by rank 0 alone)."""
    s_steps = [e for e in single if e["event"] == "step"]
    d_steps = [e for e in dist if e["event"] == "step"]
    assert [e["step"] for e in d_steps] == list(range(1, steps + 1)) == [e["step"] for e in s_steps]
    for a, b in zip(s_steps, d_steps):
        assert close(a["loss"], b["loss"]), (a["step"], a["loss"], b["loss"])
        assert close(a["grad_norm"], b["grad_norm"]), (a["step"], a["grad_norm"], b["grad_norm"])
    s_eval = [e["valid_loss"] for e in single if e["event"] == "eval"]
    d_eval = [e["valid_loss"] for e in dist if e["event"] == "eval"]
    assert len(s_eval) == len(d_eval) >= 1
    assert all(close(a, b) for a, b in zip(s_eval, d_eval))
    assert [e["event"] for e in dist].count("end") == 1


def assert_same_weights(a, b) -> None:
    wa, wb = a.checkpoint.weights, b.checkpoint.weights
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.allclose(wa[k], wb[k], rtol=REL, atol=1e-7), (k, (wa[k] - wb[k]).abs().max())


# ---- end to end --------------------------------------------------------------------------------------------

def test_torchrun_two_processes_match_one_process_char_lm(reg, tmp_path, capsys, subprocess_env):
    """char-LM (truncated BPTT with carried state), batch 8: 2 ranks x 4 streams == 1 process x 8 streams."""
    corpus = tmp_path / "corpus.txt"
    words = "the quick brown fox jumps over a lazy dog while seven wizards quietly hex jumbo kites".split()
    corpus.write_text(" ".join(words[(i * 7 + i // 3) % len(words)] for i in range(2500)), encoding="utf-8")
    settings = ["threads=1", "hidden_size=16", "embed_size=8", "batch_size=8", "chunk_len=16", "eval_every=3",
                "eval_batches=2", "probe_every=2", "sample_every=3", "sample_len=8", "log_every=1",
                "optimizer=adam", "lr=0.01", "task.corpus=corpus.txt",
                "precision=fp32"]        # compared to float32 rounding: bf16 rounds differently per shard layout
    sets = [x for s in settings for x in ("--set", s)]
    single, dist = tmp_path / "single.seqwb", tmp_path / "dist.seqwb"
    assert main(["new", "char-lm", "-o", str(single), *sets]) == 0
    original = single.read_bytes()
    dist.write_bytes(original)

    one = run_cli(capsys, ["train", str(single), "--steps", "6", "--json"])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2",
           "--master-addr=127.0.0.1", f"--master-port={free_port()}",
           "-m", "workbench", "train", dist.name, "--steps", "6", "--json"]
    proc = run_torchrun(cmd, tmp_path, subprocess_env)
    two = events(proc.stdout)

    assert_same_training(one, two, 6)
    # rank 0 alone probed and sampled, and the samples are the same
    assert [e["step"] for e in two if e["event"] == "probe"] == [2, 4, 6]
    assert [e["text"] for e in two if e["event"] == "sample"] == [e["text"] for e in one if e["event"] == "sample"]
    # one save only (rank 0's): the backup is the untrained file, not another rank's output; no stray temp files
    assert dist.with_name(dist.name + ".bak").read_bytes() == original
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    a, b = load_project(single, registry=reg), load_project(dist, registry=reg)
    assert_same_weights(a, b)
    run_a, run_b = a.history.current, b.history.current
    assert close(run_a.series["train/loss"].value[-1], run_b.series["train/loss"].value[-1])
    assert len(run_b.series["train/loss"].value) == 6 and len(run_b.gtt) == 3
    # the carried hidden state of all 8 streams (gathered from both ranks) is in the checkpoint, in stream order
    carry_a = {k: v for k, v in a.checkpoint.tensors.items() if k.startswith("carry/")}
    carry_b = {k: v for k, v in b.checkpoint.tensors.items() if k.startswith("carry/")}
    assert carry_a and carry_a.keys() == carry_b.keys()
    assert b.checkpoint.trainer_state["carry_batch"] == 8
    for k in carry_a:
        assert torch.allclose(carry_a[k], carry_b[k], rtol=REL, atol=1e-6), k
    # so the distributed checkpoint resumes in one process exactly like the single-process one
    more_a = run_cli(capsys, ["train", str(single), "--steps", "2", "--json", "--set", "eval_every=0"])
    more_b = run_cli(capsys, ["train", str(dist), "--steps", "2", "--json", "--set", "eval_every=0"])
    la = [e["loss"] for e in more_a if e["event"] == "step"]
    lb = [e["loss"] for e in more_b if e["event"] == "step"]
    assert len(la) == len(lb) == 2 and all(close(x, y) for x, y in zip(la, lb))


@pytest.mark.parametrize("reduction, lr", [("mean", "0.5"), ("sum_over_time", "0.03"), ("sum", "0.004")])
def test_distributed_flag_starts_two_processes_and_logs_the_global_mean(reg, tmp_path, capsys, subprocess_env,
                                                                        reduction, lr):
    """Tagging (padded sentences): the two halves of a batch hold different numbers of tokens, so the mean of
    the two ranks' means is not the batch's mean; the logged loss and the step must still equal one process's,
    under every loss reduction (plain SGD, with clipping: the gradient's scale shows in the weights)."""
    rng = __import__("random").Random(5)
    tags = {"the": "DET", "a": "DET", "dog": "N", "cat": "N", "runs": "V", "sees": "V", "big": "ADJ",
            "red": "ADJ", "quickly": "ADV"}
    lines = []
    for _ in range(120):
        lines += [f"{w}\t{tags[w]}" for w in rng.choices(list(tags), k=rng.randint(1, 30))] + [""]
    (tmp_path / "tags.tsv").write_text("\n".join(lines), encoding="utf-8")
    settings = ["threads=1", "hidden_size=8", "batch_size=8", "eval_every=2", "eval_batches=2", "probe_every=0",
                "log_every=1", "task.path=tags.tsv", "task.min_count=1", "optimizer=sgd", f"lr={lr}",
                f"loss_reduction={reduction}", "clip_norm=2"]
    sets = [x for s in settings for x in ("--set", s)]
    single, dist = tmp_path / "single.seqwb", tmp_path / "dist.seqwb"
    assert main(["new", "tagging", "-o", str(single), *sets]) == 0
    dist.write_bytes(single.read_bytes())

    # the halves of the first batch really differ in size (else this test would not tell the two means apart)
    from workbench.core.training.trainer import Trainer
    trainer = Trainer(load_project(single, registry=reg), reg, base_dir=tmp_path)
    trainer.setup()
    batch = next(trainer._batches())
    counts = [trainer.task.count(trainer.task.shard(batch, r, 2)) for r in range(2)]
    assert counts[0] != counts[1] and sum(counts) == trainer.task.count(batch)
    with torch.no_grad():
        outputs, _ = trainer.model(batch, trainer.model.init_state(8, torch.device("cpu")))
        halves = [float(trainer.task.loss(*_shard_outputs(outputs, batch, trainer.task, r))) for r in range(2)]
        whole = float(trainer.task.loss(outputs, batch))
    assert abs((halves[0] + halves[1]) / 2 - whole) > 1e-4   # the naive mean of means is measurably wrong
    del trainer

    one = run_cli(capsys, ["train", str(single), "--steps", "4", "--json"])
    proc = run_torchrun([sys.executable, "-m", "workbench", "train", dist.name, "--distributed", "--nproc", "2",
                         "--steps", "4", "--json"], tmp_path, subprocess_env)
    two = events(proc.stdout)
    assert_same_training(one, two, 4)
    assert close(two[0]["loss"], whole)          # step 1's logged loss is the whole batch's mean
    assert_same_weights(load_project(single, registry=reg), load_project(dist, registry=reg))


def _shard_outputs(outputs, batch, task, rank):
    """Rank ``rank``'s rows of a whole-batch forward pass (logits are time-major here)."""
    part = task.shard(batch, rank, 2)
    lo, hi = rank * 8 // 2, (rank + 1) * 8 // 2
    return {k: v[:, lo:hi] for k, v in outputs.items()}, part


# ---- pieces --------------------------------------------------------------------------------------------------

def test_torchrun_environment_is_detected_and_checked():
    assert torchrun_env({}) is None
    env = torchrun_env({"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
                        "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"})
    assert env == LaunchEnv(1, 4, 1, 2, "10.0.0.1", 29500)
    with pytest.raises(TrainingError, match="MASTER_ADDR"):
        torchrun_env({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_PORT": "1"})
    with pytest.raises(TrainingError, match="inconsistent"):
        torchrun_env({"RANK": "2", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "x", "MASTER_PORT": "1"})
    cmd = launch_command(["train", "p.seqwb"], 3, python="py")
    assert cmd == ["py", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=3", "-m", "workbench",
                   "train", "p.seqwb"]


def test_distributed_flag_without_torchrun_says_how_to_launch(tmp_path, capsys, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert main(["train", str(tmp_path / "x.seqwb"), "--distributed"]) == 2
    err = capsys.readouterr().err
    assert "torchrun --nproc-per-node=N -m workbench train" in err and "--nproc" in err
    assert main(["train", str(tmp_path / "x.seqwb"), "--distributed", "--nproc", "0"]) == 2
    project = tmp_path / "p.seqwb"
    assert main(["new", "char-lm", "-o", str(project), "--set", "batch_size=8"]) == 0
    capsys.readouterr()
    # checked once before launching anything, not once per process
    assert main(["train", str(project), "--distributed", "--nproc", "3"]) == 2
    assert "batch_size 8 is not a multiple of --nproc 3" in capsys.readouterr().err


class _Stream(StreamLMTask):
    pass


def test_shards_are_disjoint_contiguous_and_rebuild_the_batch():
    task = _Stream(None)
    task._splits = {"train": torch.arange(1000)}
    batch = next(iter(task.batches("train", 6, 10)))
    parts = [task.shard(batch, r, 3) for r in range(3)]
    assert [p["tokens"].shape for p in parts] == [torch.Size([10, 2])] * 3
    assert torch.equal(torch.cat([p["tokens"] for p in parts], 1), batch["tokens"])
    assert torch.equal(torch.cat([p["targets"] for p in parts], 1), batch["targets"])
    assert all(p["reset"] is True for p in parts)

    class Padded(Task):
        time_major = ("tokens",)

    padded = {"tokens": torch.arange(35).view(7, 5), "lengths": torch.tensor([7, 3, 5, 2, 6]),
              "targets": torch.tensor([0, 1, 1, 0, 1]), "images": torch.zeros(5, 3, 4, 4)}
    a, b = Padded(None).shard(padded, 0, 2), Padded(None).shard(padded, 1, 2)
    assert a["tokens"].shape == (7, 2) and b["tokens"].shape == (7, 3)   # padding length of the whole batch
    assert a["lengths"].tolist() == [7, 3] and b["targets"].tolist() == [1, 0, 1] and b["images"].shape[0] == 3
    with pytest.raises(DataError, match="at least 6"):
        Padded(None).shard(padded, 0, 6)
    with pytest.raises(DataError, match="batch layout"):
        Task(None).shard(padded, 0, 2)


def test_every_builtin_task_declares_its_batch_layout(reg):
    tasks = [spec for kind, spec in reg.all()
             if kind == "task" and getattr(spec, "distribution", "sequence-workbench") == "sequence-workbench"]
    assert len(tasks) >= 10
    for spec in tasks:
        assert getattr(spec.load(), "time_major", None) is not None, spec.id


def test_carried_state_splits_into_rank_parts_and_back(reg, tmp_path):
    """The checkpoint's state of all streams -> each rank's streams (resume under torchrun), in stream order."""
    from tests.helpers import small_project, with_train, write_corpus
    from workbench.core.blocks import flatten_state, map_state
    from workbench.core.distributed import DistributedContext
    from workbench.core.training.trainer import Trainer
    corpus = write_corpus(tmp_path)
    project = with_train(small_project(reg, **{"task.corpus": str(corpus)}), threads=1, batch_size=6)
    trainer = Trainer(project, reg, base_dir=tmp_path)
    trainer.setup()
    model = trainer.model
    counter = iter(range(1_000_000))
    whole = map_state(model.init_state(6, torch.device("cpu")),
                      lambda t: torch.arange(t.numel(), dtype=t.dtype).view_as(t) + 1000 * next(counter))
    parts = []
    for rank in range(3):
        ctx = DistributedContext(LaunchEnv(rank, 3, rank, 3, "127.0.0.1", 1), torch.device("cpu"), "gloo")
        parts.append(flatten_state(ctx.shard_state(model, whole)))
    dims = ctx._batch_dims(model)
    for key, tensor in flatten_state(whole).items():
        assert all(p[key].shape[dims[key]] == 2 for p in parts)
        assert torch.equal(torch.cat([p[key] for p in parts], dim=dims[key]), tensor), key
