"""The colour protocol of bench/denoise_psnr.py (issue #25): gen blind and told sigma against CBM3D
on the colour evaluation photos, the blind sigma estimate against the truth, and the bf16 time of a
512x512 RGB image."""
from __future__ import annotations

import hashlib
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from gencore.denoising import denoise, estimate_colour_sigma, psnr, ssim

COLOUR_IMAGES = ["astronaut", "coffee", "chelsea", "rocket", "china", "flower"]  # evaluation only: never trained on
CROP = (slice(150, 278), slice(0, 192))  # china: the carved temple front and a tree


def load_colour(name: str) -> np.ndarray:
    """(H, W, 3) uint8."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    from skimage import data

    return getattr(data, name)()


def colour_protocol(sigma: float, size: int | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, clean, noisy) per image, (H, W, 3) float64 in [0, 1]; noise std sigma in 0-255 units."""
    rng = np.random.default_rng(0)
    out = []
    for name in COLOUR_IMAGES:
        clean = load_colour(name).astype(np.float64) / 255
        clean = clean[:size, :size] if size else clean
        noisy = np.round(np.clip(clean + rng.normal(0, sigma / 255, clean.shape), 0, 1) * 255) / 255
        out.append((name, clean, noisy))
    return out


def chw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def cbm3d(noisy: np.ndarray, sigma: float, name: str, cache: str | None) -> np.ndarray:
    """CBM3D told sigma (the `bm3d` package's defaults: opponent colour space, 'np' profile)."""
    path = None
    if cache:
        digest = hashlib.sha1(noisy.tobytes()).hexdigest()[:12]
        path = Path(cache) / f"cbm3d-{name}-{sigma:g}-{digest}.npy"
        if path.is_file():
            return np.load(path, allow_pickle=False)
    import bm3d

    out = np.asarray(bm3d.bm3d_rgb(noisy, sigma / 255), dtype=np.float64)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, out, allow_pickle=False)
    return out


def colour(model, args) -> None:
    sigmas = [float(s) for s in args.sigmas.split(",")]
    size = 96 if args.smoke else None
    cpu = torch.device("cpu")
    print("| sigma | image | noisy | gen blind | gen told sigma | CBM3D told sigma | blind sigma estimate (true realised) |")
    print("|---|---|---|---|---|---|---|")
    summary = {}
    for sigma in sigmas:
        rows = []
        for name, clean, noisy in colour_protocol(sigma, size):
            ref, x = chw(clean), chw(noisy).float()
            outs = {"noisy": x.double(),
                    "blind": denoise(model, x, None, cpu, precision=args.precision),
                    "told": denoise(model, x, sigma / 255, cpu, precision=args.precision)}
            if not args.no_cbm3d:
                outs["cbm3d"] = chw(cbm3d(noisy, sigma, name, args.cache))
            row = {k: (psnr(ref, v), ssim(ref, v)) for k, v in outs.items()}
            estimate, realised = 255 * estimate_colour_sigma(x), 255 * float((x.double() - ref).std())
            rows.append(row)
            cells = " | ".join(f"{row[k][0]:.2f} dB / {row[k][1]:.3f}" if k in row else "-"
                               for k in ("noisy", "blind", "told", "cbm3d"))
            print(f"| {sigma:g} | {name} | {cells} | {estimate:.1f} ({realised:.1f}) |", flush=True)
            if args.figure and name == "china" and sigma == 25 and "cbm3d" in outs:
                write_figure(args.figure, clean, [("noisy", outs["noisy"]), ("gen (blind)", outs["blind"]),
                                                  ("CBM3D (told sigma)", outs["cbm3d"])], row)
        means = {k: (statistics.fmean(r[k][0] for r in rows), statistics.fmean(r[k][1] for r in rows)) for k in rows[0]}
        cells = " | ".join(f"**{means[k][0]:.2f} dB / {means[k][1]:.3f}**" if k in means else "-"
                           for k in ("noisy", "blind", "told", "cbm3d"))
        print(f"| {sigma:g} | **mean** | {cells} | |", flush=True)
        if "cbm3d" in means:
            gaps = [r["blind"][0] - r["cbm3d"][0] for r in rows]
            summary[sigma] = (means["blind"][0] - means["cbm3d"][0], min(gaps))
    for sigma, (mean_gap, worst) in summary.items():
        print(f"sigma {sigma:g}: gen blind - CBM3D: mean {mean_gap:+.2f} dB, worst image {worst:+.2f} dB")
    timing(model, 96 if args.smoke else 512, 1 if args.smoke else args.repeats)


def timing(model, size: int, repeats: int) -> None:
    """Seconds for one size x size RGB image (all passes, estimates and blend), wall and CPU time,
    the variants interleaved in the same run: the default against the previous default (six
    full-resolution passes through the fused pass with unpacked weights, `_previous_default`);
    then one model pass on one plane: eager, fused with unpacked weights, and fused (packed)."""
    from gencore.denoising import inference_copy, use_bf16
    from gencore.models.denoiser_cpu import FusedDenoiser

    cpu = torch.device("cpu")
    x = chw(colour_protocol(25, size)[0][2]).float()[:, :size, :size]
    bf16 = use_bf16(cpu, "auto")
    kinds = {"previous default (6 passes, unpacked)": lambda: _previous_default(model, x, bf16),
             "default": lambda: denoise(model, x, None, cpu)}
    whole = _interleaved(kinds, repeats)
    plane = x[:1, None].contiguous(memory_format=torch.channels_last)  # (1, 1, H, W)
    level = torch.tensor([25 / 255])
    eager = inference_copy(model, bf16, cpu, fused=False)
    unpacked, packed = FusedDenoiser(eager, pack=False), inference_copy(model, bf16, cpu)
    one = _interleaved({"eager": lambda: eager(plane, level), "fused, unpacked": lambda: unpacked(plane, level),
                        "fused, packed": lambda: packed(plane, level)}, repeats)
    threads, kind = torch.get_num_threads(), "bf16" if bf16 else "fp32"
    for name, (wall, cpu_s) in whole.items():
        print(f"{size}x{size} RGB, {kind}, {name}: {wall:.3f} s wall, {cpu_s:.3f} s CPU "
              f"(medians of {repeats}, {threads} threads)")
    base = whole["previous default (6 passes, unpacked)"]
    print(f"default / previous default: {whole['default'][0] / base[0]:.3f} (wall), "
          f"{whole['default'][1] / base[1]:.3f} (CPU time)")
    for name, (wall, cpu_s) in one.items():
        print(f"one pass, one {size}x{size} plane, {kind} {name}: {wall:.3f} s wall, {cpu_s:.3f} s CPU")
    for name in ("fused, unpacked", "fused, packed"):
        print(f"one pass, {name} / eager: {one[name][0] / one['eager'][0]:.3f} (wall), "
              f"{one[name][1] / one['eager'][1]:.3f} (CPU time)")


@torch.no_grad()
def _previous_default(model, image: torch.Tensor, bf16: bool) -> torch.Tensor:
    """gen denoise on a colour image before issue #25's fourth session: the blend of three
    channel-by-channel passes and three full-resolution opponent planes, through the fused pass
    with its weights reordered by every call. The bench's speed baseline."""
    from gencore.denoising import (OPPONENT, OVERLAP, TILE, _blend, _tiled, estimate_colour_sigma,
                                   estimate_sigma, inference_copy)
    from gencore.models.denoiser_cpu import FusedDenoiser

    cpu = torch.device("cpu")
    net = FusedDenoiser(inference_copy(model, bf16, cpu, fused=False), pack=False)
    run = lambda plane, level: _tiled(net, plane, level, cpu, TILE, OVERLAP)  # noqa: E731
    by_channel = torch.cat([run(image[i:i + 1], estimate_sigma(image[i])) for i in range(3)])
    level = estimate_colour_sigma(image)
    opp = torch.einsum("ij,jhw->ihw", OPPONENT, image)
    luma = run(opp[0:1] / 3**0.5, level / 3**0.5) * 3**0.5
    chroma = torch.cat([run(opp[i:i + 1] + 0.5, level) for i in (1, 2)]) - 0.5
    by_opponent = torch.einsum("ji,jhw->ihw", OPPONENT, torch.cat([luma, chroma]))
    return _blend(image, by_channel, by_opponent).clamp(0, 1)


@torch.no_grad()
def _interleaved(fns: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """Median wall and CPU seconds of each function, timed in turn so that a changing load on a
    shared machine weighs on all of them alike."""
    for fn in fns.values():
        fn()  # warm-up
    times = {name: ([], []) for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), _cpu_seconds()
            fn()
            times[name][0].append(time.perf_counter() - t0)
            times[name][1].append(_cpu_seconds() - c0)
    return {name: (statistics.median(w), statistics.median(c)) for name, (w, c) in times.items()}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_figure(path: str, clean: np.ndarray, panels: list[tuple[str, torch.Tensor]], row: dict) -> None:
    """Clean, then each panel, on one strip: the same crop, enlarged 2x, with its PSNR."""
    from PIL import Image, ImageDraw

    keys = {"noisy": "noisy", "gen (blind)": "blind", "CBM3D (told sigma)": "cbm3d"}
    tiles = [("clean", clean)] + [(label, image.clamp(0, 1).numpy().transpose(1, 2, 0)) for label, image in panels]
    h, w = CROP[0].stop - CROP[0].start, CROP[1].stop - CROP[1].start
    strip = Image.new("RGB", (len(tiles) * (2 * w + 8) - 8, 2 * h + 22), "white")
    draw = ImageDraw.Draw(strip)
    for i, (label, image) in enumerate(tiles):
        crop = Image.fromarray((image[CROP] * 255 + 0.5).astype(np.uint8)).resize((2 * w, 2 * h), Image.Resampling.NEAREST)
        strip.paste(crop, (i * (2 * w + 8), 0))
        text = label if label == "clean" else f"{label}: {row[keys[label]][0]:.2f} dB"
        draw.text((i * (2 * w + 8) + 2, 2 * h + 5), text, fill="black")
    from gencore.storage import write_bytes
    import io

    buf = io.BytesIO()
    strip.save(buf, format="PNG")
    write_bytes(Path(path), buf.getvalue())
    print(f"figure: {path}")
