"""Registration only: plain-data specs.  No torch and no numpy here; each contribution's code is named by a
"module:attr" string and imported when it is first used."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.api import (BlockSpec, CellSpec, DecoderSpec, FeatureTrackSpec, NoParams, PortSpec, TaskSpec,
                           TemplateSpec, hookimpl, param)

#: the plugin-API versions this plugin is written for (1.2: namespaced ids, former_ids, Cell.after_step)
SEQWB_API = ">=1.2,<2"
VERSION = "0.2.0"
#: every id is namespaced by this distribution's name, so no other plugin can register it
NS = "seqwb-plugin-example"
PKG = "seqwb_plugin_example"


# ---- a cell ---------------------------------------------------------------------------------------------------

@dataclass
class IndRNNParams:
    activation: str = param("relu", choices=("relu", "tanh"), help="the nonlinearity sigma")
    recurrent_max: float = param(1.0, min=0.0, max=10.0,
                                 help="initial recurrent weights u are drawn from [0, recurrent_max]; 1.0 lets a "
                                      "ReLU unit keep its value over many steps")
    clip: float = param(0.0, min=0.0, max=10.0,
                        help="after every optimizer step, clip each u to [-clip, clip] (Li et al.'s constraint "
                             "|u| <= gamma, which keeps long-range memory from exploding); 0: off")


@hookimpl
def seqwb_cells() -> list[CellSpec]:
    return [CellSpec(
        id=f"{NS}.indrnn", former_ids=("indrnn",),   # 0.1.0 registered the bare id, which saved projects name
        title="IndRNN", version=VERSION, params=IndRNNParams,
        factory=f"{PKG}.indrnn:IndRNNCell", gates=(), state_names=("h",),
        description="Independently recurrent units: h = sigma(W x + u * h_prev + b), one recurrent weight per unit.",
        paper="Li, Li, Cook, Zhu & Gao 2018, Independently Recurrent Neural Network (IndRNN)")]


# ---- a block --------------------------------------------------------------------------------------------------

@dataclass
class LayerNormParams:
    eps: float = param(1e-5, min=0.0, max=1.0, help="added to the variance before the square root")
    affine: bool = param(True, help="learn a gain and a bias per feature")


@hookimpl
def seqwb_architectures() -> list[BlockSpec]:
    return [BlockSpec(
        id=f"{NS}.layer-norm", title="Layer norm", version=VERSION, params=LayerNormParams,
        factory=f"{PKG}.layernorm:LayerNormBlock", category="normalisation",
        description="Normalises each timestep's vector to zero mean and unit variance over its features (Ba, Kiros "
                    "& Hinton 2016), then scales and shifts it.",
        inputs=(PortSpec("x", "vectors[T]", doc="a sequence of vectors"),),
        outputs=(PortSpec("y", "vectors[T]", doc="the same vectors, normalised"),),
        summary="eps {eps}")]   # no infer: the output takes the size of the input


# ---- tasks: one of each shape ---------------------------------------------------------------------------------

@dataclass
class ParityParams:
    length: int = param(16, min=1, max=10_000, help="bits per sequence")
    train_size: int = param(4096, min=1, max=100_000_000, help="training sequences per epoch (fresh each epoch)")
    valid_size: int = param(512, min=1, max=1_000_000, help="sequences in the fixed validation set")
    test_size: int = param(512, min=1, max=1_000_000, help="sequences in the fixed test set")
    data_seed: int = param(0, min=0, help="seed of the fixed validation and test sets")


@dataclass
class GeneratedParams:
    """What the generated tasks below share: sizes of the splits and lengths of the sequences."""

    min_length: int = param(3, min=1, max=10_000, help="shortest sequence")
    max_length: int = param(12, min=1, max=10_000, help="longest sequence")
    train_size: int = param(2048, min=1, max=100_000_000, help="training sequences per epoch (fresh each epoch)")
    valid_size: int = param(256, min=1, max=1_000_000, help="sequences in the fixed validation set")
    test_size: int = param(256, min=1, max=1_000_000, help="sequences in the fixed test set")
    data_seed: int = param(0, min=0, help="seed of the fixed validation and test sets")

    def validate(self) -> None:
        if self.min_length > self.max_length:
            raise ValueError(f"min_length ({self.min_length}) exceeds max_length ({self.max_length})")


@dataclass
class EchoParams(GeneratedParams):
    delay: int = param(2, min=0, max=100, help="steps between a symbol and the label that repeats it")

    def validate(self) -> None:
        super().validate()
        if self.min_length <= self.delay:
            raise ValueError(f"min_length ({self.min_length}) must exceed delay ({self.delay}): every sequence "
                             f"needs a labelled last step")


@hookimpl
def seqwb_tasks() -> list[TaskSpec]:
    bits = PortSpec("tokens", "tokens[T]", size="vocab", doc="the bits, one token per step, padded with 0")
    return [
        TaskSpec(
            id=f"{NS}.parity", former_ids=("parity",), title="Running parity of a bit string", version=VERSION,
            params=ParityParams, factory=f"{PKG}.parity:ParityTask",
            description="Random strings of 0 and 1, generated on the fly; after each bit, classify whether the "
                        "number of 1s so far is odd. Chance is 50% accuracy; final_accuracy is the whole string's "
                        "parity.",
            inputs=(PortSpec("tokens", "tokens[T]", size="vocab", doc="the bits, one token per step"),),
            outputs=(PortSpec("logits", "logits[T]", size="classes", doc="scores for even and odd, every step"),),
            metrics=("loss", "accuracy", "final_accuracy")),
        TaskSpec(   # many-to-one classification
            id=f"{NS}.majority", title="Majority of a bit string", version=VERSION, params=GeneratedParams,
            factory=f"{PKG}.majority:MajorityTask",
            description="Bit strings of odd length: are there more 1s than 0s? One label per sequence.",
            inputs=(bits,), outputs=(PortSpec("logits", "logits", size="classes", doc="scores for 0 and 1"),),
            metrics=("loss", "accuracy", "baseline_accuracy")),
        TaskSpec(   # sequence labelling
            id=f"{NS}.echo", title="Delayed echo", version=VERSION, params=EchoParams,
            factory=f"{PKG}.echo:EchoTask",
            description="Strings of a, b, c, d; the label of each step is the symbol `delay` steps before it.",
            inputs=(PortSpec("tokens", "tokens[T]", size="vocab", doc="symbols, padded with 0"),),
            outputs=(PortSpec("logits", "logits[T]", size="classes", doc="scores for each symbol, every step"),),
            metrics=("loss", "accuracy", "baseline_accuracy")),
        TaskSpec(   # sequence to sequence
            id=f"{NS}.reverse", title="Reverse a string", version=VERSION, params=GeneratedParams,
            factory=f"{PKG}.reverse:ReverseTask",
            description="Read a string of a-h, write it backwards. A decoder generates the answer.",
            inputs=(PortSpec("source", "tokens[T]", size="vocab", doc="the string, padded with 0"),
                    PortSpec("target_in", "tokens[T]", size="vocab", doc="<bos> and the answer so far")),
            outputs=(PortSpec("logits", "logits[T]", size="vocab", doc="scores for the next answer symbol"),),
            metrics=("loss", "accuracy", "exact"), generative=True, step_input="target_in"),
        TaskSpec(   # regression
            id=f"{NS}.mean", title="Mean of a series", version=VERSION, params=GeneratedParams,
            factory=f"{PKG}.mean:MeanTask",
            description="Numbers drawn uniformly from [-1, 1]; predict their mean. Predicting 0 scores "
                        "baseline_mse.",
            inputs=(PortSpec("series", "values[T]", size="features", doc="one number per step, padded with 0"),),
            outputs=(PortSpec("mean", "values", size="outputs", doc="the predicted mean"),),
            metrics=("loss", "mse", "baseline_mse", "mae")),
    ]


# ---- a decoder ------------------------------------------------------------------------------------------------

@dataclass
class MinPParams:
    p_base: float = param(0.1, min=0.0, max=1.0,
                          help="keep the tokens at least this fraction as likely as the most likely one")
    temperature: float = param(1.0, min=1e-3, max=100.0, help="divide the logits by this first")
    max_len: int = param(100, min=1, max=100_000, help="tokens to generate at most")
    tree_width: int = param(3, min=0, max=100, help="candidates beside the chosen one kept in the search tree")


@hookimpl
def seqwb_decoders() -> list[DecoderSpec]:
    return [DecoderSpec(
        id=f"{NS}.min-p", title="Min-p sampling", version=VERSION, params=MinPParams,
        factory=f"{PKG}.minp:min_p_sampling",
        description="Samples each token among those at least p_base times as likely as the most likely one "
                    "(Nguyen et al. 2024); records the candidates of every step as a search tree.")]


# ---- templates ------------------------------------------------------------------------------------------------

@dataclass
class ParityTemplateParams:
    cell: str = param(f"{NS}.indrnn", ui="cell", help="recurrent cell")
    hidden_size: int = param(32, min=1, max=8192, help="units per recurrent layer")
    layers: int = param(3, min=1, max=16, help="stacked recurrent layers (one IndRNN layer cannot compute XOR)")
    length: int = param(16, min=1, max=10_000, help="bits per sequence")


@dataclass
class SmallTemplateParams:
    cell: str = param("gru", ui="cell", help="recurrent cell")
    hidden_size: int = param(32, min=1, max=8192, help="units per recurrent layer")


@hookimpl
def seqwb_templates() -> list[TemplateSpec]:
    def template(name, title, params, task, description, former=()):
        return TemplateSpec(id=f"{NS}.{name}", former_ids=former, title=title, version=VERSION, params=params,
                            factory=f"{PKG}.templates:{name.replace('-', '_')}", task=f"{NS}.{task}",
                            description=description)
    return [
        template("parity-indrnn", "Parity, IndRNN", ParityTemplateParams, "parity",
                 "Embedding -> 3 x IndRNN 32 -> linear, on the running parity of 16-bit strings.", ("parity-indrnn",)),
        template("majority-gru", "Majority, GRU", SmallTemplateParams, "majority",
                 "Embedding -> GRU -> layer norm -> last step -> classifier."),
        template("echo-gru", "Delayed echo, GRU", SmallTemplateParams, "echo",
                 "Embedding -> GRU -> linear, a label every step."),
        template("reverse-attention", "Reverse, attention", SmallTemplateParams, "reverse",
                 "Embedding -> GRU encoder -> attention decoder; decoded with min-p sampling."),
        template("mean-gru", "Mean, GRU", SmallTemplateParams, "mean",
                 "Projection -> GRU -> last step -> regression head."),
    ]


# ---- a feature track ------------------------------------------------------------------------------------------

@hookimpl
def seqwb_feature_tracks() -> list[FeatureTrackSpec]:
    return [FeatureTrackSpec(
        id=f"{NS}.running_parity", former_ids=("running_parity",), title="Running parity of 1s", version=VERSION,
        params=NoParams, factory=f"{PKG}.tracks:running_parity",
        description="1 where an odd number of '1' characters has been read so far, 0 where an even number.")]
