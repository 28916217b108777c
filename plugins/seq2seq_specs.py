"""Registration data (specs, params, templates) for the seq2seq part of the built-in catalog.  No torch here.

The hook modules (cells, architectures, tasks, decoders, templates) collect these lists.

What is registered here:

- blocks ``encoder`` (recurrent encoder with a ``state`` output), ``attention-decoder`` (target embedding, cell,
  Luong / Bahdanau attention and output projection in one loop, so that teacher forcing with a ratio works),
  ``image-encoder`` (a small CNN over flattened images), ``feature-encoder`` (user feature vectors -> a vector)
  and ``conditioned-rnn`` (the one-to-many generator of the image-captioning lecture);
- tasks ``seq2seq`` (TSV translation, or generated date normalisation) and ``captioning`` (generated shapes, or
  user feature vectors in an ``.npz`` with a captions file);
- decoder ``beam``;
- templates ``seq2seq-attention`` and ``captioning``.

The torch code lives in ``seq2seq_blocks``, ``translation``, ``captioning`` and ``beam``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from workbench.api import (TASK_INPUT, TASK_OUTPUT, BlockSpec, DecoderSpec, Graph, PortSpec, TaskSpec, TemplateSpec,
                           param)

VERSION = "1.0"
PKG = "workbench_plugins"
BLOCKS_IMPL = f"{PKG}.seq2seq_blocks"
HERE = f"{PKG}.seq2seq_specs"


# ---- blocks ---------------------------------------------------------------------------------------------------

@dataclass
class EncoderParams:
    cell: str = param("lstm", ui="cell", help="recurrent cell (any registered cell)")
    hidden_size: int = param(128, min=1, max=65536, help="units per layer (per direction)")
    layers: int = param(1, min=1, max=16, help="stacked layers")
    bidirectional: bool = param(False, help="also read the source backwards and concatenate both directions "
                                            "(Bahdanau et al. 2015); outputs and state are then 2 x hidden_size")
    dropout: float = param(0.0, min=0.0, max=0.99, help="dropout between layers (Zaremba et al. 2014)")


@dataclass
class AttentionDecoderParams:
    cell: str = param("lstm", ui="cell", help="recurrent cell (any registered cell)")
    hidden_size: int = param(128, min=1, max=65536, help="units per layer")
    layers: int = param(1, min=1, max=16, help="stacked layers")
    embed_size: int = param(32, min=1, max=65536, help="size of the target-token embedding")
    attention: Literal["none", "dot", "general", "additive"] = param(
        "general", help="none: plain encoder-decoder (Sutskever et al. 2014); dot / general: Luong et al. 2015 "
                        "(score after the RNN step); additive: Bahdanau et al. 2015 (score from the previous "
                        "state, context fed into the cell)")
    attention_size: int = param(0, min=0, max=65536, help="additive attention: size of the scoring layer "
                                                          "(0: hidden_size)")
    input_feeding: bool = param(False, help="Luong attention: feed the previous attentional state h~ into the "
                                            "cell with the next token (Luong et al. 2015, 3.3); slower training")
    teacher_forcing: float = param(1.0, min=0.0, max=1.0,
                                   help="while training, the chance of feeding the true previous token rather than "
                                        "the decoder's own prediction (1: always; Bengio et al. 2015)")
    dropout: float = param(0.0, min=0.0, max=0.99, help="dropout on embeddings, between layers and before the "
                                                        "output projection")


@dataclass
class ImageEncoderParams:
    image_size: int = param(32, min=4, max=1024, help="images are image_size x image_size pixels")
    channels: int = param(3, min=1, max=16, help="colour channels (3 for RGB)")
    width: int = param(16, min=1, max=1024, help="channels of the first convolution (doubled at each stage)")
    stages: int = param(3, min=1, max=6, help="conv 3x3 + ReLU + 2x2 max-pool stages")
    out_size: int = param(128, min=1, max=65536, help="size of the image vector")
    dropout: float = param(0.0, min=0.0, max=0.99, help="dropout before the final linear layer")
    normalize: bool = param(True, help="layer-normalise the image vector (Ba et al. 2016); without it a generator "
                                       "conditioned on its initial state hardly notices the image at first")


@dataclass
class FeatureEncoderParams:
    out_size: int = param(128, min=1, max=65536, help="size of the output vector")
    activation: Literal["tanh", "relu", "none"] = param("tanh", help="non-linearity after the linear map")
    dropout: float = param(0.0, min=0.0, max=0.99, help="dropout on the input features")


@dataclass
class ConditionedRNNParams:
    cell: str = param("lstm", ui="cell", help="recurrent cell (any registered cell; 'rnn' gives the lecture's "
                                              "h = tanh(W_xh x + W_hh h + W_ih v))")
    hidden_size: int = param(128, min=1, max=65536, help="units per layer")
    layers: int = param(1, min=1, max=16, help="stacked layers")
    condition: Literal["init", "every-step"] = param(
        "init", help="init: the vector sets the initial state, h0 = tanh(W v) (Vinyals et al. 2015); every-step: "
                     "it is fed with every input, h = f(W_xh x + W_hh h + W_ih v) (Mao et al. 2015)")
    dropout: float = param(0.0, min=0.0, max=0.99, help="dropout between layers")


def _direction(p: EncoderParams) -> int:
    return 2 if p.bidirectional else 1


def infer_encoder(p: EncoderParams, in_sizes: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    size = p.hidden_size * _direction(p)
    return {"y": size, "state": size}


def infer_attention_decoder(p: AttentionDecoderParams, in_sizes: dict[str, Any],
                            wanted: dict[str, Any]) -> dict[str, Any]:
    memory = in_sizes.get("memory")
    if p.attention == "dot" and memory is not None and memory != p.hidden_size:
        raise ValueError(f"dot attention needs memory size ({memory}) == hidden_size ({p.hidden_size}); "
                         f"use 'general' or change the sizes")
    vocab = in_sizes.get("x")
    out = wanted.get("y") or vocab
    if vocab is not None and wanted.get("y") is not None and p.teacher_forcing < 1.0 and vocab != wanted["y"]:
        raise ValueError(f"teacher_forcing < 1 feeds predictions back in: the input vocabulary ({vocab}) and the "
                         f"output vocabulary ({wanted['y']}) must be the same")
    return {"y": out}


def infer_image_encoder(p: ImageEncoderParams, in_sizes: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    size = in_sizes.get("x")
    need = p.channels * p.image_size * p.image_size
    if size is not None and size != need:
        raise ValueError(f"expects flattened {p.channels}x{p.image_size}x{p.image_size} images ({need} values) "
                         f"but its input has {size}; for feature vectors use a feature-encoder")
    if p.image_size % (2 ** p.stages):
        raise ValueError(f"image_size {p.image_size} must be divisible by 2^stages = {2 ** p.stages}")
    return {"y": p.out_size}


def infer_feature_encoder(p: FeatureEncoderParams, in_sizes: dict[str, Any],
                          wanted: dict[str, Any]) -> dict[str, Any]:
    return {"y": p.out_size}


def infer_conditioned_rnn(p: ConditionedRNNParams, in_sizes: dict[str, Any],
                          wanted: dict[str, Any]) -> dict[str, Any]:
    return {"y": p.hidden_size}


BLOCKS: list[BlockSpec] = [
    BlockSpec(
        id="encoder", title="Encoder (RNN with final state)", version=VERSION, params=EncoderParams,
        factory=f"{BLOCKS_IMPL}:EncoderBlock", category="seq2seq",
        description="Reads the source: outputs every step's vector (the memory attention looks at) and the final "
                    "state, which initialises a decoder (Sutskever et al. 2014). Padded positions are skipped: "
                    "connect the source token ids to 'source' (pad id 0), or the batch's lengths are used.",
        inputs=(PortSpec("x", "vectors[T]", doc="embedded source tokens"),
                PortSpec("source", "tokens[T]", required=False,
                         doc="source token ids; id 0 (<pad>) marks padding")),
        outputs=(PortSpec("y", "vectors[T]", doc="encoder outputs (zero at padded positions)"),
                 PortSpec("state", "state", doc="final state at each sequence's last real token")),
        infer=f"{HERE}:infer_encoder", summary="{cell} · {hidden_size} · {layers} layers", recurrent=True,
    ),
    BlockSpec(
        id="attention-decoder", title="Attention decoder", version=VERSION, params=AttentionDecoderParams,
        factory=f"{BLOCKS_IMPL}:AttentionDecoderBlock", category="seq2seq",
        description="Target embedding, recurrent cell, attention over the encoder's memory and output projection "
                    "in one loop, so that it can feed back its own predictions while training (teacher forcing "
                    "ratio). Luong dot/general or Bahdanau additive attention; the weights are kept for the "
                    "attention view.",
        inputs=(PortSpec("x", "tokens[T]", doc="target-side input ids (<bos> then the target)"),
                PortSpec("init", "state", required=False, doc="initial state (the encoder's final state)"),
                PortSpec("memory", "vectors[T]", required=False, doc="encoder outputs to attend to"),
                PortSpec("source", "tokens[T]", required=False,
                         doc="source token ids; attention never looks at id 0 (<pad>)")),
        outputs=(PortSpec("y", "logits[T]", doc="scores for the next target token"),),
        infer=f"{HERE}:infer_attention_decoder", summary="{cell} · {hidden_size} · {attention}", recurrent=True,
    ),
    BlockSpec(
        id="image-encoder", title="Image encoder (CNN)", version=VERSION, params=ImageEncoderParams,
        factory=f"{BLOCKS_IMPL}:ImageEncoderBlock", category="seq2seq",
        description="A small convolutional network over images given as flattened channel-first pixels "
                    "(features [B, C*H*W]); keeps the spatial layout until the final linear layer, so relations "
                    "such as 'above' survive.",
        inputs=(PortSpec("x", "features", doc="flattened images, channel-first, values in [0, 1]"),),
        outputs=(PortSpec("y", "vector", doc="one vector per image"),),
        infer=f"{HERE}:infer_image_encoder", summary="{stages} stages · → {out_size}",
    ),
    BlockSpec(
        id="feature-encoder", title="Feature encoder", version=VERSION, params=FeatureEncoderParams,
        factory=f"{BLOCKS_IMPL}:FeatureEncoderBlock", category="seq2seq",
        description="Maps given feature vectors (e.g. from a pretrained image network) to the conditioning vector "
                    "of a generator: y = act(W x + b).",
        inputs=(PortSpec("x", "features"),), outputs=(PortSpec("y", "vector"),),
        infer=f"{HERE}:infer_feature_encoder", summary="→ {out_size} · {activation}",
    ),
    BlockSpec(
        id="conditioned-rnn", title="Conditioned generator (one-to-many)", version=VERSION,
        params=ConditionedRNNParams, factory=f"{BLOCKS_IMPL}:ConditionedRNNBlock", category="seq2seq",
        description="A recurrent generator conditioned on a vector (an image): the vector either sets the initial "
                    "state or is fed at every step.",
        inputs=(PortSpec("x", "vectors[T]", doc="embedded previous tokens"),
                PortSpec("v", "vector", doc="the conditioning vector")),
        outputs=(PortSpec("y", "vectors[T]"),),
        infer=f"{HERE}:infer_conditioned_rnn", summary="{cell} · {hidden_size} · {condition}", recurrent=True,
    ),
]


# ---- tasks ----------------------------------------------------------------------------------------------------

BLEU_TOKENIZERS = ("auto", "13a", "char", "intl", "none")


@dataclass
class Seq2SeqParams:
    train_file: str = param("", ui="path", help="TSV file, one 'source<TAB>target' pair per line (relative to the "
                                                "project file); empty: generated date-normalisation data")
    valid_file: str = param("", ui="path", help="validation TSV (empty: hold out valid_fraction of train_file)")
    test_file: str = param("", ui="path", help="test TSV (empty: hold out test_fraction of train_file)")
    valid_fraction: float = param(0.05, min=0.0, max=0.5, help="share of train_file held out without valid_file")
    test_fraction: float = param(0.05, min=0.0, max=0.5, help="share of train_file held out without test_file")
    encoding: str = param("utf-8", help="text encoding of the TSV files")
    level: Literal["char", "word"] = param("char", help="tokens: characters, or words split at whitespace")
    lowercase: bool = param(False, help="lowercase source and target")
    min_count: int = param(1, min=1, help="tokens seen fewer times in training become <unk>")
    max_length: int = param(0, min=0, help="skip pairs with a side longer than this many tokens (0: keep all)")
    demo_train: int = param(20000, min=10, max=10_000_000, help="generated data: training pairs")
    demo_valid: int = param(500, min=1, max=1_000_000, help="generated data: validation pairs")
    demo_test: int = param(500, min=1, max=1_000_000, help="generated data: test pairs")
    demo_seed: int = param(0, help="generated data: random seed")
    bleu_sentences: int = param(200, min=0, max=1_000_000,
                                help="BLEU / exact match on greedy decodes of this many sentences (0: off)")
    bleu_tokenize: str = param("auto", choices=BLEU_TOKENIZERS,
                               help="sacrebleu tokenizer (auto: 'char' for characters, '13a' for words)")
    max_decode_len: int = param(0, min=0, help="longest decode for BLEU (0: longest target + 10)")

    def validate(self) -> None:
        if self.valid_fraction + self.test_fraction >= 0.9:
            raise ValueError("valid_fraction + test_fraction must leave pairs to train on")


@dataclass
class CaptioningParams:
    features_file: str = param("", ui="path", help=".npz with a 'features' array [N, D] (relative to the project "
                                                   "file); empty: generated shapes images")
    captions_file: str = param("", ui="path", help="text file with N captions, one per line (with features_file)")
    valid_fraction: float = param(0.1, min=0.0, max=0.5, help="share of the given pairs held out for validation")
    test_fraction: float = param(0.1, min=0.0, max=0.5, help="share of the given pairs held out for testing")
    encoding: str = param("utf-8", help="text encoding of the captions file")
    lowercase: bool = param(True, help="lowercase the captions")
    min_count: int = param(1, min=1, help="words seen fewer times in training become <unk>")
    shapes_train: int = param(6000, min=10, max=1_000_000, help="generated shapes: training images")
    shapes_valid: int = param(300, min=1, max=100_000, help="generated shapes: validation images")
    shapes_test: int = param(300, min=1, max=100_000, help="generated shapes: test images")
    image_size: int = param(32, min=16, max=256, help="generated shapes: image side in pixels")
    max_shapes: int = param(2, min=1, max=2, help="generated shapes: at most this many shapes per image")
    seed: int = param(0, help="generated shapes: random seed")
    bleu_sentences: int = param(200, min=0, max=1_000_000,
                                help="BLEU / exact match on greedy captions of this many images (0: off)")
    max_decode_len: int = param(0, min=0, help="longest caption decoded for BLEU (0: longest caption + 5)")

    def validate(self) -> None:
        if self.valid_fraction + self.test_fraction >= 0.9:
            raise ValueError("valid_fraction + test_fraction must leave pairs to train on")


TASKS: list[TaskSpec] = [
    TaskSpec(
        id="seq2seq", title="Sequence to sequence (translation)", version=VERSION, params=Seq2SeqParams,
        factory=f"{PKG}.translation:Seq2SeqTask",
        description="Map a source sequence to a target sequence: TSV 'source<TAB>target' files, or generated "
                    "date normalisation ('3 March 2021' -> '2021-03-03'). Cross-entropy over target tokens, "
                    "perplexity, and BLEU (sacrebleu) and exact match on greedy decodes.",
        inputs=(PortSpec("source", "tokens[T]", size="source_vocab", doc="source token ids, padded with 0"),
                PortSpec("target_in", "tokens[T]", size="target_vocab", doc="<bos> + target ids (decoder input)")),
        outputs=(PortSpec("logits", "logits[T]", size="target_vocab", doc="scores for target + <eos>"),),
        metrics=("loss", "ppl", "bleu", "exact"), generative=True, step_input="target_in",
    ),
    TaskSpec(
        id="captioning", title="Image captioning", version=VERSION, params=CaptioningParams,
        factory=f"{PKG}.captioning:CaptioningTask",
        description="Describe an image in words: generated shapes images ('a red circle above a blue square'), "
                    "or your own feature vectors (.npz) with a captions file. Cross-entropy, perplexity, BLEU "
                    "(sacrebleu) and exact match on greedy captions.",
        inputs=(PortSpec("tokens", "tokens[T]", size="vocab", doc="<bos> + caption word ids"),
                PortSpec("features", "features", size="features",
                         doc="flattened RGB images (channel-first, [0, 1]) or the given feature vectors")),
        outputs=(PortSpec("logits", "logits[T]", size="vocab", doc="scores for the next word"),),
        metrics=("loss", "ppl", "bleu", "exact"), generative=True, step_input="tokens",
    ),
]


# ---- decoders ---------------------------------------------------------------------------------------------------

@dataclass
class BeamParams:
    width: int = param(5, min=1, max=1000, help="hypotheses kept at every step (1: greedy)")
    alpha: float = param(0.6, min=0.0, max=5.0, help="length normalisation: rank finished hypotheses by "
                                                     "score / ((5 + length) / 6)^alpha (Wu et al. 2016); 0: off")
    n_best: int = param(1, min=1, max=1000, help="finished hypotheses to return (at most width)")
    max_len: int = param(100, min=1, max=100000, help="tokens to generate at most")
    topk: int = param(5, min=0, max=1000, help="keep the k most likely next tokens at every expanded node of the "
                                               "search tree, for the tree view (0: none)")

    def validate(self) -> None:
        if self.n_best > self.width:
            raise ValueError(f"n_best ({self.n_best}) cannot exceed width ({self.width})")


DECODERS: list[DecoderSpec] = [
    DecoderSpec(
        id="beam", title="Beam search", version=VERSION, params=BeamParams, factory=f"{PKG}.beam:beam_search",
        description="Keeps the `width` best partial sequences at every step (beams run as a batch); finished "
                    "hypotheses leave the beam; length-normalised n-best list; records the search tree.",
    ),
]


# ---- templates ------------------------------------------------------------------------------------------------

@dataclass
class Seq2SeqTemplateParams:
    cell: str = param("lstm", ui="cell", help="recurrent cell of encoder and decoder")
    hidden_size: int = param(128, min=1, max=8192, help="units per layer of encoder and decoder")
    layers: int = param(1, min=1, max=8, help="stacked layers of encoder and decoder")
    embed_size: int = param(32, min=1, max=8192, help="embedding size of source and target tokens")
    attention: Literal["none", "dot", "general", "additive"] = param(
        "general", help="decoder attention (Luong general by default; none: Sutskever et al. 2014)")
    teacher_forcing: float = param(1.0, min=0.0, max=1.0, help="chance of feeding the true previous token")
    dropout: float = param(0.0, min=0.0, max=0.9, help="dropout in the decoder")
    train_file: str = param("", ui="path", help="TSV pairs (empty: generated date normalisation)")


def seq2seq_attention(p: Seq2SeqTemplateParams) -> dict:
    g = Graph()
    g.add_node(TASK_INPUT, id="input", pos=(0, 0))
    g.add_node("embedding", {"embed_size": p.embed_size}, id="embed", pos=(220, -80))
    g.add_node("encoder", {"cell": p.cell, "hidden_size": p.hidden_size, "layers": p.layers}, id="encoder",
               pos=(440, -80))
    g.add_node("attention-decoder", {"cell": p.cell, "hidden_size": p.hidden_size, "layers": p.layers,
                                     "embed_size": p.embed_size, "attention": p.attention,
                                     "teacher_forcing": p.teacher_forcing, "dropout": p.dropout},
               id="decoder", pos=(700, 40))
    g.add_node(TASK_OUTPUT, id="output", pos=(940, 40))
    g.connect("input", "source", "embed", "x")
    g.connect("embed", "y", "encoder", "x")
    g.connect("input", "source", "encoder", "source")
    g.connect("input", "target_in", "decoder", "x")
    g.connect("encoder", "state", "decoder", "init")
    if p.attention != "none":
        g.connect("encoder", "y", "decoder", "memory")
    g.connect("input", "source", "decoder", "source")
    g.connect("decoder", "y", "output", "logits")
    graph = g.to_json()
    return {
        "name": "Seq2seq with attention",
        "graph": {"nodes": graph["nodes"], "links": graph["links"]},
        "ui": graph["ui"],
        "task": {"id": "seq2seq", "params": {"train_file": p.train_file}},
        "train": {"steps": 600, "batch_size": 64, "chunk_len": 64, "optimizer": "adam", "lr": 3e-3,
                  "clip_norm": 1.0, "eval_every": 200, "eval_batches": 8, "sample_every": 200, "sample_len": 40,
                  "probe_every": 200, "probe_batch": 8},
        "decode": {"decoder": "beam", "params": {"width": 5, "alpha": 0.6, "n_best": 3, "max_len": 40},
                   "prompt": "9 July 1985"},
        "notes": "Encoder-decoder with Luong attention on character-level date normalisation: watch BLEU and "
                 "exact match climb, then open the attention view to see which source characters each output "
                 "character looks at.",
    }


@dataclass
class CaptioningTemplateParams:
    cell: str = param("lstm", ui="cell", help="recurrent cell of the generator")
    hidden_size: int = param(128, min=1, max=8192, help="generator units")
    embed_size: int = param(32, min=1, max=8192, help="word embedding size")
    feature_size: int = param(128, min=1, max=8192, help="size of the image vector")
    condition: Literal["init", "every-step"] = param("init", help="the image sets the initial state, or is fed "
                                                                  "at every step")
    features_file: str = param("", ui="path", help=".npz feature vectors (empty: generated shapes images)")
    captions_file: str = param("", ui="path", help="captions, one per line (with features_file)")


def captioning(p: CaptioningTemplateParams) -> dict:
    g = Graph()
    g.add_node(TASK_INPUT, id="input", pos=(0, 0))
    if p.features_file:
        g.add_node("feature-encoder", {"out_size": p.feature_size}, id="image", pos=(240, -80))
    else:
        g.add_node("image-encoder", {"out_size": p.feature_size}, id="image", pos=(240, -80))
    g.add_node("embedding", {"embed_size": p.embed_size}, id="embed", pos=(240, 60))
    g.add_node("conditioned-rnn", {"cell": p.cell, "hidden_size": p.hidden_size, "condition": p.condition},
               id="generator", pos=(480, 0))
    g.add_node("linear", {}, id="head", pos=(700, 0))
    g.add_node(TASK_OUTPUT, id="output", pos=(920, 0))
    g.connect("input", "features", "image", "x")
    g.connect("input", "tokens", "embed", "x")
    g.connect("embed", "y", "generator", "x")
    g.connect("image", "y", "generator", "v")
    g.connect("generator", "y", "head", "x")
    g.connect("head", "y", "output", "logits")
    graph = g.to_json()
    return {
        "name": "Image captioning",
        "graph": {"nodes": graph["nodes"], "links": graph["links"]},
        "ui": graph["ui"],
        "task": {"id": "captioning", "params": {"features_file": p.features_file,
                                                "captions_file": p.captions_file}},
        "train": {"steps": 1000, "batch_size": 64, "chunk_len": 16, "optimizer": "adam", "lr": 1e-3,
                  "clip_norm": 1.0, "eval_every": 250, "eval_batches": 5, "sample_every": 250, "sample_len": 20,
                  "probe_every": 250, "probe_batch": 8},
        "decode": {"decoder": "beam", "params": {"width": 3, "alpha": 0.0, "n_best": 3, "max_len": 20},
                   "prompt": "0"},
        "notes": "A small CNN reads generated shapes images; an LSTM conditioned on its vector writes the caption. "
                 "The decode prompt is the index of a validation image.",
    }


TEMPLATES: list[TemplateSpec] = [
    TemplateSpec(id="seq2seq-attention", title="Seq2seq with attention (dates)", version=VERSION,
                 params=Seq2SeqTemplateParams, factory=f"{HERE}:seq2seq_attention", task="seq2seq",
                 description="Character embedding → LSTM encoder → Luong attention decoder, on generated date "
                             "normalisation ('3 March 2021' → '2021-03-03'); most validation dates come out exactly "
                             "right after about a minute on a CPU."),
    TemplateSpec(id="captioning", title="Image captioning (shapes)", version=VERSION,
                 params=CaptioningTemplateParams, factory=f"{HERE}:captioning", task="captioning",
                 description="Small CNN → conditioned LSTM generator → linear, on generated images of coloured "
                             "shapes ('a red circle above a blue square')."),
]
