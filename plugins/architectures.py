"""Built-in block types for the model graph (registration and size inference only: no torch here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.api import BlockSpec, PortSpec, hookimpl, param
from workbench_plugins import numeric_specs, seq2seq_specs, text_specs

VERSION = "1.0"
IMPL = "workbench_plugins.blocks_impl"


@dataclass
class EmbeddingParams:
    embed_size: int = param(64, min=1, max=65536, help="size of each token's vector")


@dataclass
class RNNParams:
    cell: str = param("lstm", ui="cell", help="recurrent cell (any registered cell)")
    hidden_size: int = param(256, min=1, max=65536, help="units per layer")
    layers: int = param(1, min=1, max=64, help="stacked layers")
    dropout: float = param(0.0, min=0.0, max=0.99,
                           help="dropout between layers, not on the recurrent connections (Zaremba et al. 2014)")
    residual: bool = param(False, help="add each layer's input to its output (layers of equal size)")
    direction: str = param("forward", choices=("forward", "bidirectional"),
                           help="forward: left to right (can generate step by step); bidirectional: a second "
                                "layer reads each sequence right to left within its length (Schuster & Paliwal "
                                "1997); it needs the whole sequence, so it cannot generate")
    merge: str = param("concat", choices=("concat", "sum"),
                       help="bidirectional: join the two directions' outputs side by side (2 x hidden_size) "
                            "or add them (hidden_size)")


@dataclass
class DropoutParams:
    p: float = param(0.0, min=0.0, max=0.99, help="probability of zeroing an element while training")


@dataclass
class LinearParams:
    out_features: int = param(0, min=0, max=10_000_000, help="output size (0: inferred from what it feeds)")
    bias: bool = param(True, help="learn a bias")


@dataclass
class PoolParams:
    mode: str = param("last", choices=("last", "mean", "max"),
                      help="many-to-one: the last state, the mean over time, or the maximum over time")


@dataclass
class ClassifierParams:
    out_features: int = param(0, min=0, max=10_000_000, help="number of classes (0: inferred from the task)")
    bias: bool = param(True, help="learn a bias")


def infer_embedding(p: EmbeddingParams, in_sizes: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    return {"y": p.embed_size}


def rnn_output_size(p: RNNParams) -> int:
    """What each layer of an ``rnn`` block gives: 2H for a bidirectional layer that concatenates, else H."""
    return 2 * p.hidden_size if p.direction == "bidirectional" and p.merge == "concat" else p.hidden_size


def infer_rnn(p: RNNParams, in_sizes: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    # with residual connections, a first layer whose input differs in size simply has none (from layer 2 on)
    return {"y": rnn_output_size(p)}


@dataclass
class ConcatParams:
    pass


def infer_concat(p: ConcatParams, in_sizes: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    a, b = in_sizes.get("a"), in_sizes.get("b")
    return {"y": a + b if a and b else None}


def infer_linear(p: LinearParams, in_sizes: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    return {"y": p.out_features or wanted.get("y")}


@hookimpl
def seqwb_architectures() -> list[BlockSpec]:
    return [
        BlockSpec(
            id="embedding", title="Embedding", version=VERSION, params=EmbeddingParams,
            factory=f"{IMPL}:EmbeddingBlock", category="embeddings",
            description="Looks up a learned vector for each token id.",
            inputs=(PortSpec("x", "tokens[T]"),), outputs=(PortSpec("y", "vectors[T]"),),
            infer="workbench_plugins.architectures:infer_embedding", summary="{embed_size}",
        ),
        BlockSpec(
            id="rnn", title="Recurrent layers", version=VERSION, params=RNNParams,
            factory=f"{IMPL}:RNNBlock", category="recurrent",
            description="One or more stacked recurrent layers of any registered cell, forward or bidirectional; "
                        "dropout between layers and optional residual connections; the forward state is carried "
                        "across truncated-BPTT chunks.",
            inputs=(PortSpec("x", "vectors[T]"),), outputs=(PortSpec("y", "vectors[T]"),),
            infer="workbench_plugins.architectures:infer_rnn",
            summary="{cell} · {hidden_size} · {layers} layers", recurrent=True,
        ),
        BlockSpec(
            id="dropout", title="Dropout", version=VERSION, params=DropoutParams,
            factory=f"{IMPL}:DropoutBlock", category="regularisation",
            description="Zeroes elements at random while training (Srivastava et al. 2014).",
            inputs=(PortSpec("x", "vectors[T]"),), outputs=(PortSpec("y", "vectors[T]"),), summary="p={p}",
        ),
        BlockSpec(
            id="pool", title="Pooling", version=VERSION, params=PoolParams,
            factory=f"{IMPL}:PoolBlock", category="pooling",
            description="Many-to-one: turns a sequence of vectors into one vector per example (last state, mean "
                        "or max over time; padded positions are ignored).",
            inputs=(PortSpec("x", "vectors[T]"),), outputs=(PortSpec("y", "vector"),), summary="{mode}",
        ),
        BlockSpec(
            id="classifier", title="Classifier head", version=VERSION, params=ClassifierParams,
            factory=f"{IMPL}:LinearBlock", category="heads",
            description="A linear map from one vector per example to class scores.",
            inputs=(PortSpec("x", "vector"),), outputs=(PortSpec("y", "logits"),),
            infer="workbench_plugins.architectures:infer_linear", summary="→ {out_features}",
        ),
        BlockSpec(
            id="linear", title="Linear head", version=VERSION, params=LinearParams,
            factory=f"{IMPL}:LinearBlock", category="heads",
            description="A linear map from each timestep's vector to output scores.",
            inputs=(PortSpec("x", "vectors[T]"),), outputs=(PortSpec("y", "logits[T]"),),
            infer="workbench_plugins.architectures:infer_linear", summary="→ {out_features}",
        ),
        BlockSpec(
            id="concat", title="Concatenate", version=VERSION, params=ConcatParams,
            factory=f"{IMPL}:ConcatBlock", category="combine",
            description="Joins two sequences of vectors side by side at every timestep (sizes add up).",
            inputs=(PortSpec("a", "vectors[T]"), PortSpec("b", "vectors[T]")),
            outputs=(PortSpec("y", "vectors[T]"),),
            infer="workbench_plugins.architectures:infer_concat", summary="a ⊕ b",
        ),
    ] + [spec for area in (text_specs, seq2seq_specs, numeric_specs) for spec in area.BLOCKS]
