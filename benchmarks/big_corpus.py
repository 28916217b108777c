"""Train the char LM on a huge text file through the CLI and report peak memory and the vocabulary-scan time.

    python benchmarks/big_corpus.py            # 2 GB corpus in /tmp (written once, reused)
    python benchmarks/big_corpus.py --quick    # 200 MB
    python benchmarks/big_corpus.py 500M --steps 10

The corpus is generated (mostly ASCII words and Python-like lines, with a UTF-8 paragraph every 64 MB so both
decoding paths run).  `seqwb train` runs as a child process; its peak RSS is ru_maxrss of that child (os.wait4).
The same command on a 1 MB corpus gives the baseline: with a streamed corpus the difference stays small, where
reading the whole file into memory would cost several times the file size.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _results beside it, also when imported
from _results import figures_writer  # noqa: E402

UTF8_PARAGRAPH = "Ünïcødé: naïve café, Größe, 東京, ελληνικά, русский — “quotes” … ✓\n"
MODEL = ["--set", "hidden_size=128", "--set", "layers=1", "--set", "embed_size=32"]
TRAIN = ["--set", "threads=1", "--set", "batch_size=32", "--set", "chunk_len=64", "--set", "eval_every=0",
         "--set", "sample_every=0", "--set", "probe_every=0", "--set", "eval_batches=2", "--set", "log_every=1",
         "--set", "checkpoint_every=0"]


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMG]?)B?", text.strip().upper())
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 2G, 200M)")
    return int(float(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)])


def make_block(seed: int, size: int = 1 << 20) -> bytes:
    """About ``size`` bytes of ASCII text: sentences of pseudo-words and Python-looking lines."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "ra", "tu", "se", "vo", "pi", "da", "qu", "ex", "th", "an", "re"]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(3000)]
    out: list[str] = []
    total = 0
    while total < size:
        if rng.random() < 0.3:
            name = rng.choice(words)
            line = f"def {name}(x, y={rng.randint(0, 99)}):\n    return '{rng.choice(words)}' + str(x)  # {name}\n"
        else:
            line = " ".join(rng.choice(words) for _ in range(rng.randint(5, 16))).capitalize() + ".\n"
        out.append(line)
        total += len(line)
    return "".join(out).encode("ascii")[:size]


def write_corpus(path: Path, size: int) -> float:
    """Write ``size`` bytes (if the file is not there already with that size); the seconds it took."""
    if path.exists() and path.stat().st_size == size:
        return 0.0
    t0 = time.perf_counter()
    blocks = [make_block(seed) for seed in range(8)]
    utf8 = UTF8_PARAGRAPH.encode("utf-8")
    tmp = path.with_suffix(".partial")
    written = 0
    with open(tmp, "wb") as fh:
        i = 0
        while written < size:
            data = blocks[i % len(blocks)]
            if i % 64 == 0:
                data = utf8 + data[len(utf8):]
            data = data[:size - written]
            if written + len(data) == size and len(data) > len(utf8):
                data = data[:-1] + b"\n"
            fh.write(data)
            written += len(data)
            i += 1
    os.replace(tmp, path)
    return time.perf_counter() - t0


def run_cli(args: list[str]) -> tuple[int, str, str, dict[str, float], float, int]:
    """Run ``seqwb ARGS`` as a child; (exit code, stdout, stderr, stage end times, seconds, peak RSS in KiB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "workbench", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    stages: dict[str, float] = {}
    err_lines = []
    for line in proc.stderr:  # progress lines arrive while the corpus is read
        err_lines.append(line)
        m = re.search(r"reading data: (.+?)\s+(\d+)%", line)
        if m:
            now = time.perf_counter() - t0
            stages.setdefault(m.group(1) + " start", now)
            if m.group(2) == "100":
                stages[m.group(1)] = now
            print(f"  [{now:7.1f}s] {line.strip()}", flush=True)
    out = proc.stdout.read()
    # wait4: the resource usage of this one child (getrusage(RUSAGE_CHILDREN) is the largest of all children)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - t0
    return code, out, "".join(err_lines), stages, elapsed, usage.ru_maxrss


def train(corpus: Path, size: int, steps: int, folder: Path) -> dict[str, float]:
    project = folder / f"{corpus.stem}.seqwb"
    subprocess.run([sys.executable, "-m", "workbench", "new", "char-lm", "-o", str(project), "--force",
                    "--set", f"task.corpus={corpus}", "--set", f"task.max_chars={size + 1}", *MODEL],
                   check=True, capture_output=True)
    code, out, err, stages, elapsed, peak = run_cli(["train", str(project), "--steps", str(steps), *TRAIN])
    if code != 0:
        sys.exit(f"seqwb train failed ({code}):\n{err}")
    last = out.strip().splitlines()[-1]
    print(f"  {last}")
    return {"peak_rss_mib": peak / 1024, "seconds": elapsed, **stages}


write_figures = figures_writer(__file__)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("size", nargs="?", type=parse_size, default=parse_size("2G"), help="corpus size (default 2G)")
    ap.add_argument("--quick", action="store_true", help="200 MB instead")
    ap.add_argument("--steps", type=int, default=5, help="training steps (default 5)")
    ap.add_argument("--folder", type=Path, default=Path("/tmp/seqwb-big-corpus"))
    ap.add_argument("--delete", action="store_true", help="delete the generated corpus afterwards")
    ap.add_argument("--json", nargs="?", const="-", metavar="FILE",
                    help="write the figures as JSON to FILE (alone: print them after the table)")
    args = ap.parse_args()
    load_start = os.getloadavg()[0]
    size = parse_size("200M") if args.quick else args.size
    args.folder.mkdir(parents=True, exist_ok=True)
    big = args.folder / f"corpus-{size >> 20}M.txt"
    small = args.folder / "corpus-1M.txt"
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
          f"{os.cpu_count()} CPUs")
    t = write_corpus(big, size)
    write_corpus(small, 1 << 20)
    print(f"corpus {big}: {size / 1e6:,.0f} MB" + (f" (written in {t:.1f}s)" if t else " (reused)"))

    print("baseline: 1 MB corpus")
    base = train(small, 1 << 20, args.steps, args.folder)
    print(f"big: {size / 1e6:,.0f} MB corpus")
    res = train(big, size, args.steps, args.folder)
    scan = res.get("vocabulary scan", float("nan")) - res.get("counting characters", float("nan"))
    encode = res.get("encoding", float("nan")) - res.get("vocabulary scan", float("nan"))
    print()
    print(f"corpus size                 {size / 1e6:12,.0f} MB")
    print(f"peak RSS, 1 MB corpus        {base['peak_rss_mib']:12,.0f} MiB")
    print(f"peak RSS, big corpus         {res['peak_rss_mib']:12,.0f} MiB   "
          f"(+{res['peak_rss_mib'] - base['peak_rss_mib']:,.0f} MiB; {res['peak_rss_mib'] * 1048576 / size:.3f} x "
          f"the file size)")
    print(f"counting pass               {res.get('counting characters', float('nan')):12.1f} s after start")
    print(f"vocabulary scan             {scan:12.1f} s")
    print(f"encoding pass               {encode:12.1f} s")
    print(f"whole run ({args.steps} steps)        {res['seconds']:12.1f} s   (1 MB: {base['seconds']:.1f} s)")
    print(f"load average at the end {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    if args.json:
        write_figures(args.json, {"size_bytes": size, "steps": args.steps, "small": base, "big": res,
                                  "scan_s": scan, "encode_s": encode}, load_start, None)
    if args.delete:
        big.unlink()


if __name__ == "__main__":
    main()
