"""`gen sample` for levels: full-length levels stitched from windows, and `--playable`.

Stitching works along the level's *progress axis* (columns of horizontal games; rows from the
bottom up for vertical ones). Each step draws a batch of candidate windows from the decoder and
ranks them by how well their left half explains the columns already laid (the log-probability of
the overlap under the candidate's decoded tile distribution). It keeps the likeliest one that
keeps pipes whole across the seam and, for games with jump physics, keeps the level completable
so far (generate-and-test). Only the candidate's new half is appended. A pipe still broken at the
end (for example cut by the level's last column) is removed, so stitched pipes are always whole.

`--playable` adds a guarantee: a level that still fails the checker is generated again (up to
RETRIES times), then repaired (playability.repair), which always succeeds.
"""
from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from gencore import console
from gencore.errors import GenError

from . import structure
from .playability import Physics, check, repair
from .render import boost_of, grids_of

CANDIDATES = 32  # windows decoded per stitching step
TOP_K = 8  # of those, at most this many (likeliest first) are tested for completion
RETRIES = 2  # whole-level regenerations before --playable repairs
MAX_LENGTH = 20_000


def validate(meta: dict[str, Any], options: dict[str, Any]) -> tuple[int | None, bool]:
    """The requested length along the level (or None) and whether --playable applies."""
    boost = options.get("rare_boost")
    if boost is not None and not 0.0 <= float(boost) <= 1.0:
        raise GenError(f"must be from 0 to 1, got {boost}", where="--rare-boost",
                       hint="1 decodes as trained; 0 takes the rare-tile weighting back out")
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


class Stitcher:
    def __init__(self, run, meta: dict[str, Any], temperature: float, generator, test_reach: bool = True,
                 boost: float = 1.0):
        import torch

        self.torch = torch
        self.spec, self.boost = run.config["data"], boost
        self.run, self.meta, self.temperature, self.generator = run, meta, temperature, generator
        self.layout = meta["layout"]
        self.window = meta.get("window") or meta["width"]
        self.physics = Physics.from_meta(meta) if meta.get("playable") and test_reach else None
        self.idx = structure.indices(meta)
        # The overlap is scored per tile *group*: each solid tile type on its own, every passable
        # type (empty, enemies, coins) together. Scoring enemies exactly made enemy-rich candidates
        # win wherever enemies had been laid, and the level filled up with them.
        roles = [meta.get("roles", {}).get(ch, "passable") for ch in meta["tiles"]]
        passable = [i for i, r in enumerate(roles) if r == "passable"]
        self.group = np.arange(len(roles))
        self.group[passable] = passable[0] if passable else 0
        self.members = [np.flatnonzero(self.group == g) for g in range(len(roles))]
        self.exact_overlap = False

    def candidates(self, cond) -> tuple[np.ndarray, Any]:
        """Decode CANDIDATES windows: tile grids and log-probabilities, in progress view."""
        torch = self.torch
        c = None if cond is None else cond[None].expand(CANDIDATES, -1)
        z = self.run.sample_latent(CANDIDATES, self.generator, self.temperature, c).cpu()  # --attr/--prior apply
        probs = self.run.decode(z, c)  # (M, K, H, W)
        grouped = torch.zeros_like(probs)
        for g, members in enumerate(self.members):  # probability of each tile's group
            if len(members) and not self.exact_overlap:
                grouped[:, members] = probs[:, members].sum(dim=1, keepdim=True)
        logp = torch.log((probs if self.exact_overlap else grouped).clamp_min(1e-9)).numpy()
        grids = grids_of(probs, self.spec, self.boost)
        if self.layout == "vertical":
            logp = np.ascontiguousarray(logp[:, :, ::-1].transpose(0, 1, 3, 2))
            grids = np.ascontiguousarray(grids[:, ::-1].transpose(0, 2, 1))
        return grids, logp

    def whole(self, level: np.ndarray, start: int) -> bool:
        """Pipes whole from column `start` on (the right edge may still continue)."""
        if not (self.idx["pipes"] and self.layout == "horizontal"):
            return True
        return structure.pipe_errors(level, self.idx, lenient_right=True, first_col=max(0, start)) == 0

    def reach(self, level: np.ndarray) -> bool:
        return check(level, self.physics).passed if self.physics is not None else True

    def pick(self, joined: list[np.ndarray], start: int) -> np.ndarray:
        """The first of `joined` (likeliest first) with whole pipes that stays completable, testing
        completion on at most TOP_K; else the likeliest completable one; else the likeliest."""
        whole = [lv for lv in joined if self.whole(lv, start)]
        for lv in whole[:TOP_K]:
            if self.reach(lv):
                return lv
        for lv in joined[:TOP_K]:
            if self.reach(lv):
                return lv
        return whole[0] if whole else joined[0]

    def level(self, cond, length: int) -> np.ndarray:
        grids, _ = self.candidates(cond)
        level = self.pick(list(grids), 0)
        step = max(1, self.window // 2)
        overlap = self.window - step
        while level.shape[1] < length:
            grids, logp = self.candidates(cond)
            tail = level[:, -overlap:]  # (across, overlap)
            rows, cols = np.indices(tail.shape)
            score = logp[:, tail, rows, cols].sum(axis=(1, 2))  # log p(overlap | candidate), (M,)
            order = np.argsort(-score, kind="stable")
            joined = [np.concatenate([level, grids[m][:, overlap:]], axis=1) for m in order]
            level = self.pick(joined, level.shape[1] - overlap)
        level = level[:, :length]
        if self.layout == "horizontal" and self.idx["pipes"]:
            level = structure.remove_broken_pipes(level, self.idx)
        return level


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


def generate(run, classes, conditions, options: dict[str, Any], seed: int, temperature: float):
    meta = run.config["data"]["meta"]
    length, playable = validate(meta, options)
    if length is None and not playable:
        return None
    import torch

    with cpu_threads(torch, run.device):
        return _generate(run, meta, classes, conditions, length, playable, seed, temperature, options)


def _generate(run, meta, classes, conditions, length, playable, seed, temperature, options):
    import torch

    generator = torch.Generator().manual_seed(seed)
    stitcher = Stitcher(run, meta, temperature, generator, boost=boost_of(options))
    target = length or stitcher.window
    idx = stitcher.idx
    physics = stitcher.physics
    out, repaired, retried = [], 0, 0
    for i in range(len(classes)):
        cond = None if conditions is None else conditions[i]
        grid = stitcher.level(cond, target)
        if playable:
            tries = 0
            while not check(grid, physics).passed and tries < RETRIES:
                tries += 1
                grid = stitcher.level(cond, target)
            retried += tries
            if not check(grid, physics).passed:
                grid = np.array(repair(grid.tolist(), physics, idx), dtype=np.uint8)
                repaired += 1
            assert check(grid, physics).passed, "repair must make every level completable"
        out.append(from_progress(grid, meta["layout"]))
    if playable:
        console.info(f"--playable: {len(out)} levels, {len(out) - repaired} completable as generated "
                     f"({retried} regenerations), {repaired} repaired")
    from .corpus import one_hot

    return one_hot(np.stack([np.ascontiguousarray(g) for g in out]), len(meta["tiles"]))
