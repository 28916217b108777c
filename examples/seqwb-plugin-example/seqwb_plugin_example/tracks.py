"""The running-parity feature track (numpy only)."""

from __future__ import annotations

import numpy as np


def running_parity(text: str) -> np.ndarray:
    """After reading character i: 1.0 if text[:i+1] holds an odd number of '1' characters, else 0.0."""
    ones = np.fromiter((ch == "1" for ch in text), dtype=np.int64, count=len(text))
    return (np.cumsum(ones) % 2).astype(np.float64)
