"""Custom cells: the per-step path trained through the workbench vs the fused torch.nn.LSTM / nn.GRU.

Every variant is the char-LM graph with one recurrent layer (embedding -> 1 x cell -> linear), batch 32, chunk
100, hidden 256, Adam, clip 5, on the CPU, trained through the workbench's ``Trainer`` (probes, validation and
samples off), except the two references, which are the loop anyone would write around ``torch.nn.LSTM`` /
``torch.nn.GRU``.  One figure per variant: milliseconds per training step (forward, backward, clipping, optimizer
step), median over rounds; variants alternate inside every round (in a rotating order) so drift in the machine's
speed hits them alike.  Ratios are "fraction of the fused speed": fused time / variant time in the same round
(1.0 = as fast), median over rounds; paired within a round, they are steadier than the times themselves on a
loaded machine.

Variants of the per-step path:

* ``naive``: the cell's ``step(x[t])`` in a Python loop (the input product is done once per step; ``x[t]``);
* ``plain``: ``Cell.sequence_steps`` — the inputs of all timesteps projected in one product, then the recurrent
  part step by step, autograd recording every operation (what a third-party step-only cell gets by default);
* ``optimised``: the built-in cells with ``fused=False`` — projection hoisted, gate products fused into one
  ``addmm`` per step written into preallocated buffers, and a hand-written backward through time;
* ``mgu``: a third-party cell that provides only its step (the Minimal Gated Unit of the test fixture plugin).

    python benchmarks/custom_cells.py                  # full: 15 rounds x 3 steps per variant
    python benchmarks/custom_cells.py --quick          # under two minutes: 5 rounds x 2 steps
    python benchmarks/custom_cells.py --smoke          # seconds: tiny sizes, checks that everything runs
    python benchmarks/custom_cells.py --compile 10     # also the step-only cell through torch.compile
    python benchmarks/custom_cells.py --precision auto # the workbench variants under precision=auto

With ``--precision auto`` (or bf16) the workbench variants train under that setting: the fused kernels in bfloat16
autocast where the CPU has it, and each step path in the precision it supports (the hand-written backward paths
fall back to float32, and say so); each row says which precision it trained in.  The plain loops stay the float32
loop a person would write, so "x fused" is then the speed against that loop.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "thirdparty_plugin"


# ---- the plain PyTorch references --------------------------------------------------------------------------

class PlainCharRNN(nn.Module):
    def __init__(self, kind: str, vocab: int, embed: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.rnn = (nn.LSTM if kind == "lstm" else nn.GRU)(embed, hidden)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x, state):
        y, state = self.rnn(self.embed(x), state)
        return self.head(y), state


def plain_loop(kind: str, task, args):
    """Truncated BPTT with the state carried and detached, clip, Adam: the loop anyone would write."""
    torch.manual_seed(0)
    V = task.sizes["vocab"]
    model = PlainCharRNN(kind, V, args.embed, args.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    batches = task.batches("train", args.batch, args.chunk)
    state = None

    def run(steps: int) -> float:
        nonlocal state
        t0 = time.perf_counter()
        for _ in range(steps):
            b = next(batches)
            if b["reset"] or state is None:
                state = None
            logits, state = model(b["tokens"], state)
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
            loss = loss_fn(logits.view(-1, V), b["targets"].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            float(loss.detach())
        return (time.perf_counter() - t0) / steps

    return run


# ---- the workbench variants -----------------------------------------------------------------------------------

def naive_sequence(cell):
    """``step(x[t])`` per timestep: the input product inside the loop and ``x[t]`` indexing (the slow way)."""
    def sequence(x, state):
        outs = []
        for t in range(x.shape[0]):
            h, state = cell.step(x[t], state)
            outs.append(h)
        return torch.stack(outs, 0), state
    return sequence


def workbench_trainer(registry, args, cell: str, fused: bool | None, path: str):
    from workbench.core.settings import template_project
    from workbench.core.training.trainer import Trainer

    settings = {"cell": cell, "layers": "1", "hidden_size": str(args.hidden), "embed_size": str(args.embed),
                "task.max_chars": str(args.max_chars)}
    if fused is not None:
        settings["rnn.cell.fused"] = "true" if fused else "false"
    project, _ = template_project(registry.template("char-lm"), settings, registry)
    project.train = dataclasses.replace(project.train, batch_size=args.batch, chunk_len=args.chunk,
                                        eval_every=0, sample_every=0, probe_every=0, steps=10 ** 9,
                                        threads=args.threads, seed=0, precision=args.precision)
    trainer = Trainer(project, registry)
    trainer.setup()
    cells = [c for _, c in trainer.model.recurrent_layers()]
    for c in cells:   # an instance attribute shadows the class's sequence(): the same weights, another path
        if path == "naive":
            c.sequence = naive_sequence(c)
        elif path == "plain":
            c.sequence = c.sequence_steps

    def run(steps: int) -> float:
        t0 = time.perf_counter()
        trainer.fit(steps=steps, final_eval=False)
        return (time.perf_counter() - t0) / steps

    return trainer, run


def compiled_step_only(trainer, block: int) -> tuple[float, callable]:
    """The step-only cell with ``Cell.compile_steps(block)``; returns the compile time and the timed runner."""
    cell = [c for _, c in trainer.model.recurrent_layers()][0]
    cell.compile_steps(block)
    t0 = time.perf_counter()
    trainer.fit(steps=1, final_eval=False)   # the first step compiles a block, forward and backward
    compile_s = time.perf_counter() - t0
    if not cell._compile_block:
        raise SystemExit("torch.compile failed on this machine (see the warning above); run without --compile")

    def run(steps: int) -> float:
        t0 = time.perf_counter()
        trainer.fit(steps=steps, final_eval=False)
        return (time.perf_counter() - t0) / steps

    return compile_s, run


# ---- main -----------------------------------------------------------------------------------------------------

def build_variants(registry, lstm_fused, args) -> tuple[dict[str, callable], dict[str, str]]:
    """The variants by name, and the precision each trained in."""
    trainer, run = lstm_fused
    task = trainer.task
    v = {"lstm: fused nn.LSTM, plain loop": plain_loop("lstm", task, args), "lstm: workbench, fused nn.LSTM": run}
    used = {"lstm: fused nn.LSTM, plain loop": "fp32", "lstm: workbench, fused nn.LSTM": trainer.precision.name}
    for name, cell, fused, path in (
            ("lstm: step path, naive (step(x[t]))", "lstm", False, "naive"),
            ("lstm: step path, plain (autograd)", "lstm", False, "plain"),
            ("lstm: step path, optimised", "lstm", False, "sequence")):
        t, v[name] = workbench_trainer(registry, args, cell, fused, path)
        used[name] = t.precision.name
    v["gru: fused nn.GRU, plain loop"] = plain_loop("gru", task, args)
    used["gru: fused nn.GRU, plain loop"] = "fp32"
    for name, cell, fused, path in (
            ("gru: workbench, fused nn.GRU", "gru", True, "sequence"),
            ("gru: step path, plain (autograd)", "gru", False, "plain"),
            ("gru: step path, optimised", "gru", False, "sequence"),
            ("mgu (step-only, 3rd party): plain", "seqwb-fixture-cells.mgu", None, "sequence")):
        t, v[name] = workbench_trainer(registry, args, cell, fused, path)
        used[name] = t.precision.name
    return v, used


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--steps", type=int, default=3, help="training steps per variant per round")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--chunk", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: the machine is shared; 0: all cores)")
    ap.add_argument("--max-chars", type=int, default=400_000, help="characters of the corpus to load")
    ap.add_argument("--quick", action="store_true", help="5 rounds x 2 steps (under two minutes)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, 1 round x 2 steps (seconds; for CI)")
    ap.add_argument("--compile", type=int, default=0, metavar="BLOCK",
                    help="also time the step-only cell with Cell.compile_steps(BLOCK): torch.compile in blocks "
                         "of BLOCK steps (compiling takes minutes)")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "auto", "bf16"),
                    help="the workbench variants' precision setting (the plain loops stay float32)")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.steps = 5, 2
    if args.smoke:
        args.rounds, args.steps, args.hidden, args.embed, args.batch, args.chunk = 1, 2, 16, 8, 4, 12
        args.max_chars = 20_000

    sys.path.insert(0, str(FIXTURE))          # the third-party cell, registered in code (no pip install needed)
    import seqwb_fixture_cells.plugin as fixture_plugin
    from workbench.plugin_system import discover
    registry = discover(extra=[("fixture-cells", fixture_plugin)])

    # the plain loops take their batches from a workbench task (same corpus, same batching)
    lstm_fused = workbench_trainer(registry, args, "lstm", True, "sequence")
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    variants, used = build_variants(registry, lstm_fused, args)
    compile_s = None
    if args.compile:
        # a fresh cache, so the compile time is what a user pays the first time (a warm cache saves most of it)
        import atexit
        import shutil
        import tempfile
        cache = tempfile.mkdtemp(prefix="seqwb-inductor-")
        atexit.register(shutil.rmtree, cache, True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        mgu_trainer, _ = workbench_trainer(registry, args, "seqwb-fixture-cells.mgu", None, "sequence")
        compile_s, variants[f"mgu (step-only, 3rd party): compiled/{args.compile}"] = \
            compiled_step_only(mgu_trainer, args.compile)
        used[f"mgu (step-only, 3rd party): compiled/{args.compile}"] = mgu_trainer.precision.name

    load = os.getloadavg()
    print(f"batch {args.batch}, chunk {args.chunk}, hidden {args.hidden}, embed {args.embed}, "
          f"{torch.get_num_threads()} thread(s), precision setting {args.precision}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for run in variants.values():     # warm-up: allocator, oneDNN primitives, the task's first batches
        run(1)

    names = list(variants)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            times[n].append(variants[n](args.steps))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{times[n][-1] * 1000:.0f}" for n in names) + " ms")
    med = {n: statistics.median(v) for n, v in times.items()}
    ref = {"lstm": "lstm: fused nn.LSTM, plain loop", "gru": "gru: fused nn.GRU, plain loop",
           "mgu": "lstm: fused nn.LSTM, plain loop"}

    print()
    print(f"{'variant':<45} {'':>5} {'ms/step':>8} {'x fused':>8}   [range over rounds]  "
          f"(medians of {args.rounds} rounds x {args.steps} steps)")
    rows = []
    for n in names:
        fused = times[ref[n.split()[0].rstrip(":")]]
        per_round = [f / t for f, t in zip(fused, times[n])]
        ratio = statistics.median(per_round)
        rows.append({"variant": n, "precision": used[n], "ms_per_step": med[n] * 1000, "fraction_of_fused": ratio,
                     "ms_per_round": [t * 1000 for t in times[n]], "fraction_per_round": per_round})
        print(f"{n:<45} {used[n]:>5} {med[n] * 1000:8.1f} {ratio:8.2f}   [{min(per_round):.2f} .. "
              f"{max(per_round):.2f}]")
    print("x fused = fused time / variant time, paired by round (1.00: as fast as torch's fused kernel; target >= 0.80 for the "
          "LSTM and GRU step paths; the step-only cell is compared with nn.LSTM of the same size)")
    if compile_s is not None:
        print(f"torch.compile: the first training step (compiling a block forward and backward) took "
              f"{compile_s:.1f} s")
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    result = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "threads": torch.get_num_threads(), "rows": rows, "compile_seconds": compile_s,
              "load_average": list(load)}
    if args.json:
        from workbench.atomic import atomic_write
        with atomic_write(args.json, "w") as fh:
            fh.write(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
