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

from .structure import clear, remove_malformed

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
    """Roles per tile index, and either the jump arcs as a prefix tree (VGLC Paths/ arcs) or, for
    SMB-like games, small Mario as the Mario AI framework moves him (mario.py). `margin` asks
    for mario.py's stricter Mario, with a safety margin: `--playable` accepts and repairs with it."""

    def __init__(self, roles: Sequence[str], jumps: list[list[list[int]]], model: str | None = None,
                 tiles: Sequence[str] = (), legend: dict[str, list[str]] | None = None,
                 structures: dict[str, dict[str, str]] | None = None, margin: bool = False):
        self.margin = margin and model == "mario"
        self.solid = [r == "solid" for r in roles]
        self.support = [r in ("solid", "platform") for r in roles]
        self.trie = _trie(jumps)
        self.model = model
        if model == "mario":
            import numpy as np

            tags = [{t.lower() for t in (legend or {}).get(ch, [])} for ch in tiles]
            chars = {role: ch for kind in (structures or {}).values() for role, ch in kind.items()}
            self.solid_map = np.array(self.solid, dtype=bool)
            self.enemy_map = np.array(["enemy" in t for t in tags], dtype=bool)
            self.cannon_top = np.array([ch == chars.get("top") for ch in tiles], dtype=bool)
            self.pipe_top = np.array([ch in (chars.get("top-left"), chars.get("top-right")) for ch in tiles], dtype=bool)

    @classmethod
    def from_meta(cls, meta: dict[str, Any], margin: bool = False) -> "Physics | None":
        if not meta.get("physics"):
            return None
        roles = [meta["roles"].get(ch, "passable") for ch in meta["tiles"]]
        return cls(roles, meta["physics"].get("jumps") or [], meta["physics"].get("model"), meta["tiles"],
                   meta.get("legend"), {"pipes": meta.get("pipes") or {}, "cannons": meta.get("cannons") or {}},
                   margin)


def _trie(jumps):
    root: dict = {}
    for arc in jumps:
        node = root
        for dx, dy in arc:
            node = node.setdefault((dx, dy), {})
        node[None] = True  # an arc ends here
    return root


def check(grid: Sequence[Sequence[int]], physics: Physics, goal: str = "right", trace: bool = False) -> Result:
    """Reachability on a (H, W) grid of tile indices (lists or a numpy array). `trace` adds the
    path of standing cells from the start to the one that got furthest (for viewers)."""
    if physics.model == "mario" and goal == "right":
        return _check_mario(grid, physics, trace)
    return _check_arcs(grid, physics, goal, trace)


def _path(parent: dict, cell: tuple[int, int] | None) -> list[tuple[int, int]]:
    out = []
    while cell is not None:
        out.append(cell)
        cell = parent[cell]
    return out[::-1]


def _check_mario(grid, physics: Physics, trace: bool = False) -> Result:
    import numpy as np

    from .mario import hazard_map, piranhas
    from .mario_dead_ends import dead_ends
    from .mario_reach import reach

    g = np.asarray(grid, dtype=np.int64)
    if g.ndim != 2 or not g.size:
        return Result(False, -1, max(g.shape[-1] if g.ndim else 1, 1))
    parent: dict | None = {} if trace else None
    hazard = hazard_map(g, physics.enemy_map, physics.cannon_top, physics.pipe_top, physics.margin)
    deadly = piranhas(g, physics.enemy_map, physics.pipe_top) if physics.margin else None
    graph: dict | None = {} if physics.margin else None  # the margin also wants no dead end ahead
    passed, furthest = reach(physics.solid_map[g], hazard, parent, physics.margin, deadly, graph)
    ahead = None
    if passed and graph is not None:
        stuck = dead_ends(graph)
        if len(stuck):  # fails where the furthest dead end is, so repair works there
            passed, ahead = False, (int(stuck[-1, 0]), int(stuck[-1, 1]))
            furthest = ahead[1]
    path = None
    if trace:  # with a graph the search went on past the end, so `parent` holds the dead end too
        ahead = ahead or max(parent, key=lambda cell: (cell[1], -cell[0]), default=None)
        path = _path(parent, ahead)
    return Result(passed, furthest, g.shape[1], path)


def _landing_rows(free, support, height: int, width: int) -> list[list[int | None]]:
    """land[r + SKY][c]: the row where a drop into (r, c) comes to rest, or None (a pit)."""
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
    return land


def _start_cell(free, support, height: int, width: int, goal: str) -> tuple[int, int] | None:
    """The lowest standable cell of the first column (goal "right"), or the lowest row's first
    standable cell (goal "top")."""
    if goal == "right":
        for c in range(width):
            for r in range(height - 1, -1, -1):
                if free[r + SKY][c] and r + 1 < height and support[r + 1][c]:
                    return r, c
        return None
    for r in range(height - 2, -1, -1):
        for c in range(width):
            if free[r + SKY][c] and support[r + 1][c]:
                return r, c
    return None


def _arc_ends(trie, free, r: int, c: int, width: int, height: int, best: list[int]) -> list[tuple[int, int]]:
    """Where each jump arc from (r, c) ends (blocked or done), depth-first through the arc tree;
    `best` ([column, row]) tracks the furthest column and highest row passed."""
    ends_at = []
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
                best[0], best[1] = max(best[0], nc), min(best[1], nr)
                stack.append((child, nr, nc))
            else:
                ends = True
        if ends and (pr, pc) != (r, c):
            ends_at.append((pr, pc))
    return ends_at


def _check_arcs(grid: Sequence[Sequence[int]], physics: Physics, goal: str = "right", trace: bool = False) -> Result:
    rows = [list(map(int, r)) for r in (grid.tolist() if hasattr(grid, "tolist") else grid)]
    height, width = len(rows), len(rows[0]) if rows else 0
    if not height or not width:
        return Result(False, -1, max(width, 1))
    # free[r + SKY][c]: air above the level is free
    free = [[True] * width for _ in range(SKY)] + [[not physics.solid[t] for t in row] for row in rows]
    support = [[physics.support[t] for t in row] for row in rows]
    land = _landing_rows(free, support, height, width)
    start = _start_cell(free, support, height, width, goal)
    if start is None:
        return Result(False, -1, width if goal == "right" else height)
    best = [start[1], start[0]]  # furthest column, highest row
    parent: dict[tuple[int, int], tuple[int, int] | None] = {start: None}  # only filled with `trace`
    ahead = start  # the standing cell furthest along
    seen = {start}
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        targets = [(r, nc) for nc in (c - 1, c + 1) if 0 <= nc < width and free[r + SKY][nc]]
        best[0] = max([best[0]] + [t[1] for t in targets])
        for tr, tc in targets + _arc_ends(physics.trie, free, r, c, width, height, best):
            lr = land[tr + SKY][tc]
            if lr is not None and (lr, tc) not in seen:
                seen.add((lr, tc))
                queue.append((lr, tc))
                best[1] = min(best[1], lr)
                if trace:
                    parent[(lr, tc)] = (r, c)
                    if (tc > ahead[1]) if goal == "right" else (lr < ahead[0]):
                        ahead = (lr, tc)
        if goal == "right" and best[0] == width - 1 or goal == "top" and best[1] <= 0:
            break
    path = _path(parent, ahead) if trace else None
    if goal == "right":
        return Result(best[0] == width - 1, best[0], width, path)
    return Result(best[1] <= 0, height - 1 - max(best[1], 0), height, path)


# -- repair --------------------------------------------------------------------------------------
def _step(grid: list[list[int]], physics: Physics, meta_idx: dict[str, Any], result: Result) -> bool:
    """A stepping block, as SMB's staircases are built: on the empty floor at or just before the
    furthest cell stood on, where that lets Mario get further. Returns whether it was laid."""
    if not result.path:
        return False
    r, c = result.path[-1]
    for cc in (c, c - 1, c - 2):
        if 0 <= cc < len(grid[0]) and 0 < r < len(grid) - 1 and grid[r][cc] == meta_idx["empty"] \
                and physics.solid[grid[r + 1][cc]] and grid[r - 1][cc] == meta_idx["empty"]:
            trial = [list(row) for row in grid]
            trial[r][cc] = meta_idx["ground"]
            after = check(trial, physics)
            if after.passed or after.furthest > result.furthest:
                grid[r][cc] = meta_idx["ground"]
                return True
    return False


def _lift_overhang(grid: list[list[int]], physics: Physics, meta_idx: dict[str, Any], result: Result) -> bool:
    """Remove the hanging blocks (solid, with open air under them) above Mario's head over the
    furthest cell stood on and the 4 columns after it, where that lets him get further: a row of
    blocks over a climb, a hurdle or a pipe head cuts the arc. Returns whether it did."""
    if not result.path:
        return False
    r, c = result.path[-1]
    solid, width = physics.solid, len(grid[0])
    hanging = [(rr, cc) for cc in range(c, min(width, c + 5)) for rr in range(r - 1)
               if solid[grid[rr][cc]] and not solid[grid[rr + 1][cc]]]
    if not hanging:
        return False
    trial = [list(row) for row in grid]
    for rr, cc in hanging:
        if solid[trial[rr][cc]]:
            clear(trial, rr, cc, meta_idx)
    remove_malformed(trial, meta_idx)
    after = check(trial, physics)
    if not (after.passed or after.furthest > result.furthest):
        return False
    grid[:] = trial
    return True


def _local_fix(grid: list[list[int]], physics: Physics, meta_idx: dict[str, Any], result: Result) -> bool:
    """One local repair just past the furthest column: pits first, then a stepping block, then
    enemies, then overhanging blocks, then walls. Returns whether anything changed."""
    height, width = len(grid), len(grid[0])
    solid, f = physics.solid, max(result.furthest, 0)
    pits = [c for c in range(max(0, f - 1), min(width, f + 5)) if not solid[grid[height - 1][c]]]
    for c in pits:
        grid[height - 1][c] = meta_idx["ground"]
    if pits:
        return True
    if _step(grid, physics, meta_idx, result):
        return True
    enemy = getattr(physics, "enemy_map", None)
    if enemy is not None:
        foes = [(r, c) for c in range(f, min(width, f + 5)) for r in range(height) if enemy[grid[r][c]]]
        for r, c in foes:
            grid[r][c] = meta_idx["empty"]
        if foes:
            return True
    if _lift_overhang(grid, physics, meta_idx, result):
        return True
    walls = [(r, c) for c in range(f + 1, min(width, f + 3)) for r in range(height - 2, -1, -1) if solid[grid[r][c]]]
    for r, c in walls:
        if solid[grid[r][c]]:
            clear(grid, r, c, meta_idx)
    return bool(walls)


def repair(grid: list[list[int]], physics: Physics, meta_idx: dict[str, Any], max_local: int = 60) -> list[list[int]]:
    """Make a level completable, changing little: fill the pits, then lay a stepping block, then
    remove the enemies, then the blocks hanging over the way, then clear the walls just past the
    furthest column reached (structures that lose their support go whole); as a last resort, lay a
    floor with a clear row above it, and if a dead end (margin mode) is left on the blocks above
    it, clear them too, which always works. Returns a new grid."""
    grid = [list(row) for row in grid]
    height, width = len(grid), len(grid[0])
    for _ in range(max_local):
        result = check(grid, physics, trace=True)
        if result.passed:
            return grid
        if not _local_fix(grid, physics, meta_idx, result):
            break
        remove_malformed(grid, meta_idx)
    if check(grid, physics).passed:
        return grid
    solid, enemy = physics.solid, getattr(physics, "enemy_map", None)
    for c in range(width):  # the fallback corridor: clear the row above the floor, ...
        if height >= 2 and (solid[grid[height - 2][c]] or enemy is not None and enemy[grid[height - 2][c]]):
            clear(grid, height - 2, c, meta_idx)
    for c in range(width):  # ... then lay the floor (clearing a pipe may have opened it)
        if not solid[grid[height - 1][c]]:
            grid[height - 1][c] = meta_idx["ground"]
    remove_malformed(grid, meta_idx)  # structures whose support went
    if not check(grid, physics).passed:  # a dead end left on the blocks above: the floor alone
        for r in range(height - 1):
            for c in range(width):
                if solid[grid[r][c]]:
                    clear(grid, r, c, meta_idx)
        remove_malformed(grid, meta_idx)
    return grid
