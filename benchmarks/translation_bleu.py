"""Translation demo: BLEU (sacrebleu) of greedy decoding vs beam search of width 5 on the ``seq2seq-attention``
template's task, measured at several points of one training run.

The task is the template's own: character-level date normalisation ("Saturday, 9 July 1985" -> "1985-07-09"),
generated pairs, an LSTM encoder and a Luong-attention LSTM decoder.  The model is trained through the workbench's
``Trainer``; at each checkpoint every sentence of the test split is decoded twice through
``workbench.core.decode.run_decoder`` (what ``seqwb decode`` runs): with the ``greedy`` decoder and with the
``beam`` decoder (width 5, length normalisation alpha 0.6, the template's setting).  BLEU is sacrebleu's
``corpus_bleu`` with the task's tokenizer (characters for a character-level task), next to exact match (share of
sentences equal to the reference).  As a cross-check, the greedy BLEU is also computed by the task's own batched
greedy decoder (what ``seqwb eval`` reports as ``bleu``); the two must agree.

    python benchmarks/translation_bleu.py --threads 2      # full: 25, 50, 100, 150, 300, 600 steps; 500 sentences
    python benchmarks/translation_bleu.py --quick          # 300 steps, 200 sentences, 1 thread (< 2 min)
    python benchmarks/translation_bleu.py --smoke          # seconds: a tiny model, 20 sentences
    python benchmarks/translation_bleu.py --json out.json  # also write the figures as JSON (atomically)

Beam search pays where the model is unsure: early in training, when greedy takes a locally likely character that
leads to a worse whole output.  Once greedy is almost always right, both reach the same BLEU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from workbench.atomic import atomic_write
from workbench.core.decode import run_decoder
from workbench.core.settings import template_project
from workbench.core.training.trainer import Trainer
from workbench.plugin_system import discover
from workbench_plugins.translation import bleu_and_exact

MODES = {
    # mode: checkpoints (steps), test sentences, template and task settings
    "full": dict(checkpoints=[25, 50, 100, 150, 300, 600], sentences=500, settings={}),
    "quick": dict(checkpoints=[300], sentences=200, settings={}),
    "smoke": dict(checkpoints=[20], sentences=20,
                  settings={"hidden_size": "16", "embed_size": "8", "task.demo_train": "300",
                            "task.demo_valid": "20", "task.demo_test": "20", "batch_size": "16"}),
}
WIDTH, ALPHA = 5, 0.6


def decode_all(reg, trainer, sources: list[str], decoder: str, settings: dict) -> tuple[list[str], float]:
    spec = reg.decoder(decoder)
    t0 = time.perf_counter()
    hyps = [run_decoder(spec, trainer.model, trainer.task, settings, prompt=src, device=trainer.device).text
            for src in sources]
    return hyps, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="< 2 minutes on a quiet 2-core machine")
    mode.add_argument("--smoke", action="store_true", help="a few seconds: keeps the script working in CI")
    ap.add_argument("--checkpoints", type=int, nargs="+", help="training steps at which to decode (default: mode's)")
    ap.add_argument("--sentences", type=int, help="test sentences decoded (default: the mode's)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2, help="torch threads in full mode (smoke/quick: 1)")
    ap.add_argument("--json", metavar="FILE", help="write the figures as JSON to FILE")
    args = ap.parse_args(argv)
    name = "smoke" if args.smoke else "quick" if args.quick else "full"
    cfg = MODES[name]
    checkpoints = sorted(args.checkpoints or cfg["checkpoints"])
    threads = 1 if name != "full" else args.threads
    torch.set_num_threads(threads)

    reg = discover()
    settings = {"seed": str(args.seed), "threads": str(threads), "eval_every": "0", "sample_every": "0",
                "probe_every": "0", "steps": str(checkpoints[-1]), **cfg["settings"]}
    project, _ = template_project(reg.template("seq2seq-attention"), settings, reg)
    trainer = Trainer(project, reg)
    trainer.setup()
    task = trainer.task
    pairs = task.pairs("test")[:args.sentences or cfg["sentences"]]
    if not pairs:
        print("translation_bleu: the task's test split is empty", file=sys.stderr)
        return 1
    sources = [s for s, _ in pairs]
    refs = [t for _, t in pairs]
    tokenizer = task.bleu_tokenizer()
    max_len = task.max_decode_len()
    greedy_settings = {"max_len": max_len}
    beam_settings = {"width": WIDTH, "alpha": ALPHA, "n_best": 1, "max_len": max_len, "topk": 0}
    print(f"seq2seq-attention ({name}): {task.sizes}, batch {trainer.cfg.batch_size}, Adam {trainer.cfg.lr}, "
          f"{threads} thread(s); {len(pairs)} test sentences, sacrebleu tokenize={tokenizer!r}; "
          f"beam width {WIDTH}, alpha {ALPHA}", flush=True)

    rows = []
    done = 0
    train_seconds = 0.0
    for step in checkpoints:
        t0 = time.perf_counter()
        trainer.fit(steps=step - done, final_eval=False)
        train_seconds += time.perf_counter() - t0
        done = step
        greedy, g_s = decode_all(reg, trainer, sources, "greedy", greedy_settings)
        beam, b_s = decode_all(reg, trainer, sources, "beam", beam_settings)
        g = bleu_and_exact(greedy, refs, tokenizer)
        b = bleu_and_exact(beam, refs, tokenizer)
        # the task's batched greedy decoder on the same sentences (the `bleu` of `seqwb eval`)
        saved = task.params.bleu_sentences
        task.params.bleu_sentences = len(pairs)
        try:
            trainer.model.eval()
            with torch.no_grad():
                batched = task.eval_generate(trainer.model, "test", trainer.device)
        finally:
            task.params.bleu_sentences = saved
            trainer.model.train()
        changed = sum(x != y for x, y in zip(greedy, beam))
        row = {"step": step, "greedy_bleu": g["bleu"], "greedy_exact": g["exact"], "beam_bleu": b["bleu"],
               "beam_exact": b["exact"], "batched_greedy_bleu": batched.get("bleu"), "beam_differs": changed,
               "greedy_seconds": g_s, "beam_seconds": b_s, "train_seconds": train_seconds}
        rows.append(row)
        print(f"step {step:>5}: greedy BLEU {g['bleu']:6.2f} (exact {g['exact']:.3f}) | beam {WIDTH} BLEU "
              f"{b['bleu']:6.2f} (exact {b['exact']:.3f}) | batched greedy BLEU {row['batched_greedy_bleu']:.2f} | "
              f"beam output differs on {changed}/{len(pairs)} | decode {g_s:.1f}s greedy, {b_s:.1f}s beam; "
              f"trained {train_seconds:.0f}s", flush=True)

    print()
    head = f"{'step':>6} {'greedy BLEU':>12} {'beam-5 BLEU':>12} {'greedy exact':>13} {'beam-5 exact':>13}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['step']:>6} {r['greedy_bleu']:>12.2f} {r['beam_bleu']:>12.2f} {r['greedy_exact']:>13.3f} "
              f"{r['beam_exact']:>13.3f}")
    examples = [(s, r, g, b) for s, r, g, b in zip(sources, refs, greedy, beam) if g != b][:3]
    if examples:
        print("\nwhere the last checkpoint's beam and greedy outputs differ:")
        for s, r, g, b in examples:
            print(f"  {s!r}: reference {r!r}, greedy {g!r}, beam {b!r}")
    if args.json:
        doc = {"mode": name, "threads": threads, "sentences": len(pairs), "tokenize": tokenizer, "width": WIDTH,
               "alpha": ALPHA, "torch": torch.__version__, "rows": rows,
               "examples": [dict(zip(("source", "reference", "greedy", "beam"), e)) for e in examples]}
        with atomic_write(Path(args.json), "w") as fh:
            json.dump(doc, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
