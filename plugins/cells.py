"""Built-in recurrent cells (registration only: no torch here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from workbench.api import CellSpec, hookimpl, param

VERSION = "1.0"
PKG = "workbench_plugins"

_FUSED_OFF = ("off: a Python loop over timesteps with a hand-written backward through time (same weights, "
              "same numbers)")


@dataclass
class LSTMParams:
    forget_bias: float = param(1.0, help="initial forget-gate bias; 1 helps gradients flow early on "
                                         "(Gers et al. 2000; Jozefowicz et al. 2015)")
    fused: bool = param(True, help="train whole sequences with torch.nn.LSTM (oneDNN / cuDNN); " + _FUSED_OFF)


@dataclass
class RNNParams:
    nonlinearity: Literal["tanh", "relu"] = param("tanh", help="the unit's nonlinearity f in h = f(W x + U h + b)")
    fused: bool = param(True, help="train whole sequences with torch.nn.RNN; off: the Python per-step path")


@dataclass
class IRNNParams:
    identity_scale: float = param(1.0, min=0.0, max=10.0,
                                  help="W_hh starts as this times the identity (Le et al. use 1; a small value "
                                       "such as 0.01 forgets faster, for short-range tasks)")
    input_std: float = param(0.001, min=0.0, max=1.0,
                             help="input weights start ~ N(0, std^2); biases start at 0")
    fused: bool = param(True, help="train whole sequences with torch.nn.RNN (ReLU); off: the Python per-step path")


@dataclass
class PeepholeLSTMParams:
    forget_bias: float = param(1.0, help="initial forget-gate bias; 1 helps the cell remember early on")
    peephole_init: Literal["uniform", "zero"] = param(
        "uniform", help="initial peephole weights: uniform like the other weights, or zero (starts as a plain "
                        "LSTM and learns the peepholes)")


@dataclass
class GRUParams:
    fused: bool = param(True, help="train whole sequences with torch.nn.GRU (oneDNN / cuDNN); " + _FUSED_OFF)


@dataclass
class MUTParams:
    update_bias: float = param(0.0, min=-10.0, max=10.0,
                               help="initial bias of the update gate z; negative values start by keeping the state "
                                    "(h' = h when z = 0)")


@dataclass
class MUTInputParams(MUTParams):
    input_map: Literal["auto", "projection"] = param(
        "auto", help="how x enters where the paper adds it to a hidden-sized sum: auto uses x itself when "
                     "input size = hidden size (as in the paper) and a learned projection P x otherwise; "
                     "projection always learns P")


_MUT_PAPER = "Jozefowicz, Zaremba & Sutskever 2015 (An Empirical Exploration of Recurrent Network Architectures)"


@hookimpl
def seqwb_cells() -> list[CellSpec]:
    return [
        CellSpec(
            id="rnn", title="Vanilla RNN", version=VERSION, params=RNNParams,
            factory=f"{PKG}.cell_rnn:RNNCell",
            description="Elman RNN: h = f(W x + U h + b) with f = tanh or relu; no gates.",
            gates=(), state_names=("h",), has_fused=True, paper="Elman 1990",
        ),
        CellSpec(
            id="irnn", title="IRNN", version=VERSION, params=IRNNParams,
            factory=f"{PKG}.cell_rnn:IRNNCell",
            description="ReLU RNN with W_hh initialised to the identity and zero biases: carries its state intact "
                        "at first.",
            gates=(), state_names=("h",), has_fused=True, paper="Le, Jaitly & Hinton 2015",
        ),
        CellSpec(
            id="lstm", title="LSTM", version=VERSION, params=LSTMParams,
            factory=f"{PKG}.lstm:LSTMCell",
            description="Long short-term memory with forget gate: gates i, f, g, o; c = f*c + i*g; h = o*tanh(c).",
            gates=("i", "f", "g", "o"), state_names=("h", "c"), has_fused=True,
            paper="Hochreiter & Schmidhuber 1997; Gers, Schmidhuber & Cummins 2000",
        ),
        CellSpec(
            id="peephole-lstm", title="Peephole LSTM", version=VERSION, params=PeepholeLSTMParams,
            factory=f"{PKG}.cell_peephole:PeepholeLSTMCell",
            description="LSTM whose gates also see the cell state: i, f see c(t-1), o sees c(t) (diagonal weights).",
            gates=("i", "f", "g", "o"), state_names=("h", "c"), has_fused=False,
            paper="Gers & Schmidhuber 2000",
        ),
        CellSpec(
            id="gru", title="GRU", version=VERSION, params=GRUParams,
            factory=f"{PKG}.cell_gru:GRUCell",
            description="Gated recurrent unit (torch's form): reset r, update z, candidate n; h = (1-z)*n + z*h.",
            gates=("r", "z", "n"), state_names=("h",), has_fused=True, paper="Cho et al. 2014",
        ),
        CellSpec(
            id="mut1", title="MUT1", version=VERSION, params=MUTInputParams,
            factory=f"{PKG}.cell_mut:MUT1Cell",
            description="Evolved GRU-like cell: z from x only, r from x and h; tanh(x) enters the candidate.",
            gates=("z", "r"), state_names=("h",), has_fused=False, paper=_MUT_PAPER,
        ),
        CellSpec(
            id="mut2", title="MUT2", version=VERSION, params=MUTInputParams,
            factory=f"{PKG}.cell_mut:MUT2Cell",
            description="Evolved GRU-like cell: x enters the reset gate unweighted; z from x and h.",
            gates=("z", "r"), state_names=("h",), has_fused=False, paper=_MUT_PAPER,
        ),
        CellSpec(
            id="mut3", title="MUT3", version=VERSION, params=MUTParams,
            factory=f"{PKG}.cell_mut:MUT3Cell",
            description="Evolved GRU-like cell: the update gate sees tanh(h); r from x and h.",
            gates=("z", "r"), state_names=("h",), has_fused=False, paper=_MUT_PAPER,
        ),
    ]
