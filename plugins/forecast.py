"""Time-series forecasting from a CSV file of numeric columns (or a generated demo series).

A window of ``window`` past rows of the input columns -> the next ``horizon`` values of the target column, all at
once (direct multi-step forecasting).  The rows are split in time order (train, then valid, then test); every
column is standardised with the training rows' mean and standard deviation, the loss is the MSE of the
standardised target, and the metrics are given in the data's own units, next to those of the naive forecast that
repeats the last observed value (``skill = 1 - mse / naive_mse``: above 0, the model beats it).

Each window is an independent example (``stateful = False``); ``chunk_len`` does not apply: ``window`` sets the
length of the sequences.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from workbench.api import Batch, DataError, Task, sha256_file
from workbench_plugins.text_data import MAX_TEXT_BYTES, open_data_file, resolve_path

DEMO_COLUMNS = ("season", "value")


def demo_series(length: int, noise: float, seed: int) -> tuple[list[str], np.ndarray]:
    """A noisy sum of two sines (periods 48 and 11) on a slow linear trend, and the clean 48-step cycle.

    Columns: ``season`` (sin of the 48-step phase, like a calendar feature) and ``value`` (the series to forecast).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float64)
    season = np.sin(2 * np.pi * t / 48.0)
    value = (10.0 + 2.0 * season + 1.0 * np.sin(2 * np.pi * t / 11.0 + 0.7) + 1.5 * t / length
             + noise * 2.0 * rng.standard_normal(length))
    return list(DEMO_COLUMNS), np.stack([season, value], 1)


def _decode(raw: bytes, path: Path, encoding: str = "utf-8") -> str:
    utf8 = encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8sig")
    try:
        return raw.decode("utf-8-sig" if utf8 else encoding)  # a byte-order mark is not part of the header
    except LookupError:
        raise DataError(f"unknown text encoding {encoding!r} for {path}") from None
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path} is not valid {'UTF-8' if utf8 else encoding}: byte 0x{raw[exc.start]:02x} at offset "
                        f"{exc.start} (line {line}, {exc.reason}); set task.encoding (e.g. latin-1 or cp1252) or "
                        f"save the file as UTF-8") from None


def _number(cell: str, path: Path, line: int, column: str, hint: str = "") -> float:
    text = cell.strip()
    where = f"{path}, line {line}, column {column!r}"
    if not text:
        raise DataError(f"{where}: empty cell (missing value); fill or drop missing values first")
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{where}: {text!r} is not a number{hint}") from None
    if math.isnan(value):
        raise DataError(f"{where}: NaN (missing value); fill or drop missing values first")
    if math.isinf(value):
        raise DataError(f"{where}: {text!r} is not a finite number")
    return value


def read_csv_columns(path: Path, columns: list[str] | None, target: str, delimiter: str = ",",
                     encoding: str = "utf-8") -> tuple[list[str], str, np.ndarray]:
    """Read the chosen columns of a CSV file with a header row.

    ``columns`` are the input column names (``None``: every column); ``target`` the forecast column (``""``: the
    last one).  Returns ``(input names, target name, array [rows, len(inputs) + 1])`` with the target last.
    Only the chosen columns are parsed, so other columns (dates, labels) may hold anything.
    """
    if not path.exists():
        raise DataError(f"CSV file not found: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a CSV file")
    with open_data_file(path, "CSV file") as fh:       # a regular file only: never a pipe or a device
        try:
            raw = fh.read(MAX_TEXT_BYTES + 1)
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_TEXT_BYTES:
        raise DataError(f"{path} is larger than {MAX_TEXT_BYTES / 1e6:,.0f} MB, the most the forecast task reads; "
                        f"use a smaller file")
    text = _decode(raw, path, encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                header = [cell.strip() for cell in row]
                break
    except csv.Error as exc:
        raise DataError(f"{path}, line {reader.line_num}: {exc}") from None
    if header is None:
        raise DataError(f"{path} is empty: a header row with column names is needed")
    header_line = reader.line_num

    def index_of(name: str) -> int:
        hits = [i for i, h in enumerate(header) if h == name]
        if not hits:
            raise DataError(f"{path}: no column named {name!r} (columns: {', '.join(header)})")
        if len(hits) > 1:
            raise DataError(f"{path}: the header (line {header_line}) names {name!r} {len(hits)} times")
        return hits[0]

    target = target.strip() or header[-1]
    names = list(header) if columns is None else columns
    in_idx = [index_of(n) for n in names]
    t_idx = index_of(target)
    wanted = in_idx + [t_idx]
    hint = "; choose the numeric input columns with task.inputs" if columns is None else ""
    rows: list[list[float]] = []
    try:
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            line = reader.line_num
            if len(row) != len(header):
                raise DataError(f"{path}, line {line}: {len(row)} fields, but the header (line {header_line}) "
                                f"has {len(header)}")
            rows.append([_number(row[i], path, line, header[i], hint) for i in wanted])
    except csv.Error as exc:
        raise DataError(f"{path}, line {reader.line_num}: {exc}") from None
    if not rows:
        raise DataError(f"{path} has a header but no data rows")
    return [header[i] for i in in_idx], header[t_idx], np.asarray(rows, dtype=np.float64)


def _seed_words(*values: int) -> list[int]:
    return [int(v) & 0xFFFF_FFFF_FFFF_FFFF for v in values]


class ForecastTask(Task):
    stateful = False
    count_unit = "values"      # predicted values: batch x horizon
    time_major = ("series",)   # series [W, B, F]; targets [B, H] and last [B] have the batch first

    def __init__(self, params, base_dir=None):
        super().__init__(params, base_dir)
        self.input_names: list[str] = []
        self.target_name = ""
        self.mean = np.zeros(0)
        self.std = np.ones(0)
        self._x: torch.Tensor | None = None        # [rows, features], standardised
        self._y: torch.Tensor | None = None        # [rows], standardised target
        self._starts: dict[str, torch.Tensor] = {}  # split -> first target row of each window

    # ---- data ----------------------------------------------------------------------------------------------
    def prepare(self, vocab: Optional[list[str]] = None, progress=None) -> None:
        p = self.params
        chosen = [c.strip() for c in p.inputs.split(",") if c.strip()] or None
        if p.csv:
            path = resolve_path(self.base_dir, p.csv)
            delimiter = "\t" if p.delimiter in ("\\t", "\t") else p.delimiter
            self.input_names, self.target_name, data = read_csv_columns(path, chosen, p.target, delimiter,
                                                                               p.encoding)
            try:
                rel = os.path.relpath(path, self.base_dir)
            except ValueError:  # another drive on Windows
                rel = str(path)
            self.data_files = {"csv": {"path": rel, "sha256": sha256_file(path), "rows": int(data.shape[0])}}
            where = str(path)
        else:
            header, table = demo_series(p.demo_length, p.demo_noise, p.demo_seed)
            names = chosen or header
            target = p.target.strip() or header[-1]
            for n in names + [target]:
                if n not in header:
                    raise DataError(f"the demo data has no column named {n!r} (columns: {', '.join(header)})")
            self.input_names, self.target_name = names, target
            data = table[:, [header.index(n) for n in names] + [header.index(target)]]
            self.data_files = {"csv": {"path": "<generated demo series>", "rows": int(data.shape[0]),
                                       "seed": p.demo_seed, "noise": p.demo_noise}}
            where = "the demo series"
        self._split(data, where)
        self.vocab = None
        self.sizes = {"features": len(self.input_names), "horizon": p.horizon}

    def _split(self, data: np.ndarray, where: str) -> None:
        p = self.params
        n = data.shape[0]
        n_valid, n_test = int(n * p.valid_fraction), int(n * p.test_fraction)
        n_train = n - n_valid - n_test
        W, H = p.window, p.horizon
        bounds = {"train": (0, n_train), "valid": (n_train, n_train + n_valid), "test": (n_train + n_valid, n)}
        for split, (a, b) in bounds.items():
            first, stop = max(a, W), b - H + 1
            if stop <= first:
                raise DataError(
                    f"{where}: {n} rows give the {split} split rows {a}-{b - 1} ({b - a} rows), too few for a "
                    f"window of {W} and a horizon of {H}; use a shorter window or horizon, more rows, or a "
                    f"larger {split}_fraction" if split != "train" else
                    f"{where}: {n} rows leave {n_train} for training, too few for a window of {W} and a horizon "
                    f"of {H}; use a shorter window or horizon, or more rows")
            self._starts[split] = torch.arange(first, stop, dtype=torch.long)
        train = data[:n_train]
        self.mean = train.mean(0)
        std = train.std(0)
        self.std = np.where(std > 1e-12, std, 1.0)
        z = (data - self.mean) / self.std
        self._x = torch.tensor(z[:, :-1], dtype=torch.float32)
        self._y = torch.tensor(z[:, -1], dtype=torch.float32)

    @property
    def target_std(self) -> float:
        return float(self.std[-1])

    def windows(self, split: str) -> int:
        """How many examples (windows) the split has."""
        return int(self._starts[split].numel())

    def num_batches(self, split: str, batch_size: int, chunk_len: int) -> int:
        return math.ceil(self.windows(split) / batch_size)

    def _batch(self, starts: torch.Tensor) -> Batch:
        W, H = self.params.window, self.params.horizon
        past = starts.unsqueeze(0) + torch.arange(-W, 0).unsqueeze(1)      # [W, B]
        ahead = starts.unsqueeze(1) + torch.arange(H).unsqueeze(0)        # [B, H]
        return {"series": self._x[past], "targets": self._y[ahead], "last": self._y[starts - 1]}

    def batches(self, split: str, batch_size: int, chunk_len: int, *, epoch: int = 0, start: int = 0,
                seed: int = 0) -> Iterator[Batch]:
        starts = self._starts[split]
        if split == "train":
            order = np.random.default_rng(_seed_words(0xF0CA57, seed, epoch)).permutation(starts.numel())
            starts = starts[torch.from_numpy(order)]
        for i in range(start, self.num_batches(split, batch_size, chunk_len)):
            yield self._batch(starts[i * batch_size:(i + 1) * batch_size])

    # ---- loss and metrics ----------------------------------------------------------------------------------
    @staticmethod
    def _prediction(outputs) -> torch.Tensor:
        out = outputs["forecast"]
        # a per-step run (probes) stacks one prediction per timestep: the forecast is the last one
        return out[-1] if out.dim() == 3 else out

    def loss(self, outputs, batch) -> torch.Tensor:
        return torch.mean((self._prediction(outputs) - batch["targets"]) ** 2)

    def loss_last_step(self, outputs, batch) -> torch.Tensor:
        return self.loss(outputs, batch)

    def count(self, batch) -> int:
        return int(batch["targets"].numel())

    def eval_update(self, acc, outputs, batch) -> None:
        err = self._prediction(outputs).float() - batch["targets"]
        naive = batch["last"].unsqueeze(1) - batch["targets"]
        sums = torch.stack([(err * err).sum(), err.abs().sum(), (naive * naive).sum(), naive.abs().sum()]).tolist()
        for key, value in zip(("sse", "sae", "naive_sse", "naive_sae"), sums):
            acc[key] = acc.get(key, 0.0) + value
        acc["count"] = acc.get("count", 0) + int(err.numel())

    def eval_finish(self, acc) -> dict:
        n = max(acc.get("count", 0), 1)
        s = self.target_std
        mse = acc.get("sse", 0.0) / n * s * s
        naive_mse = acc.get("naive_sse", 0.0) / n * s * s
        return {"loss": acc.get("sse", 0.0) / n, "mse": mse, "mae": acc.get("sae", 0.0) / n * s,
                "naive_mse": naive_mse, "naive_mae": acc.get("naive_sae", 0.0) / n * s,
                "skill": 1.0 - mse / naive_mse if naive_mse > 0 else float("nan")}

    # ---- helpers for people and plots ----------------------------------------------------------------------
    def to_units(self, standardised: torch.Tensor) -> torch.Tensor:
        """Standardised target values -> the data's own units."""
        return standardised * self.target_std + float(self.mean[-1])

    @torch.no_grad()
    def forecasts(self, model, split: str, device, batch_size: int = 512) -> dict[str, np.ndarray]:
        """Every window of ``split`` through ``model`` (in eval mode), in the data's own units: ``rows [N]`` the first
        row each window forecasts, ``actual [N, H]`` and ``predicted [N, H]`` the next ``horizon`` values, and
        ``naive [N]`` the naive forecast (the window's last observed value, repeated over the horizon).  What the
        dashboard's predicted-vs-actual plot and ``seqwb forecast`` show; the MSEs of ``eval`` are their means."""
        starts = self._starts[split]
        actual, predicted, naive = [], [], []
        was_training = model.training
        model.eval()
        try:
            for i in range(0, starts.numel(), batch_size):
                batch = {k: v.to(device) for k, v in self._batch(starts[i:i + batch_size]).items()}
                outputs, _ = model(batch)
                predicted.append(self.to_units(self._prediction(outputs).float()).cpu())
                actual.append(self.to_units(batch["targets"]).cpu())
                naive.append(self.to_units(batch["last"]).cpu())
        finally:
            model.train(was_training)
        return {"rows": starts.numpy().copy(), "actual": torch.cat(actual).numpy().astype(np.float64),
                "predicted": torch.cat(predicted).numpy().astype(np.float64),
                "naive": torch.cat(naive).numpy().astype(np.float64)}
