"""Denoising whole images of any size with a `denoiser` run: noise-level estimation, overlapping
tiles to bound memory, and PSNR/SSIM against a reference."""
from __future__ import annotations

import copy
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import torch
from torch.nn import functional as F

from gencore.archs.denoiser import COLOUR_RULES

TILE = 512
OVERLAP = 32
WHOLE_MAX = 1024 * 1024  # images up to this many pixels go through in one piece
SIDE_BY_SIDE = 2  # CPU passes run at once (`_run_passes`)


def estimate_sigma(channel: torch.Tensor) -> float:
    """Noise standard deviation of one (H, W) channel in [0, 1] units, from the median absolute
    finest-scale diagonal Haar coefficient (Donoho & Johnstone 1994): robust to image content."""
    h, w = channel.shape[0] // 2 * 2, channel.shape[1] // 2 * 2
    x = channel[:h, :w].double()
    hh = (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2
    return float(hh.abs().median() / 0.6745)


def use_bf16(device: torch.device, precision: str) -> bool:
    """bf16 inference: on GPUs, and on CPUs with native bf16 (AVX-512 BF16, AMX), where it is
    2-3x faster for a few thousandths of a dB."""
    if precision == "fp32":
        return False
    if device.type == "cuda":
        return True
    supported = device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    if precision == "bf16" and not supported:
        from gencore.errors import GenError

        raise GenError(f"bf16 is not supported on this {device.type}", where="--precision", hint="use fp32 or auto")
    return supported


# Orthonormal opponent colour transform (CBM3D's "opp"): independent noise of std sigma in R, G
# and B stays independent, with the same std, in each opponent plane. Luminance holds most of the
# signal, so its noise is sqrt(3) times weaker relative to it, which keeps fine texture.
OPPONENT = torch.tensor([[3**-0.5, 3**-0.5, 3**-0.5],
                         [2**-0.5, 0.0, -(2**-0.5)],
                         [6**-0.5, -2 * 6**-0.5, 6**-0.5]])
CLIP_WINDOW = 9  # pixels: the neighbourhood whose clipped fraction weighs the channel-by-channel result


def estimate_colour_sigma(image: torch.Tensor) -> float:
    """Noise std of a (3, H, W) image with the same noise in each channel: the median of the three
    opponent planes' estimates, so that the texture of the luminance plane cannot inflate it alone."""
    opp = torch.einsum("ij,jhw->ihw", OPPONENT.to(image), image)
    return float(torch.tensor([estimate_sigma(plane) for plane in opp]).median())


@torch.no_grad()
def denoise(model, image: torch.Tensor, sigma: float | None, device: torch.device,
            tile: int = TILE, overlap: int = OVERLAP, precision: str = "auto",
            progress: Callable[[float], None] | None = None, fused: bool = True,
            colour_rule: str | None = None) -> torch.Tensor:
    """image (C, H, W) in [0, 1] -> denoised (C, H, W). A one-channel model runs on each channel of
    a grey image, and on a colour image by `colour_rule` (default: the run's own, `colour_rule_of`).
    Tiles overlap so that no seam shows. `progress` hears the share done after each tile;
    `fused=False` runs the plain eager network."""
    model = inference_copy(model, use_bf16(device, precision), device, fused)
    channels = model.spec["channels"]
    colour = channels == 1 and image.shape[0] == 3
    rule = (colour_rule or colour_rule_of(model.spec)) if colour else None
    if rule not in COLOUR_RULES + (None,):
        raise ValueError(f"unknown colour rule {rule!r}")
    planes = [] if rule == "opponent" else [image[i:i + 1] for i in range(image.shape[0])] if channels == 1 else [image]
    if planes and planes[0].shape[0] != channels:
        raise ValueError(f"the denoiser takes {channels} channels, the image has {planes[0].shape[0]}")
    passes = [(plane, sigma if sigma is not None else estimate_sigma(plane.mean(dim=0))) for plane in planes]
    if colour:
        passes += _opponent_passes(image, sigma if sigma is not None else estimate_colour_sigma(image))
    out = _run_passes(model, passes, device, tile, overlap, progress)
    if not colour:
        return torch.cat(out).clamp(0, 1)
    by_opponent = _from_opponent(out[-3:], image)
    return (by_opponent if rule == "opponent" else _blend(image, torch.cat(out[:-3]), by_opponent)).clamp(0, 1)


def _run_passes(model, passes: list[tuple[torch.Tensor, float]], device: torch.device, tile: int, overlap: int,
                progress: Callable[[float], None] | None) -> list[torch.Tensor]:
    """Each (plane, sigma) through the model, tiled. On a CPU with several threads, the passes run
    side by side on worker threads that split the threads between them, rather than one after the
    other with every thread on each convolution: at 2 threads on a loaded machine, 6 passes took
    0.54x the time and 0.67x the CPU (bench/results/denoise-speed-2026-11-29-side-by-side-loaded.log).
    The results are the same to the bit. `progress` hears the share of pixels done."""
    sizes = [plane.shape[-2] * plane.shape[-1] for plane, _ in passes]
    done, lock = [0.0] * len(passes), threading.Lock()

    def one(index: int) -> torch.Tensor:
        def report(share: float) -> None:
            with lock:
                done[index] = share * sizes[index]
                progress(sum(done) / sum(sizes))

        plane, level = passes[index]
        return _tiled(model, plane, level, device, tile, overlap, None if progress is None else report)

    threads = torch.get_num_threads()
    # Two workers: the measured case; each more would add a whole pass's activations to the peak memory.
    workers = min(len(passes), threads, SIDE_BY_SIDE) if device.type == "cpu" else 1
    if workers <= 1:
        return [one(index) for index in range(len(passes))]

    def on_worker(index: int) -> torch.Tensor:
        torch.set_num_threads(threads // workers)  # this worker thread's share of the cores
        return one(index)

    try:
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(on_worker, range(len(passes))))
    finally:
        torch.set_num_threads(threads)  # OpenMP's count is per thread, but MKL's may be process-wide


def colour_rule_of(spec: dict) -> str:
    """"opponent" for a model fine-tuned on opponent planes with clipped colour noise
    (scripts/finetune_denoiser_colour.py): two full passes and one at half resolution. Otherwise
    "blend": the opponent planes and, where clipping biased the noise, channel by channel (`_blend`):
    five full passes and one at half resolution."""
    return spec.get("colour", "blend")


def inference_copy(model, bf16: bool, device: torch.device, fused: bool = True):
    """The model with channels-last weights (about 2x faster convolutions on CPUs), in bf16 when
    asked: bf16 weights rather than autocast save the casts and halve the memory traffic of the
    activations (0.36 against 0.41 CPU-s per 512x512 pass, bench/results/denoise-speed-*.log). On a
    CPU with oneDNN, the pass fuses SiLU and the residual adds into the convolutions and packs the
    weights once per tile shape (gencore/models/denoiser_cpu.py): 0.64-0.88x the CPU time of the
    eager pass in interleaved runs on a loaded machine (bench/results/denoise-speed-2026-11-29-*.log)."""
    from gencore.models.denoiser import Denoiser
    from gencore.models.denoiser_cpu import FusedDenoiser, fused_available

    model = model.to(memory_format=torch.channels_last)
    model = copy.deepcopy(model).to(torch.bfloat16) if bf16 else model
    if fused and device.type == "cpu" and isinstance(model, Denoiser) and fused_available():
        return FusedDenoiser(model)
    return model


def _opponent_passes(image: torch.Tensor, level: float) -> list[tuple[torch.Tensor, float]]:
    """The three opponent planes of a (3, H, W) image as (plane, sigma) passes, each in [0, 1]:
    the luminance (the mean of R, G, B), red-blue and green-magenta centred on mid-grey. The
    green-magenta plane goes at half resolution (its 2x2 means, whose independent noise has half
    the std): a quarter of a pass, and on the colour development set it scored higher than at full
    resolution (34.40 against 34.30 dB at sigma 25, bench/results/denoise-colour-dev-2026-11-29-half-plane.log).
    Red-blue carries detail that half resolution loses (34.20 with both planes halved)."""
    opp = torch.einsum("ij,jhw->ihw", OPPONENT.to(image), image)  # (3, H, W)
    green_magenta = F.avg_pool2d(opp[None, 2:3] + 0.5, 2, 2, ceil_mode=True)[0]  # (1, ceil(H/2), ceil(W/2))
    return [(opp[0:1] / 3**0.5, level / 3**0.5), (opp[1:2] + 0.5, level), (green_magenta, level / 2)]


def _from_opponent(planes: list[torch.Tensor], image: torch.Tensor) -> torch.Tensor:
    """The denoised passes of `_opponent_passes`, back in RGB: (3, H, W)."""
    luma, red_blue, green_magenta = planes
    green_magenta = F.interpolate(green_magenta[None], size=image.shape[-2:], mode="bilinear", align_corners=False)[0]
    opp = torch.cat([luma * 3**0.5, red_blue - 0.5, green_magenta - 0.5])
    return torch.einsum("ji,jhw->ihw", OPPONENT.to(image), opp)


def _blend(image: torch.Tensor, by_channel: torch.Tensor, by_opponent: torch.Tensor) -> torch.Tensor:
    """The opponent planes' result where no channel is clipped, the channel-by-channel one where
    they are, blended by the clipped fraction of each pixel's 9x9 neighbourhood. Clipping at 0 or 1
    biases the noise of a saturated colour, which a model trained on grey patches learnt to undo in
    one channel (it trained on clipped noise) but not once mixed across channels."""
    clipped = ((image <= 0) | (image >= 1)).any(dim=0, keepdim=True).to(image)[None]  # (1, 1, H, W)
    weight = F.avg_pool2d(clipped, CLIP_WINDOW, 1, CLIP_WINDOW // 2, count_include_pad=False)[0]
    return weight * by_channel + (1 - weight) * by_opponent


def _tiled(model, plane: torch.Tensor, sigma: float, device, tile: int, overlap: int,
           progress: Callable[[float], None] | None = None) -> torch.Tensor:
    _, h, w = plane.shape
    if tile == TILE and h * w <= WHOLE_MAX:
        tile, overlap = max(h, w) + 2 * OVERLAP, OVERLAP  # one tile: no seams, no repeated work
    result = torch.empty_like(plane)
    step = tile - 2 * overlap
    tiles, done = math.ceil(h / step) * math.ceil(w / step), 0
    sig = torch.tensor([sigma], dtype=torch.float32, device=device)
    for top in range(0, h, step):
        for left in range(0, w, step):
            t0, l0 = max(0, top - overlap), max(0, left - overlap)
            t1, l1 = min(h, top + step + overlap), min(w, left + step + overlap)
            patch = plane[:, t0:t1, l0:l1].unsqueeze(0).to(device).contiguous(memory_format=torch.channels_last)
            den = model(patch, sig).float()[0].cpu()
            bottom, right = min(h, top + step), min(w, left + step)
            result[:, top:bottom, left:right] = den[:, top - t0:bottom - t0, left - l0:right - l0]
            done += 1
            if progress is not None:
                progress(done / tiles)
    return result


def psnr(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    mse = float((reference.double() - estimate.double()).pow(2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def ssim(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """Mean SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, on a [0, 1] range, per channel."""
    coords = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-coords**2 / (2 * 1.5**2))
    g = (g / g.sum())
    window = (g[:, None] * g[None, :]).view(1, 1, 11, 11)
    x, y = reference.double().unsqueeze(1), estimate.double().unsqueeze(1)  # (C, 1, H, W)
    mu_x, mu_y = F.conv2d(x, window), F.conv2d(y, window)
    sxx = F.conv2d(x * x, window) - mu_x**2
    syy = F.conv2d(y * y, window) - mu_y**2
    sxy = F.conv2d(x * y, window) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    value = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return float(value.mean())
