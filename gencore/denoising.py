"""Denoising whole images of any size with a `denoiser` run: noise-level estimation, overlapping
tiles to bound memory, and PSNR/SSIM against a reference."""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

TILE = 512
OVERLAP = 32
WHOLE_MAX = 1024 * 1024  # images up to this many pixels go through in one piece


def estimate_sigma(channel: torch.Tensor) -> float:
    """Noise standard deviation of one (H, W) channel in [0, 1] units, from the median absolute
    finest-scale diagonal Haar coefficient (Donoho & Johnstone 1994): robust to image content."""
    h, w = channel.shape[0] // 2 * 2, channel.shape[1] // 2 * 2
    x = channel[:h, :w].double()
    hh = (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2
    return float(hh.abs().median() / 0.6745)


def use_bf16(device: torch.device, precision: str) -> bool:
    """bf16 autocast: on GPUs, and on CPUs with native bf16 (AVX-512 BF16, AMX), where it is
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
# signal, so its noise is sqrt(3) times weaker relative to it; the two chroma planes are smooth.
OPPONENT = torch.tensor([[3**-0.5, 3**-0.5, 3**-0.5],
                         [2**-0.5, 0.0, -(2**-0.5)],
                         [6**-0.5, -2 * 6**-0.5, 6**-0.5]])
PLANE_GAIN = torch.tensor([3**-0.5, 2**-0.5, 6**0.5 / 4])  # maps the planes' ranges onto [0, 1] (chroma after +0.5)


def estimate_colour_sigma(image: torch.Tensor) -> float:
    """Noise std of a (3, H, W) image with the same noise in each channel: the median of the three
    opponent planes' estimates, so that the texture of the luminance plane cannot inflate it alone."""
    opp = torch.einsum("ij,jhw->ihw", OPPONENT.to(image), image)
    return float(torch.tensor([estimate_sigma(plane) for plane in opp]).median())


@torch.no_grad()
def denoise(model, image: torch.Tensor, sigma: float | None, device: torch.device,
            tile: int = TILE, overlap: int = OVERLAP, precision: str = "auto", chroma_scale: int = 1) -> torch.Tensor:
    """image (C, H, W) in [0, 1] -> denoised (C, H, W). A one-channel model runs on each channel of
    a grey image, and on the opponent planes of a colour one; tiles overlap so that no seam shows."""
    bf16 = use_bf16(device, precision)
    model = model.to(memory_format=torch.channels_last)  # about 2x faster convolutions on CPUs
    channels = model.spec["channels"]
    run = lambda plane, level: _tiled(model, plane, level, device, tile, overlap, bf16)  # noqa: E731
    if channels == 1 and image.shape[0] == 3:
        return _opponent(run, image, sigma, chroma_scale).clamp(0, 1)
    planes = [image[i:i + 1] for i in range(image.shape[0])] if channels == 1 else [image]
    out = []
    for plane in planes:
        if plane.shape[0] != channels:
            raise ValueError(f"the denoiser takes {channels} channels, the image has {plane.shape[0]}")
        out.append(run(plane, sigma if sigma is not None else estimate_sigma(plane.mean(dim=0))))
    return torch.cat(out).clamp(0, 1)


def _opponent(run, image: torch.Tensor, sigma: float | None, chroma_scale: int) -> torch.Tensor:
    """Denoise (3, H, W) RGB with a one-channel model in the opponent colour space. Each plane is
    scaled into [0, 1], the range the model was trained on (a saturated colour would leave it), and
    the model is told the noise level that the scaling leaves."""
    level = sigma if sigma is not None else estimate_colour_sigma(image)
    matrix = OPPONENT.to(image)
    opp = torch.einsum("ij,jhw->ihw", matrix, image)  # (3, H, W)
    gain = PLANE_GAIN.to(image).view(3, 1, 1)
    planes = opp * gain + torch.tensor([0.0, 0.5, 0.5]).to(image).view(3, 1, 1)  # each in [0, 1]
    luma = run(planes[0:1], level * float(gain[0]))
    chroma = planes[1:]
    if chroma_scale > 1:
        small = F.avg_pool2d(chroma[None], chroma_scale, ceil_mode=True)[0]
        small = torch.cat([run(small[i:i + 1], level * float(gain[i + 1]) / chroma_scale) for i in range(2)])
        chroma = F.interpolate(small[None], size=image.shape[-2:], mode="bilinear", align_corners=False)[0]
    else:
        chroma = torch.cat([run(chroma[i:i + 1], level * float(gain[i + 1])) for i in range(2)])
    opp = (torch.cat([luma, chroma]) - torch.tensor([0.0, 0.5, 0.5]).to(image).view(3, 1, 1)) / gain
    return torch.einsum("ji,jhw->ihw", matrix, opp)


def _tiled(model, plane: torch.Tensor, sigma: float, device, tile: int, overlap: int, bf16: bool) -> torch.Tensor:
    _, h, w = plane.shape
    if tile == TILE and h * w <= WHOLE_MAX:
        tile, overlap = max(h, w) + 2 * OVERLAP, OVERLAP  # one tile: no seams, no repeated work
    result = torch.empty_like(plane)
    step = tile - 2 * overlap
    sig = torch.tensor([sigma], dtype=torch.float32, device=device)
    for top in range(0, h, step):
        for left in range(0, w, step):
            t0, l0 = max(0, top - overlap), max(0, left - overlap)
            t1, l1 = min(h, top + step + overlap), min(w, left + step + overlap)
            patch = plane[:, t0:t1, l0:l1].unsqueeze(0).to(device).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                den = model(patch, sig).float()[0].cpu()
            bottom, right = min(h, top + step), min(w, left + step)
            result[:, top:bottom, left:right] = den[:, top - t0:bottom - t0, left - l0:right - l0]
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
