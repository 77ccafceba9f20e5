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


def _clamp(a: np.ndarray, low: int, high: int) -> np.ndarray:
    """np.clip for the checker's small index arrays (np.clip's own checks cost more than the work)."""
    return np.minimum(np.maximum(a, low), high)


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
