"""The hidden-unit recorder: characters per second, 20,000 characters through a layer of 512 LSTM units.

What is timed is :meth:`workbench.core.recording.Recorder.record` — what the window's Record button runs on its worker
thread and what ``seqwb record`` runs: the character LM (embedding 64 -> 1 x LSTM ``--units`` -> linear, untrained:
the values do not change the work) reads the validation text, keeping h, c and the four gates of every step
(``[T, 512]`` float32 each, 6 x 41 MB at 20,000 characters), then labels the tokens.  One intra-op thread, as the
recorder sets it.  By default the recorder reads the text in chunks of 256 characters: ``torch.nn.LSTM`` gives every
h_t of a chunk in one call, and the gates and c_t are recomputed from x_t and h_{t-1} for the whole chunk at once.

Three references, alternated with it round by round:

- **per-step recorder**: the same ``Recorder.record`` with ``path="steps"``: one character at a time through the
  model's per-step path (``step_graph`` with a trace), the recorder before the whole-chunk path, which it still
  uses for models whose blocks cannot run a chunk at once;
- **plain loop**: the same sizes written by hand — embedding row, two matrix products, the gate nonlinearities, the
  head — storing the same six quantities into preallocated buffers: the floor for a per-step recorder in PyTorch;
- **fused forward**: ``torch.nn.LSTM`` over the whole text in one call, keeping only h: how fast the model reads
  when nothing per step is kept.

A fifth side records the same project set to ``precision = bf16``: the recorder reads text in the project's
precision (under bfloat16 autocast, what ``auto`` picks on a CPU with native bfloat16).

The two float32 recorder sides record the same weights; the script checks that their recordings agree (the largest
difference of any value is printed, and must stay under 1e-5).

    python benchmarks/recorder_speed.py              # full: 20,000 characters x 512 units, 3 rounds
    python benchmarks/recorder_speed.py --quick      # 3,000 characters x 512 units, 3 rounds (under 2 minutes)
    python benchmarks/recorder_speed.py --smoke      # 300 characters x 32 units, 1 round: checks that it runs
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _results beside it, also when imported
from _results import figures_writer  # noqa: E402


class PlainRecorder:
    """A hand-written LSTM LM stepping one character at a time and keeping h, c, i, f, g, o of every step."""

    def __init__(self, vocab: int, embed: int, hidden: int):
        g = torch.Generator().manual_seed(0)
        self.emb = torch.randn(vocab, embed, generator=g) * 0.1
        self.w_ih = torch.randn(4 * hidden, embed, generator=g) * 0.05
        self.w_hh = torch.randn(4 * hidden, hidden, generator=g) * 0.05
        self.b = torch.zeros(4 * hidden)
        self.w_out = torch.randn(vocab, hidden, generator=g) * 0.05
        self.b_out = torch.zeros(vocab)
        self.hidden = hidden

    @torch.no_grad()
    def record(self, ids: list[int]) -> dict[str, torch.Tensor]:
        T, H = len(ids), self.hidden
        bufs = {q: torch.empty(T, H) for q in ("h", "c", "i", "f", "g", "o")}
        h, c = torch.zeros(1, H), torch.zeros(1, H)
        xp = torch.nn.functional.linear(self.emb[torch.tensor(ids)], self.w_ih, self.b)  # all inputs at once
        for t, x_t in enumerate(xp.unbind(0)):
            z = torch.addmm(x_t.unsqueeze(0), h, self.w_hh.t())
            i, f, g, o = z.chunk(4, 1)
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            c = f * c + i * g
            h = o * torch.tanh(c)
            torch.addmm(self.b_out, h, self.w_out.t())        # the head's logits, as the model's step computes
            for q, v in (("h", h), ("c", c), ("i", i), ("f", f), ("g", g), ("o", o)):
                bufs[q][t].copy_(v[0])
        return bufs


write_figures = figures_writer(__file__)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3,000 characters (under 2 minutes)")
    ap.add_argument("--smoke", action="store_true", help="300 characters x 32 units, 1 round: checks that it runs")
    ap.add_argument("--chars", type=int, default=20000)
    ap.add_argument("--units", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", nargs="?", const="-", metavar="FILE",
                    help="write the figures as JSON to FILE (alone: print them instead of the table)")
    args = ap.parse_args(argv)
    load_start = os.getloadavg()[0]
    chars, units, rounds = args.chars, args.units, args.rounds
    if args.quick:
        chars = 3000
    if args.smoke:
        chars, units, rounds = 300, 32, 1
    torch.set_num_threads(1)

    from workbench.core import recording
    from workbench.core.settings import template_project
    from workbench.plugin_system import discover
    reg = discover()
    project, _ = template_project(reg.template("char-lm"), {
        "hidden_size": str(units), "layers": "1", "task.max_chars": str(max(20_000, 25 * chars)),
        "task.valid_fraction": "0.2", "precision": "fp32"}, reg)
    # the same project trained in bfloat16: the recorder reads text in the project's precision
    import dataclasses
    reduced = dataclasses.replace(project, train=dataclasses.replace(project.train, precision="bf16"))
    recorder = recording.Recorder(reg)
    text = recorder.sample_text(project, ROOT, chars)
    loaded = recorder.session.load(project, ROOT)           # build once, as the window's first Record does
    task = loaded.task
    ids = task.encode(text)
    embed = int(project.graph.nodes["embed"].params.get("embed_size", 64))
    plain = PlainRecorder(task.sizes["vocab"], embed, units)
    fused = torch.nn.LSTM(embed, units)
    emb = torch.nn.Embedding(task.sizes["vocab"], embed)

    recordings: dict[str, dict] = {}

    def run_recorder(path: str, bf16: bool = False):
        def run():
            rec = recorder.record(reduced if bf16 else project, text, ROOT, path=path)
            assert rec["layers"]["rnn.0"]["h"].shape == (len(ids), units)
            assert rec["meta"]["precision"] == ("bf16" if bf16 else "fp32")
            recordings[path + (" bf16" if bf16 else "")] = rec["layers"]
        return run

    def run_plain():
        plain.record(ids)

    @torch.no_grad()
    def run_fused():
        x = emb(torch.tensor(ids).view(-1, 1))
        fused(x)

    sides = [("recorder (Recorder.record)", run_recorder("auto")),
             ("per-step recorder (path=steps)", run_recorder("steps")),
             ("plain per-step loop", run_plain), ("fused nn.LSTM, nothing kept", run_fused),
             ("recorder, precision = bf16", run_recorder("auto", bf16=True))]
    times: dict[str, list[float]] = {name: [] for name, _ in sides}
    cpu: dict[str, list[float]] = {name: [] for name, _ in sides}
    for _ in range(rounds):
        for name, fn in sides:
            t0, c0 = time.perf_counter(), time.thread_time()
            fn()
            cpu[name].append(time.thread_time() - c0)
            times[name].append(time.perf_counter() - t0)
    res = {"chars": len(text), "steps": len(ids), "units": units, "rounds": rounds,
           "seconds": {k: statistics.median(v) for k, v in times.items()},
           "cpu_seconds": {k: statistics.median(v) for k, v in cpu.items()}}
    res["chars_per_s"] = {k: len(text) / v for k, v in res["seconds"].items()}
    res["cpu_chars_per_s"] = {k: len(text) / v for k, v in res["cpu_seconds"].items()}
    res["max_abs_diff"] = max(float(abs(recordings["auto"][layer][q] - values).max())
                              for layer, qs in recordings["steps"].items() for q, values in qs.items())
    if res["max_abs_diff"] > 1e-5:
        print(f"the two recorder paths disagree by {res['max_abs_diff']:.3g}", file=sys.stderr)
        return 1
    if args.json:
        write_figures(args.json, res, load_start, argv)
        if args.json == "-":
            return 0
    mb = 6 * len(ids) * units * 4 / 1e6
    print(f"torch {torch.__version__}, 1 thread; {len(text):,} characters x {units} units (1 LSTM layer; "
          f"{mb:,.0f} MB of h, c and gates); median of {rounds} alternating rounds")
    print(f"  {'':<32} {'wall s':>8} {'chars/s':>10}   {'CPU s':>8} {'chars/s':>10}")
    for name, _ in sides:
        print(f"  {name:<32} {res['seconds'][name]:8.2f} {res['chars_per_s'][name]:10,.0f}   "
              f"{res['cpu_seconds'][name]:8.2f} {res['cpu_chars_per_s'][name]:10,.0f}")
    sec = res["seconds"]
    r = sec["recorder (Recorder.record)"]
    print(f"  recorder / per-step recorder time: {r / sec['per-step recorder (path=steps)']:.2f}")
    print(f"  recorder / plain loop time: {r / sec['plain per-step loop']:.2f}")
    print(f"  recorder / fused nn.LSTM time: {r / sec['fused nn.LSTM, nothing kept']:.2f}")
    print(f"  recorder in bf16 / in fp32 time: {sec['recorder, precision = bf16'] / r:.2f}")
    print(f"  largest difference between the two recorder paths: {res['max_abs_diff']:.2g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
