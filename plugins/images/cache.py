"""Folders of PNG/JPEG images for the decoded-data cache (gencore/datacache.py): the same files,
classes and options as `loaders.load_training`, decoded one file at a time into uint8 pixels.

Pixels are stored as 8 bits per channel, so an 8-bit image comes back exactly as the in-memory
loader gives it; 16-bit PNGs, transparent images composited over white, --resize and --channels 1
on colour images are rounded to the nearest 1/255.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from gencore.datacache import SkipItem, Stream

from .idx import find_idx_files
from .loaders import (ImageReadError, _LUMA, _list_folder, bomb_warnings_as_errors, read_image, resize_array,
                      to_channels)
from .options import NoiseSpec


def decode_pixels(path: Path, resize: tuple[int, int] | None, channels: str) -> np.ndarray:
    """One image as (C, H, W) uint8: C is 1 for a grayscale image (or --channels 1), else 3."""
    try:
        arr, gray = read_image(path)
    except ImageReadError as exc:
        raise SkipItem(exc.reason) from None
    if resize is not None:
        arr = resize_array(arr, resize)
    if channels == "1" and not gray:
        arr, gray = arr @ _LUMA, True
    c = 3 if channels == "3" or not gray else 1
    return np.rint(to_channels(arr, c) * 255.0).astype(np.uint8)


def folder_stream(source: str | None, *, resize: tuple[int, int] | None, channels: str, likelihood: str,
                  noise: NoiseSpec, patch: int | None) -> Stream | None:
    """The stream of a folder of images; None for what the cache does not hold (built-in sets,
    IDX files, whole images for --patch), which loads as before."""
    if source is None or source.startswith("builtin:") or patch is not None:
        return None
    root = Path(source).expanduser()
    if not root.is_dir() or find_idx_files(root) is not None:
        return None
    names, paths, owners, labelled = _list_folder(root)

    def describe(shape: tuple[int, ...]) -> dict[str, Any]:
        return {"likelihood": likelihood, "item_kind": "grid2d", "normalisation": {"scale": "0..1"},
                "meta": {"channels": shape[0], "height": shape[1], "width": shape[2],
                         "resize": list(resize) if resize is not None else None, "source_kind": "folder",
                         "noise": noise.text()}}

    example = f"{resize[0]},{resize[1]}" if resize else "64,64"
    return Stream(root=root, files=paths, labels=owners if labelled else None, class_names=names,
                  decode=partial(decode_pixels, resize=resize, channels=channels), divisor=255.0,
                  describe=describe, options={"resize": list(resize) if resize else None, "channels": channels},
                  shape_hint=f"pass --resize H,W, e.g. --resize {example}", decoding=bomb_warnings_as_errors)
