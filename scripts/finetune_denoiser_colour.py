#!/usr/bin/env python3
"""Fine-tune the shipped denoiser for colour photos denoised in their opponent planes alone.

`gen denoise` runs the one-channel model on the three opponent planes of a colour photo (luminance
over sqrt(3), the two chroma planes shifted to mid-grey; gencore/denoising.py). Noise that was
clipped at 0 or 1 in R, G or B is no longer zero-mean once mixed into those planes, which the
model never saw in training. This fine-tune shows it: each batch holds the opponent planes of
RGB patches with independent per-channel noise, clipped and rounded to 8 bits as a camera's PNG
is, and, so that grey photos keep their quality, as many plain grey patches with clipped noise.

Training photos: builtin:photos (the 8 of the first weights and the 12 Debian wallpapers of
assets/photos, assets/PROVENANCE.md); no evaluation image of bench/denoise_psnr.py.

    python scripts/finetune_denoiser_colour.py --steps 1200 --out /tmp/ft   # then copy to assets/denoiser
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
LUMA = torch.tensor([0.299, 0.587, 0.114])  # what builtin:photos --channels 1 uses


def photos() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(RGB photos (3, H, W), grey photos (1, H, W)): every photo in grey, the colour ones in RGB too."""
    from gencore_images.loaders import _fair_photos

    arrays, _, _ = _fair_photos()
    rgb, grey = [], []
    for array in arrays:
        image = torch.from_numpy(np.ascontiguousarray(array))
        if image.ndim == 3:
            rgb.append(image.permute(2, 0, 1).contiguous())
            grey.append(torch.einsum("c,chw->hw", LUMA, rgb[-1])[None])
        else:
            grey.append(image[None])
    return rgb, grey


def crops(images: list[torch.Tensor], n: int, patch: int, g: torch.Generator) -> torch.Tensor:
    """n random patches (n, C, patch, patch), chosen in proportion to image area, randomly turned."""
    areas = torch.tensor([im.shape[-1] * im.shape[-2] for im in images], dtype=torch.float64)
    out = []
    for k in torch.multinomial(areas, n, replacement=True, generator=g).tolist():
        im = images[k]
        top = int(torch.randint(0, im.shape[-2] - patch + 1, (1,), generator=g))
        left = int(torch.randint(0, im.shape[-1] - patch + 1, (1,), generator=g))
        crop = torch.rot90(im[:, top:top + patch, left:left + patch], int(torch.randint(0, 4, (1,), generator=g)),
                           dims=(1, 2))
        out.append(crop.flip(-1) if bool(torch.randint(0, 2, (1,), generator=g)) else crop)
    return torch.stack(out)


def noisy(clean: torch.Tensor, g: torch.Generator, low: float, high: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Independent Gaussian noise per pixel and channel, sigma uniform in [low, high] (0-255 units)
    per patch, clipped and rounded to 8 bits; and each patch's realised noise std (n,)."""
    n = clean.shape[0]
    sigma = (low + (high - low) * torch.rand(n, generator=g)) / 255
    x = (clean + torch.randn(clean.shape, generator=g) * sigma.view(n, 1, 1, 1)).clamp(0, 1)
    x = (x * 255).round() / 255
    return x, (x - clean).flatten(1).std(dim=1)


def opponent_planes(noisy_rgb, clean_rgb, level):
    """The planes `gen denoise` gives the model for a colour photo: (3n, 1, P, P) noisy and clean,
    and the noise level it is told (3n,)."""
    from gencore.denoising import OPPONENT

    def planes(x):  # (n, 3, P, P) -> (n, 3, P, P): luminance / sqrt(3), chroma + 0.5
        o = torch.einsum("ij,njhw->nihw", OPPONENT, x)
        return torch.cat([o[:, :1] / 3**0.5, o[:, 1:] + 0.5], dim=1)

    levels = torch.stack([level / 3**0.5, level, level], dim=1)  # (n, 3)
    return planes(noisy_rgb).flatten(0, 1)[:, None], planes(clean_rgb).flatten(0, 1)[:, None], levels.flatten()


def batch(rgb, grey, args, g):
    clean_rgb = crops(rgb, args.colour_patches, args.patch, g)
    noisy_rgb, level = noisy(clean_rgb, g, 5, 50)
    x_c, y_c, s_c = opponent_planes(noisy_rgb, clean_rgb, level)
    clean_grey = crops(grey, args.grey_patches, args.patch, g)
    x_g, s_g = noisy(clean_grey, g, 5, 50)
    return torch.cat([x_c, x_g]), torch.cat([y_c, clean_grey]), torch.cat([s_c, s_g])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", default=str(ROOT / "assets" / "denoiser"), help="run to start from")
    parser.add_argument("--out", type=Path, required=True, help="folder for the fine-tuned run, e.g. --out /tmp/ft")
    parser.add_argument("--steps", type=int, default=1200, help="optimiser steps, e.g. --steps 1200")
    parser.add_argument("--minutes", type=float, default=60.0, help="stop early after this wall time")
    parser.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (cosine to 0)")
    parser.add_argument("--patch", type=int, default=64, help="patch side in pixels")
    parser.add_argument("--colour-patches", type=int, default=8, help="RGB patches a step (3 planes each)")
    parser.add_argument("--grey-patches", type=int, default=12, help="grey patches a step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from gencore.api import load_run
    from gencore.storage import save_tensors, write_json

    model = load_run(args.init, device="cpu").model().float().train()
    rgb, grey = photos()
    g = torch.Generator().manual_seed(args.seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    start, log = time.time(), []
    for step in range(args.steps):
        done = min(1.0, max(step / args.steps, (time.time() - start) / (60 * args.minutes)))
        for group in optimiser.param_groups:  # cosine to 0 over the steps or the minutes, whichever ends first
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * done))
        x, y, s = batch(rgb, grey, args, g)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = F.mse_loss(model(x, s).float(), y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        log.append(float(loss.detach()))
        if (step + 1) % 50 == 0 or step + 1 == args.steps:
            elapsed = time.time() - start
            print(f"step {step + 1}/{args.steps}  loss {np.mean(log[-50:]):.6f}  {elapsed:.0f} s "
                  f"({elapsed / (step + 1):.2f} s/step)", flush=True)
        if done >= 1.0:
            print(f"stopped at step {step + 1}: --minutes {args.minutes}")
            break
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path(args.init) / "complete.json", args.out / "complete.json")
    config = json.loads((Path(args.init) / "config.json").read_text())
    config["model"]["colour"] = "opponent"  # gen denoise: the opponent planes alone (2.25 passes)
    write_json(args.out / "config.json", config)
    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    save_tensors(args.out / "model.safetensors", state, "model", "images")
    (args.out / "finetune.json").write_text(json.dumps({**vars(args), "out": str(args.out), "steps_done": len(log),
                                                        "final_loss": float(np.mean(log[-50:]))}, indent=1))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
