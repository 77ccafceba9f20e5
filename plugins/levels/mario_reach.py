"""The checker's search: can small Mario (`mario.py`'s arcs) get from the first column to the
last? Every cell he can stand on is a node; its walks and jumps are found for all nodes at once,
with each neighbourhood's landings remembered across checks, then searched breadth first."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .mario import (
    DEATH, END, FREE, MARGIN_LEAP, MARGIN_RISE, MARGIN_RISE_WIDE, MARGIN_RUNWAY, NO, RUNUPS,
    SKY, SOLID, _clamp, _landing, _runways, arc_table, safe_floor, spawn_row, wide_floor,
)


def reach(solid: np.ndarray, hazard: np.ndarray, parent: dict | None = None, margin: bool = False,
          deadly: np.ndarray | None = None, graph: dict | None = None) -> tuple[bool, int]:
    """Can small Mario get from the floor of the first column to the last column? `solid` and
    `hazard` are (H, W) bool maps. Returns (passed, furthest column stood on). A `parent` dict
    is filled with each standing cell reached -> the cell it was reached from (the start: None).
    `margin`: the stricter Mario of the module docstring; `deadly`, an (H, W) bool map of tiles
    no jump may pass through (margin mode's Piranha Plants, which cannot be stomped). A `graph`
    dict asks for every reachable cell to be expanded (no early stop) and is filled with the
    forward moves found, for `dead_ends`."""
    h, w = solid.shape
    land = _landing(solid, hazard)
    support = np.vstack([solid[1:], np.zeros((1, w), bool)])
    walkable = ~solid & ~hazard & support
    r0 = spawn_row(solid[:, 0])
    if r0 is None or not walkable[r0, 0]:
        return False, -1
    # Every cell Mario can stand on (the start, every landing) is a node; its moves are found for
    # all of them at once, then the search walks them layer by layer.
    stand = np.zeros((h + 1, w), bool)  # rows from -1: a landing on top of a solid top row is row -1
    stand[1:] = walkable
    stand[0] = solid[0]
    rows, cols = np.nonzero(stand)
    rows -= 1
    node = np.full((h + 1, w), -1, dtype=np.int64)  # (row + 1, col) -> node
    node[rows + 1, cols] = np.arange(len(rows))
    moves = _moves(solid, hazard, land, rows, cols, node, margin, deadly)
    start = int(node[r0 + 1, 0])
    rows_l, cols_l = rows.tolist(), cols.tolist()
    seen = bytearray(len(rows_l))
    seen[start] = 1
    if graph is not None:
        graph.update(start=(r0 + SKY) * w, shape=(SKY + h, w), land=land, solid=solid, hazard=hazard)
    if parent is not None:
        parent[(r0, 0)] = None
    frontier, furthest = [start], 0
    # Breadth first, one layer at a time. A cell found in a layer keeps the first cell that found
    # it, in this order: every frontier cell's walks left, then right, jumps right, then left.
    while frontier:
        found: dict[int, int] = {}
        for kind in moves:
            for s in frontier:
                for t in kind[s]:
                    if not seen[t] and t not in found:
                        found[t] = s
        frontier = sorted(found)  # row by row, as the cells' keys
        for t in frontier:
            seen[t] = 1
            if parent is not None:
                s = found[t]
                parent[(rows_l[t], cols_l[t])] = (rows_l[s], cols_l[s])
        if frontier:
            furthest = max(furthest, max(cols_l[t] for t in frontier))
            if furthest == w - 1 and graph is None:
                return True, furthest
    if graph is not None:  # every cell reached was expanded
        graph["moves"] = [_graph_moves(moves, seen, (rows + SKY) * w + cols)]
    return furthest == w - 1, furthest


def _graph_moves(moves: list[list[list[int]]], seen: bytearray, key: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The moves of the cells `seen` as (src, dst, kind) arrays of keys (`key`: node -> flat index
    into (SKY + H, W)), kind 0-3 as in `_moves`: walks left, right; jumps right, left."""
    src, dst, kind = [], [], []
    for k, targets in enumerate(moves):
        for s, ts in enumerate(targets):
            if seen[s] and ts:
                src += [s] * len(ts)
                dst += ts
                kind += [k] * len(ts)
    return key[np.array(src, dtype=np.int64)], key[np.array(dst, dtype=np.int64)], np.array(kind, dtype=np.int64)


def _moves(solid: np.ndarray, hazard: np.ndarray, land: np.ndarray, rows: np.ndarray, cols: np.ndarray,
           node: np.ndarray, margin: bool, deadly: np.ndarray | None) -> list[list[list[int]]]:
    """Where Mario gets to from each standing cell (rows, cols; row -1 stands on a solid top row),
    as nodes of `node` (row + 1, col), each list in the order the search tries them: walking left,
    walking right, the jumps rightwards, the jumps leftwards. Returns the four kinds, each a list
    per cell of the distinct cells it reaches."""
    table = arc_table(margin)
    h, w = solid.shape
    offsets = table["offsets"]
    pad_x, pad_y = _reach_extent(margin)
    padded = np.full((SKY + h + pad_y, w + 2 * pad_x), FREE, dtype=np.int8)
    padded[:, :pad_x] = SOLID
    padded[:, pad_x + w:] = SOLID
    padded[SKY:SKY + h, pad_x:pad_x + w] = solid
    padded[SKY + h:, pad_x:pad_x + w] = DEATH
    if deadly is not None:
        padded[SKY:SKY + h, pad_x:pad_x + w][deadly] = DEATH
    if margin:
        wide, safe = wide_floor(solid), safe_floor(solid, land)
    support = np.vstack([solid[1:], np.zeros((1, w), bool)])
    runway = _runways(~solid & support, max(RUNUPS) + 1)  # enemies on the way are stomped
    # Negative rows index from the bottom, as numpy does: a cell on row -1 reads the bottom row's
    # solidity when it walks and has no runway there (the bottom row is never a floor).
    n = len(rows)
    targets = []  # per kind: the cell each move starts from, the row and column it ends in, whether allowed
    for dc in (-1, 1):  # walking
        cc = cols + dc
        ok = (cc >= 0) & (cc < w)
        ok[ok] &= ~solid[rows[ok], cc[ok]] & ~hazard[rows[ok], cc[ok]]
        targets.append((np.arange(n), rows, cc, ok))
    for d in (1, -1):
        around = np.full((n, len(offsets) + 1), END, dtype=np.int8)  # (n, U + 1)
        reach_at = offsets[:, 1] * padded.shape[1] + d * offsets[:, 0]  # (U,) flat
        around[:, :-1] = padded.take(((rows + SKY) * padded.shape[1] + cols + pad_x)[:, None] + reach_at[None])
        cell, dx, dy, need = _landings(around, table, d, _LANDINGS[margin, d])  # (m,) each
        room = runway[d][rows, cols] - 1  # (n,)
        ok = need <= room[cell]
        fr, fc = rows[cell] + dy, cols[cell] + d * dx
        if margin:  # land near enough, on a safe floor; the highest jumps on a wide one
            col = _clamp(fc, 0, w - 1)
            lr = land[_clamp(fr, -SKY, h - 1) + SKY, col]
            at = _clamp(lr, 0, h - 1), col
            ok &= (lr != NO) & (np.abs(dx) <= MARGIN_LEAP) & safe[at]
            ok &= (lr >= rows[cell] - MARGIN_RISE) | wide[at] & (room[cell] >= MARGIN_RUNWAY) & \
                (lr >= rows[cell] - MARGIN_RISE_WIDE)
        targets.append((cell, fr, fc, ok))
    out = []
    for walk, (cell, tr, tc, ok) in zip((True, True, False, False), targets):
        ok = ok & (tc >= 0) & (tc < w) & (tr >= -SKY) & (tr < h)
        col = _clamp(tc, 0, w - 1)
        lr = np.where(ok, land[_clamp(tr, -SKY, h - 1) + SKY, col], NO)
        ok &= lr != NO
        to = node[_clamp(lr, -1, h - 1) + 1, col]
        if walk:  # one target per cell at most
            out.append([[t] if good else [] for t, good in zip(to.tolist(), ok.tolist())])
            continue
        # each cell's distinct targets (their order within a cell does not change what is found)
        pairs = np.sort((cell * n + to)[ok])  # (np.unique hashes: 10x slower here)
        distinct = np.ones(len(pairs), bool)
        distinct[1:] = pairs[1:] != pairs[:-1]
        pairs = pairs[distinct]
        bounds = np.searchsorted(pairs, np.arange(n + 1) * n).tolist()
        found = (pairs % n).tolist()
        out.append([found[a:b] for a, b in zip(bounds[:-1], bounds[1:])])
    return out


@lru_cache(maxsize=2)
def _reach_extent(margin: bool) -> tuple[int, int]:
    """Columns of padding either side of a level, and rows below it, that any arc stays inside."""
    cells = arc_table(margin)["cells"]
    return int(np.abs(cells[..., 0]).max()) + 2, int(cells[..., 1].max()) + 2


_LANDINGS: dict[tuple[bool, int], dict[bytes, bytes]] = {(m, d): {} for m in (False, True) for d in (1, -1)}
LANDINGS_KEPT = 20_000  # neighbourhoods remembered per mode and direction (under 1 kB each; a command meets ~2,000)


def _landings(around: np.ndarray, table: dict[str, np.ndarray], d: int, memo: dict[bytes, bytes]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where the jumps (direction `d`) from each cell with the neighbourhood `around` (n, U + 1)
    come down: each distinct end once, as (dx, dy) from the cell, with the least run-up (tiles)
    an arc that ends there needs. Arcs that meet a deadly tile or cannot leave the cell are left
    out. Returns (m,) arrays: the cell (0..n-1), dx, dy, run-up. Neighbourhoods repeat along a
    level and from one check of a stitched level to the next, so each is worked out once (`memo`:
    its bytes -> its ends' bytes; read once per cell, so a check in another thread that clears it
    changes nothing here)."""
    flat, size = around.tobytes(), around.shape[1]
    keys = [flat[i:i + size] for i in range(0, len(flat), size)]
    known = [memo.get(k) for k in keys]
    new = list(dict.fromkeys(k for k, ends in zip(keys, known) if ends is None))
    fresh_ends: dict[bytes, bytes] = {}
    if new:
        sel = np.flatnonzero(table["runup"] <= (max(RUNUPS) if d == 1 else 0))
        sweeps, feet = table["sweeps"], table["feet"][sel]  # feet: (A, S, 2)
        fresh = np.frombuffer(b"".join(new), dtype=np.int8).reshape(len(new), -1)  # (m, U + 1)
        swept = fresh.take(sweeps[:, 0], axis=1)  # (m, V): the worst tile each sweep meets
        for j in range(1, sweeps.shape[1]):  # one maximum per cell (numpy reduces a short last axis slowly)
            np.maximum(swept, fresh.take(sweeps[:, j], axis=1), out=swept)
        step = swept.take(table["step_sweep"][sel], axis=1)  # (m, A, S + 1)
        first = (step != FREE).argmax(axis=2)  # (m, A): the first step that is not free, ...
        kind = np.take_along_axis(step, first[..., None], axis=2)[..., 0]  # ... and what it meets
        last = np.minimum(first - 1, feet.shape[1] - 1)
        hood, arc = np.nonzero((first > 0) & (kind != DEATH))
        end = feet[arc, last[hood, arc]]  # (v, 2)
        ends = np.stack([end[:, 0], end[:, 1], table["runup"][sel][arc]], axis=1)
        order = np.lexsort((ends[:, 2], ends[:, 1], ends[:, 0], hood))  # the least run-up first
        hood, ends = hood[order], ends[order]
        distinct = np.ones(len(hood), bool)
        distinct[1:] = (hood[1:] != hood[:-1]) | (ends[1:, 0] != ends[:-1, 0]) | (ends[1:, 1] != ends[:-1, 1])
        hood, packed = hood[distinct], ends[distinct].astype(np.int8).tobytes()
        bounds = np.searchsorted(hood, np.arange(len(new) + 1)).tolist()
        fresh_ends = {k: packed[3 * a:3 * b] for k, a, b in zip(new, bounds[:-1], bounds[1:])}
        if len(memo) > LANDINGS_KEPT:
            memo.clear()
        memo.update(fresh_ends)
    known = [ends if ends is not None else fresh_ends[k] for k, ends in zip(keys, known)]
    ends = np.frombuffer(b"".join(known), dtype=np.int8).reshape(-1, 3).astype(np.int64)
    cell = np.repeat(np.arange(len(keys)), np.array(list(map(len, known))) // 3)
    return cell, ends[:, 0], ends[:, 1], ends[:, 2]
