"""The colour development set of issue #25: it chooses the colour rule, and whether a fine-tune is
kept, before the colour evaluation photos of bench/denoise_psnr.py confirm it.

The set: the 12 photos of Debian's mate-backgrounds 1.26.0 (usr/share/backgrounds/mate/nature,
GPL-2+: never shipped, never trained on), each resized to 432 px high (at most 640 wide, centred),
a 256x384 crop at (96, 128); independent Gaussian noise per pixel and channel from one
default_rng(0), clipped and rounded to 8 bits. gen runs blind, under each colour rule.

    apt-get download mate-backgrounds && dpkg-deb -x mate-backgrounds_*.deb x
    python bench/denoise_colour_dev.py x/usr/share/backgrounds/mate/nature [-r RUN] [--sigma 25]
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gencore.api import load_run
from gencore.assets import asset_path
from gencore.denoising import COLOUR_RULES, denoise, psnr


def dev_crops(folder: Path) -> list[tuple[str, np.ndarray]]:
    """(name, clean (256, 384, 3) float64 in [0, 1]) for each photo of the folder, sorted by name."""
    out = []
    for path in sorted(folder.glob("*.jpg")):
        with Image.open(path) as im:
            im = im.convert("RGB")
            scale = 432 / min(im.size)
            im = im.resize((round(im.size[0] * scale), round(im.size[1] * scale)), Image.Resampling.LANCZOS)
            width = min(im.size[0], 640)
            left = (im.size[0] - width) // 2
            array = np.asarray(im.crop((left, 0, left + width, 432)), dtype=np.float64) / 255
        out.append((path.stem, array[96:352, 128:512]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="mate-backgrounds' nature folder")
    parser.add_argument("-r", "--run", default=None, help="a denoiser run; default the shipped one")
    parser.add_argument("--sigma", type=float, default=25.0, help="noise std in 0-255 units, e.g. --sigma 25")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_run(args.run or asset_path("denoiser"), device="cpu").model()
    rng = np.random.default_rng(0)
    scores = {rule: [] for rule in COLOUR_RULES}
    for name, clean in dev_crops(args.folder):
        noisy = np.round(np.clip(clean + rng.normal(0, args.sigma / 255, clean.shape), 0, 1) * 255) / 255
        x = torch.from_numpy(noisy.transpose(2, 0, 1).astype(np.float32))
        ref = torch.from_numpy(clean.transpose(2, 0, 1))
        for rule in COLOUR_RULES:
            scores[rule].append(psnr(ref, denoise(model, x, None, torch.device("cpu"), colour_rule=rule)))
        print(name, "  ".join(f"{rule} {scores[rule][-1]:.2f}" for rule in COLOUR_RULES), flush=True)
    print("mean", "  ".join(f"{rule} {statistics.fmean(s):.3f}" for rule, s in scores.items()))


if __name__ == "__main__":
    main()
