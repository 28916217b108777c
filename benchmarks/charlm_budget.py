"""Character LM on the Python standard library's source with a fixed budget: validation bits per character through
the workbench and through a plain PyTorch loop (same model, data, batches, optimizer and number of steps), then
the hidden units that unit search finds for quotes, comments and indentation (Karpathy, Johnson & Fei-Fei 2016).

The model is the ``char-lm`` template (embedding 64 -> 2 x LSTM 256 -> linear, Adam 2e-3, gradient norm clipped
at 5, batch 32, chunk 100, state carried between chunks).  The budget is a number of optimizer steps rather than a
number of minutes, so the two sides get exactly the same work whatever else the machine is doing; the wall time of
each side is printed.  Issue 7 asks for "10 minutes on CPU": the full mode's 4,000 steps take about that per side
on a quiet 2-core machine (~0.12-0.15 s per step with 2 threads).

    python benchmarks/charlm_budget.py --threads 2         # full: 4,000 steps per side
    python benchmarks/charlm_budget.py --quick             # 200 steps per side, 1 thread (< 2 min)
    python benchmarks/charlm_budget.py --smoke             # seconds: a tiny model on 30,000 characters
    python benchmarks/charlm_budget.py --json out.json     # also write the figures as JSON (atomically)

Validation is the whole validation split (the 5 % of the corpus after the training text), read in 32 streams of
100-character chunks with the state carried, on both sides.  The two sides are seeded alike and build the same layers in the same order, so they start from the same weights
(the script checks this and prints it); what is left between their figures is the loop itself plus floating-point
differences (the workbench runs each layer as its own single-layer ``nn.LSTM``), which grow over thousands of steps.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
from torch import nn

from workbench.core import recording
from workbench.atomic import atomic_write
from workbench.core.settings import template_project
from workbench.core.training.trainer import Trainer
from workbench.plugin_system import discover

import train_throughput  # noqa: E402 - its neighbour in benchmarks/ (on sys.path when run as a script)

MODES = {
    # mode: steps, hidden, layers, embed, max corpus characters, characters recorded for unit search
    "full": dict(steps=4000, hidden=256, layers=2, embed=64, max_chars=3_000_000, record=10_000),
    "quick": dict(steps=200, hidden=256, layers=2, embed=64, max_chars=3_000_000, record=4_000),
    "smoke": dict(steps=5, hidden=16, layers=1, embed=8, max_chars=30_000, record=300),
}
FEATURES = ("quotes", "comment", "indent")
BATCH, CHUNK, LR, CLIP, FORGET_BIAS = 32, 100, 2e-3, 5.0, 1.0


class PlainCharLSTM(train_throughput.PlainCharLSTM):
    """train_throughput's plain model (embedding -> nn.LSTM(num_layers) -> linear), started as the workbench starts
    its LSTM: forget-gate bias 1 (Gers et al. 2000)."""

    def __init__(self, vocab: int, embed: int, hidden: int, layers: int):
        super().__init__(vocab, embed, hidden, layers)
        with torch.no_grad():
            for layer in range(layers):
                getattr(self.lstm, f"bias_ih_l{layer}")[hidden:2 * hidden].fill_(FORGET_BIAS)
                getattr(self.lstm, f"bias_hh_l{layer}")[hidden:2 * hidden].zero_()


def same_weights(plain: PlainCharLSTM, wb_initial: dict[str, torch.Tensor]) -> bool:
    """Whether the plain model's parameters equal the workbench model's initial ones, as multisets of tensors."""
    mine = sorted((tuple(p.shape), float(p.double().sum()), float(p.double().abs().sum()))
                  for p in plain.state_dict().values())
    theirs = sorted((tuple(p.shape), float(p.double().sum()), float(p.double().abs().sum()))
                    for p in wb_initial.values())
    return mine == theirs


def plain_train(task, cfg: dict, steps: int, seed: int,
                wb_initial: dict[str, torch.Tensor] | None = None) -> tuple[PlainCharLSTM, float, bool | None]:
    """Truncated BPTT over the task's own training batches (state carried and detached, reset at each epoch)."""
    torch.manual_seed(seed)
    V = task.sizes["vocab"]
    model = PlainCharLSTM(V, cfg["embed"], cfg["hidden"], cfg["layers"])
    same = same_weights(model, wb_initial) if wb_initial is not None else None
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    state = None
    done, epoch = 0, 0
    t0 = time.perf_counter()
    model.train()
    while done < steps:
        for b in task.batches("train", BATCH, CHUNK, epoch=epoch):
            _, state = model.train_step(b, state, opt, CLIP)
            done += 1
            if done >= steps:
                break
        epoch += 1
    return model, time.perf_counter() - t0, same


@torch.no_grad()
def plain_bpc(model: PlainCharLSTM, task) -> float:
    model.eval()
    state, total, count = None, 0.0, 0
    for b in task.batches("valid", BATCH, CHUNK):
        logits, state = model(b["tokens"], state)
        total += float(nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), b["targets"].reshape(-1),
                                                   reduction="sum"))
        count += b["targets"].numel()
    return total / count / math.log(2)


def workbench_train(reg, cfg: dict, steps: int, seed: int, threads: int):
    settings = {"hidden_size": str(cfg["hidden"]), "layers": str(cfg["layers"]), "embed_size": str(cfg["embed"]),
                "task.max_chars": str(cfg["max_chars"]), "batch_size": str(BATCH), "chunk_len": str(CHUNK),
                "lr": str(LR), "clip_norm": str(CLIP), "steps": str(steps), "seed": str(seed),
                "threads": str(threads), "eval_every": "0", "sample_every": "0", "eval_batches": "0"}
    project, _ = template_project(reg.template("char-lm"), settings, reg)
    trainer = Trainer(project, reg)
    trainer.setup()
    initial = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    t0 = time.perf_counter()
    trainer.fit(steps=steps, final_eval=False)
    seconds = time.perf_counter() - t0
    trainer.checkpoint()    # project.checkpoint: the trained weights, which unit search records (else: untrained)
    return project, trainer, seconds, initial


def best_units(project, reg, text: str) -> dict[str, dict]:
    """The best-correlated unit of every recurrent layer's h for each feature (unit search, as ``seqwb units``)."""
    if project.checkpoint is None:   # the recorder would fall back to untrained (seeded) weights
        raise SystemExit("no trained weights to record: the project has no checkpoint")
    rec = recording.record(project, reg, text)
    out = {}
    for feature in FEATURES:
        try:
            (layer, unit, r), = recording.search_layers(rec, feature, "h", top=1, registry=reg)
        except ValueError as exc:  # a feature that is constant over a short text
            out[feature] = {"error": str(exc)}
            continue
        out[feature] = {"layer": layer, "unit": unit, "r": r}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="< 2 minutes on a quiet 2-core machine")
    mode.add_argument("--smoke", action="store_true", help="a few seconds: keeps the script working in CI")
    ap.add_argument("--steps", type=int, help="optimizer steps per side (default: the mode's)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2, help="torch threads in full mode (smoke/quick: 1)")
    ap.add_argument("--record", type=int, help="validation characters recorded for unit search")
    ap.add_argument("--json", metavar="FILE", help="write the figures as JSON to FILE")
    args = ap.parse_args(argv)
    name = "smoke" if args.smoke else "quick" if args.quick else "full"
    cfg = dict(MODES[name])
    steps = args.steps or cfg["steps"]
    record_chars = args.record or cfg["record"]
    threads = 1 if name != "full" else args.threads
    torch.set_num_threads(threads)

    reg = discover()
    print(f"char-LM budget ({name}): embed {cfg['embed']} -> {cfg['layers']} x LSTM {cfg['hidden']} -> linear, "
          f"batch {BATCH}, chunk {CHUNK}, Adam {LR}, clip {CLIP}, {steps} steps per side, {threads} thread(s)",
          flush=True)
    project, trainer, wb_seconds, wb_initial = workbench_train(reg, cfg, steps, args.seed, threads)
    wb = trainer.evaluate("valid", max_batches=0)
    task = trainer.task
    print(f"workbench: {steps} steps in {wb_seconds:.1f}s ({wb_seconds / steps * 1000:.0f} ms/step); "
          f"validation {wb['bpc']:.4f} bits per character", flush=True)

    torch.set_num_threads(threads)
    model, plain_seconds, same_init = plain_train(task, cfg, steps, args.seed, wb_initial)
    plain = plain_bpc(model, task)
    print(f"same initial weights on both sides: {'yes' if same_init else 'no'}", flush=True)
    print(f"plain loop: {steps} steps in {plain_seconds:.1f}s ({plain_seconds / steps * 1000:.0f} ms/step); "
          f"validation {plain:.4f} bits per character", flush=True)
    print(f"difference workbench - plain: {wb['bpc'] - plain:+.4f} bits per character; "
          f"time ratio plain / workbench: {plain_seconds / wb_seconds:.3f}", flush=True)

    text = task.sample_text(record_chars)
    units = best_units(project, reg, text)
    print(f"\nunit search over the first {len(text):,} validation characters (h of every layer, Pearson r):")
    for feature, u in units.items():
        if "error" in u:
            print(f"  {feature:<8} -: {u['error']}")
        else:
            print(f"  {feature:<8} {u['layer']} unit {u['unit']:<4} r = {u['r']:+.3f}")
    if args.json:
        doc = {"mode": name, "steps": steps, "threads": threads, "model": cfg, "torch": torch.__version__,
               "corpus_chars": task.data_files["corpus"]["chars"], "vocab": task.sizes["vocab"],
               "workbench": {"bpc": wb["bpc"], "seconds": wb_seconds},
               "plain": {"bpc": plain, "seconds": plain_seconds}, "same_initial_weights": same_init, "units": units, "recorded_chars": len(text)}
        with atomic_write(Path(args.json), "w") as fh:
            json.dump(doc, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
