"""Beam search speed: milliseconds per decoding step at widths 1, 5 and 10, against greedy decoding and against a
naive beam search that loops over its hypotheses in Python.

Two models, untrained (the weights do not change the amount of work): the char-LM template (embedding 64 ->
2 x LSTM 256 -> linear, on the Python standard library's characters) and the seq2seq-attention template (LSTM
encoder -> Luong-attention LSTM decoder, date normalisation).  All decoders go through the project's real
``model.step`` and ``task.prime``; the workbench's decoders are the registered ``greedy`` and ``beam`` plugins,
called through :func:`workbench.core.decode.run_decoder` as the CLI and the window call them.

Every decode runs exactly ``--steps`` steps: the end-of-sequence token is switched off (a task proxy with
``eos_id = None``), so an untrained model neither stops after one token nor runs on, and the per-step figure is
(whole decode, prime included) / steps.  The beam search keeps its default ``topk = 5`` next-token lists for the
tree view (what ``seqwb decode --decoder beam`` does); ``beam 10, topk 0`` shows the search alone.  The search
keeps its tree as tensors and builds the nodes only when something reads them (``LazySearchTree``); ``beam 10 +
tree`` also builds them and turns them into JSON, which ``seqwb decode`` and the decoding view do every time (they
make a search document); a script that only wants the text (BLEU over a test set) does not.

The naive baseline (:func:`naive_beam_search`) is the beam search one writes first: every hypothesis carries its own
batch-1 state, and every step calls the model once per hypothesis, takes each one's top-K tokens, sorts the K x K
candidates in Python and keeps the best K.  It returns the same best hypothesis as the batched search (checked),
unless two candidates tie exactly in float32 somewhere: an untrained model's near-uniform scores do that now and
then, the two searches may then keep different ones of the pair, and their best scores differ in the fifth or
sixth digit (the script says which happened).

Decoding runs in float32 whatever a project trains in.  ``greedy, bf16`` and ``beam 10, bf16`` run the same
decoders under bfloat16 autocast, which is what they would cost in the precision ``auto`` picks on this CPU.

Sides alternate (greedy, beam 1, beam 5, beam 10, naive 10, greedy, ...) so that a change in the machine's load hits
all of them alike; the figures are medians over ``--rounds``.

    python benchmarks/beam_speed.py                # full: 15 rounds x 100 steps (char-LM), 40 steps (seq2seq)
    python benchmarks/beam_speed.py --quick        # 5 rounds x 60 / 40 steps (well under 2 minutes)
    python benchmarks/beam_speed.py --smoke        # tiny models, 1 round: checks the script works (seconds)
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


class NoEosTask:
    """The wrapped task with ``eos_id = None``: every decoder then runs to ``max_len`` (a fixed number of steps)."""

    eos_id = None

    def __init__(self, task):
        self._task = task

    def __getattr__(self, name):
        return getattr(self._task, name)


@torch.no_grad()
def naive_beam_search(model, task, width: int, max_len: int, prompt: str, device=None) -> tuple[list[int], float]:
    """Beam search with a Python loop over hypotheses: one batch-1 ``model.step`` per hypothesis per step.

    Same scoring as the batched search with ``eos`` off: hypotheses compete on their summed log-probability.
    Returns the best hypothesis's tokens and score.
    """
    logits, state, _ = task.prime(model, prompt, device, 1)
    # a hypothesis: (score, tokens, logits for its next token, its state)
    beams = [(0.0, [], logits, state)]
    for step in range(max_len):
        candidates = []
        for score, tokens, logits_h, state_h in beams:
            logp = torch.log_softmax(logits_h.float(), -1)[0]
            values, index = logp.topk(width)
            for v, tok in zip(values.tolist(), index.tolist()):
                candidates.append((score + v, tokens, tok, state_h))
        candidates.sort(key=lambda c: c[0], reverse=True)
        chosen = candidates[:width]
        if step == max_len - 1:   # the last step's tokens need no model call
            return chosen[0][1] + [chosen[0][2]], chosen[0][0]
        beams = []
        for score, tokens, tok, state_h in chosen:
            tok_t = torch.tensor([tok], dtype=torch.long, device=logits.device)
            logits_h, new_state = model.step(tok_t, state_h, task.input_port(), task.output_port())
            beams.append((score, tokens + [tok], logits_h, new_state))
    return beams[0][1], beams[0][0]


def build(reg, template: str, settings: dict[str, str]):
    """(model, task, prompt) of a template, untrained, built as the trainer builds it (seeded)."""
    from workbench.core.build import build_model
    from workbench.core.settings import template_project
    from workbench.schema.params import params_from_dict
    project, _ = template_project(reg.template(template), settings, reg)
    spec = reg.task(project.task.id)
    task = spec.load()(params_from_dict(spec.params, project.task.params, "task"), ROOT)
    task.prepare()
    torch.manual_seed(0)
    model = build_model(project.graph, reg, spec, task.sizes).eval()
    prompt = project.decode.prompt or task.sample_prompt() or ""
    params = sum(p.numel() for p in model.parameters())
    return model, task, prompt, params


def bench_model(reg, name: str, template: str, settings: dict[str, str], steps: int, rounds: int,
                widths: list[int], naive_width: int) -> dict:
    from workbench.core.decode import run_decoder
    model, task, prompt, n_params = build(reg, template, settings)
    proxy = NoEosTask(task)
    greedy_spec, beam_spec = reg.decoder("greedy"), reg.decoder("beam")

    def greedy():
        r = run_decoder(greedy_spec, model, proxy, {"max_len": steps}, prompt=prompt)
        assert len(r.tokens) == steps
        return r

    def beam(width: int, topk: int = 5, tree: bool = False):
        def run():
            r = run_decoder(beam_spec, model, proxy, {"width": width, "n_best": 1, "max_len": steps, "alpha": 0.0,
                                                      "topk": topk}, prompt=prompt)
            assert len(r.tokens) == steps
            if tree:   # what the decoding view and --tree pay on top: the tree's nodes built and made JSON
                r.tree.to_json()
            return r
        return run

    def naive():
        return naive_beam_search(model, proxy, naive_width, steps, prompt)

    def in_bf16(fn):
        """``fn`` under bfloat16 autocast: what decoding would cost in the precision ``auto`` trains in here."""
        def run():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return fn()
        return run

    sides = [("greedy", greedy)] + [(f"beam {w}", beam(w)) for w in widths] + \
            [(f"beam {max(widths)}, topk 0", beam(max(widths), 0)),
             (f"beam {max(widths)} + tree", beam(max(widths), 5, True)), (f"naive beam {naive_width}", naive),
             ("greedy, bf16", in_bf16(greedy)), (f"beam {max(widths)}, bf16", in_bf16(beam(max(widths))))]
    # the naive loop finds the batched search's best hypothesis (same scores; ties aside)
    batched = beam(naive_width)()
    naive_tokens, naive_score = naive()
    if naive_tokens == batched.tokens:
        check = "same best hypothesis"
    elif abs(naive_score - batched.score) <= 1e-4 * abs(naive_score):
        check = (f"best hypotheses differ after a float32 tie (scores {naive_score:.4f} vs "
                 f"{batched.score:.4f})")
    else:
        check = f"MISMATCH: best scores {naive_score:.4f} (naive) vs {batched.score:.4f} (batched)"
        print(f"  {check}")
    for _, fn in sides:   # warm-up: oneDNN primitives, allocator
        fn()
    wall: dict[str, list[float]] = {label: [] for label, _ in sides}
    cpu: dict[str, list[float]] = {label: [] for label, _ in sides}
    for _ in range(rounds):
        for label, fn in sides:
            t0, c0 = time.perf_counter(), time.thread_time()
            fn()
            cpu[label].append((time.thread_time() - c0) * 1000 / steps)
            wall[label].append((time.perf_counter() - t0) * 1000 / steps)
    med = {label: statistics.median(v) for label, v in wall.items()}
    med_cpu = {label: statistics.median(v) for label, v in cpu.items()}
    top = max(widths)
    out = {"model": name, "params": n_params, "vocab": task.sizes.get("vocab") or task.sizes.get("target_vocab"),
           "steps": steps, "rounds": rounds, "ms_per_step": med, "cpu_ms_per_step": med_cpu,
           "naive_check": check}
    for kind, m in (("", med), ("cpu_", med_cpu)):
        out[f"{kind}beam{top}_over_greedy"] = m[f"beam {top}"] / m["greedy"]
        out[f"{kind}beam{top}_topk0_over_greedy"] = m[f"beam {top}, topk 0"] / m["greedy"]
        out[f"{kind}beam{top}_tree_over_greedy"] = m[f"beam {top} + tree"] / m["greedy"]
        out[f"{kind}naive{naive_width}_over_beam{naive_width}"] = (m[f"naive beam {naive_width}"]
                                                                  / m[f"beam {naive_width}"])
        out[f"{kind}greedy_bf16_over_fp32"] = m["greedy, bf16"] / m["greedy"]
        out[f"{kind}beam{top}_bf16_over_fp32"] = m[f"beam {top}, bf16"] / m[f"beam {top}"]
    return out


write_figures = figures_writer(__file__)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 rounds, fewer steps (< 2 minutes)")
    ap.add_argument("--smoke", action="store_true", help="tiny models, 1 round, 5 steps: checks that it runs")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (decoding one step at a time "
                                                            "gains nothing from more on 2 cores)")
    ap.add_argument("--json", nargs="?", const="-", metavar="FILE",
                    help="write the figures as JSON to FILE (alone: print them instead of the table)")
    args = ap.parse_args(argv)
    load_start = os.getloadavg()[0]
    torch.set_num_threads(args.threads)
    from workbench.plugin_system import discover
    reg = discover()

    lm = {"task.max_chars": "300000"}
    s2s = {"task.demo_train": "2000", "task.demo_valid": "50", "task.demo_test": "50"}
    lm_steps, s2s_steps, rounds = 100, 40, args.rounds
    if args.quick:
        lm_steps, s2s_steps, rounds = 60, 40, 5
    if args.smoke:
        lm = {**lm, "hidden_size": "16", "embed_size": "8", "task.max_chars": "20000"}
        s2s = {**s2s, "hidden_size": "16", "embed_size": "8", "task.demo_train": "100"}
        lm_steps, s2s_steps, rounds = 5, 5, 1
    results = [
        bench_model(reg, "char-LM (2 x LSTM 256)" if not args.smoke else "char-LM (smoke)", "char-lm", lm,
                    lm_steps, rounds, [1, 5, 10], 10),
        bench_model(reg, "seq2seq-attention (LSTM 128)" if not args.smoke else "seq2seq (smoke)",
                    "seq2seq-attention", s2s, s2s_steps, rounds, [1, 5, 10], 10),
    ]
    if args.json:
        write_figures(args.json, results, load_start, argv)
        if args.json == "-":
            return 0
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); ms per decoding step, median of "
          f"{rounds} alternating rounds; wall clock and this thread's CPU time (the machine is shared)")
    for res in results:
        print(f"\n{res['model']}: {res['params']:,} parameters, vocabulary {res['vocab']}, {res['steps']} steps")
        print(f"  {'':<20} {'wall ms':>8} {'x greedy':>9}   {'CPU ms':>8} {'x greedy':>9}")
        g, gc = res["ms_per_step"]["greedy"], res["cpu_ms_per_step"]["greedy"]
        for label, ms in res["ms_per_step"].items():
            c = res["cpu_ms_per_step"][label]
            print(f"  {label:<20} {ms:8.3f} {ms / g:9.2f}   {c:8.3f} {c / gc:9.2f}")
        print(f"  beam 10 / greedy:           {res['beam10_over_greedy']:.2f} wall, "
              f"{res['cpu_beam10_over_greedy']:.2f} CPU  (target <= 2; topk 0: {res['beam10_topk0_over_greedy']:.2f} / "
              f"{res['cpu_beam10_topk0_over_greedy']:.2f}; tree built: {res['beam10_tree_over_greedy']:.2f} / "
              f"{res['cpu_beam10_tree_over_greedy']:.2f})")
        print(f"  bf16 autocast / float32:    greedy {res['greedy_bf16_over_fp32']:.2f}, beam 10 "
              f"{res['beam10_bf16_over_fp32']:.2f} wall (below 1: faster in bfloat16)")
        print(f"  naive 10 / beam 10:         {res['naive10_over_beam10']:.2f} wall, "
              f"{res['cpu_naive10_over_beam10']:.2f} CPU  (target >= 5; naive vs batched: {res['naive_check']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
