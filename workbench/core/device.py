"""Device choice and CPU thread count."""

from __future__ import annotations

import os

import torch

from workbench.core import threads
from workbench.core.threads import cpu_count


def available_devices() -> list[str]:
    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU.  An unavailable explicit choice raises ValueError."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for, but this machine has no CUDA device; use cpu or auto")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
        return dev
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError("device 'mps' asked for, but Metal is not available here; use cpu or auto")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps")


def describe_device(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(dev)}"
    if dev.type == "mps":
        return "Apple MPS"
    n = torch.get_num_threads()
    return f"CPU ({n} thread{'' if n == 1 else 's'})"


def env_threads() -> int | None:
    """The thread count ``OMP_NUM_THREADS`` asks for (a positive integer), else None.

    Torch reads it at start-up, but the trainer sets its own count afterwards; a user or a job scheduler that sets
    the variable (to share a machine) means it for this program too."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    try:
        n = int(value)
    except ValueError:
        return None
    return n if n > 0 else None


def bounded_threads(requested: int) -> tuple[int, str]:
    """``(threads, notice)``: ``requested`` bounded to the cores this process may run on.  More threads than cores
    only make the threads wait for each other, and an absurd count (``threads=1000000``) makes torch's thread
    pool crash the process; the notice says what was used instead ("" when nothing changed)."""
    cores = cpu_count()
    if requested > cores:
        return cores, (f"threads={requested} is more than the {cores} core{'s' if cores != 1 else ''} of this "
                       f"machine: using {cores}")
    if requested < 1:
        return 1, f"threads={requested} is not a thread count: using 1"
    return requested, ""


def default_threads(behind_window: bool) -> int:
    """All cores headless.  Behind the window, all cores too where training runs below the window's priority
    (Linux: :func:`workbench.core.threads.lower_thread_priority`), so that the GUI thread gets a core the moment
    it needs one; elsewhere one core is left for the GUI (at least 1 thread).  ``OMP_NUM_THREADS``, when set, caps
    both (the project's own ``threads`` setting still wins over either)."""
    n = cpu_count()
    n = max(1, n - 1) if behind_window and not threads.can_lower_priority() else n
    env = env_threads()
    return min(n, env) if env is not None else n
