"""Data-parallel training across processes: torchrun's environment, the process group, sharding and reductions.

One process per device (``torchrun --nproc-per-node=N -m workbench train FILE``).  Every process reads the same
project, builds the same model from the same seed and asks the task for the same *global* batch; each trains on
its own contiguous rows of it (:meth:`workbench.core.tasks.Task.shard`).  DistributedDataParallel averages the
gradients, and each process's loss is weighted by its share of the batch's items, so that N processes with
``B/N`` rows each take exactly the step that one process takes on the whole batch of ``B`` (up to the order of
floating-point sums).  Rank 0 alone validates, probes, samples, prints and writes the project file.

Nothing here imports Qt, and nothing is ever pickled: only tensors cross process boundaries (no
``broadcast_object_list``, which pickles).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from workbench.core.blocks import flatten_state, unflatten_like
from workbench.schema.errors import TrainingError

#: what torchrun (torch.distributed.run) sets in every worker's environment
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class LaunchEnv:
    """Where this process sits in a torchrun launch."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    master_addr: str
    master_port: int


def torchrun_env(environ: Mapping[str, str] | None = None) -> LaunchEnv | None:
    """The launch this process belongs to, or None when it was not started by torchrun.

    A partial set of the variables (say ``RANK`` left over in a shell) is an error rather than a silent
    single-process run, since the other ranks would wait for this one forever.
    """
    env = os.environ if environ is None else environ
    present = [k for k in TORCHRUN_VARIABLES if env.get(k, "") != ""]
    if not present:
        return None
    if len(present) != len(TORCHRUN_VARIABLES):
        missing = [k for k in TORCHRUN_VARIABLES if k not in present]
        raise TrainingError(f"the environment has {', '.join(present)} but not {', '.join(missing)}: start "
                            f"distributed training with torchrun (docs/scaling.md), or unset these variables")
    try:
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
        local_rank = int(env["LOCAL_RANK"])
        local_world = int(env.get("LOCAL_WORLD_SIZE") or world)
        port = int(env["MASTER_PORT"])
    except ValueError as exc:
        raise TrainingError(f"a torchrun variable is not a number: {exc}") from None
    if world < 1 or not 0 <= rank < world or not 0 <= local_rank < local_world:
        raise TrainingError(f"inconsistent torchrun environment: RANK={rank}, WORLD_SIZE={world}, "
                            f"LOCAL_RANK={local_rank}, LOCAL_WORLD_SIZE={local_world}")
    return LaunchEnv(rank, world, local_rank, local_world, env["MASTER_ADDR"], port)


def launch_command(argv: list[str], nproc: int, python: str | None = None) -> list[str]:
    """The command that runs ``seqwb ARGV`` in ``nproc`` local processes under torchrun (a free port each time)."""
    return [python or sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "workbench", *argv]


def launch_hint(path: str) -> str:
    """How to start distributed training of ``path`` (for the message of ``seqwb train --distributed``)."""
    return (f"--distributed trains with one process per device under torchrun: run "
            f"`torchrun --nproc-per-node=N -m workbench train {path}` (N: GPUs on this machine, or CPU processes), "
            f"or add --nproc N and seqwb starts torchrun for you; docs/scaling.md has the multi-node commands")


def default_cpu_threads(local_world_size: int) -> int:
    """Intra-op threads per process when N processes share this machine's cores (at least one)."""
    from workbench.core.device import cpu_count
    return max(1, cpu_count() // max(1, local_world_size))


def rank_seed(seed: int, rank: int, step: int) -> int:
    """The torch seed of rank ``rank`` > 0 (dropout masks must differ between the shards of a batch)."""
    return (seed * 1_000_003 + rank * 7_919 + step) % (2 ** 63)


def leave() -> None:
    """Leave the process group, if this process joined one (the end of a distributed ``seqwb train``)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class DistributedContext:
    """The process group of one training launch, and the few collectives the trainer needs."""

    def __init__(self, env: LaunchEnv, device: torch.device, backend: str):
        self.env = env
        self.rank = env.rank
        self.world_size = env.world_size
        self.local_rank = env.local_rank
        self.device = device
        self.backend = backend
        self._state_dims: dict[str, int] | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ---- start and end ---------------------------------------------------------------------------------------
    @classmethod
    def start(cls, env: LaunchEnv, device_request: str = "auto") -> "DistributedContext":
        """Join the process group: gloo on the CPU, NCCL on CUDA with device ``cuda:LOCAL_RANK``."""
        import torch.distributed as dist

        from workbench.core.device import resolve_device
        if not dist.is_available():
            raise TrainingError("this torch build has no torch.distributed: distributed training is not possible")
        try:
            device = resolve_device(device_request)
        except ValueError as exc:
            raise TrainingError(str(exc)) from None
        if device.type == "cuda":
            if torch.cuda.device_count() <= env.local_rank:
                raise TrainingError(f"local rank {env.local_rank} needs cuda:{env.local_rank}, but this machine has "
                                    f"{torch.cuda.device_count()} CUDA device(s): start at most that many "
                                    f"processes per node")
            device = torch.device("cuda", env.local_rank)
            torch.cuda.set_device(device)
            backend = "nccl"
        elif device.type == "cpu":
            backend = "gloo"
        else:
            raise TrainingError(f"distributed training runs on CPUs (gloo) or CUDA GPUs (NCCL), not on "
                                f"{device.type}: set device=cpu")
        if not dist.is_initialized():
            dist.init_process_group(backend=backend, init_method="env://", rank=env.rank,
                                    world_size=env.world_size)
        return cls(env, device, backend)

    def close(self) -> None:
        leave()

    # ---- the model -------------------------------------------------------------------------------------------
    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module that trains: ``model`` in DistributedDataParallel (same parameters, gradients averaged)."""
        from torch.nn.parallel import DistributedDataParallel
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, output_device=ids[0] if ids else None)

    def cpu_threads(self) -> int:
        """Intra-op threads when ``threads`` is 0: this machine's cores shared by its processes."""
        return default_cpu_threads(self.env.local_world_size)

    def check_batch_size(self, batch_size: int) -> None:
        if batch_size % self.world_size:
            raise TrainingError(f"batch_size {batch_size} is not a multiple of the {self.world_size} processes: "
                                f"every process trains batch_size / {self.world_size} rows of each batch; set "
                                f"batch_size to a multiple of {self.world_size}")

    # ---- data ------------------------------------------------------------------------------------------------
    def shard(self, task: Any, batch: dict[str, Any]) -> dict[str, Any]:
        return task.shard(batch, self.rank, self.world_size)

    # ---- reductions ------------------------------------------------------------------------------------------
    def reduce_step(self, loss: float, count: int, stop: bool) -> tuple[float, int, bool]:
        """The global mean loss, the global item count, and whether any process asked to stop.

        The global mean is the count-weighted mean of the per-process means (each process's loss is a mean over
        ``count`` items), which is the one process's mean over the whole batch.
        """
        import torch.distributed as dist
        t = torch.tensor([loss * count, float(count), 1.0 if stop else 0.0], dtype=torch.float64,
                         device=self._comm_device())
        dist.all_reduce(t)
        total_loss, total_count, stops = t.tolist()
        mean = total_loss / total_count if total_count > 0 else float("nan")
        return mean, int(round(total_count)), stops > 0

    def max_int(self, value: int) -> int:
        """The largest ``value`` of all processes (the loss's time steps under ``sum_over_time``: every process
        must scale its loss alike)."""
        import torch.distributed as dist
        t = torch.tensor([float(value)], dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item())

    def loss_weight(self, count: int, total: int) -> float:
        """Scale of this process's mean loss so that DDP's average of the gradients is the gradient of the global
        mean: (1/N) * sum_r (N * c_r / C) * grad(mean_r) = grad(sum of all items / C)."""
        return self.world_size * count / total if total > 0 else 0.0

    def broadcast_metric(self, value: float | None) -> float | None:
        """Rank 0's value (None travels as a flag) on every rank."""
        import torch.distributed as dist
        t = torch.tensor([0.0 if value is None else 1.0, 0.0 if value is None else float(value)],
                         dtype=torch.float64, device=self._comm_device())
        dist.broadcast(t, src=0)
        has, v = t.tolist()
        return v if has else None

    # ---- carried hidden state (truncated BPTT) ---------------------------------------------------------------
    def _batch_dims(self, model: Any) -> dict[str, int]:
        """The batch dimension of every tensor of the model's state, found by comparing states for 1 and 2 rows."""
        if self._state_dims is None:
            one = flatten_state(model.init_state(1, torch.device("cpu")))
            two = flatten_state(model.init_state(2, torch.device("cpu")))
            dims: dict[str, int] = {}
            for key, a in one.items():
                b = two[key]
                diff = [d for d in range(a.dim()) if a.shape[d] != b.shape[d]]
                if len(diff) != 1:
                    raise TrainingError(f"the model's state entry {key!r} has no single batch dimension "
                                        f"({tuple(a.shape)} for 1 row, {tuple(b.shape)} for 2): its carried "
                                        f"state cannot be split across processes")
                dims[key] = diff[0]
            self._state_dims = dims
        return self._state_dims

    def gather_state(self, model: Any, state: Any) -> Any:
        """Every process's part of the carried state, joined in rank order: the state of the whole batch."""
        import torch.distributed as dist
        if state is None:
            return None
        dims = self._batch_dims(model)
        flat = {k: v.detach() for k, v in flatten_state(state).items()}
        joined: dict[str, torch.Tensor] = {}
        if len({v.dtype for v in flat.values()}) == 1:
            # one collective per step: every tensor of the state packed into one buffer (all ranks' parts have the
            # same shapes, since batch_size is a multiple of the number of processes)
            keys = list(flat)
            buf = torch.cat([flat[k].reshape(-1) for k in keys])
            bufs = [torch.empty_like(buf) for _ in range(self.world_size)]
            dist.all_gather(bufs, buf)
            sizes = [flat[k].numel() for k in keys]
            per_rank = [dict(zip(keys, b.split(sizes))) for b in bufs]
            for k in keys:
                joined[k] = torch.cat([p[k].view_as(flat[k]) for p in per_rank], dim=dims[k])
        else:
            for key, part in flat.items():
                part = part.contiguous()
                parts = [torch.empty_like(part) for _ in range(self.world_size)]
                dist.all_gather(parts, part)
                joined[key] = torch.cat(parts, dim=dims[key])
        return unflatten_like(state, joined)

    def shard_state(self, model: Any, state: Any) -> Any:
        """This process's rows of the state of the whole batch (the inverse of :meth:`gather_state`)."""
        if state is None:
            return None
        dims = self._batch_dims(model)
        flat = flatten_state(state)
        out: dict[str, torch.Tensor] = {}
        for key, whole in flat.items():
            dim = dims[key]
            total = whole.shape[dim]
            lo, hi = self.rank * total // self.world_size, (self.rank + 1) * total // self.world_size
            out[key] = whole.narrow(dim, lo, hi - lo).contiguous()
        return unflatten_like(state, out)

    def _comm_device(self) -> torch.device:
        return self.device if self.backend == "nccl" else torch.device("cpu")
