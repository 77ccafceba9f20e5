"""`gen sample` for levels: windows, full-length levels stitched from windows, and `--playable`.

Every window is decoded by decoding.py: tile frequencies calibrated to the training windows with
the same element bits, pipes and cannons laid as whole objects, enemy runs no longer than the
corpus's. A window asked for with `--class` carries every element asked for (decoding.py's
`require`; class control for multi-label levels means that presence). With no `--class` on an element-bit run, each window's bits are drawn from the mix of
the training windows, so levels look like the game's and not like five single-bit classes.

Stitching works along the level's *progress axis* (columns of horizontal games; rows from the
bottom up for vertical ones). Each step decodes a batch of candidate windows and ranks them by how
well their left half explains the columns already laid (the log-probability of the overlap). It
keeps the likeliest one that keeps structures whole across the seam and, for games with jump
physics, keeps the level completable (generate-and-test). The test runs the checker on the level
cut to the length asked for, from an *anchor* on: a cell on Mario's path where the checker would
put him in a level that began there, about REACH_WINDOWS windows back, so a pass from the anchor is
a pass from the start and the test costs the same at any length. Only the candidate's new half is
appended. At the end, a structure still broken at a seam is taken down
and the likeliest whole structures are laid in its columns (decoding.finish_level).

`--playable` adds a guarantee: a level that still fails the checker is generated again (up to
RETRIES times), then repaired (playability.repair), which always succeeds.
"""
from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from gencore import console
from gencore.errors import GenError

from . import decoding, structure
from .attributes import steered_target
from .labels import required_tiles
from .mario import spawn_row
from .playability import Physics, check, repair

CANDIDATES = 32  # windows decoded per stitching step
TOP_K = 8  # of those, at most this many (likeliest first) are tested for completion
REACH_WINDOWS = 4  # the stitching test looks at about this many windows at the end of the level
RETRIES = 2  # whole-level regenerations before --playable repairs
COPY_REDRAWS = 2  # a window that copies a training window is drawn again at most this often
MAX_LENGTH = 20_000


def validate(meta: dict[str, Any], options: dict[str, Any]) -> tuple[int | None, bool]:
    """The requested length along the level (or None) and whether --playable applies."""
    layout, window = meta["layout"], meta.get("window")
    width, length, playable = options.get("width"), options.get("length"), bool(options.get("playable"))
    game = ", ".join(meta.get("games") or []) or "this game"
    if playable and not meta.get("playable"):
        why = ("its levels are vertical, so no goal lies at the right" if layout == "vertical" and meta.get("physics")
               else "no jump physics is known for it (no Paths/ files, and its tiles fit no side-scroller profile)"
               if not meta.get("physics") else f"its levels are laid out {layout}")
        raise GenError(f"--playable needs a side-scrolling game with jump physics, and {game} is not one: {why}",
                       where="--playable", hint="sample without --playable; it applies to SMB-like games")
    if width is not None and length is not None:
        raise GenError("give --width (horizontal games) or --length (vertical games), not both", where="--width")
    asked, flag = (width, "--width") if width is not None else (length, "--length")
    if asked is None:
        return None, playable
    if layout == "whole":
        raise GenError(f"this run learnt whole {meta['height']}x{meta['width']} levels, which are not stitched",
                       where=flag, hint=f"drop {flag}")
    if layout == "horizontal" and flag == "--length":
        raise GenError("this run's levels run left to right; their length is --width", where="--length",
                       hint=f"use --width {asked}")
    if layout == "vertical" and flag == "--width":
        raise GenError(f"this run's levels run bottom to top and are {meta['width']} tiles wide; their length "
                       "is --length", where="--width", hint=f"use --length {asked}")
    if not window <= asked <= MAX_LENGTH:
        raise GenError(f"must be from the window size ({window}) to {MAX_LENGTH}, got {asked}", where=flag)
    return int(asked), playable


def from_progress(grid: np.ndarray, layout: str) -> np.ndarray:
    """A grid in progress view (across, along; vertical levels run bottom to top) -> level rows."""
    return grid.T[::-1] if layout == "vertical" else grid


def to_progress(array: np.ndarray, layout: str) -> np.ndarray:
    """(..., H, W) level rows -> progress view (..., across, along)."""
    if layout != "vertical":
        return array
    return np.ascontiguousarray(np.swapaxes(array[..., ::-1, :], -1, -2))


class Windows:
    """Decodes calibrated, structure-whole windows for a run: `draw(cond, n)`."""

    def __init__(self, run, meta: dict[str, Any], temperature: float, generator, calibration_seed: int):
        import torch

        self.torch, self.run, self.meta = torch, run, meta
        self.temperature, self.generator = temperature, generator
        self.rules = decoding.rules_of(meta)
        self.calibration = torch.Generator().manual_seed(calibration_seed)
        self.offsets: dict[str, np.ndarray] = {}
        sampler = getattr(run, "sampler", None)  # `--attr`: element attributes move their tile rates
        self.shifts = dict(sampler.shifts) if sampler is not None else {}
        mix = meta.get("label_mix") or {}
        self.mix_keys = list(mix)
        self.mix_p = np.array([mix[k] for k in self.mix_keys], dtype=np.float64)

    def mixed_conditions(self, n: int):
        """`n` element-bit vectors drawn from the training windows' mix."""
        torch = self.torch
        pick = torch.multinomial(torch.from_numpy(self.mix_p), n, replacement=True, generator=self.generator)
        return torch.tensor([[float(b) for b in self.mix_keys[i]] for i in pick.tolist()])

    def _logp(self, n: int, cond, generator) -> np.ndarray:
        if generator is self.calibration:  # calibrated on the plain prior, so --attr moves the tile rates
            z = self.run.decoder.sample_latent(n, generator, self.temperature).cpu()
        else:  # --attr/--prior apply to the windows drawn
            z = self.run.sample_latent(n, generator, self.temperature, cond).cpu()
        probs = self.run.decode(z, cond)  # (n, K, H, W)
        return self.torch.log(probs.float().clamp_min(1e-9)).numpy()

    def offset(self, key: str, cond, carry: bool = False) -> np.ndarray:
        """Calibration offsets for one condition vector (key: its bits; "mix": the corpus mix).
        `carry`: for windows that must carry the elements the condition asks for."""
        require = required_tiles(self.meta, cond.tolist()) if carry and cond is not None else []
        slot = key + "+carry" if require else key
        if slot not in self.offsets:
            n = decoding.CALIBRATION_SAMPLES
            if key == "mix":
                conds = self.mixed_conditions(n)
                target = decoding.target_frequencies(self.meta, None)
            else:
                conds = None if cond is None else cond[None].expand(n, -1)
                target = decoding.target_frequencies(self.meta, None if cond is None else cond.numpy())
            if target is not None and self.shifts:
                target = steered_target(target, self.meta, self.shifts, "" if key == "none" else key)
            logp = self._logp(n, conds, self.calibration)
            self.offsets[slot] = decoding.calibrate(logp, target, self.rules, require)
        return self.offsets[slot]

    def logits(self, cond, n: int, mixed: bool = False, carry: bool = False):
        """Calibrated log-probabilities (n, K, H, W) of `n` windows for one condition (or the
        corpus mix), not yet decoded, and the condition vectors they were drawn with."""
        if mixed:
            key, conds = "mix", self.mixed_conditions(n)
        else:
            key = "none" if cond is None else "".join("1" if v > 0.5 else "0" for v in cond.tolist())
            conds = None if cond is None else cond[None].expand(n, -1)
        offset = self.offset(key, cond, carry and not mixed)
        return self._logp(n, conds, self.generator) + offset[None, :, None, None], conds, offset

    def draw(self, cond, n: int, mixed: bool = False, fresh: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """`n` windows for one condition (or the corpus mix): grids (n, H, W) and calibrated
        log-probabilities (n, K, H, W), in level rows. `fresh`: no copies of training windows.
        Each window for a condition carries every element its bits ask for."""
        logp, conds, offset = self.logits(cond, n, mixed, carry=True)
        require = [] if mixed or cond is None else required_tiles(self.meta, cond.tolist())
        grids = decoding.decode(logp, self.rules, require=require)
        if fresh:  # a window that copies a training window is drawn again (twice at most)
            for _ in range(COPY_REDRAWS):
                copies = np.flatnonzero(decoding.is_copy(grids, self.meta.get("window_filter")))
                if not len(copies):
                    break
                again = conds[self.torch.from_numpy(copies)] if conds is not None else None
                redo = self._logp(len(copies), again, self.generator) + offset[None, :, None, None]
                grids[copies], logp[copies] = decoding.decode(redo, self.rules, require=require), redo
        return grids, logp


class Stitcher:
    def __init__(self, windows: Windows, test_reach: bool = True):
        self.windows, self.meta = windows, windows.meta
        self.layout = self.meta["layout"]
        self.window = self.meta.get("window") or self.meta["width"]
        # the stricter Mario (mario.py, margin): levels keep clear of the edge of his physics
        self.physics = Physics.from_meta(self.meta, margin=True) if self.meta.get("playable") and test_reach else None
        self.idx = structure.indices(self.meta)
        self.anchor, self.length = 0, None  # the level's stretch the stitching test looks at
        # The overlap is scored per tile *group*: each solid tile type on its own, every passable
        # type (empty, enemies, coins) together. Scoring enemies exactly made enemy-rich candidates
        # win wherever enemies had been laid, and the level filled up with them.
        roles = [self.meta.get("roles", {}).get(ch, "passable") for ch in self.meta["tiles"]]
        passable = [i for i, r in enumerate(roles) if r == "passable"]
        self.group = np.arange(len(roles))
        self.group[passable] = passable[0] if passable else 0

    def candidates(self, cond, mixed: bool) -> tuple["Decoded", np.ndarray, np.ndarray]:
        """Grids (decoded when first asked for: most steps look at one or two of them), calibrated
        log-probabilities and grouped log-probabilities, in progress view."""
        logp, _, _ = self.windows.logits(cond, CANDIDATES, mixed)
        probs = np.exp(logp - logp.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        grouped = np.zeros_like(probs)
        for tile, group in enumerate(self.group.tolist()):  # each tile's group probability (as np.add.at
            grouped[:, group] += probs[:, tile]  # adds, tile by tile, in a tenth of its time)
        grouped = np.log(np.maximum(grouped[:, self.group], 1e-9))
        return Decoded(logp, self.windows.rules, self.layout), to_progress(logp, self.layout), \
            to_progress(grouped, self.layout)

    def whole(self, level: np.ndarray, start: int) -> bool:
        """No malformed structure from column `start` on, except at the open right edge."""
        if self.layout != "horizontal" or not (self.idx["pipes"] or self.idx["cannons"]):
            return True
        first = max(0, start - 1)  # one column of context on the left
        bad = structure.malformed_map(level[:, first:], self.idx)
        return not bad[:, start - first:-1].any()

    def reach(self, level: np.ndarray) -> tuple[bool, list | None]:
        """Whether the level, cut to the length asked for, is completable from its anchor (a cell
        Mario is known to reach) on; and the path found (for `advance`, which moves the anchor
        along it: keeping it saves a second search per step)."""
        if self.physics is None:
            return True, None
        result = check(level[:, self.anchor:self.length], self.physics, trace=self.physics.model == "mario")
        return result.passed, result.path

    def advance(self, level: np.ndarray, path: list | None) -> None:
        """Moves the anchor on, so the test looks at about REACH_WINDOWS windows: to the last column
        before them where the path found stands where the checker would put Mario in a level that
        began there (so a pass from there is a pass from the start). Without such a path (or for
        other physics models), the anchor is the start of the last REACH_WINDOWS windows. `path`:
        the one the pick's test found from the anchor, None when the level is not completable."""
        if self.physics is None or level.shape[1] - self.anchor <= REACH_WINDOWS * self.window:
            return
        limit = level.shape[1] - REACH_WINDOWS * self.window
        if path is None or self.physics.model != "mario":
            self.anchor = limit
            return
        solid = self.physics.solid_map[level]
        for r, c in reversed(path):
            c += self.anchor
            if c <= limit and spawn_row(solid[:, c]) == r:
                self.anchor = c
                return
        self.anchor = limit

    def pick(self, joined: list[int], levels, start: int) -> tuple[int, list | None]:
        """The first of `joined` (likeliest first) with whole structures that keeps the end of the
        level completable, testing at most TOP_K; else the likeliest completable; else the likeliest
        whole one. Candidates are looked at in order and only as far as needed. Also: the path
        the test found through the one picked, or None when it does not keep the level completable."""
        whole, tested = [], {}  # candidate -> (completable, path)

        def reach(m: int) -> bool:
            if m not in tested:
                tested[m] = self.reach(levels(m))
            return tested[m][0]

        def chosen(m: int, ok: bool) -> tuple[int, list | None]:
            return m, ((tested[m][1] or []) if ok else None)

        for m in joined:
            if self.whole(levels(m), start):
                whole.append(m)
                if reach(m):
                    return chosen(m, True)
                if len(whole) == TOP_K:
                    break
        for m in joined[:TOP_K]:
            if reach(m):
                return chosen(m, True)
        return chosen(whole[0] if whole else joined[0], False)

    def first(self, cond, mixed: bool) -> tuple[np.ndarray, np.ndarray]:
        """The level's first window (across, window) and its log-probabilities."""
        grids, logp, _ = self.candidates(cond, mixed)
        m, _ = self.pick(list(range(len(grids))), lambda i: grids[i], 0)
        return grids[m], logp[m]

    def extend(self, level: np.ndarray, level_lp: np.ndarray, cond, mixed: bool
               ) -> tuple[np.ndarray, np.ndarray, list | None]:
        """`level` with one more half window appended, and the path through it (None: not completable)."""
        overlap = self.window - max(1, self.window // 2)
        grids, logp, grouped = self.candidates(cond, mixed)
        tail = level[:, -overlap:]  # (across, overlap)
        rows, cols = np.indices(tail.shape)
        score = grouped[:, tail, rows, cols].sum(axis=(1, 2))  # log p(overlap | candidate), (M,)
        order = np.argsort(-score, kind="stable").tolist()
        joined = lambda i: np.concatenate([level, grids[i][:, overlap:]], axis=1)  # noqa: E731
        m, path = self.pick(order, joined, level.shape[1] - overlap)
        return joined(m), np.concatenate([level_lp, logp[m][:, :, overlap:]], axis=2), path

    def level(self, cond, length: int, mixed: bool = False) -> np.ndarray:
        self.anchor, self.length = 0, length
        level, level_lp = self.first(cond, mixed)
        while level.shape[1] < length:
            level, level_lp, path = self.extend(level, level_lp, cond, mixed)
            self.advance(level, path)
        level, level_lp = level[:, :length], level_lp[:, :, :length]
        if self.layout == "horizontal":
            level = decoding.finish_level(level, level_lp, self.windows.rules)
        return level


class Decoded:
    """Candidate windows decoded one at a time, when first indexed: `decoded[i]` is the grid
    (across, along) of window i, as decoding.decode gives it (it decodes each window on its own)."""

    def __init__(self, logp: np.ndarray, rules: dict[str, Any], layout: str):
        self.logp, self.rules, self.layout = logp, rules, layout
        self.grids: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.logp)

    def __getitem__(self, i: int) -> np.ndarray:
        if i not in self.grids:
            self.grids[i] = to_progress(decoding.decode(self.logp[i:i + 1], self.rules)[0], self.layout)
        return self.grids[i]


@contextlib.contextmanager
def cpu_threads(torch, device, n: int = 1):
    """Stitching decodes batches of 32 small windows: one CPU thread does it fastest, and much
    faster than two when other processes share the cores (OpenMP waits on busy threads)."""
    if getattr(device, "type", "cpu") != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def unconditioned(run, classes) -> bool:
    """No --class on an element-bit run: the core then asks for each class in turn."""
    names = run.class_names
    return (bool(run.config["data"].get("multi_label")) and bool(names) and len(classes) >= len(names)
            and list(classes) == [names[i % len(names)] for i in range(len(classes))])


def generate(run, classes, conditions, options: dict[str, Any], seed: int, temperature: float):
    meta = run.config["data"]["meta"]
    length, playable = validate(meta, options)
    import torch

    with cpu_threads(torch, run.device):
        generator = torch.Generator().manual_seed(seed)
        windows = Windows(run, meta, temperature, generator, calibration_seed=seed + 7919)
        mixed = unconditioned(run, classes) and bool(meta.get("label_mix"))
        if length is None and not playable:
            grids = _windows(windows, conditions, len(classes), mixed)
        else:
            grids = _levels(windows, meta, conditions, len(classes), length, playable, mixed)
    from .corpus import one_hot

    return one_hot(np.stack([np.ascontiguousarray(g) for g in grids]), len(meta["tiles"]))


def _windows(windows: Windows, conditions, n: int, mixed: bool) -> list[np.ndarray]:
    """Plain windows, decoded in one batch per condition vector, in the order asked."""
    if mixed or conditions is None:
        grids, _ = windows.draw(None, n, mixed)
        return list(grids)
    out: list[np.ndarray | None] = [None] * n
    keys = ["".join("1" if v > 0.5 else "0" for v in c.tolist()) for c in conditions]
    for key in dict.fromkeys(keys):
        where = [i for i, k in enumerate(keys) if k == key]
        grids, _ = windows.draw(conditions[where[0]], len(where))
        for i, g in zip(where, grids):
            out[i] = g
    return out


def _levels(windows: Windows, meta, conditions, n: int, length: int | None, playable: bool,
            mixed: bool) -> list[np.ndarray]:
    stitcher = Stitcher(windows)
    target = length or stitcher.window
    physics = stitcher.physics
    out, repaired, retried = [], 0, 0
    for i in range(n):
        cond = None if conditions is None else conditions[i]
        grid = stitcher.level(cond, target, mixed)
        if playable:
            tries, passed = 0, check(grid, physics).passed
            while not passed and tries < RETRIES:
                tries += 1
                grid = stitcher.level(cond, target, mixed)
                passed = check(grid, physics).passed
            retried += tries
            if not passed:
                grid = np.array(repair(grid.tolist(), physics, stitcher.idx), dtype=np.uint8)
                repaired += 1
                assert check(grid, physics).passed, "repair must make every level completable"
        out.append(from_progress(grid, meta["layout"]))
    if playable:
        console.info(f"--playable: {len(out)} levels, {len(out) - repaired} completable as generated "
                     f"({retried} regenerations), {repaired} repaired")
    return out
