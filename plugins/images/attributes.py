"""Attributes of images a person can steer (`gen sample --attr ink=+1`), measured per item on
intensities in [0, 1] (likelihood means or real pixels), channels averaged:

- `ink`: mean intensity;
- `stroke_width`: 2 x inked area / inked perimeter (a stroke of width w and length L has area wL
  and perimeter about 2L), over pixels above one half;
- `slant`: how far the ink leans right as it rises, -cov(column, row) / var(row), intensity
  weighted (0 = upright; rows count downwards).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

INKED = 0.5


def measure(items: "torch.Tensor") -> dict[str, np.ndarray]:
    gray = items.detach().float().cpu().numpy().mean(axis=1)  # (N, H, W)
    n, h, w = gray.shape
    ink = gray.mean(axis=(1, 2))
    on = gray > INKED
    area = on.sum(axis=(1, 2)).astype(np.float64)
    edges = (on[:, 1:] != on[:, :-1]).sum(axis=(1, 2)) + (on[:, :, 1:] != on[:, :, :-1]).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        stroke_width = np.where(edges > 0, 2.0 * area / np.maximum(edges, 1), np.nan)
        mass = gray.sum(axis=(1, 2))
        rows = np.arange(h, dtype=np.float64)[None, :, None]
        cols = np.arange(w, dtype=np.float64)[None, None, :]
        r_mean = (gray * rows).sum(axis=(1, 2)) / mass
        c_mean = (gray * cols).sum(axis=(1, 2)) / mass
        dr = rows - r_mean[:, None, None]
        dc = cols - c_mean[:, None, None]
        cov = (gray * dr * dc).sum(axis=(1, 2)) / mass
        var = (gray * dr * dr).sum(axis=(1, 2)) / mass
        slant = np.where((mass > 0) & (var > 0), -cov / var, np.nan)
    return {"ink": ink.astype(np.float64), "stroke_width": stroke_width, "slant": slant}
