"""Attributes of level windows a designer can steer (`gen sample --attr enemies=+2`), measured
per item on tile grids (the likeliest tile of each cell, as `gen sample` writes them), along the
level's columns:

- `enemies`, `coins`, `pipes`: tiles of that element per column (the profile's element tiles);
- `gaps`: share of columns with no solid tile in the bottom row;
- `ground_variance`: variance over columns of the ground height (solid tiles stacked up from the
  bottom row).
Games whose profile names no elements get the last two only.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .labels import element_table
from .render import grids_of

if TYPE_CHECKING:
    import torch

ELEMENTS = {"enemies": "enemy", "coins": "coin", "pipes": "pipe"}


def measure(items: "torch.Tensor", spec: dict[str, Any]) -> dict[str, np.ndarray]:
    meta = spec.get("meta") or {}
    grids = grids_of(items, spec)  # (N, H, W) tile indices
    n, h, w = grids.shape
    table = element_table(meta.get("profile"), meta["tiles"])
    out: dict[str, np.ndarray] = {}
    for name, element in ELEMENTS.items():
        if element in table:
            out[name] = np.isin(grids, table[element]).sum(axis=(1, 2)) / w
    roles = meta.get("roles", {})
    solid = np.array([roles.get(ch) == "solid" for ch in meta["tiles"]])
    cells = solid[grids]  # (N, H, W) bool
    out["gaps"] = (~cells[:, -1, :]).mean(axis=1)
    # ground height: solid cells counted up from the bottom row until the first non-solid one
    stacked = np.cumprod(cells[:, ::-1, :], axis=1).sum(axis=1)  # (N, W)
    out["ground_variance"] = stacked.var(axis=1)
    return {k: v.astype(np.float64) for k, v in out.items()}
