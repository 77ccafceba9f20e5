"""Writing decoded images as PNG files, and preview grids."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch
    from PIL import Image

GUTTER = 2
GUTTER_VALUE = 128
MIN_CELL = 64  # preview cells are upscaled by a whole factor to at least this on the smaller side


def to_uint8(items: "torch.Tensor") -> np.ndarray:
    """(n, C, H, W) floats in [0, 1] -> (n, H, W) or (n, H, W, 3) uint8."""
    arr = items.detach().float().cpu().numpy()
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise ValueError(f"expected images shaped (n, 1 or 3, H, W), got {tuple(arr.shape)}")
    arr = np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=0.0)
    arr = np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)
    return arr[:, 0] if arr.shape[1] == 1 else np.ascontiguousarray(arr.transpose(0, 2, 3, 1))


def to_pil(pixels: np.ndarray) -> "Image.Image":
    from PIL import Image

    return Image.fromarray(pixels, mode="L" if pixels.ndim == 2 else "RGB")


def _write_png(job: tuple[np.ndarray, Path, int]) -> Path:
    pixels, target, scale = job
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        image = to_pil(pixels)
        if scale > 1:
            from PIL import Image

            image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
        image.save(tmp, format="PNG")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def export(items: "torch.Tensor", out_dir: Path, stems: Sequence[str], scale: int = 1) -> list[Path]:
    """One 8-bit PNG (L or RGB) per item, as out_dir/STEM.png: native size, or each pixel a
    `scale` x `scale` block."""
    if len(stems) != items.shape[0]:
        raise ValueError(f"{items.shape[0]} items but {len(stems)} file stems")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pixels = to_uint8(items)
    jobs = [(pixels[i], out_dir / f"{stem}.png", scale) for i, stem in enumerate(stems)]
    if len(jobs) <= 64:
        return [_write_png(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        return list(pool.map(_write_png, jobs))


def grid(cells: Sequence["Image.Image"], columns: int, gutter: int = GUTTER,
         fill: int = GUTTER_VALUE) -> "Image.Image":
    """Lay equally sized images out in rows of `columns`, with `gutter` pixels of gray between."""
    from PIL import Image

    if not cells:
        return Image.new("L", (MIN_CELL, MIN_CELL), fill)
    columns = max(1, min(int(columns), len(cells)))
    rows = -(-len(cells) // columns)
    cw, ch = cells[0].size
    mode = "RGB" if any(c.mode != "L" for c in cells) else "L"
    canvas = Image.new(mode, (columns * cw + (columns - 1) * gutter, rows * ch + (rows - 1) * gutter),
                       fill if mode == "L" else (fill, fill, fill))
    for i, cell in enumerate(cells):
        r, c = divmod(i, columns)
        canvas.paste(cell.convert(mode), (c * (cw + gutter), r * (ch + gutter)))
    return canvas


def preview(items: "torch.Tensor", columns: int) -> "Image.Image":
    """A grid of items, each cell upscaled with NEAREST by a whole factor to >= 64 px."""
    from PIL import Image

    pixels = to_uint8(items)
    if len(pixels) == 0:
        return grid([], columns)
    h, w = pixels.shape[1:3]
    factor = max(1, -(-MIN_CELL // min(h, w)))
    cells = [to_pil(p).resize((w * factor, h * factor), Image.Resampling.NEAREST) for p in pixels]
    return grid(cells, columns)

