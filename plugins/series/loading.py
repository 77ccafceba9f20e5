"""`Domain.load`, `load_files` and the `gen score` inputs of the series domain.

Items are windows (C, window) of per-channel standardised values. The training statistics (mean
and standard deviation per channel) go into the run's config as `normalisation` and are reused for
every file read later, so a score means the same thing for every input.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gencore import console
from gencore.errors import GenError
from gencore.plugin import LoadedData
from gencore_csv.table import parse_table

from . import demo
from .reading import Series, apply_label_rows, read_label_rows, read_series

DEFAULT_WINDOW = 64
MIN_AUTO_WINDOW = 16


@dataclass
class ScoredSeries(LoadedData):
    """Score inputs: the windows, plus where each comes from (for per-time-step scores)."""

    series: list[Series] = field(default_factory=list)
    window_series: np.ndarray | None = None  # (N,) index into `series`
    window_starts: np.ndarray | None = None  # (N,) first grid step of each window
    window: int = 0


def auto_window(series: list[Series]) -> int:
    """DEFAULT_WINDOW steps, or a sixteenth of a shorter series (at least MIN_AUTO_WINDOW), so
    that a short series still gives many windows and a window still localises an anomaly."""
    longest = max(len(s) for s in series)
    return int(min(DEFAULT_WINDOW, max(MIN_AUTO_WINDOW, longest // 16)))


def _int_option(options: dict[str, Any], name: str, default: int, minimum: int) -> int:
    value = options.get(name)
    value = default if value is None else int(value)
    if value < minimum:
        raise GenError(f"must be at least {minimum}, got {value}", where="--" + name.replace("_", "-"))
    return value


def read_source(source: str, options: dict[str, Any], columns: list[str] | None = None) -> list[Series]:
    """A CSV file, a folder of CSV files (each its own series), or builtin:membrane[-test]."""
    if source.startswith("builtin:"):
        name = source[len("builtin:"):]
        if name not in demo.NAMES:
            raise GenError(f"unknown built-in series {name!r}", where=source,
                           hint=f"use one of {', '.join('builtin:' + n for n in demo.NAMES)}")
        builtin_options = {"time_column": "t", "label_column": "is_anomaly", "max_gap": options.get("max_gap")}
        return [read_series(source, builtin_options, parse_table(demo.demo_csv(name), source), columns)]
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv")
        if not files:
            raise GenError("the folder holds no .csv file", where=source, hint="give a CSV file or a folder of them")
    elif path.is_file():
        files = [path]
    else:
        raise GenError("no such file or folder", where=source)
    return [read_series(p, options, columns=columns) for p in files]


def window_starts(series: Series, window: int, stride: int) -> np.ndarray:
    """Starts of the windows that lie wholly on valid steps."""
    valid = series.valid.astype(np.int64)
    if len(series) < window:
        return np.zeros(0, dtype=np.int64)
    run = np.convolve(valid, np.ones(window, dtype=np.int64), mode="valid")  # valid steps per window
    starts = np.flatnonzero(run == window)
    return starts[(starts % stride) == 0] if stride > 1 else starts


def check_window(series: list[Series], window: int, option: str) -> None:
    longest = max(len(s) for s in series)
    if window > longest:
        where = series[0].where if len(series) == 1 else f"{len(series)} series"
        raise GenError(f"the window ({window} steps) is longer than the series ({longest} steps) in {where}",
                       where=option, hint=f"use {option} {max(2, longest // 4)} or a longer series")


def cut(series: Series, starts: np.ndarray, window: int, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Windows (n, C, window) of standardised values."""
    z = ((series.values - mean) / std).T  # (C, T)
    index = starts[:, None] + np.arange(window)[None, :]
    return np.ascontiguousarray(z[:, index].transpose(1, 0, 2))


def load_training(source: str | None, options: dict[str, Any]):
    import torch

    source = source or "builtin:membrane"
    stride = _int_option(options, "stride", 1, 1)
    _int_option(options, "max_gap", 3, 0)
    series = read_source(source, options)
    window = _int_option(options, "window", auto_window(series), 2)
    if options.get("label_file"):
        if len(series) != 1:
            raise GenError("--label-file needs a single series", where="--label-file",
                           hint="put an is_anomaly column in each file instead")
        apply_label_rows(series[0], read_label_rows(Path(options["label_file"])), options["label_file"])
    columns = series[0].columns
    for s in series[1:]:
        if s.columns != columns:
            raise GenError(f"its value columns {s.columns} differ from {columns} in {series[0].where}",
                           where=s.where, hint="give every file the same columns, or pick them with --columns")
    check_window(series, window, "--window")
    stacked = np.concatenate([s.values[s.valid] for s in series])
    mean = stacked.mean(axis=0)
    std = stacked.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)  # a constant channel keeps its scale
    pieces, left_out = [], 0
    for s in series:
        starts = window_starts(s, window, stride)
        if s.labels is not None and len(starts):
            touched = np.convolve(s.labels, np.ones(window, dtype=np.int64), mode="valid")[starts] > 0
            left_out += int(touched.sum())
            starts = starts[~touched]
        pieces.append(cut(s, starts, window, mean, std))
    items = np.concatenate(pieces)
    if len(items) < 2:
        raise GenError(f"only {len(items)} whole windows of {window} valid, normal steps", where=source,
                       hint="use a shorter --window, a larger --max-gap, or more data")
    _describe(series, len(items), window, stride, left_out)
    meta = {"columns": columns, "window": window, "time_kind": series[0].time_kind}
    normalisation = {"method": "standardise per channel", "columns": columns,
                     "mean": mean.tolist(), "std": std.tolist()}
    return LoadedData(items=torch.from_numpy(items.astype(np.float32)), conditions=None, class_names=[],
                      likelihood="gaussian", item_kind="seq1d", normalisation=normalisation,
                      sources=[s.where for s in series], meta=meta)


def _describe(series: list[Series], windows: int, window: int, stride: int, left_out: int) -> None:
    steps = sum(len(s) for s in series)
    filled = sum(s.filled for s in series)
    gaps = [g for s in series for g in s.gaps]
    notes = []
    if filled:
        notes.append(f"interpolated {filled} missing values in short gaps")
    if gaps:
        notes.append(f"left out {sum(b - a for a, b in gaps)} steps in {len(gaps)} long gaps (no window crosses them)")
    if left_out:
        notes.append(f"left out {left_out} windows that touch labelled anomalies")
    console.info(f"{len(series)} series, {steps} steps of {', '.join(series[0].columns)}: {windows} windows of "
                 f"{window} steps (stride {stride})" + ("; " + "; ".join(notes) if notes else ""))


def _run_stats(spec: dict[str, Any]) -> tuple[list[str], int, np.ndarray, np.ndarray]:
    norm = spec["normalisation"]
    return norm["columns"], int(spec["meta"]["window"]), np.asarray(norm["mean"]), np.asarray(norm["std"])


def load_files(paths: list[Path], spec: dict[str, Any]):
    """Each file cut into back-to-back windows (for `gen reconstruct` and `gen interpolate`),
    standardised with the run's statistics; `gen score` reads every window instead."""
    import torch

    columns, window, mean, std = _run_stats(spec)
    pieces = []
    for path in paths:
        for s in read_source(str(path), spec["options"], columns):
            check_window([s], window, "the run's window")
            pieces.append(cut(s, window_starts(s, window, window), window, mean, std))
    items = np.concatenate(pieces)
    if len(items) == 0:
        raise GenError(f"no {window} consecutive valid steps in the input", where=str(paths[0]),
                       hint="fill the gaps, or raise the run's --max-gap")
    return torch.from_numpy(items.astype(np.float32)), [None] * len(paths)


def read_scored(inputs: list[str], spec: dict[str, Any], label_rows: dict[str, int] | None) -> ScoredSeries:
    import torch

    columns, window, mean, std = _run_stats(spec)
    series = [s for source in inputs for s in read_source(source, spec["options"], columns)]
    if label_rows is not None:
        if len(series) != 1:
            raise GenError("--labels needs a single series to score", where="--labels",
                           hint="put an is_anomaly column in each file instead")
        apply_label_rows(series[0], label_rows, "--labels")
    pieces, which, starts_all, names, labels = [], [], [], [], []
    for k, s in enumerate(series):
        check_window([s], window, "the run's window")
        starts = window_starts(s, window, 1)
        pieces.append(cut(s, starts, window, mean, std))
        which.append(np.full(len(starts), k))
        starts_all.append(starts)
        names += [f"{s.where}@{s.time_text[i] or i}" for i in starts]
        if s.labels is not None:
            labels.append(np.convolve(s.labels, np.ones(window, dtype=np.int64), mode="valid")[starts] > 0)
    items = np.concatenate(pieces)
    if len(items) == 0:
        raise GenError(f"no {window} consecutive valid steps to score", where=" ".join(inputs),
                       hint="fill the gaps, or raise the run's --max-gap")
    truth = torch.from_numpy(np.concatenate(labels).astype(np.int64)) if len(labels) == len(series) else None
    return ScoredSeries(items=torch.from_numpy(items.astype(np.float32)), conditions=None, class_names=[],
                        likelihood="gaussian", item_kind="seq1d", anomaly_labels=truth, sources=names,
                        series=series, window_series=np.concatenate(which), window_starts=np.concatenate(starts_all),
                        window=window)
