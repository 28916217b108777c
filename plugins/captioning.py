"""Image captioning: generated "shapes" images, or user-supplied feature vectors with a captions file.

Generated data: ``image_size`` x ``image_size`` RGB images drawn with numpy, one or two coloured shapes
(circle, square, triangle) on a noisy dark background, and a caption that the picture fixes exactly:
"a red circle", or "a red circle above a blue square" — with two shapes, the one whose (colour, shape) comes
first in a fixed order is named first, and the relation (above / below / left of / right of) follows from where
the shapes are, so a caption is a function of its image.

User data: ``features_file`` is an ``.npz`` (read with ``allow_pickle=False``) with a ``features`` array
``[N, D]``, and ``captions_file`` has N lines, caption i describing row i.  Validation and test pairs are the
last ``valid_fraction`` / ``test_fraction`` of them.

Batches: ``tokens [T, B]`` (``<bos>`` + caption), ``targets [T, B]`` (caption + ``<eos>``), ``features [B, D]``
(a flattened channel-first image in [0, 1], or the given vector), ``lengths [B]`` (caption lengths + 1).
The decode prompt is an example's index, ``"12"`` (validation) or ``"test:3"`` / ``"train:0"``.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from workbench.api import Batch, DataError, Task, sha256_file
from workbench_plugins.translation import (BOS, EOS, PAD, SPECIALS, UNK, bleu_and_exact, build_vocab,
                                           decoder_arrays, epoch_order, greedy_batch, read_lines, relpath,
                                           seq_loss, seq_loss_last_step)

COLOURS = {"red": (0.9, 0.15, 0.1), "green": (0.15, 0.8, 0.2), "blue": (0.15, 0.3, 0.95),
           "yellow": (0.95, 0.85, 0.1)}
SHAPES = ("circle", "square", "triangle")


# ---- generated shapes --------------------------------------------------------------------------------------------

def _shape_mask(kind: str, cx: float, cy: float, r: float, size: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    if kind == "circle":
        return (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    if kind == "square":
        return (np.abs(x - cx) <= r * 0.85) & (np.abs(y - cy) <= r * 0.85)
    # an upright triangle: apex at the top, base at the bottom
    inside_y = (y >= cy - r) & (y <= cy + r)
    half = (y - (cy - r)) / 2.0 * 1.1
    return inside_y & (np.abs(x - cx) <= half)


def render_shapes(n: int, size: int, max_shapes: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """``n`` images ``[n, 3, size, size]`` (uint8) and their captions."""
    rng = np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, 0xCA9]))
    names = list(COLOURS)
    order = {(c, s): i for i, (c, s) in enumerate((c, s) for c in names for s in SHAPES)}
    images = np.zeros((n, 3, size, size), dtype=np.uint8)
    captions: list[str] = []
    u = size / 32.0  # positions and sizes are laid out on a 32-pixel grid and scaled
    for i in range(n):
        img = 0.08 + 0.06 * rng.random((3, size, size), dtype=np.float32)
        count = 1 if max_shapes == 1 or rng.random() < 0.25 else 2
        colours = rng.choice(len(names), size=count, replace=False)
        kinds = rng.integers(0, len(SHAPES), size=count)
        objects = [(names[c], SHAPES[k]) for c, k in zip(colours, kinds)]
        if count == 1:
            spots = [(rng.uniform(9, 23) * u, rng.uniform(9, 23) * u)]
            caption = f"a {objects[0][0]} {objects[0][1]}"
        else:
            vertical = rng.random() < 0.5
            a, b = rng.uniform(7, 11) * u, rng.uniform(21, 25) * u   # the near and the far band
            c1, c2 = rng.uniform(7, 25, size=2) * u
            # first object at the top (vertical) or on the left (horizontal)
            spots = [(c1, a), (c2, b)] if vertical else [(a, c1), (b, c2)]
            first, second = (0, 1) if order[objects[0]] < order[objects[1]] else (1, 0)
            if vertical:
                relation = "above" if first == 0 else "below"
            else:
                relation = "left of" if first == 0 else "right of"
            caption = (f"a {objects[first][0]} {objects[first][1]} {relation} "
                       f"a {objects[second][0]} {objects[second][1]}")
        for (colour, kind), (cx, cy) in zip(objects, spots):
            r = rng.uniform(4.0, 5.5) * u
            mask = _shape_mask(kind, cx, cy, r, size)
            rgb = np.asarray(COLOURS[colour], dtype=np.float32)[:, None]
            img[:, mask] = np.clip(rgb + 0.05 * rng.standard_normal((3, 1)).astype(np.float32), 0, 1)
        images[i] = np.round(img * 255).astype(np.uint8)
        captions.append(caption)
    return images, captions


# ---- user features -------------------------------------------------------------------------------------------------

def load_features(path: Path) -> np.ndarray:
    if not path.exists():
        raise DataError(f"features file not found: {path}")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except OSError as exc:
        raise DataError(f"cannot read features file {path}: {exc.strerror or exc}") from None
    if not magic.startswith(b"PK"):
        hint = " (it is a single .npy array: save it with numpy.savez(path, features=array))" \
            if magic == b"\x93NUMPY" else ""
        raise DataError(f"{path} is not a readable .npz file: expected a zip archive of arrays as written by "
                        f"numpy.savez{hint}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "features" not in data.files:
                raise DataError(f"{path} has no 'features' array (it has: {', '.join(data.files) or 'nothing'})")
            feats = data["features"]
    except DataError:
        raise
    except ValueError as exc:  # an object array needs pickle: refused
        raise DataError(f"{path}: cannot read the 'features' array without pickle ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path} is not a readable .npz file ({exc})") from None
    if feats.ndim != 2 or feats.shape[0] == 0 or feats.shape[1] == 0:
        raise DataError(f"{path}: 'features' must be a 2-D array [N, D], got shape {tuple(feats.shape)}")
    if not np.issubdtype(feats.dtype, np.number) or np.issubdtype(feats.dtype, np.complexfloating):
        raise DataError(f"{path}: 'features' must hold real numbers, got dtype {feats.dtype}")
    feats = feats.astype(np.float32)
    bad = ~np.isfinite(feats)
    if bad.any():
        row = int(np.nonzero(bad.any(1))[0][0])
        raise DataError(f"{path}: 'features' row {row} has a NaN or infinite value")
    return feats


# ---- the task ----------------------------------------------------------------------------------------------

class CaptioningTask(Task):
    stateful = False
    generative = True
    continues_prompt = False
    eos_id = EOS
    time_major = ("tokens", "targets")   # features [B, ...] and lengths [B] have the batch first
    target_padding = PAD

    def __init__(self, params, base_dir=None):
        super().__init__(params, base_dir)
        self._index: dict[str, int] = {}
        self._features: dict[str, np.ndarray] = {}
        self._captions: dict[str, list[str]] = {}
        self._arrays: dict[str, dict[str, np.ndarray]] = {}
        self._images = False

    def _path(self, name: str) -> Path:
        path = Path(name)
        return path if path.is_absolute() else self.base_dir / path

    def tokenize(self, caption: str) -> list[str]:
        return (caption.lower() if self.params.lowercase else caption).split()

    def _load(self) -> None:
        p = self.params
        if not p.features_file:
            self._images = True
            sizes = {"train": p.shapes_train, "valid": p.shapes_valid, "test": p.shapes_test}
            for k, (split, n) in enumerate(sizes.items()):
                images, captions = render_shapes(n, p.image_size, p.max_shapes, p.seed * 3 + k)
                self._features[split] = images.reshape(n, -1)
                self._captions[split] = captions
            self.data_files = {"images": {"path": f"<generated shapes, seed {p.seed}>", "images": sum(sizes.values()),
                                          "image_size": p.image_size}}
            return
        if not p.captions_file:
            raise DataError("task.captions_file is empty: give a text file with one caption per row of "
                            "the features")
        fpath, cpath = self._path(p.features_file), self._path(p.captions_file)
        feats = load_features(fpath)
        lines = read_lines(cpath, p.encoding, "captions file")
        if lines and lines[-1] == "":
            lines = lines[:-1]  # the newline at the end of the last line
        for number, line in enumerate(lines, 1):
            if not line.strip():
                raise DataError(f"{cpath}, line {number}: empty caption (every row of the features needs one)")
        if len(lines) != feats.shape[0]:
            raise DataError(f"{cpath} has {len(lines)} captions but {fpath} has {feats.shape[0]} feature rows; "
                            f"they must match line for row")
        n = len(lines)
        n_valid, n_test = int(n * p.valid_fraction), int(n * p.test_fraction)
        cut1, cut2 = n - n_valid - n_test, n - n_test
        if cut1 <= 0:
            raise DataError(f"{cpath}: {n} pairs leave none to train on after holding out validation and test")
        for split, (a, b) in {"train": (0, cut1), "valid": (cut1, cut2), "test": (cut2, n)}.items():
            self._features[split] = feats[a:b]
            self._captions[split] = [ln.strip() for ln in lines[a:b]]
        self.data_files = {
            "features": {"path": relpath(fpath, self.base_dir), "sha256": sha256_file(fpath), "rows": n},
            "captions": {"path": relpath(cpath, self.base_dir), "sha256": sha256_file(cpath)},
        }

    def prepare(self, vocab: Optional[list[str]] = None, progress=None) -> None:
        self._load()
        tokenized = {k: [self.tokenize(c) for c in v] for k, v in self._captions.items()}
        if vocab is None:
            vocab = build_vocab(tokenized["train"], self.params.min_count)
        elif list(vocab[:4]) != SPECIALS:
            raise DataError("the vocabulary saved with this project does not start with <pad>, <bos>, <eos>, <unk>")
        self.vocab = list(vocab)
        self._index = {tok: i for i, tok in enumerate(self.vocab)}
        self.sizes = {"vocab": len(self.vocab), "features": int(self._features["train"].shape[1])}
        self._arrays = {}
        for split, caps in tokenized.items():
            if not caps:
                continue
            tin, tout, lengths = decoder_arrays([[self._index.get(w, UNK) for w in c] for c in caps])
            self._arrays[split] = {"tokens": tin, "targets": tout, "lengths": lengths}

    # ---- batches ---------------------------------------------------------------------------------------------
    def _split(self, split: str) -> dict[str, np.ndarray]:
        arrays = self._arrays.get(split)
        if arrays is None:
            raise DataError(f"the {split} split is empty; give it more pairs or a larger fraction")
        return arrays

    def features(self, split: str, idx) -> torch.Tensor:
        f = self._features[split][idx]
        return torch.from_numpy(f.astype(np.float32) / 255.0 if self._images else np.ascontiguousarray(f))

    def _batch(self, split: str, idx: np.ndarray) -> Batch:
        a = self._split(split)
        T = int(a["lengths"][idx].max())
        return {
            "tokens": torch.from_numpy(np.ascontiguousarray(a["tokens"][idx, :T].T)),
            "targets": torch.from_numpy(np.ascontiguousarray(a["targets"][idx, :T].T)),
            "features": self.features(split, idx),
            "lengths": torch.from_numpy(a["lengths"][idx]),
            "reset": True,
        }

    def num_batches(self, split: str, batch_size: int, chunk_len: int) -> int:
        return math.ceil(len(self._split(split)["tokens"]) / batch_size)

    def batches(self, split: str, batch_size: int, chunk_len: int, *, epoch: int = 0, start: int = 0,
                seed: int = 0) -> Iterator[Batch]:
        n = len(self._split(split)["tokens"])
        order = epoch_order(n, seed, epoch) if split == "train" else np.arange(n)
        for index in range(start, math.ceil(n / batch_size)):
            yield self._batch(split, order[index * batch_size:(index + 1) * batch_size])

    def probe_batch(self, batch_size: int, length: int) -> Batch:
        split = "valid" if "valid" in self._arrays else "train"
        return self._batch(split, np.arange(min(batch_size, len(self._arrays[split]["tokens"]))))

    # ---- loss and metrics ------------------------------------------------------------------------------------
    def loss(self, outputs, batch) -> torch.Tensor:
        return seq_loss(outputs, batch)

    def loss_last_step(self, outputs, batch) -> torch.Tensor:
        return seq_loss_last_step(outputs, batch, "lengths")

    def count(self, batch) -> int:
        return int((batch["targets"] != PAD).sum())

    def eval_finish(self, acc: dict) -> dict:
        loss = acc.get("loss_sum", 0.0) / max(acc.get("count", 0), 1)
        return {"loss": loss, "ppl": math.exp(min(loss, 50.0))}

    def max_decode_len(self) -> int:
        if self.params.max_decode_len:
            return self.params.max_decode_len
        return max(int(a["lengths"].max()) for a in self._arrays.values()) + 5

    @torch.no_grad()
    def eval_generate(self, model, split: str, device) -> dict[str, float]:
        n = min(self.params.bleu_sentences, len(self._captions.get(split, ())))
        if n <= 0:
            return {}
        hyps: list[str] = []
        for i in range(0, n, 256):
            idx = np.arange(i, min(n, i + 256))
            ctx = {"features": self.features(split, idx).to(device)}
            hyps += [self.decode(ids) for ids in greedy_batch(model, ctx, len(idx), self.max_decode_len(),
                                                              self.input_port(), self.output_port())]
        refs = [" ".join(self.tokenize(c)) for c in self._captions[split][:n]]
        return bleu_and_exact(hyps, refs, "13a")

    # ---- text ----------------------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        get = self._index.get
        return [get(w, UNK) for w in self.tokenize(text)]

    def decode(self, ids) -> str:
        v = self.vocab or []
        return " ".join(v[i] if 0 <= i < len(v) else SPECIALS[UNK] for i in ids if i not in (PAD, BOS, EOS))

    def example(self, prompt: str) -> tuple[str, int]:
        """``"12"`` -> ``("valid", 12)``; ``"test:3"`` -> ``("test", 3)``; empty -> the first validation image."""
        text = (prompt or "").strip()
        split, _, number = text.rpartition(":") if ":" in text else ("valid", "", text)
        split = split or "valid"
        if split not in self._captions:
            raise ValueError(f"unknown split {split!r} in prompt {prompt!r}: use train, valid or test")
        try:
            index = int(number) if number else 0
        except ValueError:
            raise ValueError(f"the captioning prompt is an example number such as '12' or 'test:3', "
                             f"not {prompt!r}") from None
        n = len(self._captions[split])
        if not 0 <= index < n:
            raise ValueError(f"example {index} is out of range: the {split} split has {n}")
        return split, index

    def reference(self, prompt: str) -> str:
        split, index = self.example(prompt)
        return self._captions[split][index]

    def image(self, prompt: str) -> Optional[np.ndarray]:
        """The ``[H, W, 3]`` float image of an example (generated shapes only)."""
        if not self._images:
            return None
        split, index = self.example(prompt)
        size = self.params.image_size
        return self._features[split][index].reshape(3, size, size).transpose(1, 2, 0).astype(np.float32) / 255.0

    def sample_prompt(self) -> str:
        return "0"

    def prime(self, model, prompt: str, device, batch_size: int = 1):
        """The example's features become the context (expanded to ``batch_size`` rows); ``<bos>`` is fed."""
        split, index = self.example(prompt)
        feats = self.features(split, np.array([index])).to(device).expand(batch_size, -1)
        state = model.start(batch_size, context={"features": feats})
        bos = torch.full((batch_size,), BOS, dtype=torch.long, device=device)
        logits, state = model.step(bos, state, self.input_port(), self.output_port())
        return logits, state, [BOS]
