"""Attributes of level windows a designer can steer (`gen sample --attr enemies=+2`), measured
per item on tile grids (the likeliest tile of each cell, as `gen sample` writes them), along the
level's columns:

- `enemies`, `coins`, `pipes`: tiles of that element per column (the profile's element tiles);
- `gaps`: share of columns with no solid tile in the bottom row;
- `ground_variance`: variance over columns of the ground height (solid tiles stacked up from the
  bottom row).
Games whose profile names no elements get the last two only.

The element attributes also steer the decoding. Training stores, per element, its tile rate in
the training windows tilted towards windows rich (or poor) in it (`tilted_rates`); with
`--attr enemies=S` the calibration (decoding.py) aims the enemy tiles at the rate of the
windows tilted by S instead of the corpus's. At S = 0 nothing changes. The latent direction,
fitted as for every domain, moves what the decoder draws; the tilt moves how many of those
tiles the calibrated decoding keeps, as the corpus's own windows would.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .labels import element_table
from .render import grids_of

if TYPE_CHECKING:
    import torch

ELEMENTS = {"enemies": "enemy", "coins": "coin", "pipes": "pipe"}
TILT_SHIFTS = np.round(np.arange(-3.0, 3.01, 0.25), 2)  # shifts at which tilted rates are stored


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


def tilted_rates(grids: np.ndarray, table: dict[str, list[int]], keys: np.ndarray | None = None
                 ) -> dict[str, dict[str, list[float]]]:
    """Per group of training windows (N, H, W) sharing element bits (`keys`, one string per
    window; "" is all windows) and per element attribute: its tiles' share of all cells with
    window i weighted by exp(S z_i) at each S of TILT_SHIFTS, z_i being the normal score of the
    window's rank by that attribute within the group (ties share one). S = 0 is the group's plain
    rate. Within a group, windows labelled `enemy` all keep an enemy however low S goes."""
    groups = {"": np.ones(len(grids), dtype=bool)}
    if keys is not None:
        groups.update({str(k): keys == k for k in np.unique(keys)})
    return {key: _tilted(grids[members], table) for key, members in groups.items()}


def _tilted(grids: np.ndarray, table: dict[str, list[int]]) -> dict[str, list[float]]:
    from scipy.special import ndtri
    from scipy.stats import rankdata

    out = {}
    n, h, w = grids.shape
    for name, element in ELEMENTS.items():
        if element not in table or n < 2:
            continue
        counts = np.isin(grids, table[element]).sum(axis=(1, 2)).astype(np.float64)
        if np.ptp(counts) == 0:
            continue
        z = ndtri((rankdata(counts) - 0.5) / n)  # (N,) normal scores, ties averaged
        rates = []
        for shift in TILT_SHIFTS:
            weight = np.exp(shift * z - np.max(shift * z))
            rates.append(round(float((weight * counts).sum() / weight.sum() / (h * w)), 8))
        out[name] = rates
    return out


def steered_target(target: np.ndarray, meta: dict[str, Any], shifts: dict[str, float], key: str) -> np.ndarray:
    """Calibration target frequencies (K,) for windows with element bits `key` ("" for none,
    "mix" for the corpus's mix of bits), with each shifted element attribute's tiles scaled to
    the group's tilted rate at its shift (interpolated; shifts beyond TILT_SHIFTS take the end
    values), the empty tile taking up the difference."""
    tilted = meta.get("tilted_rates") or {}
    mix = meta.get("label_mix") or {}
    table = element_table(meta.get("profile"), meta["tiles"])
    target = target.astype(np.float64).copy()
    empty = meta["tiles"].index(meta["empty"])
    for name, shift in shifts.items():
        if name not in ELEMENTS or shift == 0:
            continue
        if key == "mix" and mix:
            curves = [(p, tilted.get(k, {}).get(name)) for k, p in mix.items()]
            curve = sum(p * np.asarray(c, dtype=np.float64) for p, c in curves if c is not None)
        else:
            curve = tilted.get(key, {}).get(name)
        if curve is None or np.ndim(curve) == 0:
            continue
        curve = np.asarray(curve, dtype=np.float64)
        base = curve[len(TILT_SHIFTS) // 2]
        if base <= 0:
            continue
        tiles = table[ELEMENTS[name]]
        before = target[tiles].sum()
        target[tiles] *= float(np.interp(shift, TILT_SHIFTS, curve)) / base
        target[empty] = max(0.0, target[empty] - (target[tiles].sum() - before))
    return target / target.sum()
