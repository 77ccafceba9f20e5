"""`Domain.load` and `Domain.load_files` of the levels domain."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gencore import console
from gencore.errors import GenError

from . import corpus as C
from . import labels as L
from . import tiles as T
from .reader import read_level


def _games(text: Any) -> list[str] | None:
    if not text:
        return None
    return [g.strip() for g in str(text).split(",") if g.strip()]


def builtin_files(source: str) -> list[Path] | None:
    """The shipped files behind builtin:NAME (for the data cache's key); None for builtin:demo,
    made in code, and for anything else."""
    name = source.split(":", 1)[1] if source.startswith("builtin:") else None
    if name is None or name not in C.BUILTIN_GAMES:
        return None
    folder = C.builtin_folder(name)
    return sorted(p for p in folder.rglob("*") if p.is_file())


def load_training(source: str | None, options: dict[str, Any]) -> C.LevelData:
    source = source or "builtin:smb"
    window = int(options.get("window") or 16)
    stride = int(options.get("stride") or 1)
    if window < C.MIN_WINDOW:
        raise GenError(f"must be at least {C.MIN_WINDOW}, got {window}", where="--window")
    if stride < 1:
        raise GenError(f"must be at least 1, got {stride}", where="--stride")
    power = float(options.get("tile_weighting") if options.get("tile_weighting") is not None else 0.75)
    if not 0 <= power <= 2:
        raise GenError(f"must be from 0 (no weighting) to 2, got {power}", where="--tile-weighting")
    corpus = C.read_corpus(source, options.get("legend"), _games(options.get("games")))
    layout = C.choose_layout(corpus.levels, corpus.profile, options.get("layout") or "auto")
    C.check_sizes(corpus.levels, layout, window)
    legend = corpus.legend
    roles = T.tile_roles(legend, corpus.physics)
    empty = C.pick_empty(legend, corpus.profile, corpus.levels)
    vocab = C.vocabulary(legend, corpus.levels, empty)
    index = {ch: i for i, ch in enumerate(vocab)}
    grids = C.align([C.to_grid(lv, index) for lv in corpus.levels], layout, index[empty])
    pieces, level_ids, group_ids = [], [], []
    for i, (level, grid) in enumerate(zip(corpus.levels, grids)):
        w = C.windows(grid, layout, window, stride)
        pieces.append(w)
        level_ids.append(np.full(len(w), i))
        group_ids.append(np.full(len(w), corpus.groups.index(level.group)))
    items_grid = np.concatenate(pieces)
    level_ids = np.concatenate(level_ids)
    group_ids = np.concatenate(group_ids)

    table = L.element_table(corpus.profile, vocab)
    bits = L.element_bits(items_grid, table)
    mode = L.choose_labels(options.get("labels") or "auto", corpus.groups, corpus.profile, table, bits)
    conditions, class_names, label_info = L.make_conditions(mode, corpus.groups, group_ids, table, bits,
                                                            corpus.profile)
    profile = T.profiles().get(corpus.profile or "", {})
    playable = corpus.physics is not None and layout == "horizontal"
    meta = {
        "tiles": vocab, "legend": legend, "roles": roles, "empty": empty,
        "ground": C.pick_ground(legend, roles, corpus.profile),
        "layout": layout, "window": window if layout != "whole" else None, "stride": stride,
        "height": int(items_grid.shape[1]), "width": int(items_grid.shape[2]),
        "profile": corpus.profile, "games": corpus.groups, "labels": mode,
        "physics": corpus.physics, "playable": playable,
        "pipes": profile.get("pipes"), "cannons": profile.get("cannons"),
        "sprites": {c: profile.get("sprites", {}).get(c) for c in vocab},
        "background": profile.get("background"), "aliases": profile.get("aliases", {}),
        "levels": len(corpus.levels), **label_info,
    }
    meta.update(corpus_statistics(items_grid, conditions if mode == "elements" else None, vocab, legend))
    from .attributes import tilted_rates

    keys = None if mode != "elements" else np.array(["".join("1" if b > 0.5 else "0" for b in row)
                                                      for row in conditions])
    meta["tilted_rates"] = tilted_rates(items_grid, table, keys)
    import torch

    items = C.one_hot(items_grid, len(vocab))
    what = {"horizontal": f"{items_grid.shape[1]}x{window} windows", "vertical": f"{window}x{items_grid.shape[2]} windows",
            "whole": f"whole {items_grid.shape[1]}x{items_grid.shape[2]} levels"}[layout]
    console.info(f"{len(corpus.levels)} levels of {', '.join(corpus.groups)}: {len(items_grid)} {what}, "
                 f"{len(vocab)} tile types ({''.join(vocab)}), labels: {mode}"
                 + (f", jump physics from {corpus.physics['source']}" if corpus.physics else ""))
    return C.LevelData(
        items=items,
        conditions=None if conditions is None else torch.from_numpy(conditions),
        class_names=class_names, likelihood="categorical", item_kind="grid2d",
        multi_label=mode == "elements",
        sources=[lv.name for lv in corpus.levels], meta=meta,
        class_weights=C.tile_weights(items_grid, len(vocab), power),
        level_ids=level_ids,
    )


def corpus_statistics(grids: np.ndarray, bits: np.ndarray | None, vocab: list[str],
                      legend: dict[str, list[str]]) -> dict[str, Any]:
    """What the decoding is calibrated to (decoding.py): tile frequencies of the windows with
    each element-bit vector (key "" for all windows), how often each vector occurs, the longest
    horizontal run of enemies in the corpus, and a filter of the windows themselves (so samples
    that copy one are drawn again)."""
    k = len(vocab)
    freq = lambda g: [round(float(f), 6) for f in np.bincount(g.reshape(-1), minlength=k) / g.size]  # noqa: E731
    from .decoding import window_filter

    out: dict[str, Any] = {"tile_freq": {"": freq(grids)}, "window_filter": window_filter(grids)}
    if bits is not None:
        keys = np.array(["".join("1" if b > 0.5 else "0" for b in row) for row in bits])
        unique, counts = np.unique(keys, return_counts=True)
        out["label_mix"] = {str(key): round(int(n) / len(keys), 6) for key, n in zip(unique, counts)}
        out["tile_freq"].update({str(key): freq(grids[keys == key]) for key in unique})
    enemy = [i for i, ch in enumerate(vocab) if "enemy" in {t.lower() for t in legend.get(ch, [])}]
    if enemy:
        is_enemy = np.isin(grids, enemy)
        run = longest = np.zeros(grids.shape[:2], dtype=np.int64)  # (N, H): runs along each row
        for c in range(grids.shape[2]):
            run = (run + 1) * is_enemy[:, :, c]
            longest = np.maximum(longest, run)
        out["enemy_run_max"] = int(longest.max())
    return out


def grid_of_file(path: Path, meta: dict[str, Any]) -> np.ndarray:
    """One user level file -> a tile-index grid in the run's vocabulary and item shape."""
    level = read_level(path)
    index = {ch: i for i, ch in enumerate(meta["tiles"])}
    for r, row in enumerate(level.rows):
        for c, ch in enumerate(row):
            if ch not in index:
                raise GenError(f"tile {ch!r} at row {r + 1}, column {c + 1} is not in this run's tiles "
                               f"({''.join(meta['tiles'])})", where=str(path),
                               hint="give a level of the game the run was trained on")
    grid = C.to_grid(level, index)
    height, width = meta["height"], meta["width"]
    layout = meta["layout"]
    empty = index[meta["empty"]]
    if grid.shape[0] > height and layout != "vertical" or grid.shape[1] > width and layout != "horizontal":
        raise GenError(f"the level is {grid.shape[0]}x{grid.shape[1]} tiles, larger than this run's "
                       f"{height}x{width} items across the level", where=str(path),
                       hint="give a level of the game the run was trained on")
    grid = C.align([grid], layout if layout != "whole" else "whole", empty)[0]
    grid = np.pad(grid, ((max(0, height - grid.shape[0]), 0), (0, max(0, width - grid.shape[1]))),
                  constant_values=empty)
    if layout == "horizontal" and grid.shape[1] < width or layout == "vertical" and grid.shape[0] < height:
        raise GenError(f"the level is {grid.shape[0]}x{grid.shape[1]} tiles, smaller than this run's "
                       f"{height}x{width} window", where=str(path), hint="give a level at least one window long")
    if grid.shape[1] > width or grid.shape[0] > height:
        console.warn(f"{path}: longer than one window; using its first {height}x{width} tiles")
        grid = grid[grid.shape[0] - height:, :width] if layout == "vertical" else grid[:, :width]
    return grid


def load_files(paths: list[Path], spec: dict[str, Any]):
    meta = spec["meta"]
    grids = np.stack([grid_of_file(Path(p), meta) for p in paths])
    implied = [None] * len(paths)
    if meta.get("labels") == "folder":
        implied = [Path(p).resolve().parent.name for p in paths]
    return C.one_hot(grids, len(meta["tiles"])), implied
