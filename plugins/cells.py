"""Built-in recurrent cells (registration only: no torch here)."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.hookspecs import hookimpl
from workbench.plugin_system.params import param
from workbench.plugin_system.specs import CellSpec

VERSION = "1.0"


@dataclass
class LSTMParams:
    forget_bias: float = param(1.0, help="initial forget-gate bias; 1 helps gradients flow early on "
                                         "(Gers et al. 2000; Jozefowicz et al. 2015)")
    fused: bool = param(True, help="train whole sequences with torch.nn.LSTM (oneDNN / cuDNN); "
                                   "off: the Python per-step path")


@hookimpl
def seqwb_cells() -> list[CellSpec]:
    return [
        CellSpec(
            id="lstm", title="LSTM", version=VERSION, params=LSTMParams,
            factory="workbench_plugins.lstm:LSTMCell",
            description="Long short-term memory with forget gate: gates i, f, g, o; c = f*c + i*g; h = o*tanh(c).",
            gates=("i", "f", "g", "o"), state_names=("h", "c"), has_fused=True,
            paper="Hochreiter & Schmidhuber 1997; Gers, Schmidhuber & Cummins 2000",
        ),
    ]
