"""Training precision: ``precision = auto | fp32 | bf16 | fp16`` and what it resolves to on a device.

Reduced precision means ``torch.autocast`` around the model's forward pass: matrix products and the fused
recurrent kernels run in bfloat16 or float16, while the parameters, their gradients, the optimizer's state and
the loss (with its softmax) stay float32 — the trainer computes the loss outside autocast, on float32 outputs.
float16 has a narrow exponent range, so it goes with a gradient scaler; bfloat16 has float32's range and needs
none.

``auto`` picks bfloat16 only where the hardware computes it natively: a CPU with AVX512-BF16 or AMX (read from
the CPU's flags, never guessed from its model name), or a CUDA device that supports bfloat16; float16 with a
scaler on other CUDA devices; float32 everywhere else (MPS included).  A model runs in reduced precision only if
every cell and block of it says it can (``precisions``); otherwise the run falls back to float32 and says which
part asked for it.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: what a cell or block supports when it does not say (float32 only: reduced precision is opt-in)
FP32_ONLY = ("fp32",)
ALL = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Precision:
    """What a run trains in: ``name`` (fp32, bf16, fp16), whether a gradient scaler goes with it, and why."""

    name: str
    reason: str = ""

    @property
    def reduced(self) -> bool:
        return self.name != "fp32"

    @property
    def scaler(self) -> bool:
        return self.name == "fp16"

    def dtype(self) -> Any:
        import torch
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    def label(self) -> str:
        """For the speed text and the log: ``bf16 autocast``, ``fp16 autocast + scaler``, ``fp32``."""
        if self.name == "fp32":
            return "fp32"
        return f"{self.name} autocast" + (" + scaler" if self.scaler else "")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux: /proc/cpuinfo); empty where they cannot be read."""
    if not sys.platform.startswith("linux"):
        return frozenset()
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def cpu_has_bf16(flags: frozenset[str] | None = None) -> bool:
    """True on a CPU with native bfloat16 arithmetic: AVX512-BF16 or AMX-BF16."""
    flags = cpu_flags() if flags is None else flags
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def resolve(requested: str, device: Any, *, cpu_bf16: bool | None = None) -> Precision:
    """What ``requested`` means on ``device`` (a torch.device).  ``cpu_bf16`` overrides the CPU's flags (tests)."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {requested!r}")
    kind = getattr(device, "type", str(device))
    if requested == "fp32":
        return Precision("fp32", "asked for")
    if kind == "mps" and requested != "auto":
        return Precision("fp32", f"{requested} autocast is not supported on MPS here: float32")
    if requested == "fp16" and kind == "cpu":
        return Precision("fp32", "float16 training needs a CUDA device: float32 on the CPU")
    if requested in ("bf16", "fp16"):
        return Precision(requested, "asked for")
    # auto
    if kind == "cpu":
        has = cpu_has_bf16() if cpu_bf16 is None else cpu_bf16
        return (Precision("bf16", "the CPU computes bfloat16 natively (AVX512-BF16 or AMX)") if has
                else Precision("fp32", "the CPU has no native bfloat16 (no AVX512-BF16 or AMX)"))
    if kind == "cuda":
        import torch
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return Precision("bf16", "the GPU supports bfloat16")
        return Precision("fp16", "the GPU has no bfloat16: float16 with a gradient scaler")
    return Precision("fp32", f"no reduced precision on {kind}")


def fit_model(choice: Precision, unsupported: list[str]) -> tuple[Precision, str]:
    """``choice`` if every part of the model supports it, else float32 and the one-line notice that says why."""
    if not choice.reduced or not unsupported:
        return choice, ""
    parts = ", ".join(unsupported[:3]) + (f" and {len(unsupported) - 3} more" if len(unsupported) > 3 else "")
    return (Precision("fp32", f"{parts} does not support {choice.name}"),
            f"training in float32: {parts} does not support {choice.name} (precision={choice.name} asked for "
            f"{choice.label()})")


def for_model(requested: str, device: Any, model: Any) -> tuple[Precision, str]:
    """What ``requested`` means for ``model`` (a SequenceModel) on ``device``: :func:`resolve`, then
    :func:`fit_model` with the parts of the model that cannot run it.  The trainer and the recorder both choose
    through here."""
    choice = resolve(requested, device)
    return fit_model(choice, model.precision_blockers(choice.name))
