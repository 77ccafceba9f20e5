"""From decoded tile probabilities to tile grids a designer would keep.

Plain argmax decoding of a tile VAE breaks structures (a pipe head with no body, a cannon in
mid-air) and, because training weights rare tiles up, lays carpets of enemies. Decoding here
fixes both with what the corpus says, without deleting what the model chose to put there:

1. *Calibration.* Each tile type gets a log-offset so that the decoded tile frequencies match
   the training windows that carry the same element bits (`meta["tile_freq"]`), measured on a
   batch of decoder samples for that condition (`calibrate`).
2. *Structures as objects.* Pipes and cannons are never decoded tile by tile. Every place a whole
   pipe fits (head `<>` on a 2-wide body `[]` down to the first solid tile) or a cannon (`B` on
   `b`s down to a solid tile) is scored by the log-probability of its cells against the best
   non-structure tiles there; whole structures are laid greedily, likeliest first, while they
   are likelier than what they replace.
3. *Requested elements.* A window asked for with `--class pipe` (or any element bits) carries
   each element asked for: a window the calibrated decoding left without it gets the element's
   likeliest whole pipe (or cannon), or its likeliest tile on a free cell (`require`). The
   calibration counts these, so the tile rates still match the target.
4. *Enemy runs.* A horizontal run of enemies longer than the corpus's longest
   (`meta["enemy_run_max"]`) keeps its likeliest enemies.

Arrays: log-probabilities (N, K, H, W), grids (N, H, W) of tile indices.
"""
from __future__ import annotations

from typing import Any

import numpy as np

CALIBRATION_SAMPLES = 256
CALIBRATION_STEPS = 12
EPS = 1e-5


def rules_of(meta: dict[str, Any]) -> dict[str, Any]:
    """Tile indices the decoding needs: structure tiles, solids, enemies."""
    pos = {ch: i for i, ch in enumerate(meta["tiles"])}
    roles = meta.get("roles", {})
    pipes = {role: pos.get(ch) for role, ch in (meta.get("pipes") or {}).items()}
    cannons = {role: pos.get(ch) for role, ch in (meta.get("cannons") or {}).items()}
    pipes = pipes if len(pipes) == 4 and None not in pipes.values() else {}
    cannons = cannons if len(cannons) == 2 and None not in cannons.values() else {}
    structure = sorted(set(pipes.values()) | set(cannons.values()))
    enemy = _enemy_tiles(meta, pos)
    return {"pipes": pipes, "cannons": cannons, "structure": structure, "enemy": enemy,
            "solid": np.array([roles.get(ch) == "solid" for ch in meta["tiles"]], dtype=bool),
            "run_max": meta.get("enemy_run_max")}


def _enemy_tiles(meta: dict[str, Any], pos: dict[str, int]) -> list[int]:
    tags = meta.get("legend") or {}
    return [pos[ch] for ch in meta["tiles"] if "enemy" in {t.lower() for t in tags.get(ch, [])}]


# -- 1. calibration ---------------------------------------------------------------------------------
def target_frequencies(meta: dict[str, Any], bits: np.ndarray | None) -> np.ndarray | None:
    """The training tile frequencies for windows with these element bits (exact, else the
    windows carrying at least these bits, else all)."""
    table = meta.get("tile_freq")
    if not table:
        return None
    if bits is None:
        return np.array(table[""], dtype=np.float64)
    key = "".join("1" if b > 0.5 else "0" for b in bits)
    if key in table:
        return np.array(table[key], dtype=np.float64)
    return np.array(table[""], dtype=np.float64)


def calibrate(logp: np.ndarray, target: np.ndarray | None, rules: dict[str, Any],
              require: list[list[int]] | None = None) -> np.ndarray:
    """(K,) log-offsets making plain argmax of logp + offset match `target`'s tile frequencies,
    counting the tiles that `require` (element tile lists every window must carry) adds.
    Structure tiles are calibrated by their total share (they are decoded as objects)."""
    k = logp.shape[1]
    offset = np.zeros(k)
    if target is None:
        return offset
    flat = np.ascontiguousarray(logp.transpose(0, 2, 3, 1)).reshape(-1, k)
    for _ in range(CALIBRATION_STEPS):
        if require:
            shifted = logp + offset[None, :, None, None]
            grid = shifted.argmax(axis=1)  # (N, H, W)
            carry_tiles(grid, shifted, require, rules)
            freq = np.bincount(grid.reshape(-1), minlength=k) / grid.size
        else:
            freq = np.bincount((flat + offset).argmax(axis=1), minlength=k) / len(flat)
        step = np.log(target + EPS) - np.log(freq + EPS)
        offset += 0.7 * np.clip(step, -2.0, 2.0)
        offset -= offset[0]  # the empty tile (index 0) is the reference
    return offset


# -- 2. structures -----------------------------------------------------------------------------------
def _next_solid(solid: np.ndarray) -> np.ndarray:
    """(H, W) bool -> (H, W) int: for each cell, the first row below it that is solid (H: none)."""
    h, w = solid.shape
    out = np.full((h, w), h, dtype=np.int64)
    below = np.full(w, h, dtype=np.int64)
    for r in range(h - 1, -1, -1):
        out[r] = below
        below = np.where(solid[r], r, below)
    return out


def _column_sums(lp: np.ndarray) -> np.ndarray:
    """(H, W) -> (H + 1, W): cumulative sums down the rows, 0 on top."""
    return np.concatenate([np.zeros((1, lp.shape[1])), np.cumsum(lp, axis=0)])


def _place(grid, lp, base_lp, solid_of, rules, taken: np.ndarray | None = None, need: tuple[str, ...] = ()) -> None:
    """Lay whole pipes and cannons on one grid (in place), likeliest first, in the columns not
    `taken` by a structure already. A kind in `need` ("pipe", "cannon") that none of those
    gains laid gets its likeliest place, even if less likely than what it replaces."""
    h, w = grid.shape
    pipes, cannons = rules["pipes"], rules["cannons"]
    taken = np.zeros(w, dtype=bool) if taken is None else taken.copy()
    rows = np.arange(h)[:, None]
    missing = [kind for kind in need if not np.isin(grid, list((pipes if kind == "pipe" else cannons).values())).any()]
    while True:
        below = _next_solid(solid_of[grid])  # (H, W)
        base = _column_sums(base_lp)
        best = (0.0, None)
        forced: dict[str, tuple] = {}  # the likeliest place of each missing kind, whatever its gain
        if pipes and w >= 2:
            head = lp[pipes["top-left"], :, :-1] + lp[pipes["top-right"], :, 1:]
            body = _column_sums(lp[pipes["body-left"]])[:, :-1], _column_sums(lp[pipes["body-right"]])[:, 1:]
            stop = below[:, :-1]  # the body runs down the left column to its first solid tile
            gather = lambda cs, idx: np.take_along_axis(cs, idx, axis=0)  # noqa: E731
            body_lp = (gather(body[0], stop) - gather(body[0], np.minimum(rows + 1, stop))
                       + gather(body[1], stop) - gather(body[1], np.minimum(rows + 1, stop)))
            alt = (gather(base[:, :-1], stop) - gather(base[:, :-1], rows) + gather(base[:, 1:], stop)
                   - gather(base[:, 1:], rows))
            gain = head + body_lp - alt
            free = ~(taken[:-1] | taken[1:])
            gain = np.where(free[None, :], gain, -np.inf)
            r, c = np.unravel_index(int(np.argmax(gain)), gain.shape)
            if np.isfinite(gain[r, c]):
                forced["pipe"] = ("pipe", int(r), int(c), int(stop[r, c]))
            if gain[r, c] > best[0]:
                best = (float(gain[r, c]), ("pipe", int(r), int(c), int(stop[r, c])))
        if cannons:
            stop = below
            body = _column_sums(lp[cannons["base"]])
            gather = lambda cs, idx: np.take_along_axis(cs, idx, axis=0)  # noqa: E731
            gain = (lp[cannons["top"]] + gather(body, stop) - gather(body, np.minimum(rows + 1, stop))
                    - gather(base, stop) + gather(base, rows))
            gain = np.where(taken[None, :], -np.inf, gain)
            r, c = np.unravel_index(int(np.argmax(gain)), gain.shape)
            if np.isfinite(gain[r, c]):
                forced["cannon"] = ("cannon", int(r), int(c), int(stop[r, c]))
            if gain[r, c] > best[0]:
                best = (float(gain[r, c]), ("cannon", int(r), int(c), int(stop[r, c])))
        if best[1] is None:
            best = (0.0, next((forced[kind] for kind in missing if kind in forced), None))
            if best[1] is None:
                return
        kind, r, c, stop = best[1]
        if kind in missing:
            missing.remove(kind)
        if kind == "pipe":
            grid[r, c], grid[r, c + 1] = pipes["top-left"], pipes["top-right"]
            grid[r + 1:stop, c], grid[r + 1:stop, c + 1] = pipes["body-left"], pipes["body-right"]
            taken[c:c + 2] = True
        else:
            grid[r, c] = cannons["top"]
            grid[r + 1:stop, c] = cannons["base"]
            taken[c] = True


# -- 3. enemy runs ---------------------------------------------------------------------------------
def _runs(row: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True in a 1-D bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _keep(margins: np.ndarray, run_max: int) -> np.ndarray:
    """Which cells of a run to keep: the largest total margin with no more than `run_max` kept
    in a row (dynamic programming over the number kept at the end)."""
    n = len(margins)
    best = np.full((n + 1, run_max + 1), -np.inf)  # best[i, s]: first i cells, s kept at the end
    best[0, 0] = 0.0
    came = np.zeros((n + 1, run_max + 1), dtype=np.int64)
    for i in range(n):
        drop = int(np.argmax(best[i]))
        best[i + 1, 0], came[i + 1, 0] = best[i, drop], drop
        for s in range(1, run_max + 1):
            best[i + 1, s], came[i + 1, s] = best[i, s - 1] + margins[i], s - 1
    keep = np.zeros(n, dtype=bool)
    s = int(np.argmax(best[n]))
    for i in range(n, 0, -1):
        keep[i - 1] = s > 0
        s = came[i, s]
    return keep


def _limit_runs(grid, lp, alt_grid, alt_lp, rules) -> None:
    """Shorten enemy runs longer than the corpus's longest, keeping the likeliest enemies (by
    their margin over the best other tile, which replaces the ones that go)."""
    run_max, enemy = rules["run_max"], rules["enemy"]
    if not run_max or not enemy:
        return
    is_enemy = np.isin(grid, enemy)
    for r in range(grid.shape[0]):
        for start, end in _runs(is_enemy[r]):
            if end - start <= run_max:
                continue
            cols = np.arange(start, end)
            drop = cols[~_keep(lp[grid[r, cols], r, cols] - alt_lp[r, cols], run_max)]
            grid[r, drop] = alt_grid[r, drop]


def decode(logp: np.ndarray, rules: dict[str, Any], offset: np.ndarray | None = None,
           require: list[list[int]] | None = None) -> np.ndarray:
    """(N, K, H, W) log-probabilities -> (N, H, W) tile grids: calibrated, whole structures,
    each element of `require` (lists of element tiles) present, enemy runs no longer than the
    corpus's."""
    lp = logp if offset is None else logp + offset[None, :, None, None]
    n, k, h, w = lp.shape
    masked = lp.copy()
    if rules["structure"]:
        masked[:, rules["structure"]] = -np.inf
    base_grid = masked.argmax(axis=1)  # (N, H, W): the best non-structure tile of each cell
    base_lp = np.take_along_axis(lp, base_grid[:, None], axis=1)[:, 0]  # (N, H, W)
    out = base_grid.copy()
    enemy_only = np.zeros(k, dtype=bool)
    enemy_only[rules["enemy"]] = True
    need = structures_required(require, rules)
    for i in range(n):
        if rules["structure"]:
            # structures stand on solid non-enemy tiles; their alternative is the base tile
            _place(out[i], lp[i], base_lp[i], rules["solid"], rules, need=need)
        if require:
            carry_tiles(out[i:i + 1], lp[i:i + 1], require, rules)
        _limit_runs(out[i], lp[i], _non_enemy(masked[i], enemy_only), _best(masked[i], enemy_only), rules)
    return out.astype(np.uint8)


def structures_required(require: list[list[int]] | None, rules: dict[str, Any]) -> tuple[str, ...]:
    """The structure kinds ("pipe", "cannon") that required elements consist of."""
    need = []
    for tiles in require or []:
        for kind, roles in (("pipe", rules["pipes"]), ("cannon", rules["cannons"])):
            if roles and set(tiles) & set(roles.values()) and kind not in need:
                need.append(kind)
    return tuple(need)


def carry_tiles(grid: np.ndarray, lp: np.ndarray, require: list[list[int]], rules: dict[str, Any]) -> None:
    """Windows (N, H, W) that lack a required element made of plain tiles get its likeliest tile
    (by its margin in `lp`, (N, K, H, W)) on one cell, in place. The cell is never part of a
    structure nor holds another requested element's tile, and a passable element (an enemy, a coin) never replaces a solid tile: it would
    knock the ground from under a pipe or leave an enemy inside a wall."""
    structure = rules["structure"]
    solid = rules["solid"]
    asked = sorted({t for tiles in require for t in tiles})  # a tile laid for one element stays
    for tiles in require:
        if set(tiles) & set(structure):
            continue  # structures are laid whole by _place
        lacking = np.flatnonzero(~np.isin(grid, tiles).any(axis=(1, 2)))
        if not len(lacking):
            continue
        g, lpl = grid[lacking], lp[lacking]  # (M, H, W), (M, K, H, W)
        current = np.take_along_axis(lpl, g[:, None].astype(np.int64), axis=1)[:, 0]
        choice = lpl[:, tiles]  # (M, T, H, W)
        margin = choice.max(axis=1) - current
        allowed = ~np.isin(g, structure) & ~np.isin(g, asked)
        if not solid[tiles].all():
            allowed &= ~solid[g]
        margin = np.where(allowed, margin, -np.inf).reshape(len(lacking), -1)
        cell = margin.argmax(axis=1)
        ok = np.isfinite(margin[np.arange(len(lacking)), cell])
        r, c = np.unravel_index(cell, g.shape[1:])
        best = np.asarray(tiles)[choice.argmax(axis=1)[np.arange(len(lacking)), r, c]]
        grid[lacking[ok], r[ok], c[ok]] = best[ok]


def _non_enemy(masked: np.ndarray, enemy: np.ndarray) -> np.ndarray:
    m = masked.copy()
    m[enemy] = -np.inf
    return m.argmax(axis=0)


def _best(masked: np.ndarray, enemy: np.ndarray) -> np.ndarray:
    m = masked.copy()
    m[enemy] = -np.inf
    return m.max(axis=0)


def finish_level(grid: np.ndarray, lp: np.ndarray, rules: dict[str, Any]) -> np.ndarray:
    """A stitched level (H, W) and its calibrated log-probabilities (K, H, W): structures broken
    across a seam are taken down to their best non-structure tiles and the freed columns get
    whatever whole structures are likeliest there; then enemy runs are limited."""
    from . import structure

    grid = grid.copy()
    masked = lp.copy()
    if rules["structure"]:
        masked[rules["structure"]] = -np.inf
    base_grid = masked.argmax(axis=0)
    base_lp = np.take_along_axis(lp, base_grid[None], axis=0)[0]
    idx = {"pipes": rules["pipes"], "cannons": rules["cannons"], "solid": rules["solid"].tolist()}
    is_structure = np.isin(grid, rules["structure"])
    for _ in range(grid.shape[1]):
        bad = structure.malformed_map(grid, idx)
        if not bad.any():
            break
        cols = set()
        for c in np.flatnonzero(bad.any(axis=0)).tolist():  # the broken structures' columns
            cols.update(cc for cc in (c - 1, c, c + 1) if 0 <= cc < grid.shape[1] and is_structure[:, cc].any())
        cols = sorted(cols)
        grid[:, cols] = np.where(is_structure[:, cols], base_grid[:, cols], grid[:, cols])
        is_structure = np.isin(grid, rules["structure"])
        _place(grid, lp, base_lp, rules["solid"], rules, taken=is_structure.any(axis=0))
        is_structure = np.isin(grid, rules["structure"])
    enemy = np.zeros(lp.shape[0], dtype=bool)
    enemy[rules["enemy"]] = True
    _limit_runs(grid, lp, _non_enemy(masked, enemy), _best(masked, enemy), rules)
    return grid


# -- copies ------------------------------------------------------------------------------------------
BLOOM_BITS = 1 << 15
BLOOM_HASHES = 4


def _bloom_positions(grid: np.ndarray) -> list[int]:
    import hashlib

    digest = hashlib.blake2b(np.ascontiguousarray(grid, dtype=np.uint8).tobytes(), digest_size=4 * BLOOM_HASHES).digest()
    return [int.from_bytes(digest[4 * i:4 * i + 4], "little") % BLOOM_BITS for i in range(BLOOM_HASHES)]


def window_filter(grids: np.ndarray) -> str:
    """A Bloom filter of the training windows (base64, 4 KB): `is_copy` asks it whether a
    window is one of them (false positives about 1 in 150 for SMB's 2,698 windows)."""
    import base64

    bits = np.zeros(BLOOM_BITS, dtype=bool)
    for g in grids:
        bits[_bloom_positions(g)] = True
    return base64.b64encode(np.packbits(bits).tobytes()).decode("ascii")


def is_copy(grids: np.ndarray, bloom: str | None) -> np.ndarray:
    """(N,) bool: which windows the training windows' filter holds."""
    import base64

    if not bloom:
        return np.zeros(len(grids), dtype=bool)
    bits = np.unpackbits(np.frombuffer(base64.b64decode(bloom), dtype=np.uint8)).astype(bool)
    return np.array([bits[_bloom_positions(g)].all() for g in grids], dtype=bool)
