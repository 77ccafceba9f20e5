"""Structural validity (docs/metrics.md): every pipe top-left has its top-right beside it, pipe
bodies sit under pipe tops (or more body) in pairs, and the bottom row has floor.

Grids are tile indices; `indices(meta)` maps the profile's pipe and cannon roles to them.
Windows cut pipes at their left and right edges, so checks of windows are lenient there.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def indices(meta: dict[str, Any]) -> dict[str, Any]:
    tiles = meta["tiles"]
    pos = {ch: i for i, ch in enumerate(tiles)}
    pipes = {role: pos[ch] for role, ch in (meta.get("pipes") or {}).items() if ch in pos}
    if len(pipes) != 4:
        pipes = {}
    cannons = {role: pos[ch] for role, ch in (meta.get("cannons") or {}).items() if ch in pos}
    roles = meta.get("roles", {})
    solid = [roles.get(ch) == "solid" for ch in tiles]
    ground = meta.get("ground")
    return {"pipes": pipes, "cannons": cannons, "empty": pos[meta["empty"]],
            "ground": pos.get(ground, pos[meta["empty"]]) if ground else pos[meta["empty"]], "solid": solid}


def _shift(g: np.ndarray, dc: int, dr: int, fill: int) -> np.ndarray:
    """out[..., r, c] = g[..., r + dr, c + dc], `fill` outside."""
    out = np.full_like(g, fill)
    h, w = g.shape[-2:]
    rs, re_ = max(0, -dr), min(h, h - dr)
    cs, ce = max(0, -dc), min(w, w - dc)
    out[..., rs:re_, cs:ce] = g[..., rs + dr:re_ + dr, cs + dc:ce + dc]
    return out


EDGE = 255  # stands for "outside the grid"


def pipe_error_map(g: np.ndarray, idx: dict[str, Any], lenient_left: bool, lenient_right: bool) -> np.ndarray:
    """(..., H, W) bool: the pipe tiles that break a rule."""
    p = idx["pipes"]
    if not p:
        return np.zeros(g.shape, dtype=bool)
    tl, tr, bl, br = p["top-left"], p["top-right"], p["body-left"], p["body-right"]
    g = g.astype(np.int16)
    right, left, up = _shift(g, 1, 0, EDGE), _shift(g, -1, 0, EDGE), _shift(g, 0, -1, EDGE)
    ok_right = lambda want: (right == want) | ((right == EDGE) & lenient_right)  # noqa: E731
    ok_left = lambda want: (left == want) | ((left == EDGE) & lenient_left)  # noqa: E731
    bad = np.zeros(g.shape, dtype=bool)
    bad |= (g == tl) & ~ok_right(tr)
    bad |= (g == tr) & ~ok_left(tl)
    bad |= (g == bl) & ~(ok_right(br) & ((up == bl) | (up == tl) | (up == EDGE)))
    bad |= (g == br) & ~(ok_left(bl) & ((up == br) | (up == tr) | (up == EDGE)))
    return bad


def pipe_errors(grid: np.ndarray, idx: dict[str, Any], lenient_right: bool = False, lenient_left: bool = False,
                first_col: int = 0) -> int:
    bad = pipe_error_map(grid, idx, lenient_left, lenient_right)
    return int(bad[..., first_col:].sum())


def malformed_map(grids: np.ndarray, idx: dict[str, Any]) -> np.ndarray:
    """(..., H, W) bool: the cells issue 22 counts as malformed, for real and generated levels
    alike, with no leniency at the edges (a window that cuts a pipe counts as broken):

    - `<` without `>` to its right or a solid tile below; `>` without `<` to its left;
    - `[` without `]` to its right, `<` or `[` above, or a solid tile below;
    - `]` without `[` to its left, or `>` or `]` above;
    - `B` (cannon top) without a solid tile below.

    Outside the map counts as solid."""
    g = grids.astype(np.int16)
    solid = np.array(idx["solid"] + [False] * (256 - len(idx["solid"])), dtype=bool)
    solid[EDGE] = True
    right, left = _shift(g, 1, 0, EDGE), _shift(g, -1, 0, EDGE)
    up, down = _shift(g, 0, -1, EDGE), _shift(g, 0, 1, EDGE)
    solid_below = solid[down]
    bad = np.zeros(g.shape, dtype=bool)
    p, cannon = idx["pipes"], idx["cannons"]
    if p:
        tl, tr, bl, br = p["top-left"], p["top-right"], p["body-left"], p["body-right"]
        bad |= (g == tl) & ((right != tr) | ~solid_below)
        bad |= (g == tr) & (left != tl)
        bad |= (g == bl) & ((right != br) | ~((up == tl) | (up == bl)) | ~solid_below)
        bad |= (g == br) & ((left != bl) | ~((up == tr) | (up == br)))
    if cannon.get("top") is not None:
        bad |= (g == cannon["top"]) & ~solid_below
    return bad


def malformed(grids: np.ndarray, idx: dict[str, Any]) -> np.ndarray:
    """(N, H, W) -> (N,) the number of malformed cells of each grid."""
    return malformed_map(grids, idx).sum(axis=(-2, -1))


def validity(grids: np.ndarray, idx: dict[str, Any], lenient: bool) -> np.ndarray:
    """(N, H, W) -> (N,) bool: pipes whole (lenient at the side edges for windows), floor present."""
    solid = np.array(idx["solid"] + [False] * (256 - len(idx["solid"])), dtype=bool)
    floor = solid[grids[:, -1, :]].any(axis=1)
    pipes_ok = ~pipe_error_map(grids, idx, lenient, lenient).any(axis=(1, 2))
    return floor & pipes_ok


# -- editing ---------------------------------------------------------------------------------------
def pipe_columns(grid, r: int, c: int, pipes: dict[str, int]) -> list[int]:
    t = grid[r][c]
    if t in (pipes.get("top-left"), pipes.get("body-left")):
        return [c, c + 1]
    if t in (pipes.get("top-right"), pipes.get("body-right")):
        return [c - 1, c]
    return [c]


def clear(grid, r: int, c: int, idx: dict[str, Any]) -> None:
    """Empty the tile at (r, c) in a list-of-lists grid; a pipe or a cannon goes whole, so the
    structure stays valid."""
    height, width = len(grid), len(grid[0])
    pipes, cannons, empty = idx["pipes"], idx["cannons"], idx["empty"]
    pipe_tiles, cannon_tiles = set(pipes.values()), set(cannons.values())
    t = grid[r][c]
    if t in pipe_tiles:
        for cc in pipe_columns(grid, r, c, pipes):
            if 0 <= cc < width:
                for rr in range(height):
                    if grid[rr][cc] in pipe_tiles:
                        grid[rr][cc] = empty
    elif t in cannon_tiles:
        for rr in range(height):
            if grid[rr][c] in cannon_tiles:
                grid[rr][c] = empty
    else:
        grid[r][c] = empty


def remove_broken_pipes(level: np.ndarray, idx: dict[str, Any]) -> np.ndarray:
    """Remove every pipe that breaks a rule (half pipes, bodies without a top, a pipe cut by the
    level's end), leaving ground where a removed pipe stood in the bottom row."""
    grid = level.tolist()
    bottom = len(grid) - 1
    for _ in range(level.size + 1):  # each pass removes at least one pipe tile
        bad = pipe_error_map(np.array(grid, dtype=level.dtype), idx, False, False)
        if not bad.any():
            break
        r, c = map(int, np.argwhere(bad)[0])
        pipe_tiles = set(idx["pipes"].values())
        top = r
        while top > 0 and grid[top - 1][c] in pipe_tiles:
            top -= 1
        while top <= bottom and grid[top][c] in pipe_tiles:  # the broken column's run of pipe tiles
            grid[top][c] = idx["ground"] if top == bottom else idx["empty"]
            top += 1
    return np.array(grid, dtype=level.dtype)


def remove_malformed(grid: list[list[int]], idx: dict[str, Any]) -> None:
    """Take down (in place, a list-of-lists grid) every pipe or cannon that breaks a rule, for
    example one whose support a repair cleared; ground is left where one stood in the bottom row."""
    import numpy as np

    bottom = len(grid) - 1
    for _ in range(len(grid) * len(grid[0])):
        bad = malformed_map(np.array(grid, dtype=np.int64), idx)
        if not bad.any():
            return
        r, c = map(int, np.argwhere(bad)[0])
        had_floor = grid[bottom][c] in set(idx["pipes"].values()) | set(idx["cannons"].values())
        clear(grid, r, c, idx)
        if had_floor:
            for cc in range(max(0, c - 1), min(len(grid[0]), c + 2)):
                if grid[bottom][cc] == idx["empty"]:
                    grid[bottom][cc] = idx["ground"]
