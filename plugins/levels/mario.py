"""Small Mario as the Mario AI framework moves him, for the playability checker of SMB-like games.

The jump arcs are not hand-made: `arcs()` steps the framework's update rules for small Mario
(engine/sprites/Mario.java of the public Mario AI framework, Togelius, Karakovskiy, Baumgarten,
Khalifa et al.) frame by frame:

- running adds 1.2 px/frame to the horizontal speed (walking 0.6), and inertia keeps 0.89 of it
  each frame, on the ground and in the air;
- a jump sets the vertical speed to 7 x -1.9 px/frame and, while the button is held, to
  jumpTime x -1.9 for 7 more frames (jumpTime counting down); released, it keeps 0.85 of the
  speed and gravity adds 3 px/frame: the longest jump rises 66.5 px (4 tiles, not 5);
- small Mario is a box 8 px wide and 12 px tall (x +- 4, y - 12 .. y, y at his feet).

Every tile the box overlaps on every frame (after the horizontal and after the vertical move)
must be free, so ceilings cut jumps short and the edges of gaps and walls count to the pixel.
Jumps start from the middle of a tile, standing or after a run-up along the floor Mario stands on
(the speed a run-up of k tiles gives is simulated too). This is conservative: Mario never does
more here than the engine lets him, and a blocked jump ends with a straight fall instead of the
slide the engine would give him. Enemies are hazards: Mario's box may not touch an enemy tile
(he jumps over enemies; stomping is left out, as is the enemies' walking). Bullet Bills fly
along a cannon's top row: the two tiles either side of a cannon top are hazards.

`margin=True` is a stricter Mario, used only to stitch, accept and repair sampled levels: the
faithful rules pass jumps at the very edge of small Mario's physics, which an agent (or a
player) can lose. It keeps a safety margin on top of the rules above:

- Mario's box is MARGIN_BOX px wider and taller (10 x 26 px, 1.6 tiles), so block edges leave
  room and a ceiling or an overhanging row of blocks above a climb, a hurdle or a pipe head
  leaves most of a tile above the arc (the agent loses jumps whose arc grazes one);
- a jump may rise at most MARGIN_RISE tiles (the faithful jump rises 4), or MARGIN_RISE_WIDE
  onto a floor 2 tiles wide after a run-up of MARGIN_RUNWAY tiles, and land at most MARGIN_LEAP
  columns from its take-off;
- a jump may not land on a lone block with open air over a pit beside it (or at the level's
  end): the floor there must be 2 tiles wide;
- a Piranha Plant is a hazard, and no jump may pass through it (it cannot be stomped);
- no dead end (`dead_ends`): no stretch of DEAD_END_FLOOR tiles of floor Mario gets to going
  forward from which only turning back further than a run-up leads on.

Real levels need not pass it: it is a test for sampled levels, not a model of the game.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

TILE = 16
HALF_WIDTH, HEIGHT = 4, 12  # small Mario's box
RUN, WALK = 1.2, 0.6
INERTIA, Y_DAMP, GRAVITY = 0.89, 0.85, 3.0
JUMP_SPEED, JUMP_TIME = -1.9, 7
HOLDS = (1, 3, 5, 8)  # frames the jump button is held
STEER = (0, 6, 99)  # frames the direction is held after take-off (99: all the way)
RUNUPS = (0, 2, 4, 6)  # tiles of run-up before the take-off tile
STARTS = (4.5, 11.5)  # take-off points in the tile (px): as far left and right as it holds Mario
MAX_FRAMES = 64
MAX_DROP = 17  # rows below take-off after which an arc is cut (it has fallen out of any level)
MARGIN_BOX = (1, 14)  # px added to the box's half-width and height in margin mode (26 px tall: ceilings)
MARGIN_RISE, MARGIN_LEAP = 3, 7  # tiles: the highest and the longest jump in margin mode
MARGIN_RISE_WIDE = 4  # tiles: the highest jump onto a floor 2 tiles wide in margin mode, ...
MARGIN_RUNWAY = 2  # ... after a run-up of at least this many tiles
DEAD_END_BACKSTEP = 2  # tiles margin mode lets Mario walk back for a run-up on his way (dead_ends) ...
DEAD_END_FLOOR = 3  # ... and the shortest stretch of floor that makes a dead end


def runup_speed(tiles: int) -> float:
    """Horizontal speed after running `tiles` tiles from standing (px/frame, after inertia)."""
    x, xa = 0.0, 0.0
    while x < tiles * TILE:
        xa += RUN
        x += xa
        xa *= INERTIA
    return xa


def _cells(x: float, y: float, grow: tuple[int, int] = (0, 0)) -> list[tuple[int, int]]:
    """Tiles (dx, dy) the box (grown by `grow` px: half-width, height) overlaps, relative to the
    take-off tile; x, y in px from its top-left corner, y at the feet."""
    half, height = HALF_WIDTH + grow[0], HEIGHT + grow[1]
    c0, c1 = math.floor((x - half) / TILE), math.floor((x + half) / TILE)
    r0, r1 = math.floor((y - height) / TILE), math.floor(y / TILE)
    return [(c, r) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]


def simulate(speed: float, hold: int, steer: int, start_x: float = TILE / 2, grow: tuple[int, int] = (0, 0)
             ) -> list[tuple[list[tuple[int, int]], tuple[int, int]]]:
    """One rightward jump from `start_x` px into a tile, feet on its floor: per frame, the tiles
    the box sweeps and the tile of the feet (Mario.update: move x, then y; damping; gravity)."""
    x, y = start_x, TILE - 1.0
    xa, ya, jump_time = speed, 0.0, 0
    steps = []
    for frame in range(MAX_FRAMES):
        if frame == 0:
            jump_time, ya = JUMP_TIME, JUMP_TIME * JUMP_SPEED
        elif frame < hold and jump_time > 0:
            ya = jump_time * JUMP_SPEED
            jump_time -= 1
        else:
            jump_time = 0
        if frame < steer:
            xa += RUN
        if abs(xa) < 0.5:
            xa = 0.0
        x += xa
        swept = _cells(x, y, grow)
        y += ya
        swept += _cells(x, y, grow)
        feet = (math.floor(x / TILE), math.floor(y / TILE))
        steps.append((sorted(set(swept)), feet))
        ya = ya * Y_DAMP + GRAVITY
        xa *= INERTIA
        if feet[1] > MAX_DROP:
            break
    return steps


@lru_cache(maxsize=2)
def arc_table(margin: bool = False) -> dict[str, np.ndarray]:
    """Every (run-up, hold, steer) jump as padded arrays: cells (A, S, M, 2), feet (A, S, 2),
    the run-up each needs (A,), and the number of steps of each (A,). `margin`: with the grown box."""
    grow = MARGIN_BOX if margin else (0, 0)
    arcs, needs = [], []
    seen = set()
    for runup in RUNUPS:
        speed = runup_speed(runup)
        for hold in HOLDS:
            for steer, start_x in ((a, b) for a in STEER for b in STARTS):
                steps = simulate(speed, hold, steer, start_x, grow)
                key = tuple((tuple(c), f) for c, f in steps)
                if key not in seen:
                    seen.add(key)
                    arcs.append(steps)
                    needs.append(runup)
    n_steps = max(len(a) for a in arcs)
    n_cells = max(len(c) for a in arcs for c, _ in a)
    cells = np.zeros((len(arcs), n_steps, n_cells, 2), dtype=np.int64)
    feet = np.zeros((len(arcs), n_steps, 2), dtype=np.int64)
    length = np.zeros(len(arcs), dtype=np.int64)
    for i, steps in enumerate(arcs):
        length[i] = len(steps)
        for s, (swept, foot) in enumerate(steps):
            cells[i, s, :len(swept)] = swept
            cells[i, s, len(swept):] = swept[0]
            feet[i, s] = foot
        cells[i, len(steps):] = cells[i, len(steps) - 1]
        feet[i, len(steps):] = feet[i, len(steps) - 1]
    # Every arc's cells as indices into the offsets any arc touches (U of them): the checker
    # gathers a standing cell's U neighbours once, then reads the arcs from that small row.
    # Steps past an arc's end, and one more step after the longest, point at offset U, which the
    # checker reads as END.
    # Many steps of different arcs sweep the same cells: `sweeps` (V, M) lists the distinct
    # sets once and `step_sweep` (A, S + 1) says which one each step is.
    offsets, index = np.unique(cells.reshape(-1, 2), axis=0, return_inverse=True)
    index = np.concatenate([index.reshape(cells.shape[:3]), np.zeros((len(arcs), 1, n_cells), np.int64)], axis=1)
    index[np.arange(n_steps + 1)[None, :] >= length[:, None]] = len(offsets)
    sweeps, step_sweep = np.unique(np.sort(index, axis=-1).reshape(-1, n_cells), axis=0, return_inverse=True)
    return {"cells": cells, "feet": feet, "runup": np.array(needs), "length": length, "offsets": offsets,
            "sweeps": sweeps, "step_sweep": step_sweep.reshape(index.shape[:2])}


# -- the checker -------------------------------------------------------------------------------------
FREE, SOLID, DEATH, END = 0, 1, 2, 3
SKY = 6  # open rows above the level
NO = -999


def piranhas(grid: np.ndarray, enemy: np.ndarray, pipe_top: np.ndarray) -> np.ndarray:
    """(H, W) bool: Piranha Plants (enemies on a pipe head)."""
    plant = np.zeros(grid.shape, bool)
    plant[:-1] = enemy[grid[:-1]] & pipe_top[grid[1:]]
    return plant


def hazard_map(grid: np.ndarray, enemy: np.ndarray, cannon_top: np.ndarray, pipe_top: np.ndarray,
               margin: bool = False) -> np.ndarray:
    """(H, W) bool: enemy tiles, and the two tiles either side of a cannon top (Bullet Bills).
    An enemy on a pipe head is a Piranha Plant, which stays in its pipe while Mario stands on it
    or beside it: its tile is no hazard (with `margin`: it is)."""
    hazard = enemy[grid].copy()
    plant = piranhas(grid, enemy, pipe_top)
    if margin:
        hazard |= plant
    else:
        hazard &= ~plant
    rows, cols = np.nonzero(cannon_top[grid])
    for r, c in zip(rows.tolist(), cols.tolist()):
        hazard[r, max(0, c - 2):c + 3] |= ~cannon_top[grid[r, max(0, c - 2):c + 3]]
    return hazard


def _landing(solid: np.ndarray, hazard: np.ndarray) -> np.ndarray:
    """(SKY + H, W): the row Mario comes to rest on when dropped into each cell (rows from
    -SKY), or NO where he falls out of the level or would rest on a hazard. Falling through an
    enemy is a stomp; resting in its tile is not allowed."""
    h, w = solid.shape
    rows = np.arange(-SKY, h)[:, None]  # (SKY + H, 1)
    solid_at = np.zeros((SKY + h + 1, w), bool)
    solid_at[SKY:SKY + h] = solid
    # the first solid row at or below each cell (H where there is none), bottom-up
    first_solid = np.where(solid_at, np.arange(-SKY, h + 1)[:, None], h)[::-1]
    first_solid = np.minimum.accumulate(first_solid, axis=0)[::-1][:-1]  # (SKY + H, W)
    rest = first_solid - 1  # the free cell on top of it
    hazard_at = np.zeros((SKY + h, w), bool)
    hazard_at[SKY:] = hazard
    resting_hazard = np.take_along_axis(hazard_at, _clamp(rest + SKY, 0, SKY + h - 1), axis=0) & (rest >= 0)
    ok = (rows <= rest) & (first_solid < h) & ~resting_hazard
    return np.where(ok, rest, NO)


def _runways(walkable: np.ndarray, cap: int) -> dict[int, np.ndarray]:
    """Tiles of floor Mario can run along before each standing tile, rightwards (1) and
    leftwards (-1). Steps of one tile up or down keep the run going: he hops them at speed, and
    hops on the enemies in his way (Mario.stomp keeps his speed)."""
    out = {}
    for d in (1, -1):
        # run >= k where the tile is walkable and run >= k - 1 one column back, a row up or down
        at_least, run = walkable, walkable.astype(np.int64)
        for _ in range(cap - 1):
            near = at_least.copy()
            near[1:] |= at_least[:-1]
            near[:-1] |= at_least[1:]
            back = np.zeros_like(near)
            if d == 1:
                back[:, 1:] = near[:, :-1]
            else:
                back[:, :-1] = near[:, 1:]
            at_least = walkable & back
            if not at_least.any():
                break
            run += at_least
        out[d] = run
    return out


def spawn_row(column: np.ndarray) -> int | None:
    """Where the framework puts Mario in a level without an `M`: in the first column, on the
    first free tile above the lowest solid one (MarioLevel.findFirstFloor); None if none."""
    solid_rows = np.flatnonzero(column)
    if not len(solid_rows):
        return None
    above = [r for r in range(int(solid_rows.max()) - 1, -1, -1) if not column[r]]
    below_solid = [r for r in above if column[r + 1]]
    return below_solid[0] if below_solid else None


def wide_floor(solid: np.ndarray) -> np.ndarray:
    """(H, W) bool: standing cells whose floor goes on at least one tile left or right, with room
    to stand there too (outside the level counts as no floor)."""
    stand = ~solid & np.vstack([solid[1:], np.zeros((1, solid.shape[1]), bool)])
    side = np.zeros_like(stand)
    side[:, 1:] |= stand[:, :-1]
    side[:, :-1] |= stand[:, 1:]
    return stand & side


def safe_floor(solid: np.ndarray, land: np.ndarray) -> np.ndarray:
    """(H, W) bool: standing cells to land a jump on with room for error: the floor is 2 tiles
    wide, or neither side is open air over a pit (a lone block over a gap is not safe)."""
    h, w = solid.shape
    pit = ~solid & (land[SKY:] == NO)  # open cells Mario falls to his death from
    edge = np.zeros((h, w), bool)
    edge[:, 1:] |= pit[:, :-1]
    edge[:, :-1] |= pit[:, 1:]
    edge[:, -1] = True  # past the level's end: no floor
    return wide_floor(solid) | ~edge


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


def _clamp(a: np.ndarray, low: int, high: int) -> np.ndarray:
    """np.clip for the checker's small index arrays (np.clip's own checks cost more than the work)."""
    return np.minimum(np.maximum(a, low), high)


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
