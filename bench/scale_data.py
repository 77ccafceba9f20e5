"""Synthetic folders of 64x64 RGB PNGs for bench/data_scale.py: ten class folders of coloured
shapes on gradients with pixel noise, so the PNGs compress like photos of simple scenes (about
4 KB each). Seeded per image: the same N always gives the same files.

    python bench/scale_data.py /work/scale-data/20k 20000
"""
from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

SIZE = 64
CLASSES = 10


def draw(index: int) -> np.ndarray:
    """Image `index`: (64, 64, 3) uint8; its class is index % 10 and sets the shape and hue."""
    rng = np.random.default_rng(index)
    label = index % CLASSES
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    angle = rng.uniform(0, 2 * np.pi)
    base = rng.uniform(0.2, 0.8, 3).astype(np.float32)
    ramp = (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]
    img = base + 0.3 * (ramp - 0.5)
    cy, cx = rng.uniform(0.3, 0.7, 2)
    r = rng.uniform(0.12, 0.3)
    hue = np.array([np.cos(label * 0.63), np.cos(label * 0.63 + 2.1), np.cos(label * 0.63 + 4.2)]) * 0.5 + 0.5
    if label % 2:
        mask = (np.abs(yy - cy) < r) & (np.abs(xx - cx) < r)  # a square
    else:
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r  # a disc
    img[mask] = hue
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def write_range(args: tuple[str, int, int]) -> int:
    from PIL import Image

    root, start, stop = args
    for i in range(start, stop):
        path = Path(root) / f"c{i % CLASSES}" / f"{i:07d}.png"
        if not path.exists():
            Image.fromarray(draw(i)).save(path, optimize=False)
    return stop - start


def make(root: Path, count: int, workers: int = 2) -> None:
    for k in range(CLASSES):
        (root / f"c{k}").mkdir(parents=True, exist_ok=True)
    step = 2000
    jobs = [(str(root), s, min(count, s + step)) for s in range(0, count, step)]
    with ProcessPoolExecutor(workers) as pool:
        done = 0
        for n in pool.map(write_range, jobs):
            done += n
            print(f"{done}/{count}", flush=True)


if __name__ == "__main__":
    make(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 2)
