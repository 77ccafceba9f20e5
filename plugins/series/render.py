"""Decoded windows as CSV files in the series' own units, and previews as small line plots."""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gencore.errors import GenError
from gencore.storage import write_text
from gencore_csv.table import csv_text

if TYPE_CHECKING:
    import torch
    from PIL import Image

MAX_ROWS = 12


def denormalise(items: "torch.Tensor", spec: dict[str, Any]) -> np.ndarray:
    norm = spec["normalisation"]
    mean, std = np.asarray(norm["mean"]), np.asarray(norm["std"])
    return items.detach().float().cpu().numpy() * std[None, :, None] + mean[None, :, None]  # (n, C, W)


def export(items: "torch.Tensor", out_dir: Path, stems: list[str], spec: dict[str, Any]) -> list[Path]:
    """One CSV per window (step, one column per channel). When one file's windows share one stem
    (`gen reconstruct` of a series), they go into one CSV, window after window."""
    values = denormalise(items, spec)
    columns = spec["normalisation"]["columns"]
    out_dir = Path(out_dir)
    if len(stems) == len(values):
        written = []
        for stem, window in zip(stems, values):
            rows = [[t, *(f"{v:.6g}" for v in window[:, t])] for t in range(window.shape[1])]
            written.append(out_dir / f"{stem}.csv")
            write_text(written[-1], csv_text(["step", *columns], rows))
        return written
    if len(stems) != 1:
        raise GenError(f"{len(values)} windows for {len(stems)} files", where="FILES",
                       hint="reconstruct one series file at a time")
    rows = [[k, t, *(f"{v:.6g}" for v in window[:, t])] for k, window in enumerate(values)
            for t in range(window.shape[1])]
    target = out_dir / f"{stems[0]}.csv"
    write_text(target, csv_text(["window", "step", *columns], rows))
    return [target]


def preview(items: "torch.Tensor", spec: dict[str, Any], columns: int) -> "Image.Image":
    """Windows as line plots, `columns` per row (re-flowed when that would make a very tall picture)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from PIL import Image

    values = denormalise(items, spec)
    names = spec["normalisation"]["columns"]
    n = len(values)
    columns = max(1, min(columns, n))
    if math.ceil(n / columns) > MAX_ROWS:
        columns = math.ceil(n / MAX_ROWS)
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 1.4 * rows), squeeze=False,
                             sharey=True)
    low, high = np.nanmin(values), np.nanmax(values)
    pad = 0.05 * (high - low or 1.0)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= n:
            ax.axis("off")
            continue
        for c in range(values.shape[1]):
            ax.plot(values[k, c], lw=0.8, label=names[c])
        ax.set_ylim(low - pad, high + pad)
    if values.shape[1] > 1:
        axes.flat[0].legend(fontsize=6, loc="upper left")
    fig.tight_layout(pad=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    buf.seek(0)
    image = Image.open(buf, formats=["PNG"])
    image.load()
    return image.convert("RGB")
