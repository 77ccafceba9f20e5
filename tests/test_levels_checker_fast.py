"""The checker's fast paths (mario.py, mario_reach.py): every standing cell's moves found in one batch, each
neighbourhood's arc stops remembered from one check to the next, `_landing` and `_runways`
vectorised. They must find exactly what the layer-by-layer search found before them (main at
be9b797): the same answer, furthest column and search tree, hence the same paths, stitching and
levels. bench/levels_checker_speed.py compares the levels `gen sample` writes with main's."""
import hashlib
import json

import numpy as np

from gencore_levels import mario, mario_reach
from gencore_levels.demo import demo_levels
from gencore_levels.reader import read_level
from test_levels_units import ISSUE_LEVEL, SMB, grid, smb_physics

# sha256 of every search below, run with main's checker (be9b797) before the fast paths
MAIN_SEARCHES = "1f184a7d1b4b61e7"


def landing_by_columns(solid: np.ndarray, hazard: np.ndarray) -> np.ndarray:
    """main's _landing: each column scanned from the bottom up."""
    h, w = solid.shape
    land = np.full((mario.SKY + h, w), mario.NO, dtype=np.int64)
    for c in range(w):
        below = mario.NO
        for r in range(h - 1, -mario.SKY - 1, -1):
            if r >= 0 and solid[r, c]:
                below = mario.NO
                continue
            if 0 <= r + 1 < h and solid[r + 1, c]:
                below = mario.NO if r >= 0 and hazard[r, c] else r
            land[r + mario.SKY, c] = below
    return land


def runways_by_columns(walkable: np.ndarray, cap: int) -> dict[int, np.ndarray]:
    """main's _runways: one column after the other."""
    h, w = walkable.shape
    out = {}
    for d in (1, -1):
        run = np.zeros((h, w), dtype=np.int64)
        prev = None
        for c in range(w) if d == 1 else range(w - 1, -1, -1):
            if prev is None:
                run[:, c] = walkable[:, c]
            else:
                best = run[:, prev].copy()
                best[1:] = np.maximum(best[1:], run[:-1, prev])
                best[:-1] = np.maximum(best[:-1], run[1:, prev])
                run[:, c] = np.where(walkable[:, c], np.minimum(best + 1, cap), 0)
            prev = c
        out[d] = run
    return out


def random_maps(n: int, seed: int = 0):
    """Random (solid, hazard) maps, some with a solid top row (Mario can land on row -1)."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        h, w = int(rng.integers(6, 16)), int(rng.integers(4, 50))
        solid = rng.random((h, w)) < rng.uniform(0.05, 0.45)
        solid[-1] |= rng.random(w) < 0.8
        solid[0] |= rng.random(w) < rng.uniform(0, 0.6)
        yield solid, (rng.random((h, w)) < 0.06) & ~solid


def test_landing_and_runways_match_the_column_scans():
    for solid, hazard in random_maps(150):
        assert np.array_equal(mario._landing(solid, hazard), landing_by_columns(solid, hazard))
        floor = ~solid & np.vstack([solid[1:], np.zeros((1, solid.shape[1]), bool)])
        fast, slow = mario._runways(floor, 7), runways_by_columns(floor, 7)
        assert all(np.array_equal(fast[d], slow[d]) for d in (1, -1))


def searches(levels: dict[str, np.ndarray]) -> list:
    """Every level, whole and cut into 48-column stretches (as stitching checks them), searched
    by both Mario modes: (name, margin, passed, furthest, the search tree in order found)."""
    physics = smb_physics()
    out = []
    for name, g in levels.items():
        cuts = {name: g} | {f"{name}[{c}:]": g[:, c:c + 48] for c in range(24, g.shape[1] - 24, 40)}
        for cut, part in cuts.items():
            for margin in (False, True):
                hazard = mario.hazard_map(part, physics.enemy_map, physics.cannon_top, physics.pipe_top, margin)
                deadly = mario.piranhas(part, physics.enemy_map, physics.pipe_top) if margin else None
                parent: dict = {}
                passed, furthest = mario_reach.reach(physics.solid_map[part], hazard, parent, margin, deadly)
                out.append([cut, margin, passed, furthest, [[k, v] for k, v in parent.items()]])
    return out


def real_levels() -> dict[str, np.ndarray]:
    levels = {p.stem: grid(read_level(p).rows) for p in sorted(SMB.glob("mario-*.txt"))}
    levels |= {f"demo-{i}": grid(level.rows) for i, level in enumerate(demo_levels()[:8])}
    return levels | {"issue22": grid(read_level(ISSUE_LEVEL).rows)}


def test_searches_on_real_levels_are_main_s_with_a_cold_or_warm_memory():
    mario_reach._LANDINGS[False, 1].clear()  # a cold start, then everything remembered from it
    mario_reach._LANDINGS[True, 1].clear()
    levels = real_levels()
    cold = searches(levels)
    assert sum(s[2] for s in cold) > 20 and sum(not s[2] for s in cold) > 20  # both answers occur
    digest = hashlib.sha256(json.dumps(cold).encode()).hexdigest()[:16]
    assert digest == MAIN_SEARCHES, "the checker no longer finds what main's did (see the module docstring)"
    warm = searches(dict(reversed(levels.items())))  # another order, every neighbourhood remembered
    assert sorted(map(json.dumps, warm)) == sorted(map(json.dumps, cold))


def test_random_maps_search_the_same_cold_and_warm():
    for margin in (False, True):
        first = []
        for solid, hazard in random_maps(30, seed=1):
            parent: dict = {}
            first.append((mario_reach.reach(solid, hazard, parent, margin), parent))
        mario_reach._LANDINGS[margin, 1].clear()
        mario_reach._LANDINGS[margin, -1].clear()
        for (solid, hazard), (result, parent) in zip(random_maps(30, seed=1), first):
            again: dict = {}
            assert mario_reach.reach(solid, hazard, again, margin) == result and list(again.items()) == list(parent.items())
