"""From a CSV table to a regular time grid, with the gap and missing-value policy applied.

The policy, stated once (docs and --help repeat it):
- Rows sit on a regular grid: the sampling step is the median time difference, and every row goes
  to grid position round((t - t0) / step). Times must increase; two rows on one position is an
  error (irregular sampling).
- Grid positions with no row (time gaps) and empty cells (NA, NaN) are missing values.
- A run of at most `max_gap` missing values between two known values is filled by linear
  interpolation, channel by channel.
- Longer runs, and missing values at the ends, stay missing: those steps are invalid, no window
  covers them (so none trains on or scores them), and the plot greys them out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from gencore.errors import GenError
from gencore_csv.table import Table, column_list, label_values, read_table

TIME_NAMES = ("time", "timestamp", "date", "datetime", "t")


@dataclass
class Series:
    where: str
    columns: list[str]
    values: np.ndarray  # (T, C) float64 on the regular grid, NaN where invalid after the gap policy
    times: np.ndarray  # (T,) float64 seconds (datetime) or numbers; the grid's time of each step
    time_text: list[str]  # (T,) the time as written in the file ("" where the grid has no row)
    time_kind: str  # "datetime", "number" or "index"
    labels: np.ndarray | None  # (T,) 0/1 ground truth, or None
    filled: int = 0  # missing values filled by interpolation
    gaps: list[tuple[int, int]] = field(default_factory=list)  # [start, end) of invalid runs

    @property
    def valid(self) -> np.ndarray:
        return ~np.isnan(self.values).any(axis=1)

    def __len__(self) -> int:
        return self.values.shape[0]


def parse_time(cell: str) -> tuple[float, str]:
    """A time cell -> (value, kind): a number, else an ISO date/time in seconds."""
    try:
        return float(cell), "number"
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(cell.replace("Z", "+00:00"))
    except ValueError:
        return float("nan"), "bad"
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp(), "datetime"


def choose_time_column(table: Table, option: str | None) -> int | None:
    if option and option.lower() == "none":
        return None
    if option and option.lower() != "auto":
        return table.index(option, "--time-column")
    lowered = [h.lower() for h in table.header]
    for name in TIME_NAMES:
        if name in lowered:
            return lowered.index(name)
    return None


def _times(table: Table, column: int) -> tuple[np.ndarray, str]:
    values, kinds = [], set()
    for i, cell in enumerate(table.text(column)):
        value, kind = parse_time(cell)
        if kind == "bad":
            raise GenError(f"line {i + 2}, time column {table.header[column]!r}: {cell[:40]!r} is neither a number "
                           "nor an ISO date/time", where=table.where,
                           hint="write times as numbers or like 2024-01-31 12:00:00; or pass --time-column none")
        values.append(value)
        kinds.add(kind)
    if len(kinds) > 1:
        raise GenError(f"the time column {table.header[column]!r} mixes numbers and dates", where=table.where)
    times = np.asarray(values, dtype=np.float64)
    diffs = np.diff(times)
    if (diffs <= 0).any():
        line = int(np.flatnonzero(diffs <= 0)[0]) + 3
        raise GenError(f"line {line}: time does not increase", where=table.where,
                       hint="sort the rows by time and remove repeated times")
    return times, kinds.pop()


def _grid_positions(times: np.ndarray, where: str) -> tuple[np.ndarray, float]:
    if len(times) < 2:
        return np.zeros(len(times), dtype=np.int64), 1.0
    step = float(np.median(np.diff(times)))
    positions = np.rint((times - times[0]) / step).astype(np.int64)
    if (np.diff(positions) <= 0).any():
        line = int(np.flatnonzero(np.diff(positions) <= 0)[0]) + 3
        raise GenError(f"line {line}: rows are closer than the sampling step ({step:g}); the sampling is irregular",
                       where=where, hint="resample the series to a regular step first")
    if positions[-1] > 20 * len(times) + 1000:
        raise GenError(f"the time gaps would spread {len(times)} rows over {positions[-1] + 1} steps",
                       where=where, hint="check the time column, or resample the series to a regular step")
    return positions, step


def fill_gaps(values: np.ndarray, max_gap: int) -> tuple[np.ndarray, int, list[tuple[int, int]]]:
    """Interpolate inner runs of at most `max_gap` NaNs per channel; return the values, the number
    filled, and the [start, end) runs of steps still invalid."""
    out = values.copy()
    filled = 0
    for c in range(out.shape[1]):
        col = out[:, c]
        missing = np.isnan(col)
        if not missing.any():
            continue
        known = np.flatnonzero(~missing)
        for start, end in _runs(missing):
            inner = start > 0 and end < len(col) and known.size > 0
            if inner and end - start <= max_gap:
                col[start:end] = np.interp(np.arange(start, end), [start - 1, end], [col[start - 1], col[end]])
                filled += end - start
    return out, filled, _runs(np.isnan(out).any(axis=1))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def value_columns(table: Table, options: dict[str, Any], skip: set[int]) -> list[int]:
    names = column_list(options.get("columns"))
    if names:
        return [table.index(n, "--columns") for n in names]
    picked = [i for i in range(len(table.header)) if i not in skip]
    if not picked:
        raise GenError("the file has no value column besides time and labels", where=table.where,
                       hint="add a value column, or name them with --columns")
    return picked


def read_series(path: Path | str, options: dict[str, Any], table: Table | None = None,
                columns: list[str] | None = None) -> Series:
    """Read one CSV as a Series. `columns` (the run's, at scoring time) must all be present."""
    table = table or read_table(Path(path))
    time_col = choose_time_column(table, options.get("time_column"))
    label_name = options.get("label_column") or "is_anomaly"
    label_col = table.header.index(label_name) if label_name in table.header else None
    if columns is not None:
        picked = [table.index(n, "the run's --columns") for n in columns]
    else:
        picked = value_columns(table, options, {i for i in (time_col, label_col) if i is not None})
    for i in picked:
        if i in (time_col, label_col):
            raise GenError(f"column {table.header[i]!r} is the time or label column and cannot be a value column",
                           where="--columns")
    raw = np.stack([table.numbers(i) for i in picked], axis=1)  # (rows, C)
    if time_col is None:
        times, kind = np.arange(len(table), dtype=np.float64), "index"
        positions, step = np.arange(len(table)), 1.0
    else:
        times, kind = _times(table, time_col)
        positions, step = _grid_positions(times, table.where)
    length = int(positions[-1]) + 1
    values = np.full((length, raw.shape[1]), np.nan)
    values[positions] = raw
    grid_times = times[0] + step * np.arange(length) if length else np.zeros(0)
    text = [""] * length
    source_text = table.text(time_col) if time_col is not None else [str(i) for i in range(len(table))]
    for pos, cell in zip(positions, source_text):
        text[pos] = cell
    labels = None
    if label_col is not None:
        labels = np.zeros(length, dtype=np.int64)
        labels[positions] = label_values(table, label_col)
    max_gap = int(options.get("max_gap") if options.get("max_gap") is not None else 3)
    values, filled, gaps = fill_gaps(values, max_gap)
    return Series(table.where, [table.header[i] for i in picked], values, grid_times, text, kind, labels,
                  filled, gaps)


def apply_label_rows(series: Series, rows: dict[str, int], where: str) -> None:
    """Labels from a separate `time,0|1` file: listed times get their label, others count as normal."""
    lookup = {text: i for i, text in enumerate(series.time_text) if text}
    parsed = {parse_time(text)[0]: i for text, i in lookup.items()}
    labels = series.labels.copy() if series.labels is not None else np.zeros(len(series), dtype=np.int64)
    for text, label in rows.items():
        position = lookup.get(text.strip())
        if position is None:
            position = parsed.get(parse_time(text.strip())[0])
        if position is None:
            raise GenError(f"time {text!r} does not occur in {series.where}", where=where,
                           hint="label rows are `time,0|1` with times as written in the series' time column")
        labels[position] = label
    series.labels = labels


def read_label_rows(path: Path) -> dict[str, int]:
    """A label file: rows of `time,0|1`, with an optional header row."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise GenError(f"cannot read the label file ({exc})", where=str(path)) from None
    import csv
    import io

    out = {}
    for i, row in enumerate(csv.reader(io.StringIO(text))):
        if not any(cell.strip() for cell in row):
            continue
        if i == 0 and len(row) == 2 and row[1].strip() not in ("0", "1"):
            continue  # the header
        if len(row) != 2 or row[1].strip() not in ("0", "1"):
            raise GenError(f"line {i + 1} is not `time,0|1`", where=str(path),
                           hint="one `time,label` row per labelled step; 1 marks an anomaly")
        out[row[0].strip()] = int(row[1])
    return out
