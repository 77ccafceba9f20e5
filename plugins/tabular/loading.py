"""`Domain.load`, `load_files` and the `gen score` inputs of the tabular domain.

A record becomes one feature vector: numeric columns standardised with the training mean and
standard deviation, categorical columns (named with --categorical) one-hot over the categories
seen in training. The statistics and category lists are stored in the run (`normalisation`) and
reused for every table read later. A category never seen in training encodes as all zeros, which
the model finds unusual, as it should. A missing numeric value is an error: nothing is imputed.
Records labelled 1 in the label column are left out of training.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gencore import console
from gencore.errors import GenError
from gencore.plugin import LoadedData
from gencore_csv.table import Table, column_list, label_values, read_table

from .builtin import builtin_table, is_builtin


@dataclass
class Encoding:
    numeric: list[str]
    mean: np.ndarray
    std: np.ndarray
    categorical: dict[str, list[str]]

    @property
    def features(self) -> list[str]:
        return self.numeric + [f"{name}={cat}" for name, cats in self.categorical.items() for cat in cats]

    def to_json(self) -> dict[str, Any]:
        return {"method": "standardise numeric, one-hot categorical", "numeric": self.numeric,
                "mean": self.mean.tolist(), "std": self.std.tolist(), "categorical": self.categorical,
                "features": self.features}

    @classmethod
    def from_json(cls, norm: dict[str, Any]) -> "Encoding":
        return cls(list(norm["numeric"]), np.asarray(norm["mean"]), np.asarray(norm["std"]),
                   {k: list(v) for k, v in norm["categorical"].items()})


def read_source(source: str, options: dict[str, Any]) -> tuple[Table, list[str]]:
    """A CSV file or a built-in table, and the categorical columns (option or built-in)."""
    if is_builtin(source) and not Path(source).exists():
        table, categorical = builtin_table(source)
        return table, column_list(options.get("categorical")) or categorical
    return read_table(Path(source)), column_list(options.get("categorical"))


def _label_column(table: Table, options: dict[str, Any]) -> int | None:
    name = options.get("label_column") or "is_anomaly"
    return table.header.index(name) if name in table.header else None


def _numbers(table: Table, column: int) -> np.ndarray:
    values = table.numbers(column)
    if np.isnan(values).any():
        line = int(np.flatnonzero(np.isnan(values))[0]) + 2
        raise GenError(f"line {line}, column {table.header[column]!r}: the value is missing", where=table.where,
                       hint="fill it in or drop the row; the tabular domain imputes nothing")
    return values


def choose_columns(table: Table, options: dict[str, Any], categorical: list[str]) -> tuple[list[str], list[str]]:
    label = _label_column(table, options)
    for name in categorical:
        table.index(name, "--categorical")
    picked = column_list(options.get("columns"))
    for name in picked:
        table.index(name, "--columns")
    if not picked:
        picked = [h for i, h in enumerate(table.header) if i != label]
    if label is not None and table.header[label] in picked:
        raise GenError(f"{table.header[label]!r} is the label column and cannot be a feature", where="--columns")
    numeric = [c for c in picked if c not in categorical]
    cats = [c for c in picked if c in categorical]
    if not numeric and not cats:
        raise GenError("no feature column", where=table.where, hint="name feature columns with --columns")
    return numeric, cats


def fit_encoding(table: Table, numeric: list[str], categorical: list[str]) -> Encoding:
    values = np.stack([_numbers(table, table.header.index(c)) for c in numeric], axis=1) if numeric else \
        np.zeros((len(table), 0))
    std = values.std(axis=0)
    cats = {c: sorted(set(table.text(table.header.index(c)))) for c in categorical}
    return Encoding(numeric, values.mean(axis=0), np.where(std > 1e-12, std, 1.0), cats)


def encode(table: Table, enc: Encoding) -> tuple[np.ndarray, int]:
    """Feature vectors (n, D), and how many categorical cells held a category unseen in training."""
    parts = []
    if enc.numeric:
        values = np.stack([_numbers(table, table.index(c, "the run's columns")) for c in enc.numeric], axis=1)
        parts.append((values - enc.mean) / enc.std)
    unseen = 0
    for name, cats in enc.categorical.items():
        index = {cat: i for i, cat in enumerate(cats)}
        cells = table.text(table.index(name, "the run's columns"))
        hot = np.zeros((len(cells), len(cats)))
        for r, cell in enumerate(cells):
            if cell in index:
                hot[r, index[cell]] = 1.0
            else:
                unseen += 1
        parts.append(hot)
    return np.concatenate(parts, axis=1), unseen


def load_training(source: str | None, options: dict[str, Any]) -> LoadedData:
    import torch

    source = source or "builtin:breast-cancer"
    table, categorical = read_source(source, options)
    numeric, cats = choose_columns(table, options, categorical)
    label = _label_column(table, options)
    dropped = 0
    if label is not None:
        normal = label_values(table, label) == 0
        dropped = int((~normal).sum())
        table = Table(table.where, table.header, [row for row, keep in zip(table.rows, normal) if keep])
        if len(table) < 2:
            raise GenError("fewer than 2 records are labelled normal", where=source,
                           hint="the tabular domain trains on normal records only")
    enc = fit_encoding(table, numeric, cats)
    items, _ = encode(table, enc)
    left_out = f"; left out {dropped} records labelled anomalous" if dropped else ""
    console.info(f"{len(table)} records of {source}: {len(numeric)} numeric and {len(cats)} categorical columns "
                 f"-> {items.shape[1]} features{left_out}")
    return LoadedData(items=torch.from_numpy(items.astype(np.float32)), conditions=None, class_names=[],
                      likelihood="gaussian", item_kind="vector", normalisation=enc.to_json(), sources=[source],
                      meta={"columns": numeric + cats, "categorical": cats})


def _rows(spec: dict[str, Any], source: str) -> tuple[Table, np.ndarray]:
    table, _ = read_source(source, spec["options"])
    items, unseen = encode(table, Encoding.from_json(spec["normalisation"]))
    if unseen:
        console.warn(f"{source}: {unseen} categorical values were never seen in training (encoded as no category)")
    return table, items


def load_files(paths: list[Path], spec: dict[str, Any]):
    import torch

    items = np.concatenate([_rows(spec, str(p))[1] for p in paths])
    return torch.from_numpy(items.astype(np.float32)), [None] * len(paths)


def read_scored(inputs: list[str], spec: dict[str, Any], label_rows: dict[str, int] | None) -> LoadedData:
    """Every record of every input, named FILE#ROW (data rows counted from 1)."""
    import torch

    pieces, names, labels = [], [], []
    for source in inputs:
        table, items = _rows(spec, source)
        pieces.append(items)
        names += [f"{source}#{r + 1}" for r in range(len(table))]
        label = _label_column(table, spec["options"])
        labels.append(None if label is None else label_values(table, label))
    truth = None
    if label_rows is not None:
        truth = np.array([_lookup(label_rows, name) for name in names])
    elif all(lab is not None for lab in labels):
        truth = np.concatenate(labels)
    return LoadedData(items=torch.from_numpy(np.concatenate(pieces).astype(np.float32)), conditions=None,
                      class_names=[], likelihood="gaussian", item_kind="vector", sources=names,
                      anomaly_labels=None if truth is None else torch.from_numpy(truth.astype(np.int64)))


def _lookup(rows: dict[str, int], name: str) -> int:
    """--labels rows name records as FILE#ROW, or by ROW alone."""
    if name in rows:
        return rows[name]
    short = name.rsplit("#", 1)[1]
    if short in rows:
        return rows[short]
    raise GenError(f"no label for {name!r}", where="--labels", hint="label rows are `ROW,0|1` or `FILE#ROW,0|1`")
