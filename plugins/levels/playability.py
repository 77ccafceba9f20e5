"""Deterministic jump-arc reachability (docs/metrics.md), and the repair behind `--playable`.

The player starts on the leftmost standable tile (the lowest one in that column) and moves under
gravity: from a standable cell it steps left or right or follows one of the game's jump arcs,
cell by cell, until the arc ends or hits something solid, then falls straight down. Falling out
of the bottom row is death. Rows above the level are open air. Enemies are passable. The goal is
any cell of the rightmost column (or, for vertical games, of the top row).

Pure Python on lists, with the arcs folded into a prefix tree so shared beginnings are walked
once: a 200-column SMB level checks in a few milliseconds.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Sequence

from .structure import clear

SKY = 6  # rows of open air above the level, more than any jump rises


@dataclass
class Result:
    passed: bool
    furthest: int  # the furthest column (or, goal "top", row from the bottom) reached
    length: int  # the level's width (or height)
    path: list[tuple[int, int]] | None = None  # with `trace`: the standing cells (row, col) to the furthest one

    @property
    def fraction(self) -> float:
        return (self.furthest + 1) / self.length if self.length else 0.0


class Physics:
    """Roles per tile index, and the jump arcs as a prefix tree."""

    def __init__(self, roles: Sequence[str], jumps: list[list[list[int]]]):
        self.solid = [r == "solid" for r in roles]
        self.support = [r in ("solid", "platform") for r in roles]
        self.trie = _trie(jumps)

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> "Physics | None":
        if not meta.get("physics"):
            return None
        roles = [meta["roles"].get(ch, "passable") for ch in meta["tiles"]]
        return cls(roles, meta["physics"]["jumps"])


def _trie(jumps):
    root: dict = {}
    for arc in jumps:
        node = root
        for dx, dy in arc:
            node = node.setdefault((dx, dy), {})
        node[None] = True  # an arc ends here
    return root


def check(grid: Sequence[Sequence[int]], physics: Physics, goal: str = "right",  # noqa: C901 -- one flat BFS, kept whole for speed
          trace: bool = False) -> Result:
    """Reachability on a (H, W) grid of tile indices (lists or a numpy array). `trace` adds the
    path of standing cells from the start to the one that got furthest (for viewers)."""
    rows = [list(map(int, r)) for r in (grid.tolist() if hasattr(grid, "tolist") else grid)]
    height, width = len(rows), len(rows[0]) if rows else 0
    if not height or not width:
        return Result(False, -1, max(width, 1))
    solid_of, support_of = physics.solid, physics.support
    # free[r][c] for r in [-SKY, height): air above the level is free; index with r + SKY
    free = [[True] * width for _ in range(SKY)] + [[not solid_of[t] for t in row] for row in rows]
    support = [[support_of[t] for t in row] for row in rows]
    # landing row when dropped into (r, c), or None for death (fell out of the bottom)
    land: list[list[int | None]] = [[None] * width for _ in range(height + SKY)]
    for c in range(width):
        below: int | None = None
        for r in range(height - 1, -SKY - 1, -1):
            if not free[r + SKY][c]:
                below = None
                continue
            if 0 <= r + 1 < height and support[r + 1][c]:
                below = r
            elif r + 1 >= height:
                below = None  # nothing below the bottom row: a pit
            land[r + SKY][c] = below
    start = None
    if goal == "right":
        for c in range(width):
            for r in range(height - 1, -1, -1):
                if free[r + SKY][c] and r + 1 < height and support[r + 1][c]:
                    start = (r, c)
                    break
            if start:
                break
    else:
        for r in range(height - 2, -1, -1):
            for c in range(width):
                if free[r + SKY][c] and support[r + 1][c]:
                    start = (r, c)
                    break
            if start:
                break
    if start is None:
        return Result(False, -1, width if goal == "right" else height)

    best_col, best_row = start[1], start[0]
    parent: dict[tuple[int, int], tuple[int, int] | None] = {start: None}  # only filled with `trace`
    ahead = start  # the standing cell furthest along
    seen = {start}
    queue = deque([start])
    trie = physics.trie
    while queue:
        r, c = queue.popleft()
        targets = []
        for nc in (c - 1, c + 1):
            if 0 <= nc < width and free[r + SKY][nc]:
                targets.append((r, nc))
                best_col = max(best_col, nc)
        # jumps: depth-first through the arc tree; a blocked step ends every arc through it
        stack = [(trie, r, c)]
        while stack:
            node, pr, pc = stack.pop()
            ends = False
            for key, child in node.items():
                if key is None:
                    ends = True
                    continue
                nr, nc = r + key[1], c + key[0]
                if 0 <= nc < width and -SKY <= nr < height and free[nr + SKY][nc]:
                    if nc > best_col:
                        best_col = nc
                    if nr < best_row:
                        best_row = nr
                    stack.append((child, nr, nc))
                else:
                    ends = True
            if ends and (pr, pc) != (r, c):
                targets.append((pr, pc))
        for tr, tc in targets:
            lr = land[tr + SKY][tc]
            if lr is not None and (lr, tc) not in seen:
                seen.add((lr, tc))
                queue.append((lr, tc))
                if lr < best_row:
                    best_row = lr
                if trace:
                    parent[(lr, tc)] = (r, c)
                    if (tc > ahead[1]) if goal == "right" else (lr < ahead[0]):
                        ahead = (lr, tc)
        if goal == "right" and best_col == width - 1:
            return Result(True, best_col, width, _path(parent, ahead) if trace else None)
        if goal == "top" and best_row <= 0:
            return Result(True, height - 1, height, _path(parent, ahead) if trace else None)
    path = _path(parent, ahead) if trace else None
    if goal == "right":
        return Result(best_col == width - 1, best_col, width, path)
    reached = height - 1 - max(best_row, 0)
    return Result(best_row <= 0, reached, height, path)


def _path(parent: dict, cell: tuple[int, int]) -> list[tuple[int, int]]:
    out = []
    while cell is not None:
        out.append(cell)
        cell = parent[cell]
    return out[::-1]


# -- repair --------------------------------------------------------------------------------------
def repair(grid: list[list[int]], physics: Physics, meta_idx: dict[str, Any], max_local: int = 60) -> list[list[int]]:
    """Make a level completable, changing little: fill the pits and clear the walls just past the
    furthest column reached; as a last resort, lay a floor with a clear row above it, which
    always works. Returns a new grid."""
    grid = [list(row) for row in grid]
    height, width = len(grid), len(grid[0])
    ground, solid = meta_idx["ground"], physics.solid
    for _ in range(max_local):
        result = check(grid, physics)
        if result.passed:
            return grid
        f = max(result.furthest, 0)
        changed = False
        for c in range(max(0, f - 1), min(width, f + 5)):  # pits: lay the floor back
            if not solid[grid[height - 1][c]]:
                grid[height - 1][c] = ground
                changed = True
        if not changed:  # walls: clear the standing rows just past the furthest column
            for c in range(f + 1, min(width, f + 3)):
                for r in range(height - 2, -1, -1):
                    if solid[grid[r][c]]:
                        clear(grid, r, c, meta_idx)
                        changed = True
        if not changed:
            break
    if check(grid, physics).passed:
        return grid
    for c in range(width):  # the fallback corridor: clear the row above the floor, ...
        if height >= 2 and solid[grid[height - 2][c]]:
            clear(grid, height - 2, c, meta_idx)
    for c in range(width):  # ... then lay the floor (clearing a pipe may have opened it)
        if not solid[grid[height - 1][c]]:
            grid[height - 1][c] = ground
    return grid
