"""Registration data (specs, params, templates) for the text part of the built-in catalog.  No torch here.

The hook modules (cells, architectures, tasks, decoders, templates) collect these lists.

Tasks: ``word-lm`` (PTB-format files, or English from the standard library's docstrings), ``sentiment`` (CSV/TSV,
or generated reviews where word order matters) and ``tagging`` (CoNLL-style files, or Python source tagged by
token category).  The generic blocks they use (embedding, rnn, pool, classifier, linear, concat) are registered in
:mod:`workbench_plugins.architectures`.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.api import BlockSpec, DecoderSpec, Graph, PortSpec, TaskSpec, TemplateSpec, param
from workbench_plugins._wiring import chain, project

VERSION = "1.0"

# ---- task parameters ---------------------------------------------------------------------------------------------


@dataclass
class WordLMParams:
    source: str = param("files", choices=("files", "python-docs"),
                        help="files: PTB-format *.train.txt / *.valid.txt / *.test.txt; python-docs: English "
                             "sentences from the docstrings and comments of this machine's Python standard library")
    data_dir: str = param("", ui="path", help="folder holding the *.train.txt, *.valid.txt and *.test.txt files, "
                                              "relative to the project file (empty: the project's folder)")
    train: str = param("", ui="path", help="training file (overrides the *.train.txt found in data_dir)")
    valid: str = param("", ui="path", help="validation file (overrides the *.valid.txt found in data_dir)")
    test: str = param("", ui="path", help="test file (overrides the *.test.txt found in data_dir; optional)")
    max_vocab: int = param(0, min=0, max=10_000_000,
                           help="keep the most frequent training words, <unk> and <eos> included (0: all); the "
                                "other words read as <unk>")
    encoding: str = param("utf-8", help="text encoding of the files")
    max_words: int = param(500_000, min=1000, max=100_000_000,
                           help="python-docs: read at most about this many words")


@dataclass
class SentimentParams:
    path: str = param("", ui="path", help="CSV/TSV file with a text and a label column, relative to the project "
                                          "file; empty: generated movie reviews (negation, 'but', intensifiers)")
    valid_path: str = param("", ui="path", help="validation file (empty: hold out valid_fraction of path)")
    test_path: str = param("", ui="path", help="test file (empty: hold out test_fraction of path)")
    delimiter: str = param("auto", choices=("auto", "comma", "tab", "semicolon", "pipe"),
                           help="field separator; auto: tab for .tsv/.tab files (or a first line with a tab), "
                                "else comma")
    header: bool = param(True, help="the first row holds the column names")
    text_column: str = param("text", help="column of the text: a header name, or a number counted from 0")
    label_column: str = param("label", help="column of the label: a header name, or a number counted from 0")
    lowercase: bool = param(True, help="lower-case the text before splitting it into words")
    encoding: str = param("utf-8", help="text encoding of the files")
    max_vocab: int = param(20_000, min=0, max=10_000_000, help="keep the most frequent training words (0: all)")
    min_count: int = param(2, min=1, help="words seen fewer times in training read as <unk> (so <unk> is learned)")
    max_len: int = param(400, min=0, help="keep the first max_len words of each text (0: all)")
    valid_fraction: float = param(0.1, min=0.0, max=0.5, help="share held out for validation (without valid_path)")
    test_fraction: float = param(0.1, min=0.0, max=0.5, help="share held out for testing (without test_path)")
    examples: int = param(6000, min=20, max=10_000_000, help="generated data: how many reviews")

    def validate(self) -> None:
        if self.valid_fraction + self.test_fraction >= 0.9:
            raise ValueError("valid_fraction + test_fraction must leave examples to train on")


@dataclass
class TaggingParams:
    path: str = param("", ui="path", help="CoNLL-style file (token<TAB>tag per line, blank line between "
                                          "sentences), relative to the project file; empty: the Python standard "
                                          "library's source, every token tagged with its category")
    valid_path: str = param("", ui="path", help="validation file (empty: hold out valid_fraction of path)")
    test_path: str = param("", ui="path", help="test file (empty: hold out test_fraction of path)")
    separator: str = param("tab", choices=("tab", "whitespace"),
                           help="tab: token<TAB>tag; whitespace: the first and last of the columns (CoNLL-2003)")
    lowercase: bool = param(False, help="lower-case the tokens")
    encoding: str = param("utf-8", help="text encoding of the files")
    max_vocab: int = param(20_000, min=0, max=10_000_000, help="keep the most frequent training tokens (0: all)")
    min_count: int = param(2, min=1, help="tokens seen fewer times in training read as unknown words, by shape "
                                          "(number, quoted, punctuation, capitalised, other)")
    max_len: int = param(100, min=0, help="cut longer sentences into pieces of this many tokens (0: never)")
    valid_fraction: float = param(0.05, min=0.0, max=0.5,
                                  help="share held out for validation (without valid_path; Python: whole files)")
    test_fraction: float = param(0.05, min=0.0, max=0.5,
                                 help="share held out for testing (without test_path; Python: whole files)")
    max_sentences: int = param(30_000, min=100, max=10_000_000,
                               help="Python corpus: read about this many logical lines")

    def validate(self) -> None:
        if self.valid_fraction + self.test_fraction >= 0.9:
            raise ValueError("valid_fraction + test_fraction must leave sentences to train on")


TASKS: list[TaskSpec] = [
    TaskSpec(
        id="word-lm", title="Word language model", version=VERSION, params=WordLMParams,
        factory="workbench_plugins.word_lm:WordLMTask",
        description="Predict the next word (Zaremba et al. 2014 on Penn Treebank files you provide, or English "
                    "sentences from the Python standard library's docstrings). Stateful streams with truncated "
                    "BPTT; loss and perplexity; samples sentences as it trains.",
        inputs=(PortSpec("tokens", "tokens[T]", size="vocab", doc="word ids"),),
        outputs=(PortSpec("logits", "logits[T]", size="vocab", doc="scores for the next word"),),
        metrics=("loss", "ppl"), generative=True,
    ),
    TaskSpec(
        id="sentiment", title="Sentiment classification", version=VERSION, params=SentimentParams,
        factory="workbench_plugins.classify:SentimentTask",
        description="One label per text (CSV/TSV, or generated reviews where negation and 'but' decide the "
                    "label). Padded batches with lengths; cross-entropy; accuracy, macro F1 and the confusion "
                    "matrix. chunk_len does not apply.",
        inputs=(PortSpec("tokens", "tokens[T]", size="vocab", doc="word ids, padded; lengths in the batch"),),
        outputs=(PortSpec("logits", "logits", size="classes", doc="scores per class"),),
        metrics=("loss", "accuracy", "macro_f1", "confusion"),
    ),
    TaskSpec(
        id="tagging", title="Sequence tagging", version=VERSION, params=TaggingParams,
        factory="workbench_plugins.tagging:TaggingTask",
        description="One tag per token (CoNLL-style files, or Python source tagged keyword / builtin / name / "
                    "attribute / call / string / comment...). Padded batches with lengths; token accuracy and "
                    "macro F1, padding ignored. chunk_len does not apply.",
        inputs=(PortSpec("tokens", "tokens[T]", size="vocab", doc="token ids, padded; lengths in the batch"),),
        outputs=(PortSpec("logits", "logits[T]", size="tags", doc="scores per tag at every token"),),
        metrics=("loss", "accuracy", "macro_f1"),
    ),
]

BLOCKS: list[BlockSpec] = []
DECODERS: list[DecoderSpec] = []


# ---- templates -----------------------------------------------------------------------------------------------------

def _project(name: str, graph: Graph, task: dict, train: dict, notes: str, decode: dict | None = None) -> dict:
    return project(name, graph, task, train, notes, decode or {"decoder": "greedy", "params": {}, "prompt": ""})


def _lm_graph(cell: str, embed_size: int, hidden_size: int, layers: int, dropout: float) -> Graph:
    return chain(("embed", "embedding", {"embed_size": embed_size}),
                 ("rnn", "rnn", {"cell": cell, "hidden_size": hidden_size, "layers": layers, "dropout": dropout}),
                 ("head", "linear", {}))


@dataclass
class WordLMTemplateParams:
    cell: str = param("lstm", ui="cell", help="recurrent cell")
    layers: int = param(2, min=1, max=16, help="stacked recurrent layers")
    hidden_size: int = param(128, min=1, max=8192, help="units per layer")
    embed_size: int = param(128, min=1, max=8192, help="word embedding size")
    dropout: float = param(0.0, min=0.0, max=0.9, help="dropout between layers")
    max_vocab: int = param(5_000, min=0, help="vocabulary size, <unk> and <eos> included (0: every training word)")


def word_lm(p: WordLMTemplateParams) -> dict:
    return _project(
        "Word LM (Python docs)", _lm_graph(p.cell, p.embed_size, p.hidden_size, p.layers, p.dropout),
        {"id": "word-lm", "params": {"source": "python-docs", "max_vocab": p.max_vocab}},
        {"steps": 1000, "epochs": 0, "batch_size": 20, "chunk_len": 35, "optimizer": "adam", "lr": 5e-3,
         "clip_norm": 5.0, "schedule": "cosine", "min_lr": 5e-4, "eval_every": 250, "eval_batches": 40,
         "sample_every": 250, "sample_len": 30, "probe_every": 250},
        "A word LM on English read from this machine: the docstrings and comments of the Python standard library, "
        "lower-cased, punctuation split off, numbers as N, the 5,000 most frequent words kept (the rest <unk>), "
        "<eos> after every sentence (about 450,000 words). Validation perplexity falls from 5,000 to about 120 in "
        "two minutes on a CPU.",
        {"decoder": "sample", "params": {"temperature": 0.8, "max_len": 40}, "prompt": ""})


@dataclass
class PTBTemplateParams:
    data_dir: str = param("", ui="path", help="folder with ptb.train.txt, ptb.valid.txt and ptb.test.txt "
                                              "(empty: the project's folder); nothing is downloaded")


# Zaremba, Sutskever & Vinyals 2014, "Recurrent neural network regularization", section 4.1, and the reference code
# it points to.  All three models: 2 LSTM layers, batch 20, SGD from lr 1, weights uniform in [-scale, scale], the
# gradient's norm clipped, and the loss that is back-propagated is the SUM over the unrolled time steps of the
# batch-mean negative log-likelihood (loss_reduction "sum_over_time"): with the mean over tokens instead, lr 1 and
# the clipping act 20-35 times too weakly.  Dropout (medium, large) is on the non-recurrent connections only: the
# embedding's output, between the layers, and before the softmax.  The forget gate starts with no bias, as in the
# reference code (this LSTM keeps torch's two bias vectors, each uniform like the other weights).
_ZAREMBA = {
    # name: (units, unroll, dropout, epochs, epochs at lr 1, lr decay per epoch after them, clip, init scale,
    #        published validation / test perplexity)
    "small": (200, 20, 0.0, 13, 4, 0.5, 5.0, 0.1, 120.7, 114.5),
    "medium": (650, 35, 0.5, 39, 6, 1 / 1.2, 5.0, 0.05, 86.2, 82.7),
    "large": (1500, 35, 0.65, 55, 14, 1 / 1.15, 10.0, 0.04, 82.2, 78.4),
}


def zaremba_ptb(size: str, data_dir: str) -> dict:
    units, unroll, dropout, epochs, flat, decay, clip, scale, valid, test = _ZAREMBA[size]
    drop_in = [("drop_in", "dropout", {"p": dropout})] if dropout else []
    drop_out = [("drop_out", "dropout", {"p": dropout})] if dropout else []
    rnn = ("rnn", "rnn", {"cell": "lstm", "hidden_size": units, "layers": 2, "dropout": dropout,
                          "cell.forget_bias": 0.0})
    g = chain(("embed", "embedding", {"embed_size": units}), *drop_in, rnn, *drop_out, ("head", "linear", {}))
    notes = (f"Zaremba, Sutskever & Vinyals 2014, the {size} LSTM on the Penn Treebank (Mikolov's ptb.*.txt files, "
             f"which you provide: set task.data_dir): 2 x LSTM {units}, unrolled {unroll} steps, batch 20, "
             f"{'no dropout' if not dropout else f'dropout {dropout:g} on the non-recurrent connections'}, "
             f"weights uniform in [-{scale:g}, {scale:g}], SGD from lr 1 for {flat} epochs then divided by "
             f"{1 / decay:g} every epoch, {epochs} epochs, gradient norm clipped at {clip:g}. The paper's "
             f"convention is kept: what is back-propagated (and clipped) is the sum over the {unroll} time steps "
             f"of the batch-mean loss (loss_reduction = sum_over_time); the logged loss and perplexity are per "
             f"word. Published: validation perplexity {valid}, test {test}.")
    return _project(
        f"Word LM (PTB, Zaremba {size})", g,
        {"id": "word-lm", "params": {"source": "files", "data_dir": data_dir, "max_vocab": 0}},
        {"steps": 0, "epochs": epochs, "batch_size": 20, "chunk_len": unroll, "optimizer": "sgd", "lr": 1.0,
         "momentum": 0.0, "loss_reduction": "sum_over_time", "clip_norm": clip, "schedule": "step",
         "decay_start": flat, "decay_factor": decay, "decay_every": 1, "init": "uniform", "init_scale": scale,
         "eval_every": 0, "eval_every_epochs": 1, "eval_batches": 0, "sample_every": 2000, "sample_len": 30,
         "probe_every": 500},
        notes, {"decoder": "sample", "params": {"temperature": 1.0, "max_len": 40}, "prompt": ""})


def word_lm_ptb_small(p: PTBTemplateParams) -> dict:
    return zaremba_ptb("small", p.data_dir)


def word_lm_ptb_medium(p: PTBTemplateParams) -> dict:
    return zaremba_ptb("medium", p.data_dir)


def word_lm_ptb_large(p: PTBTemplateParams) -> dict:
    return zaremba_ptb("large", p.data_dir)


@dataclass
class SentimentTemplateParams:
    cell: str = param("lstm", ui="cell", help="recurrent cell")
    layers: int = param(1, min=1, max=16, help="stacked recurrent layers")
    hidden_size: int = param(64, min=1, max=8192, help="units per layer (per direction)")
    embed_size: int = param(32, min=1, max=8192, help="word embedding size")
    direction: str = param("forward", choices=("forward", "bidirectional"), help="recurrent layer direction")
    pool: str = param("last", choices=("last", "mean", "max"), help="how the sequence becomes one vector")
    path: str = param("", ui="path", help="CSV/TSV with text and label columns (empty: generated reviews)")


def sentiment(p: SentimentTemplateParams) -> dict:
    g = chain(("embed", "embedding", {"embed_size": p.embed_size}),
              ("rnn", "rnn", {"cell": p.cell, "hidden_size": p.hidden_size, "layers": p.layers,
                              "direction": p.direction}),
              ("pool", "pool", {"mode": p.pool}), ("head", "classifier", {}))
    return _project(
        "Sentiment", g, {"id": "sentiment", "params": {"path": p.path}},
        {"steps": 600, "epochs": 0, "batch_size": 32, "optimizer": "adam", "lr": 3e-3, "clip_norm": 5.0,
         "eval_every": 100, "eval_batches": 0, "sample_every": 0, "probe_every": 100},
        "Embedding → LSTM → pool → classifier on generated movie reviews whose label depends on word order "
        "(\"not good\", \"A, but B\", \"A, even though B\"). Accuracy climbs past 90% in about a minute on a CPU.")


@dataclass
class TaggingTemplateParams:
    cell: str = param("lstm", ui="cell", help="recurrent cell")
    layers: int = param(1, min=1, max=16, help="stacked recurrent layers")
    hidden_size: int = param(64, min=1, max=8192, help="units per layer (per direction)")
    embed_size: int = param(48, min=1, max=8192, help="token embedding size")
    direction: str = param("bidirectional", choices=("forward", "bidirectional"),
                           help="bidirectional sees the right context too (needed for 'call')")
    merge: str = param("concat", choices=("concat", "sum"), help="how the two directions are joined")
    path: str = param("", ui="path", help="CoNLL-style file (empty: Python standard library tokens)")


def tagging(p: TaggingTemplateParams) -> dict:
    g = chain(("embed", "embedding", {"embed_size": p.embed_size}),
              ("rnn", "rnn", {"cell": p.cell, "hidden_size": p.hidden_size, "layers": p.layers,
                              "direction": p.direction, "merge": p.merge}),
              ("head", "linear", {}))
    return _project(
        "Tagging (Python tokens)", g, {"id": "tagging", "params": {"path": p.path}},
        {"steps": 1500, "epochs": 0, "batch_size": 32, "optimizer": "adam", "lr": 3e-3, "clip_norm": 5.0,
         "eval_every": 250, "eval_batches": 0, "sample_every": 0, "probe_every": 250},
        "Embedding → bidirectional LSTM → linear: tags every token of Python source (keyword, builtin, name, "
        "attribute, call, function, class, number, string, comment, operator). 'call' needs the next token, "
        "so compare direction=forward with bidirectional.")


TEMPLATES: list[TemplateSpec] = [
    TemplateSpec(id="word-lm", title="Word language model (LSTM, Python docs)", version=VERSION,
                 params=WordLMTemplateParams, factory="workbench_plugins.text_specs:word_lm", task="word-lm",
                 description="Embedding 128 → 2×LSTM 128 → linear on English sentences from the Python standard "
                             "library's docstrings and comments; perplexity falls within two minutes on a CPU."),
    TemplateSpec(id="word-lm-ptb-small", title="Word LM: Zaremba et al. 2014 small (Penn Treebank)",
                 version=VERSION, params=PTBTemplateParams,
                 factory="workbench_plugins.text_specs:word_lm_ptb_small", task="word-lm",
                 description="The 'small' PTB model of Zaremba et al. 2014 (2×LSTM 200, SGD lr 1, 13 epochs; published perplexity 120.7 valid, 114.5 test); needs your copy of ptb.train/valid/test.txt: set task.data_dir."),
    TemplateSpec(id="word-lm-ptb-medium", title="Word LM: Zaremba et al. 2014 medium (Penn Treebank)",
                 version=VERSION, params=PTBTemplateParams,
                 factory="workbench_plugins.text_specs:word_lm_ptb_medium", task="word-lm",
                 description="The regularised 'medium' PTB model of Zaremba et al. 2014 (2×LSTM 650, dropout 0.5, 39 epochs; published test perplexity 82.7); a GPU job: needs your ptb.*.txt files (task.data_dir)."),
    TemplateSpec(id="word-lm-ptb-large", title="Word LM: Zaremba et al. 2014 large (Penn Treebank)",
                 version=VERSION, params=PTBTemplateParams,
                 factory="workbench_plugins.text_specs:word_lm_ptb_large", task="word-lm",
                 description="The regularised 'large' PTB model of Zaremba et al. 2014 (2×LSTM 1500, dropout 0.65, 55 epochs; published test perplexity 78.4); a GPU job: needs your ptb.*.txt files (task.data_dir)."),
    TemplateSpec(id="sentiment", title="Sentiment classification (LSTM)", version=VERSION,
                 params=SentimentTemplateParams, factory="workbench_plugins.text_specs:sentiment", task="sentiment",
                 description="Embedding → LSTM → pool → classifier on generated reviews where negation and 'but' "
                             "decide the label (or your CSV/TSV)."),
    TemplateSpec(id="tagging", title="Sequence tagging (bidirectional LSTM)", version=VERSION,
                 params=TaggingTemplateParams, factory="workbench_plugins.text_specs:tagging", task="tagging",
                 description="Embedding → bidirectional LSTM → linear, tagging the tokens of Python source by "
                             "category (or your CoNLL-style file)."),
]
