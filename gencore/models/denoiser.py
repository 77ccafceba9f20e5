"""The `denoiser` arch: a fully convolutional U-Net autoencoder that maps a noisy image to a
clean one, for images of any size.

It predicts the noise, not the image (residual learning, Zhang et al. 2017), and takes the noise
level as an extra constant input plane (FFDNet, Zhang et al. 2018). `gen denoise` estimates sigma
from the image when none is given. Three scales, two residual blocks per scale, no normalisation:
about 1M parameters with widths 32/64/128.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


class ResBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(x)))


class Denoiser(nn.Module):
    def __init__(self, spec: dict[str, Any]):
        super().__init__()
        self.spec = dict(spec)
        c, widths, blocks = spec["channels"], spec["widths"], spec["blocks"]
        self.stem = nn.Conv2d(c + 1, widths[0], 3, padding=1)  # +1: the noise-level plane
        self.down_blocks = nn.ModuleList(nn.Sequential(*[ResBlock(w) for _ in range(blocks)]) for w in widths[:-1])
        self.downs = nn.ModuleList(nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1)
                                   for i in range(len(widths) - 1))
        self.middle = nn.Sequential(*[ResBlock(widths[-1]) for _ in range(blocks)])
        self.ups = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                 for i in reversed(range(len(widths) - 1)))
        self.up_blocks = nn.ModuleList(nn.Sequential(*[ResBlock(widths[i]) for _ in range(blocks)])
                                       for i in reversed(range(len(widths) - 1)))
        self.head = nn.Conv2d(widths[0], c, 3, padding=1)

    @property
    def multiple(self) -> int:
        return 2 ** (len(self.spec["widths"]) - 1)

    def forward(self, noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """noisy (B, C, H, W) in [0, 1], sigma (B,) in [0, 1] units -> denoised (B, C, H, W)."""
        h, w = noisy.shape[-2:]
        m = self.multiple
        # Always pad (by zero when already aligned), so an exported graph handles every size.
        x = F.pad(noisy, (0, (-w) % m, 0, (-h) % m), mode="reflect")
        level = sigma.view(-1, 1, 1, 1).expand(x.shape[0], 1, *x.shape[-2:])
        # The trunk runs in the weights' dtype (bf16 weights for CPU inference: gencore/denoising.py);
        # the image and its residual stay in the input's, so 8-bit levels survive.
        feat = self.stem(torch.cat([x, level], dim=1).to(self.stem.weight.dtype))
        skips = []
        for block, down in zip(self.down_blocks, self.downs):
            feat = block(feat)
            skips.append(feat)
            feat = down(feat)  # halves H and W
        feat = self.middle(feat)
        for up, block in zip(self.ups, self.up_blocks):
            feat = block(up(feat) + skips.pop())
        noise = self.head(feat).to(x.dtype)
        return (x - noise)[..., :h, :w]
