"""Which passes a colour photo can spare (issue #25): on the colour development set of
bench/denoise_colour_dev.py, the blend of gencore/denoising.py with some planes run at half
resolution (2x2 means, whose noise has half the std, denoised and scaled back up), against the
blend with every plane at full resolution (the rule before this bench). Shipped weights, blind,
the CPU pass of gen denoise. Each variant's cost is in passes of the full image.

    python bench/denoise_colour_passes.py x/usr/share/backgrounds/mate/nature [--sigma 25]
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from denoise_colour_dev import dev_crops
from gencore.api import load_run
from gencore.assets import asset_path
from gencore.denoising import (CLIP_WINDOW, OPPONENT, OVERLAP, TILE, _tiled, estimate_colour_sigma, estimate_sigma,
                               inference_copy, psnr, use_bf16)


def variants(net, image: torch.Tensor) -> dict[str, torch.Tensor]:
    """(3, H, W) noisy image -> {variant (cost in passes): (3, H, W) result}."""
    cpu = torch.device("cpu")
    size = image.shape[-2:]

    def full(plane: torch.Tensor, level: float) -> torch.Tensor:
        return _tiled(net, plane, level, cpu, TILE, OVERLAP)

    def half(plane: torch.Tensor, level: float, mode: str = "bilinear") -> torch.Tensor:
        small = F.avg_pool2d(plane[None], 2, 2, ceil_mode=True)[0]
        return F.interpolate(full(small, level / 2)[None], size=size, mode=mode, align_corners=False)[0]

    channels = [full(image[i:i + 1], estimate_sigma(image[i])) for i in range(3)]
    level = estimate_colour_sigma(image)
    opp = torch.einsum("ij,jhw->ihw", OPPONENT, image)  # (3, H, W)
    luma = full(opp[0:1] / 3**0.5, level / 3**0.5) * 3**0.5
    red_blue = {"full": full(opp[1:2] + 0.5, level) - 0.5, "half": half(opp[1:2] + 0.5, level) - 0.5,
                "half bicubic": half(opp[1:2] + 0.5, level, "bicubic") - 0.5}
    green_magenta = {"full": full(opp[2:3] + 0.5, level) - 0.5, "half": half(opp[2:3] + 0.5, level) - 0.5,
                     "half bicubic": half(opp[2:3] + 0.5, level, "bicubic") - 0.5}
    clipped = ((image <= 0) | (image >= 1)).any(dim=0, keepdim=True).to(image)[None]  # (1, 1, H, W)
    weight = F.avg_pool2d(clipped, CLIP_WINDOW, 1, CLIP_WINDOW // 2, count_include_pad=False)[0]

    def rgb(*planes: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ji,jhw->ihw", OPPONENT, torch.cat(planes))

    def blend(by_channel: list[torch.Tensor], by_opponent: torch.Tensor) -> torch.Tensor:
        return weight * torch.cat(by_channel) + (1 - weight) * by_opponent

    out = {}
    for rb, rb_cost in (("full", 1), ("half", 0.25), ("half bicubic", 0.25)):
        for gm, gm_cost in (("full", 1), ("half", 0.25), ("half bicubic", 0.25)):
            out[f"blend, red-blue {rb}, green-magenta {gm} ({4 + rb_cost + gm_cost:g})"] = blend(
                channels, rgb(luma, red_blue[rb], green_magenta[gm]))
    chosen = rgb(luma, red_blue["full"], green_magenta["half"])
    for i, name in enumerate("RGB"):
        by_channel = list(channels)
        by_channel[i] = half(image[i:i + 1], estimate_sigma(image[i]))
        out[f"blend, green-magenta half, channel {name} half (4.5)"] = blend(by_channel, chosen)
    channel_opp = torch.einsum("ij,jhw->ihw", OPPONENT, torch.cat(channels))
    out["channels' red-blue and green-magenta, blended luminance (4)"] = rgb(
        weight * channel_opp[0:1] + (1 - weight) * luma, channel_opp[1:])
    out["channel by channel (3)"] = torch.cat(channels)
    out["opponent planes, all full (3)"] = rgb(luma, red_blue["full"], green_magenta["full"])
    out["opponent planes, green-magenta half (2.25)"] = chosen
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="mate-backgrounds' nature folder")
    parser.add_argument("--sigma", type=float, default=25.0, help="noise std in 0-255 units, e.g. --sigma 25")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    net = inference_copy(load_run(asset_path("denoiser"), device="cpu").model(), use_bf16(cpu, "auto"), cpu)
    rng = np.random.default_rng(0)
    scores: dict[str, list[float]] = {}
    with torch.no_grad():
        for name, clean in dev_crops(args.folder):
            noisy = np.round(np.clip(clean + rng.normal(0, args.sigma / 255, clean.shape), 0, 1) * 255) / 255
            x = torch.from_numpy(noisy.transpose(2, 0, 1).astype(np.float32))
            ref = torch.from_numpy(clean.transpose(2, 0, 1))
            for variant, result in variants(net, x).items():
                scores.setdefault(variant, []).append(psnr(ref, result.clamp(0, 1)))
            print(name, flush=True)
    names = [path.stem for path in sorted(args.folder.glob("*.jpg"))]
    print(f"sigma {args.sigma:g}; PSNR in dB per development image ({', '.join(names)}), then the mean")
    for variant, values in scores.items():
        print(f"{variant}: {' '.join(f'{v:.2f}' for v in values)}  mean {statistics.fmean(values):.3f}")


if __name__ == "__main__":
    main()
