"""PSNR of the shipped denoiser under the protocols of the denoise issues, beside the noisy input,
non-local means (grey) and CBM3D (colour), with the time per 512x512 image on this CPU.

Grey protocol (issue of the first denoiser): 8 scikit-image photos (camera, astronaut, coffee,
chelsea, rocket, coins, moon, brick) to grayscale in [0, 1]; one numpy default_rng(0), noise drawn
image by image in that order at sigma 25/255; noisy images clipped to [0, 1] and rounded to 8 bits;
PSNR against the clean float image. The denoiser runs with no flags (blind).

Colour protocol (issue #25, `--colour`): the colour evaluation photos (scikit-image's astronaut,
coffee, chelsea and rocket, scikit-learn's china and flower) as 8-bit RGB; for each sigma (15, 25,
50) a fresh default_rng(0), noise drawn independently per pixel and channel, image by image in that
order, clipped and rounded to 8 bits. Per image: PSNR and SSIM of the noisy input, gen blind (no
flags), gen told sigma, and CBM3D (the `bm3d` package, told sigma); the blind sigma estimate beside
the truth; and the time of a 512x512 RGB image in bf16 against fp32.

    python bench/denoise_psnr.py [-r RUN] [--no-nlm]
    python bench/denoise_psnr.py --colour [--sigmas 15,25,50] [--cache DIR] [--figure PNG]
    python bench/denoise_psnr.py --speed --threads 2     # the 512x512 RGB timing alone
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from skimage import color, data, restoration

from gencore.api import load_run
from gencore.assets import asset_path
from gencore.denoising import denoise, psnr

IMAGES = ["camera", "astronaut", "coffee", "chelsea", "rocket", "coins", "moon", "brick"]
SIGMA = 25 / 255


def protocol() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    out = []
    for name in IMAGES:
        image = getattr(data, name)()
        clean = color.rgb2gray(image) if image.ndim == 3 else image / 255.0
        noisy = np.clip(clean + rng.normal(0, SIGMA, clean.shape), 0, 1)
        out.append((name, clean.astype(np.float64), np.round(noisy * 255) / 255))
    return out


def grey(model, args) -> None:
    rows, times = [], []
    for name, clean, noisy in protocol():
        x = torch.from_numpy(noisy.astype(np.float32))[None]
        start = time.perf_counter()
        ours = denoise(model, x, None, torch.device("cpu"), precision=args.precision)[0].double().numpy()
        elapsed = time.perf_counter() - start
        if clean.shape == (512, 512):
            times.append(elapsed)
        row = {"image": name, "noisy": psnr(torch.from_numpy(clean), torch.from_numpy(noisy)),
               "gen": psnr(torch.from_numpy(clean), torch.from_numpy(ours))}
        if not args.no_nlm:
            s = SIGMA
            nlm = restoration.denoise_nl_means(noisy, h=0.8 * s, sigma=s, patch_size=7, patch_distance=11,
                                               fast_mode=True)
            row["nl-means"] = psnr(torch.from_numpy(clean), torch.from_numpy(nlm))
        rows.append(row)
        print("  ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v:<9}" for k, v in row.items()))
    keys = [k for k in rows[0] if k != "image"]
    print("mean    " + "  ".join(f"{k} {np.mean([r[k] for r in rows]):.2f}" for k in keys))
    from gencore.denoising import use_bf16

    kind = "bf16" if use_bf16(torch.device("cpu"), args.precision) else "fp32"
    print(f"gen: {np.median(times):.2f} s per 512x512 image (median), {torch.get_num_threads()} threads, {kind}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-r", "--run", default=None, help="a denoiser run; default the shipped one")
    parser.add_argument("--no-nlm", action="store_true", help="skip non-local means (grey protocol)")
    parser.add_argument("--precision", default="auto", help="auto, fp32 or bf16")
    parser.add_argument("--colour", action="store_true", help="the colour protocol (issue #25) instead of the grey one")
    parser.add_argument("--sigmas", default="15,25,50", help="colour protocol: noise levels in 0-255 units")
    parser.add_argument("--no-cbm3d", action="store_true", help="colour protocol: skip CBM3D (minutes per image)")
    parser.add_argument("--cache", default=None, help="colour protocol: folder for CBM3D results, reused when the noisy input is the same")
    parser.add_argument("--smoke", action="store_true", help="colour protocol on 96x96 crops at sigma 25: checks that it runs")
    parser.add_argument("--speed", action="store_true", help="only time a 512x512 RGB image (bf16 against fp32), e.g. --speed --threads 2")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads for the whole bench, e.g. --threads 2")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (medians), e.g. --repeats 9")
    parser.add_argument("--figure", default=None, help="colour protocol: write a crop of china at sigma 25 (noisy, gen, CBM3D) here")
    args = parser.parse_args()
    if args.smoke:
        args.colour, args.sigmas, args.figure = True, "25", None
    torch.set_num_threads(args.threads)
    model = load_run(args.run or asset_path("denoiser"), device="cpu").model()
    if args.speed:
        from denoise_colour import timing

        timing(model, 512, args.repeats)
    elif args.colour:
        from denoise_colour import colour

        colour(model, args)
    else:
        grey(model, args)


if __name__ == "__main__":
    main()
