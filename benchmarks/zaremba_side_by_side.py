"""The ``word-lm-ptb-*`` templates against a plain PyTorch loop written in Zaremba et al.'s own procedure, trained
side by side, epoch by epoch, from the same initial weights, on a PTB-format corpus made from this machine's
English text (the docstrings and comments of the Python standard library; nothing is downloaded).

Zaremba, Sutskever & Vinyals 2014, "Recurrent neural network regularization", section 4.1, and its reference
code: the training text is cut into 20 streams read ``unroll`` words at a time with the state carried; what is
back-propagated is the *sum over the unrolled steps of the batch-mean* negative log-likelihood; its gradient's
global norm is clipped; plain SGD from lr 1, kept for some epochs and then divided by a constant every epoch.
The plain loop below is that procedure written out by hand; the workbench trains the template.  Both report the
validation perplexity of every epoch (over the whole split, 20 streams with the state carried), and they must
agree within run-to-run noise: the two differ only in the order of floating-point operations, which training at
lr 1 amplifies from step to step.  The noise is measured alongside: the plain loop again from other initial
weights (``--seeds`` more seeds); the workbench agrees when it is within two standard deviations of the plain
runs' mean.

    python benchmarks/zaremba_side_by_side.py                    # the small model, 13 epochs, ~200k words
    python benchmarks/zaremba_side_by_side.py --epochs 4 --words 100000
    python benchmarks/zaremba_side_by_side.py --time-epoch medium  # seconds per epoch of medium / large here
    python benchmarks/zaremba_side_by_side.py --smoke             # seconds: tiny corpus and model

Figures go to ``benchmarks/results/zaremba_side_by_side.json`` (``--json`` elsewhere); docs/benchmarks.md
shows them, and tests/test_docs_figures.py holds the docs to that file.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "zaremba_side_by_side.json"


# ---- the plain loop ---------------------------------------------------------------------------------------------

class PlainZarembaLM(nn.Module):
    """Embedding -> dropout -> 2-layer LSTM (dropout between layers) -> dropout -> linear, as in the paper."""

    def __init__(self, vocab: int, units: int, dropout: float):
        super().__init__()
        self.embed = nn.Embedding(vocab, units)
        self.drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(units, units, 2, dropout=dropout)
        self.head = nn.Linear(units, vocab)

    def forward(self, x, state):
        out, state = self.lstm(self.drop(self.embed(x)), state)
        return self.head(self.drop(out)), state

    def load_workbench_weights(self, state: dict[str, torch.Tensor]) -> None:
        """Take the workbench model's weights (its ``state_dict``): the same numbers under other names."""
        self.load_state_dict(workbench_to_plain(state), strict=True)


def workbench_to_plain(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The template's weights under the plain model's names."""
    out = {"embed.weight": state["blocks.embed.embed.weight"],
           "head.weight": state["blocks.head.linear.weight"], "head.bias": state["blocks.head.linear.bias"]}
    for layer in range(2):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            out[f"lstm.{name}_l{layer}"] = state[f"blocks.rnn.cells.{layer}.rnn.{name}_l0"]
    return out


def streams(ids: torch.Tensor, batch: int) -> torch.Tensor:
    """The reader of the reference code: the word ids cut into ``batch`` contiguous streams, ``[n, batch]``."""
    n = ids.numel() // batch
    return ids[:n * batch].view(batch, n).t().contiguous()


def chunks(data: torch.Tensor, unroll: int):
    for i in range(0, data.shape[0] - 1, unroll):
        length = min(unroll, data.shape[0] - 1 - i)
        yield data[i:i + length], data[i + 1:i + 1 + length]


def paper_step(model: PlainZarembaLM, opt: torch.optim.Optimizer, x, y, state, clip: float):
    """One step of the paper's procedure; returns the new (detached) state and the mean NLL per word."""
    logits, state = model(x, state)
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none").view(y.shape)
    cost = nll.mean(dim=1).sum()          # sum over the unrolled steps of the batch mean
    opt.zero_grad(set_to_none=True)
    cost.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return tuple(s.detach() for s in state), float(nll.detach().mean())


@torch.no_grad()
def perplexity(model: PlainZarembaLM, data: torch.Tensor, unroll: int) -> float:
    model.eval()
    total, count, state = 0.0, 0, None
    for x, y in chunks(data, unroll):
        logits, state = model(x, state)
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum"))
        count += y.numel()
    model.train()
    return math.exp(total / count)


def paper_lr(epoch: int, flat: int, decay: float) -> float:
    return decay ** max(epoch + 1 - flat, 0)


# ---- the side-by-side run -----------------------------------------------------------------------------------------

def workbench_project(reg, size: str, data_dir: Path, settings: dict[str, str]):
    from workbench.core.settings import template_project
    project, _ = template_project(reg.template(f"word-lm-ptb-{size}"),
                                  {"data_dir": str(data_dir), "sample_every": "0", "probe_every": "0",
                                   "eval_every_epochs": "0", **settings},
                                  reg)
    return project


def side_by_side(size: str, epochs: int, words: int, seed: int, smoke: bool, threads: int, seeds: int) -> dict:
    from workbench.core.training.trainer import Trainer
    from workbench.plugin_system import discover
    from workbench_plugins.word_lm import write_ptb_files
    torch.set_num_threads(threads)
    reg = discover()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_ptb_files(folder, prefix="ptb", max_words=words, max_vocab=2000 if smoke else 10_000)
        settings = {"seed": str(seed), "epochs": str(epochs)}
        if smoke:
            settings.update({"rnn.hidden_size": "16", "embed.embed_size": "16"})
        project = workbench_project(reg, size, folder, settings)
        cfg = project.train
        trainer = Trainer(project, reg, base_dir=folder, threads=threads)
        trainer.setup()
        task = trainer.task
        units = int(trainer.model.blocks["embed"].embed.weight.shape[1])
        dropout = float(project.graph.nodes["rnn"].params.get("dropout") or 0.0)
        plain = PlainZarembaLM(task.sizes["vocab"], units, dropout)
        plain.load_workbench_weights(trainer.model.state_dict())
        opt = torch.optim.SGD(plain.parameters(), lr=cfg.lr)
        # the noise to compare with: the same plain loop from other initial weights (uniform, other seeds)
        others = []
        for k in range(seeds):
            torch.manual_seed(seed + 1 + k)
            other = PlainZarembaLM(task.sizes["vocab"], units, dropout)
            with torch.no_grad():
                for w in other.parameters():
                    w.uniform_(-cfg.init_scale, cfg.init_scale)
            others.append((other, torch.optim.SGD(other.parameters(), lr=cfg.lr)))
        # the same word ids (the vocabulary is not what is compared), read by the plain loop's own reader
        train_ids, valid_ids = task._splits["train"], task._splits["valid"]
        train_data, valid_data = streams(train_ids, cfg.batch_size), streams(valid_ids, cfg.batch_size)
        rows = []
        for epoch in range(epochs):
            t0 = time.perf_counter()
            trainer.fit(epochs=1, final_eval=False)
            wb_seconds = time.perf_counter() - t0
            wb_ppl = math.exp(trainer.evaluate("valid", max_batches=0)["loss"])
            lr = cfg.lr * paper_lr(epoch, cfg.decay_start, cfg.decay_factor)
            t0 = time.perf_counter()
            for model, optimizer in ((plain, opt), *others):
                for g in optimizer.param_groups:
                    g["lr"] = lr
                state = None
                torch.manual_seed(seed + 1000 + epoch)   # the plain loop's own dropout stream
                for x, y in chunks(train_data, cfg.chunk_len):
                    state, _ = paper_step(model, optimizer, x, y, state, cfg.clip_norm)
            plain_seconds = (time.perf_counter() - t0) / (1 + len(others))
            plain_ppl = perplexity(plain, valid_data, cfg.chunk_len)
            other_ppls = [perplexity(m, valid_data, cfg.chunk_len) for m, _ in others]
            rows.append({"epoch": epoch + 1, "lr": lr, "workbench_valid_ppl": round(wb_ppl, 2),
                         "plain_valid_ppl": round(plain_ppl, 2),
                         "plain_other_seeds_valid_ppl": [round(p, 2) for p in other_ppls],
                         "workbench_seconds": round(wb_seconds, 1), "plain_seconds": round(plain_seconds, 1)})
            print(f"epoch {epoch + 1:>2}  lr {lr:.4g}  valid ppl  workbench {wb_ppl:8.2f}  plain {plain_ppl:8.2f}  "
                  f"plain, other seeds {' '.join(f'{p:.2f}' for p in other_ppls)}  "
                  f"({wb_seconds:.0f} s / {plain_seconds:.0f} s)", flush=True)
        return {"size": size, "epochs": epochs, "words": words, "vocab": task.sizes["vocab"],
                "train_words": int(train_ids.numel()), "valid_words": int(valid_ids.numel()), "seed": seed,
                "threads": threads, "smoke": smoke, "rows": rows}


def time_epoch(size: str, threads: int, steps: int) -> dict:
    """Seconds per step of a template's model on this machine, and so per epoch of the real PTB (929k words)."""
    from workbench.core.training.trainer import Trainer
    from workbench.plugin_system import discover
    from workbench_plugins.word_lm import write_ptb_files
    torch.set_num_threads(threads)
    reg = discover()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # enough text for PTB's 10,000-word vocabulary, so the softmax costs what it costs on PTB
        write_ptb_files(folder, prefix="ptb", max_words=500_000, max_vocab=10_000)
        project = workbench_project(reg, size, folder, {})
        trainer = Trainer(project, reg, base_dir=folder, threads=threads)
        trainer.setup()
        trainer.fit(steps=2, final_eval=False)           # warm-up
        t0 = time.perf_counter()
        trainer.fit(steps=steps, final_eval=False)
        per_step = (time.perf_counter() - t0) / steps
        # the weights every word passes through: both LSTM layers' matrices and the softmax (the embedding is a
        # lookup); training costs ~6 operations per such weight and word (2 forward, 4 backward)
        state = trainer.model.state_dict()
        used = sum(v.numel() for k, v in state.items() if ".rnn.weight_" in k or k.startswith("blocks.head."))
    cfg = project.train
    ptb_words = 929_589                                               # PTB's training words (Mikolov's files)
    steps_per_epoch = ptb_words // (cfg.batch_size * cfg.chunk_len)
    flops_per_epoch = 6 * used * ptb_words
    return {"size": size, "threads": threads, "seconds_per_step": round(per_step, 3),
            "ptb_steps_per_epoch": steps_per_epoch, "ptb_epoch_minutes": round(per_step * steps_per_epoch / 60, 1),
            "ptb_epochs": cfg.epochs, "weights_per_word": used, "flops_per_epoch": flops_per_epoch,
            "gpu_epoch_minutes_at_10_tflops": round(flops_per_epoch / 10e12 / 60, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small", choices=("small", "medium", "large"))
    ap.add_argument("--epochs", type=int, default=13)
    ap.add_argument("--words", type=int, default=200_000, help="words of English text to make the corpus from")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=3, help="plain runs from other initial weights (the noise)")
    ap.add_argument("--smoke", action="store_true", help="seconds: 16 units, 2 epochs, 20k words")
    ap.add_argument("--time-epoch", metavar="SIZE", choices=("small", "medium", "large"),
                    help="only measure the seconds per epoch of SIZE on this machine")
    ap.add_argument("--steps", type=int, default=10, help="with --time-epoch: steps to time")
    ap.add_argument("--json", metavar="FILE", help=f"write the figures here (default: {RESULTS.relative_to(ROOT)})")
    args = ap.parse_args(argv)
    out_path = Path(args.json) if args.json else RESULTS
    doc = json.loads(out_path.read_text()) if out_path.exists() else {}
    if args.time_epoch:
        result = time_epoch(args.time_epoch, args.threads, args.steps)
        print(f"{args.time_epoch}: {result['seconds_per_step']} s a step on {args.threads} thread(s): "
              f"{result['ptb_epoch_minutes']} min an epoch of PTB, {result['ptb_epochs']} epochs")
        doc.setdefault("epoch_time", {})[args.time_epoch] = result
    else:
        if args.smoke:
            args.epochs, args.words = 2, 20_000
        result = side_by_side(args.size, args.epochs, args.words, args.seed, args.smoke, args.threads, args.seeds)
        last = result["rows"][-1]
        plain_runs = [last["plain_valid_ppl"], *last["plain_other_seeds_valid_ppl"]]
        mean, std = statistics.fmean(plain_runs), statistics.stdev(plain_runs)
        result["final_plain_mean"], result["final_plain_std"] = round(mean, 2), round(std, 2)
        result["final_workbench_minus_plain_mean"] = round(last["workbench_valid_ppl"] - mean, 2)
        result["agrees"] = abs(last["workbench_valid_ppl"] - mean) <= 2 * std
        print(f"after the last epoch: workbench {last['workbench_valid_ppl']:.2f}; the plain loop over "
              f"{len(plain_runs)} seeds {mean:.2f} +- {std:.2f} (std): "
              f"{'within' if result['agrees'] else 'NOT within'} two standard deviations")
        doc["smoke" if args.smoke else args.size] = result
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
