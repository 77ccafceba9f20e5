"""Decoded records as a CSV table in the original units and categories, and heat-map previews."""
from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gencore.storage import write_text
from gencore_csv.table import csv_text

if TYPE_CHECKING:
    import torch
    from PIL import Image

MAX_LABELLED_FEATURES = 40


def decode(items: "torch.Tensor", spec: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Vectors (n, D) -> the header and rows: numbers back in their units, each categorical column
    its most likely category."""
    norm = spec["normalisation"]
    values = items.detach().float().cpu().numpy().astype(np.float64)
    numeric = list(norm["numeric"])
    k = len(numeric)
    numbers = values[:, :k] * np.asarray(norm["std"]) + np.asarray(norm["mean"])
    columns = [[f"{v:.6g}" for v in numbers[:, j]] for j in range(k)]
    at = k
    for cats in norm["categorical"].values():
        pick = values[:, at:at + len(cats)].argmax(axis=1)
        columns.append([cats[i] for i in pick])
        at += len(cats)
    header = numeric + list(norm["categorical"])
    return header, [list(row) for row in zip(*columns)]


def export(items: "torch.Tensor", out_dir: Path, stems: list[str], spec: dict[str, Any]) -> list[Path]:
    """One table, records.csv, with a first column `item` naming each record (its stem; for the
    records of one file, STEM#ROW)."""
    header, rows = decode(items, spec)
    names = stems if len(stems) == len(rows) else [f"{stems[0]}#{i + 1}" for i in range(len(rows))]
    target = Path(out_dir) / "records.csv"
    write_text(target, csv_text(["item", *header], [[name, *row] for name, row in zip(names, rows)]))
    return [target]


def preview(items: "torch.Tensor", spec: dict[str, Any], columns: int) -> "Image.Image":
    """Records as rows of a heat map of their standardised features (one-hot groups as probabilities)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from PIL import Image

    values = items.detach().float().cpu().numpy()
    features = spec["normalisation"]["features"]
    fig, ax = plt.subplots(figsize=(min(16, 2 + 0.25 * len(features)), min(12, 1.2 + 0.22 * len(values))))
    image = ax.imshow(np.clip(values, -3, 3), aspect="auto", cmap="coolwarm", vmin=-3, vmax=3,
                      interpolation="nearest")
    if len(features) <= MAX_LABELLED_FEATURES:
        ax.set_xticks(range(len(features)), features, rotation=90, fontsize=6)
    ax.set_ylabel("record")
    fig.colorbar(image, ax=ax, label="standardised value")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    buf.seek(0)
    picture = Image.open(buf, formats=["PNG"])
    picture.load()
    return picture.convert("RGB")
