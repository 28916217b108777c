"""Fuzzed project files (issues 19 and 20): mutated copies of real project files (bit flips, truncations, bytes
inserted and cut, zip-directory damage, members swapped, forged JSON values, forged tensor headers, forged trainer
states) are opened; each must load or raise the project's own error, and opening must write nothing.  Those that
load with a checkpoint are then trained for a step: only the project's own errors may end that (optimizer metadata,
positions, random states and carried states from the file are checked at restore).

The normal run tries 600 files and trains 60 of them; ``SEQWB_FAULT_SCALE=full`` tries 10,000 and trains 1,500
(``python benchmarks/reliability.py``).
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import struct
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from tests.core.reliability_figures import count, record
from tests.core.test_projectfile import make_project, members_of
from tests.helpers import small_project, with_train, write_corpus
from workbench.core import projectfile as pf
from workbench.core.training.trainer import Trainer
from workbench.plugin_system import discover
from workbench.schema.errors import ProjectFileError, WorkbenchError

FILES = count(600, 10_000)
TRAINED = count(60, 1_500)
SECONDS_PER_CASE = 60


@pytest.fixture(scope="module")
def reg():
    return discover()


# ---- seeds --------------------------------------------------------------------------------------------------------

def _seeds(folder: Path, reg) -> dict[str, dict[str, bytes]]:
    """The members of three real files: a trained char-LM project (trainable), the same untrained, and the file
    format test's project with every field set."""
    write_corpus(folder)
    project = with_train(small_project(reg, **{"task.corpus": "corpus.txt", "hidden_size": "16", "layers": "1",
                                               "embed_size": "8"}), threads=1, log_every=1)
    trainer = Trainer(project, reg, base_dir=folder)
    trainer.fit(steps=2, final_eval=False)
    trainer.checkpoint()
    out = {}
    for name, p in (("trained", project), ("untrained", small_project(reg)), ("every-field", make_project())):
        path = folder / f"seed-{name}.seqwb"
        pf.save_project(p, path)
        out[name] = members_of(path)
        path.unlink()
    return out


# ---- mutations ----------------------------------------------------------------------------------------------------

def _zip(members: dict[str, bytes], fix: bool = True) -> bytes:
    """The zip of ``members`` with the manifest's checksums made to fit (a forged file that passes them)."""
    import io
    members = dict(members)
    if fix and pf.MANIFEST in members:
        try:
            doc = json.loads(members[pf.MANIFEST])
            for name, data in members.items():
                if isinstance(doc.get("members"), dict) and name in doc["members"]:
                    doc["members"][name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            members[pf.MANIFEST] = json.dumps(doc).encode()
        except (ValueError, AttributeError):
            pass
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _weird(rng: random.Random) -> Any:
    return rng.choice([None, True, -1, 0, 2 ** 63, -2 ** 70, 1e308, float("nan"), "x", "\x1b[2J", [], {}, [1, "a"],
                       {"a": None}, "9" * 400, [[[[]]]], 3.5, 10 ** 7])


def _forge_json(value: Any, rng: random.Random, depth: int = 0) -> Any:
    """``value`` with one part somewhere inside replaced by something of another type or size."""
    if isinstance(value, dict) and value and depth < 8 and rng.random() < 0.8:
        key = rng.choice(list(value))
        return {**value, key: _forge_json(value[key], rng, depth + 1)}
    if isinstance(value, list) and value and depth < 8 and rng.random() < 0.8:
        i = rng.randrange(len(value))
        return value[:i] + [_forge_json(value[i], rng, depth + 1)] + value[i + 1:]
    return _weird(rng)


def _forge_tensor_header(data: bytes, rng: random.Random) -> bytes:
    if len(data) < 8:
        return data
    n = int.from_bytes(data[:8], "little")
    try:
        header = json.loads(data[8:8 + n])
    except ValueError:
        return data
    keys = [k for k in header if k != "__metadata__"]
    if keys:
        spec = header[rng.choice(keys)]
        field = rng.choice(["dtype", "shape", "data_offsets"])
        spec[field] = rng.choice([_weird(rng), [0, 2 ** 40], [2 ** 31, 2 ** 31], "F64", [10 ** 6, 10 ** 6], [-1]])
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data[8 + n:]


def _mutations() -> list[tuple[str, Callable[[dict[str, bytes], bytes, random.Random], bytes]]]:
    def flip(members, raw, rng):
        data = bytearray(raw)
        for _ in range(rng.randint(1, 20)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        return bytes(data)

    def truncate(members, raw, rng):
        return raw[:rng.randrange(len(raw))]

    def splice(members, raw, rng):
        i = rng.randrange(len(raw))
        if rng.random() < 0.5:
            return raw[:i] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))) + raw[i:]
        return raw[:i] + raw[i + rng.randint(1, 64):]

    def directory(members, raw, rng):
        data = bytearray(raw)
        start = data.rfind(b"PK\x01\x02")
        start = data.find(b"PK\x01\x02") if start < 0 else data.find(b"PK\x01\x02")
        if start < 0:
            return flip(members, raw, rng)
        for _ in range(rng.randint(1, 6)):       # sizes, offsets, name lengths, compression methods of entries
            i = rng.randrange(start, len(data) - 4)
            struct.pack_into("<I", data, i, rng.choice([0, 0xFFFFFFFF, rng.randrange(1 << 32), 12, 14]))
        return bytes(data)

    def swap(members, raw, rng):
        names = list(members)
        a, b = rng.sample(names, 2)
        swapped = dict(members)
        swapped[a], swapped[b] = members[b], members[a]
        return _zip(swapped, fix=rng.random() < 0.7)

    def forge_json(members, raw, rng):
        names = [n for n in members if n.endswith(".json")]
        name = rng.choice(names)
        try:
            doc = json.loads(members[name])
        except ValueError:
            return raw
        forged = dict(members)
        forged[name] = json.dumps(_forge_json(doc, rng)).encode()
        return _zip(forged, fix=name != pf.MANIFEST or rng.random() < 0.5)

    def forge_tensors(members, raw, rng):
        names = [n for n in members if n.endswith(".safetensors")]
        name = rng.choice(names)
        forged = dict(members)
        forged[name] = _forge_tensor_header(members[name], rng)
        return _zip(forged)

    def forge_trainer_state(members, raw, rng):
        if pf.TRAINER_STATE not in members:
            return forge_json(members, raw, rng)
        doc = json.loads(members[pf.TRAINER_STATE])
        target = rng.choice(["step", "epoch", "optimizer_meta", "trainer_state", "trainer_state", "trainer_state"])
        doc[target] = _forge_json(doc[target], rng) if isinstance(doc.get(target), (dict, list)) else _weird(rng)
        forged = dict(members)
        forged[pf.TRAINER_STATE] = json.dumps(doc).encode()
        return _zip(forged)

    return [("bit flips", flip), ("truncation", truncate), ("bytes inserted or cut", splice),
            ("zip-directory damage", directory), ("members swapped", swap), ("forged JSON", forge_json),
            ("forged tensor header", forge_tensors), ("forged trainer state", forge_trainer_state)]


# ---- the run -----------------------------------------------------------------------------------------------------

class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.iterdir()}


def test_fuzzed_files_load_or_give_the_projects_own_error_and_write_nothing(tmp_path, reg):
    seeds = _seeds(tmp_path, reg)
    raws = {name: _zip(members, fix=False) for name, members in seeds.items()}
    mutations = _mutations()
    rng = random.Random(19)
    outcomes: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    foreign: list[str] = []
    writes = 0
    trained = Counter()
    train_foreign: list[str] = []
    torch.set_num_threads(1)
    previous = signal.signal(signal.SIGALRM, _alarm) if hasattr(signal, "SIGALRM") else None
    try:
        for case in range(FILES):
            seed = rng.choice(list(seeds))
            kind, mutate = rng.choice(mutations)
            by_kind[kind] += 1
            path = tmp_path / "fuzz.seqwb"
            path.write_bytes(mutate(seeds[seed], raws[seed], rng))
            before = _snapshot(tmp_path)
            project = None
            if previous is not None:
                signal.alarm(SECONDS_PER_CASE)
            try:
                project = pf.load_project(path, registry=reg)
                outcomes["loaded"] += 1
            except ProjectFileError:
                outcomes["refused"] += 1
            except _Timeout:
                foreign.append(f"case {case} ({kind} of {seed}): no answer within {SECONDS_PER_CASE} s")
            except Exception as exc:  # noqa: BLE001 - what this test counts
                foreign.append(f"case {case} ({kind} of {seed}): {type(exc).__name__}: {exc}")
            finally:
                if previous is not None:
                    signal.alarm(0)
            if _snapshot(tmp_path) != before:
                writes += 1
            if (project is not None and seed == "trained" and project.checkpoint is not None
                    and sum(trained.values()) < TRAINED):
                if previous is not None:
                    signal.alarm(SECONDS_PER_CASE)
                try:
                    trainer = Trainer(project, reg, base_dir=tmp_path)
                    trainer.fit(steps=1, final_eval=False)
                    trained["trained on" + (" with a notice" if trainer.notices else "")] += 1
                except WorkbenchError:
                    trained["refused with the project's own error"] += 1
                except _Timeout:
                    train_foreign.append(f"case {case} ({kind}): training gave no answer within "
                                         f"{SECONDS_PER_CASE} s")
                except Exception as exc:  # noqa: BLE001 - what this test counts
                    train_foreign.append(f"case {case} ({kind}): {type(exc).__name__}: {exc}")
                finally:
                    if previous is not None:
                        signal.alarm(0)
    finally:
        if previous is not None:
            signal.signal(signal.SIGALRM, previous)
    print(f"\n{FILES} fuzzed files: {dict(outcomes)}; by mutation {dict(by_kind)}; trained {dict(trained)}")
    assert foreign == [], foreign[:10]
    assert train_foreign == [], train_foreign[:10]
    assert writes == 0
    assert outcomes["loaded"] > 0 and outcomes["refused"] > FILES // 4
    record("fuzzed-files", group="Hostile files", times=FILES,
           tried=f"{FILES:,} mutated copies of three real project files ({', '.join(sorted(by_kind))}); each opened "
                 f"with the plugins installed, and the {sum(trained.values()):,} of the trained project's that "
                 f"loaded with a checkpoint trained for a step",
           result=f"{outcomes['loaded']:,} loaded, {outcomes['refused']:,} refused with ProjectFileError; "
                  f"{len(foreign)} other exceptions; {writes} writes. Training: "
                  + ", ".join(f"{n:,} {what}" for what, n in sorted(trained.items()))
                  + f"; {len(train_foreign)} other exceptions",
           loaded=outcomes["loaded"], refused=outcomes["refused"], other_exceptions=len(foreign), writes=writes,
           trained=sum(trained.values()), train_other_exceptions=len(train_foreign),
           **{f"mutation_{k.replace(' ', '_')}": v for k, v in by_kind.items()})
