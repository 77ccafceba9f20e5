"""Margin mode's dead ends: floor Mario reaches going forward from which no forward route leads
on (the A* agent runs ahead into such a pocket and is stuck, or dies)."""
from __future__ import annotations

import numpy as np

from .mario import (
    DEAD_END_BACKSTEP, DEAD_END_FLOOR, NO, SKY,
)

def _stomps(graph: dict, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Moves through the enemies in Mario's way (src, dst keys): from a cell with enemies just
    right of it, to where he lands past them. Goombas walk and can be stomped; only the terrain
    makes a dead end."""
    rows, w = graph["shape"]
    solid, hazard, land = graph["solid"], graph["hazard"], graph["land"]
    r, c = cells // w - SKY, cells % w
    out_src, out_dst = [], []
    for k in (1, 2, 3):  # runs of up to 3 enemies (the game's longest)
        cc = c + k
        ok = (r >= 0) & (cc < w)
        ok[ok] &= hazard[r[ok], c[ok] + 1] & ~solid[r[ok], cc[ok]] & ~hazard[r[ok], cc[ok]]
        ok[ok] &= hazard[r[ok], np.minimum(c[ok] + k - 1, w - 1)]
        lr = np.full(len(c), NO)
        lr[ok] = land[r[ok] + SKY, cc[ok]]
        ok &= lr != NO
        out_src.append(cells[ok])
        out_dst.append((lr[ok] + SKY) * w + cc[ok])
    return np.concatenate(out_src), np.concatenate(out_dst)


def dead_ends(graph: dict, backstep: int = DEAD_END_BACKSTEP) -> np.ndarray:
    """Standing cells (row, col) Mario gets to going forward from where `reach` started him, from
    which no forward route leads on to the last column. Forward: a walk right, a rightward jump
    (and the fall after it), or a run-up of at most `backstep` tiles walked back followed by a
    jump that lands past where the run-up began. A pocket without one (under a row of blocks that
    caps the only climb, on a floor under a ceiling that ends at a pit) needs Mario to turn back
    further first: the A* agent runs ahead into it and is stuck, or dies. (K, 2), sorted by column."""
    rows, w = graph["shape"]
    n = rows * w
    src, dst, kind = (np.concatenate(part) for part in zip(*graph["moves"])) if graph.get("moves") else \
        (np.zeros(0, dtype=np.int64),) * 3
    ahead_move = ((kind == 1) | (kind == 2)) & (src != dst)  # every such move ends further right
    jump = (kind == 2) & (src != dst)
    walk_back = np.full(n, -1)
    walk_back[src[kind == 0]] = dst[kind == 0]
    jump_src, jump_dst = src[jump], dst[jump]
    order = np.argsort(jump_src, kind="stable")
    jump_src, jump_dst = jump_src[order], jump_dst[order]
    moves = [(src[ahead_move], dst[ahead_move]), _stomps(graph, np.unique(src))]
    start, back_to = np.arange(n), np.arange(n)
    for _ in range(backstep):  # run-ups: from each cell, walk back k tiles, then jump
        ok = back_to >= 0
        back_to[ok] = walk_back[back_to[ok]]
        has = np.flatnonzero(back_to >= 0)
        lo = np.searchsorted(jump_src, back_to[has], "left")
        count = np.searchsorted(jump_src, back_to[has], "right") - lo
        run_src = np.repeat(start[has], count)
        run_dst = jump_dst[np.arange(count.sum()) - np.repeat(np.cumsum(count) - count - lo, count)]
        past = run_dst % w > run_src % w
        moves.append((run_src[past], run_dst[past]))
    src, dst = (np.concatenate(part) for part in zip(*moves))
    # every move ends in a column right of where it starts: one pass over the columns closes them
    order = np.argsort(src % w, kind="stable")
    src, dst = src[order], dst[order]
    bounds = np.searchsorted(src % w, np.arange(w + 1))
    ahead = np.zeros(n, bool)
    ahead[graph["start"]] = True
    for c in range(w):  # forward from the start
        s, d = src[bounds[c]:bounds[c + 1]], dst[bounds[c]:bounds[c + 1]]
        ahead[d[ahead[s]]] = True
    on = np.zeros(n, bool)
    on[np.arange(rows) * w + w - 1] = True
    for c in range(w - 1, -1, -1):  # backward from the last column
        s, d = src[bounds[c]:bounds[c + 1]], dst[bounds[c]:bounds[c + 1]]
        on[s[on[d]]] = True
    keys = np.flatnonzero(ahead & ~on)
    cells = np.stack([keys // w - SKY, keys % w], axis=1)
    if not len(cells):
        return cells
    # only the terrain makes a dead end: not one beside an enemy (they walk, and are stomped)
    near = np.zeros((rows + 2, w + 6), bool)  # hazards, padded: (row - 2 + SKY, col - 2 + 2) ...
    near[SKY + 2:, 2:w + 2] = graph["hazard"]
    foe = np.zeros(len(cells), bool)
    for dr in (-2, -1, 0):
        for dc in range(-2, 4):
            foe |= near[cells[:, 0] + SKY + 2 + dr, cells[:, 1] + 2 + dc]
    cells = cells[~foe]
    if not len(cells):
        return cells
    # ... and a stretch of floor Mario runs along into it, not a dip he hops in and out of
    stuck = np.zeros((rows, w + 2), bool)
    stuck[cells[:, 0] + SKY, cells[:, 1] + 1] = True
    run = np.zeros_like(stuck, dtype=np.int64)
    for c in range(1, w + 1):
        run[:, c] = np.where(stuck[:, c], run[:, c - 1] + 1, 0)
    for c in range(w, 0, -1):  # each cell gets the length of its whole run
        run[:, c] = np.where(stuck[:, c], np.maximum(run[:, c], run[:, c + 1]), 0)
    cells = cells[run[cells[:, 0] + SKY, cells[:, 1] + 1] >= DEAD_END_FLOOR]
    return cells[np.argsort(cells[:, 1], kind="stable")]
