"""Word language model, Zaremba, Sutskever & Vinyals 2014, "small" configuration, through the workbench's
``word-lm-ptb-small`` template, on your copy of the Penn Treebank in Mikolov's format.

The paper's small model: 2 x LSTM 200, embedding 200, unrolled 20 steps, batch 20, SGD with learning rate 1,
halved every epoch after the 4th, gradient norm clipped at 5, weights uniform in [-0.1, 0.1], no dropout, 13
epochs.  Published: 120.7 validation and 114.5 test perplexity.  This script trains the template as it is (only
``task.data_dir``, the thread count and, for --quick/--smoke, the budget change) and prints the validation and
test perplexity after every epoch, the learning rate and the wall time.

    python benchmarks/ptb_small.py --data ~/data/simple-examples/data --threads 2     # full: 13 epochs
    python benchmarks/ptb_small.py --data DIR --quick       # 400 steps of epoch 1, then both perplexities
    python benchmarks/ptb_small.py --data DIR --smoke       # seconds: 2 x LSTM 16 for 2 epochs (a tiny corpus)
    python benchmarks/ptb_small.py --data DIR --json out.json

``--data DIR`` is the folder holding ``ptb.train.txt``, ``ptb.valid.txt`` and ``ptb.test.txt`` (any
``*.train.txt`` / ``*.valid.txt`` / ``*.test.txt``).  Nothing is downloaded: without ``--data`` the script says
so and exits with status 2.  Perplexities are measured over the whole split in 20 streams of 20 words with the
state carried (the training batching); the paper's evaluation reads the text as one stream, which differs only in
the first words of each stream.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from workbench.atomic import atomic_write
from workbench.schema.errors import DataError, TrainingError
from workbench.core.settings import template_project
from workbench.core.training.optim import scheduled_lr
from workbench.core.training.trainer import Trainer
from workbench.plugin_system import discover

PUBLISHED = {"valid": 120.7, "test": 114.5}   # Zaremba et al. 2014, table 1, non-regularised LSTM
MODES = {
    # mode: epochs (None: the template's), step cap (0: none), template settings
    "full": dict(epochs=None, max_steps=0, settings={}),
    "quick": dict(epochs=1, max_steps=400, settings={}),
    # a 16-unit model takes smaller steps than lr 1 (with the sum over time, a clipped step is as large as the
    # whole model here)
    "smoke": dict(epochs=2, max_steps=0, settings={"hidden_size": "16", "embed_size": "16", "lr": "0.2"}),
}
NO_DATA = ("ptb_small: no data given. Pass --data DIR, the folder holding your copy of ptb.train.txt, "
           "ptb.valid.txt and ptb.test.txt (Mikolov's simple-examples/data); nothing is downloaded.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", metavar="DIR", help="folder with ptb.train.txt, ptb.valid.txt, ptb.test.txt")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="< 2 minutes on a quiet 2-core machine: 400 steps")
    mode.add_argument("--smoke", action="store_true", help="seconds, on a tiny corpus: keeps the script working")
    ap.add_argument("--epochs", type=int, help="epochs (default: the template's 13, as in the paper)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads in full mode (smoke/quick: 1)")
    ap.add_argument("--json", metavar="FILE", help="write the figures as JSON to FILE")
    args = ap.parse_args(argv)
    if not args.data:
        print(NO_DATA, file=sys.stderr)
        return 2
    data = Path(args.data).expanduser().resolve()
    if not data.is_dir():
        print(f"ptb_small: --data {args.data}: no such folder. {NO_DATA.split('. ', 1)[1]}", file=sys.stderr)
        return 2
    name = "smoke" if args.smoke else "quick" if args.quick else "full"
    cfg = MODES[name]
    threads = 1 if name != "full" else args.threads
    torch.set_num_threads(threads)

    reg = discover()
    settings = {"data_dir": str(data), "threads": str(threads), "eval_every": "0", "sample_every": "0",
                "probe_every": "0", **cfg["settings"]}
    project, _ = template_project(reg.template("word-lm-ptb-small"), settings, reg)
    trainer = Trainer(project, reg, base_dir=data)
    try:
        trainer.setup()
    except (DataError, TrainingError) as exc:
        print(f"ptb_small: {exc}", file=sys.stderr)
        return 1
    tc = trainer.cfg
    epochs = args.epochs or cfg["epochs"] or tc.epochs
    task = trainer.task
    words = {s: f["words"] for s, f in task.data_files.items()}
    per_epoch = task.num_batches("train", tc.batch_size, tc.chunk_len)
    n_params = sum(p.numel() for p in trainer.model.parameters())
    cap = f" (only the first {cfg['max_steps']} steps)" if cfg["max_steps"] else ""
    print(f"word-lm-ptb-small ({name}) on {data}: {words} words, vocabulary {task.sizes['vocab']}, {n_params:,} "
          f"parameters; {epochs} epoch(s) of {per_epoch} steps"
          f"{cap}, batch {tc.batch_size}, "
          f"unroll {tc.chunk_len}, {tc.optimizer} lr {tc.lr} (x{tc.decay_factor} per epoch after epoch "
          f"{tc.decay_start}), clip {tc.clip_norm}, init uniform {tc.init_scale}; {threads} thread(s)", flush=True)
    print(f"{'epoch':>5} {'lr':>8} {'train ppl':>10} {'valid ppl':>10} {'test ppl':>10} {'epoch s':>8} "
          f"{'total s':>8}", flush=True)
    rows = []
    t_all = time.perf_counter()
    for epoch in range(1, epochs + 1):
        lr = scheduled_lr(tc, trainer.pos.step, trainer.pos.epoch, 0, None)   # the rate this epoch trains at
        t0 = time.perf_counter()
        losses: list[float] = []

        class Losses:  # the mean training loss of the epoch, from the trainer's own step events
            def on_step_end(self, _trainer, event):
                losses.append(float(event.loss))

        trainer.callbacks.append(Losses())
        try:
            if cfg["max_steps"]:
                trainer.fit(steps=cfg["max_steps"], final_eval=False)
            else:
                trainer.fit(epochs=1, final_eval=False)
        except TrainingError as exc:
            print(f"ptb_small: epoch {epoch}: {exc}", file=sys.stderr)
            return 1
        finally:
            trainer.callbacks.pop()
        epoch_s = time.perf_counter() - t0
        valid = trainer.evaluate("valid", max_batches=0)["ppl"]
        test = trainer.evaluate("test", max_batches=0)["ppl"] if words.get("test") else float("nan")
        train_ppl = math.exp(min(sum(losses) / max(len(losses), 1), 50.0))
        total = time.perf_counter() - t_all
        rows.append({"epoch": epoch, "lr": lr, "train_ppl": train_ppl, "valid_ppl": valid, "test_ppl": test,
                     "steps": len(losses), "epoch_seconds": epoch_s, "total_seconds": total})
        print(f"{epoch:>5} {lr:>8.4f} {train_ppl:>10.2f} {valid:>10.2f} {test:>10.2f} {epoch_s:>8.0f} "
              f"{total:>8.0f}", flush=True)
        if cfg["max_steps"]:
            break
    total = time.perf_counter() - t_all
    last = rows[-1]
    print(f"\nafter {len(rows)} epoch(s), {total:.0f}s: validation {last['valid_ppl']:.1f}, test "
          f"{last['test_ppl']:.1f} perplexity (published after 13 epochs: validation {PUBLISHED['valid']}, test "
          f"{PUBLISHED['test']})")
    if args.json:
        doc = {"mode": name, "data": str(data), "words": words, "vocab": task.sizes["vocab"], "parameters": n_params,
               "threads": threads, "torch": torch.__version__, "epochs": rows, "seconds": total,
               "published": PUBLISHED}
        with atomic_write(Path(args.json), "w") as fh:
            json.dump(doc, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
