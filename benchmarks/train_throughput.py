"""Training throughput: the workbench's Trainer vs a plain PyTorch loop on the same model and data.

Four sides: the plain float32 loop a person would write, the same loop with its forward pass under bfloat16
autocast (torch's AMP recipe: what bfloat16 alone gives on this machine), the workbench in float32, and the
workbench under ``precision = auto`` (bfloat16 autocast where the CPU or GPU computes it natively: see workbench/core/precision.py;
benchmarks/precision_safety.py shows that it reaches the same validation loss).  The ratios are against the plain
loop.  On a machine without a GPU the GPU figure is not measured, and the script says so.

Model: embedding 64 -> 2 x LSTM 256 -> linear (the char-LM template), batch 32, chunk 100, Adam, clip 5, CPU,
on the Python standard library's source.  Runs alternate (A, B, A, B, ...) so that drift in the machine's speed
hits both sides alike; each prints tokens per second, then the ratio of medians.

The workbench side is the Trainer that ``seqwb train`` runs (workbench/cli.py builds a ``Trainer`` and calls
``fit``), without the CLI's log-line printer.  A probe fires when the step count reaches a multiple of
``probe_every`` (100 by default), so the full mode times runs of at least 100 steps; the overhead of the
gradient-through-time probe is also timed directly (one probe against the 100 steps it is amortised over).

    python benchmarks/train_throughput.py                 # full: 5 rounds x 100 steps per side
    python benchmarks/train_throughput.py --quick         # 3 rounds x 15 steps (< 2 minutes; the probe overhead
                                                          #   comes from the direct timing only)
    python benchmarks/train_throughput.py --smoke         # 1 round x 3 steps, hidden 32: checks that it runs
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch
from torch import nn

from workbench.core.settings import template_project
from workbench.core.training.trainer import Trainer
from workbench.plugin_system import discover


class PlainCharLSTM(nn.Module):
    def __init__(self, vocab: int, embed: int, hidden: int, layers: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x, state):
        y, state = self.lstm(self.embed(x), state)
        return self.head(y), state

    def train_step(self, batch: dict, state, opt, clip: float, autocast: bool = False):
        """One step of truncated BPTT: forward from the carried state (none after a reset), cross-entropy, clip
        the gradient norm, optimizer step.  Returns the loss and the detached state to carry to the next batch.
        ``autocast``: the forward pass under bfloat16 autocast, the loss in float32 (the recipe from torch's AMP
        documentation, which is all a person would add to the loop)."""
        if batch["reset"]:
            state = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits, state = self(batch["tokens"], state)
        loss = nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.parameters(), clip)
        opt.step()
        return loss, tuple(s.detach().float() for s in state)


def plain_loop(task, args, autocast: bool = False):
    """The loop anyone would write: TBPTT with the state carried and detached, clip, Adam."""
    torch.manual_seed(0)
    V = task.sizes["vocab"]
    model = PlainCharLSTM(V, args.embed, args.hidden, args.layers)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    batches = task.batches("train", args.batch, args.chunk)
    state = None

    def run(steps: int) -> float:
        nonlocal state
        tokens = 0
        t0 = time.perf_counter()
        for _ in range(steps):
            b = next(batches)
            loss, state = model.train_step(b, state, opt, 5.0, autocast)
            float(loss.detach())  # the loop logs its loss, like the workbench does
            tokens += b["targets"].numel()
        return tokens / (time.perf_counter() - t0)

    return run


def workbench_trainer(registry, args, probe_every: int, precision: str = "fp32"):
    settings = {"hidden_size": str(args.hidden), "layers": str(args.layers), "embed_size": str(args.embed),
                "task.max_chars": str(args.max_chars)}
    project, _ = template_project(registry.template("char-lm"), settings, registry)
    project.train = dataclasses.replace(project.train, batch_size=args.batch, chunk_len=args.chunk,
                                        eval_every=0, sample_every=0, probe_every=probe_every, steps=10 ** 9,
                                        threads=args.threads, seed=0, precision=precision)
    trainer = Trainer(project, registry)
    trainer.setup()

    def run(steps: int) -> float:
        t0 = time.perf_counter()
        trainer.fit(steps=steps, final_eval=False)
        return steps * args.batch * args.chunk / (time.perf_counter() - t0)

    return trainer, run


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=30, help="steps per timed run")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--chunk", type=int, default=100)
    ap.add_argument("--threads", type=int, default=0, help="0: all cores (as the headless CLI)")
    ap.add_argument("--max-chars", type=int, default=3_000_000, help="characters of the corpus to read")
    ap.add_argument("--quick", action="store_true", help="3 rounds x 15 steps (under 2 minutes)")
    ap.add_argument("--smoke", action="store_true", help="1 round x 3 steps, hidden 32: checks that it runs")
    ap.add_argument("--json", metavar="FILE", help="also write the medians and ratios to FILE "
                                                  "(docs/benchmarks.md reads benchmarks/results/train_throughput.json)")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.steps = 3, 15
    if args.smoke:
        args.rounds, args.steps, args.hidden, args.embed, args.batch, args.chunk = 1, 3, 32, 16, 4, 20
        args.threads, args.max_chars = 1, 50_000

    registry = discover()
    from workbench.core.project import TrainConfig
    probe_default = TrainConfig().probe_every
    trainer, wb = workbench_trainer(registry, args, probe_default)
    _, wb_noprobe = workbench_trainer(registry, args, 0)
    auto_trainer, wb_auto = workbench_trainer(registry, args, probe_default, "auto")
    torch.set_num_threads(args.threads or torch.get_num_threads())
    plain = plain_loop(trainer.task, args)
    plain_bf16 = plain_loop(trainer.task, args, autocast=True)

    print(f"char-LM: embed {args.embed}, {args.layers} x LSTM {args.hidden}, batch {args.batch}, chunk "
          f"{args.chunk}, {torch.get_num_threads()} threads, probes every {probe_default} steps (default)")
    # warm up every side once (allocator, oneDNN primitives)
    print(f"precision auto on this machine: {auto_trainer.precision.label()} ({auto_trainer.precision.reason})")
    for run in (plain, plain_bf16, wb, wb_noprobe, wb_auto):
        run(min(3, args.steps))

    results: dict[str, list[float]] = {"plain": [], "plain_autocast": [], "workbench": [], "workbench_no_probes": [],
                                       "workbench_auto": []}
    # the probe runs once every `probe_default` steps: time enough steps for it to be sampled fairly
    probe_steps = max(args.steps, probe_default) if args.steps >= 10 and not args.quick else args.steps
    for r in range(args.rounds):
        for name, run, steps in (("plain", plain, probe_steps), ("plain_autocast", plain_bf16, probe_steps),
                                 ("workbench", wb, probe_steps),
                                 ("workbench_no_probes", wb_noprobe, probe_steps),
                                 ("workbench_auto", wb_auto, probe_steps)):
            tps = run(steps)
            results[name].append(tps)
            print(f"round {r + 1}: {name:<20} {tps:10,.0f} tokens/s")
    med = {k: statistics.median(v) for k, v in results.items()}
    print()
    for k, v in med.items():
        print(f"median {k:<20} {v:10,.0f} tokens/s")
    print(f"ratio workbench / plain loop:            {med['workbench'] / med['plain']:.3f}  (target >= 0.95)")
    print(f"ratio workbench without probes / plain:  {med['workbench_no_probes'] / med['plain']:.3f}")
    print(f"ratio workbench, precision auto ({auto_trainer.precision.name}) / plain fp32 loop: "
          f"{med['workbench_auto'] / med['plain']:.3f}  (target >= 1.8 where auto picks bf16)")
    print(f"ratio plain loop under bf16 autocast / plain fp32 loop: {med['plain_autocast'] / med['plain']:.3f}  "
          f"(what bfloat16 itself gives on this machine)")
    print(f"ratio workbench under auto / plain loop under autocast: "
          f"{med['workbench_auto'] / med['plain_autocast']:.3f}")
    if not torch.cuda.is_available():
        print("GPU: not measured (no CUDA device on this machine)")
    overhead = 1 - med["workbench"] / med["workbench_no_probes"]
    print(f"probe overhead from the A/B medians: {overhead * 100:.1f}% (within run-to-run noise)")
    # The A/B difference above is smaller than the noise, so also time the probes directly against the steps
    # they are amortised over.
    step_s = args.batch * args.chunk / med["workbench_no_probes"]
    t0 = time.perf_counter()
    for _ in range(3):
        trainer.probe()
    probe_s = (time.perf_counter() - t0) / 3
    from workbench.core import probes as probe_mod
    t0 = time.perf_counter()
    for _ in range(3):
        probe_mod.spectral_norms(trainer.model)
    sigma_s = (time.perf_counter() - t0) / 3
    gtt_s = probe_s - sigma_s
    per = probe_default * step_s
    print(f"one probe: gradient-through-time {gtt_s * 1000:.0f} ms + spectral norms {sigma_s * 1000:.0f} ms, "
          f"every {probe_default} steps of {step_s * 1000:.0f} ms")
    print(f"gradient-through-time probe overhead at the default interval: {gtt_s / per * 100:.2f}% (target < 3%); "
          f"with the spectral norms: {probe_s / per * 100:.2f}%")
    if args.json:
        import json
        from pathlib import Path
        doc = {"model": f"embed {args.embed}, {args.layers} x LSTM {args.hidden}, batch {args.batch}, chunk {args.chunk}",
               "threads": torch.get_num_threads(), "rounds": args.rounds, "steps": probe_steps,
               "auto_resolved": auto_trainer.precision.name, "auto_reason": auto_trainer.precision.reason,
               "median_tokens_per_s": {k: round(v) for k, v in med.items()},
               "ratio_workbench_fp32": round(med["workbench"] / med["plain"], 3),
               "ratio_workbench_auto": round(med["workbench_auto"] / med["plain"], 3),
               "ratio_plain_autocast": round(med["plain_autocast"] / med["plain"], 3),
               "ratio_auto_over_plain_autocast": round(med["workbench_auto"] / med["plain_autocast"], 3),
               "gpu": "not measured: no CUDA device" if not torch.cuda.is_available() else "see --device cuda",
               "probe_overhead_percent": round(gtt_s / per * 100, 2)}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
