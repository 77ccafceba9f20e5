"""Writing levels: VGLC text files, PNG renderings with the project's own sprites, previews.

Decoded items are tile probabilities (N, K, H, W); each tile becomes its most likely character.
Sprites come from assets/levels/sprites.png (made by scripts/make_level_sprites.py); a tile the
profiles do not know is drawn from its legend tags, or as a flat colour of its own.
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch
    from PIL import Image

EXPORT_TILE = 16
PREVIEW_TILE = 8
MAX_PREVIEW_SIDE = 8000
GUTTER = 4
TAG_SPRITES = [  # generic games: the first tag that matches picks the sprite
    ("enemy", "enemy"), ("coin", "coin"), ("gold", "gold"), ("collectable", "coin"), ("ladder", "ladder"),
    ("rope", "rope"), ("climbable", "ladder"), ("door", "door"), ("hazard", "spikes"), ("damaging", "spikes"),
    ("pipe", "pipe-left"), ("solidtop", "platform"), ("platform", "platform"), ("breakable", "brick"),
    ("question block", "question"), ("solid", "ground"), ("empty", "sky"),
]


def grids_of(items: "torch.Tensor", spec: dict[str, Any] | None = None) -> np.ndarray:
    """Tile probabilities (N, K, H, W) -> tile indices (N, H, W): each tile's likeliest type.
    `gen sample` hands over one-hot items already decoded by decoding.py."""
    return items.detach().float().cpu().argmax(dim=1).numpy().astype(np.uint8)


def level_text(grid: np.ndarray, tiles: Sequence[str]) -> str:
    lookup = np.array(list(tiles))
    return "\n".join("".join(row) for row in lookup[grid]) + "\n"


@lru_cache(maxsize=1)
def _sheet() -> tuple[dict[str, int], int, np.ndarray]:
    from PIL import Image

    from gencore.assets import asset_path

    index = json.loads(asset_path("levels", "sprites.json").read_text(encoding="utf-8"))
    with Image.open(asset_path("levels", "sprites.png")) as im:
        sheet = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
    return index["sprites"], index["tile"], sheet


def _sprite(name: str) -> np.ndarray:
    names, t, sheet = _sheet()
    i = names.get(name, names["unknown"])
    return sheet[:, i * t:(i + 1) * t]


def _sprite_name(char: str, meta: dict[str, Any]) -> str | None:
    name = (meta.get("sprites") or {}).get(char)
    if name:
        return name
    tags = {t.lower() for t in (meta.get("legend") or {}).get(char, [])}
    if char == meta.get("empty"):
        return meta.get("background") or "sky"
    for tag, sprite in TAG_SPRITES:
        if tag in tags:
            return sprite
    return None


def _flat_colour(char: str) -> np.ndarray:
    h = hashlib.sha256(char.encode()).digest()
    return np.array([h[0], h[1], h[2]], dtype=np.float32) / 255.0 * 0.7 + 0.15


@lru_cache(maxsize=8)
def _atlas(key: str, tile: int) -> np.ndarray:
    meta = json.loads(key)
    names, t, _ = _sheet()
    background = _sprite(meta.get("background") or "sky")
    out = []
    for ch in meta["tiles"]:
        name = _sprite_name(ch, meta)
        if name is None:
            rgba = np.concatenate([np.broadcast_to(_flat_colour(ch), (t, t, 3)), np.ones((t, t, 1), np.float32)], axis=2)
            rgba = rgba.copy()
            rgba[t // 2 - 1:t // 2 + 1, t // 2 - 1:t // 2 + 1, :3] = 1.0  # a dot marks "tile of its own"
        else:
            rgba = _sprite(name)
        alpha = rgba[..., 3:4]
        rgb = rgba[..., :3] * alpha + background[..., :3] * (1 - alpha)
        out.append(rgb)
    atlas = np.stack(out)  # (K, t, t, 3)
    if tile != t:
        factor = t // tile if t % tile == 0 and tile < t else None
        if factor:  # box-filter down
            atlas = atlas.reshape(len(out), tile, factor, tile, factor, 3).mean(axis=(2, 4))
        else:
            idx = (np.arange(tile) * t // tile)
            atlas = atlas[:, idx][:, :, idx]
    return (np.clip(atlas, 0, 1) * 255 + 0.5).astype(np.uint8)


def _atlas_for(meta: dict[str, Any], tile: int) -> np.ndarray:
    keep = {k: meta.get(k) for k in ("tiles", "sprites", "legend", "empty", "background")}
    return _atlas(json.dumps(keep, sort_keys=True), tile)


def render(grid: np.ndarray, meta: dict[str, Any], tile: int = EXPORT_TILE) -> np.ndarray:
    """(H, W) tile indices -> (H*tile, W*tile, 3) uint8 pixels."""
    atlas = _atlas_for(meta, tile)
    h, w = grid.shape
    return atlas[grid].transpose(0, 2, 1, 3, 4).reshape(h * tile, w * tile, 3)


def _save_png(pixels: np.ndarray, target: Path) -> None:
    from PIL import Image

    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        Image.fromarray(pixels, "RGB").save(tmp, format="PNG")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def export(items: "torch.Tensor", out_dir: Path, stems: Sequence[str], spec: dict[str, Any],
           options: dict[str, Any] | None = None) -> list[Path]:
    """STEM.txt (VGLC text) and STEM.png per item, plus legend.json: the run's legend, so the
    folder reads back as a corpus."""
    meta = spec["meta"]
    if len(stems) != items.shape[0]:
        raise ValueError(f"{items.shape[0]} items but {len(stems)} file stems")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    grids = grids_of(items, spec)
    written = []
    for grid, stem in zip(grids, stems):
        txt = out_dir / f"{stem}.txt"
        tmp = txt.with_name(f".{txt.name}.{os.getpid()}.tmp")
        tmp.write_text(level_text(grid, meta["tiles"]), encoding="utf-8")
        os.replace(tmp, txt)
        png = out_dir / f"{stem}.png"
        _save_png(render(grid, meta), png)
        written += [txt, png]
    legend = {"tiles": {ch: meta["legend"].get(ch, []) for ch in meta["tiles"]}}
    (out_dir / "legend.json").write_text(json.dumps(legend, indent=1) + "\n", encoding="utf-8")
    return written


def preview(items: "torch.Tensor", spec: dict[str, Any], columns: int,
            options: dict[str, Any] | None = None) -> "Image.Image":
    """Windows in rows of `columns`; long levels one per row, scaled to stay a sensible size."""
    from PIL import Image

    meta = spec["meta"]
    grids = grids_of(items, spec)
    x = items.detach().float().cpu()
    if len(grids) and x.dim() == 4 and float(x.amax(dim=1).min()) < 0.999:  # decoder outputs, not one-hot tiles
        from .decoding import decode, rules_of  # the run's samples.png shows whole structures, as gen sample does

        grids = decode(np.log(x.clamp_min(1e-9).numpy()), rules_of(meta))
    if len(grids) == 0:
        return Image.new("RGB", (64, 64), (128, 128, 128))
    h, w = grids.shape[1:]
    if w > 4 * max(h, meta.get("window") or h):  # stitched long levels: one per row
        columns = 1
    columns = max(1, min(columns, len(grids)))
    rows = -(-len(grids) // columns)
    tile = PREVIEW_TILE
    while tile > 1 and max(columns * (w * tile + GUTTER), rows * (h * tile + GUTTER)) > MAX_PREVIEW_SIDE:
        tile //= 2
    cw, ch = w * tile, h * tile
    canvas = np.full((rows * (ch + GUTTER) - GUTTER, columns * (cw + GUTTER) - GUTTER, 3), 96, np.uint8)
    for i, grid in enumerate(grids):
        r, c = divmod(i, columns)
        canvas[r * (ch + GUTTER):r * (ch + GUTTER) + ch, c * (cw + GUTTER):c * (cw + GUTTER) + cw] = render(grid, meta, tile)
    return Image.fromarray(canvas, "RGB")
