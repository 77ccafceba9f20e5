"""Encoder and decoder networks, sized from the item shape.

Three families share one interface: conv for 2-D grids (C, H, W), conv for 1-D sequences (C, L),
and an MLP for feature vectors (D,). Encoders map (item, condition) to a flat vector of
`out_features`; decoders map (latent, condition) to per-position likelihood parameters.
Conditions enter as extra constant input planes and again beside the flattened features.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

MIN_SIDE = 4  # stop downsampling before any spatial side would drop below this
MAX_LEVELS = 4
MAX_WIDTH = 256


def plan_sizes(spatial: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Spatial sizes per level, e.g. (28, 28) -> [(28, 28), (14, 14), (7, 7), (4, 4)]."""
    sizes = [tuple(spatial)]
    while len(sizes) <= MAX_LEVELS:
        nxt = tuple(math.ceil(s / 2) for s in sizes[-1])
        if min(nxt) < MIN_SIDE:
            break
        sizes.append(nxt)
    return sizes


def level_widths(width: int, levels: int) -> list[int]:
    return [min(width * 2**i, MAX_WIDTH) for i in range(levels + 1)]


def _conv_cls(dim: int):
    return {1: nn.Conv1d, 2: nn.Conv2d}[dim]


def _conv_t_cls(dim: int):
    return {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}[dim]


def _planes(cond: torch.Tensor, spatial: tuple[int, ...]) -> torch.Tensor:
    """(B, K) condition -> (B, K, *spatial) constant planes."""
    return cond.view(*cond.shape, *([1] * len(spatial))).expand(*cond.shape, *spatial)


class ConvEncoder(nn.Module):
    def __init__(self, in_channels: int, spatial: tuple[int, ...], cond_dim: int, out_features: int,
                 width: int = 32, hidden: int = 256):
        super().__init__()
        self.dim = len(spatial)
        self.cond_dim = cond_dim
        conv = _conv_cls(self.dim)
        sizes = plan_sizes(spatial)
        widths = level_widths(width, len(sizes) - 1)
        self.stem = conv(in_channels + cond_dim, widths[0], 3, padding=1)
        self.levels = nn.ModuleList(
            nn.Sequential(
                conv(widths[i], widths[i + 1], 3, stride=2, padding=1), nn.SiLU(),
                conv(widths[i + 1], widths[i + 1], 3, padding=1), nn.SiLU(),
            )
            for i in range(len(sizes) - 1)
        )
        flat = widths[-1] * math.prod(sizes[-1])
        self.head = nn.Sequential(
            nn.Linear(flat + cond_dim, hidden), nn.SiLU(), nn.Linear(hidden, out_features)
        )

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if self.cond_dim:
            x = torch.cat([x, _planes(cond, tuple(x.shape[2:]))], dim=1)  # (B, C+K, *S)
        h = F.silu(self.stem(x))
        for level in self.levels:
            h = level(h)  # (B, W_i, *S_i)
        h = h.flatten(1)
        if self.cond_dim:
            h = torch.cat([h, cond], dim=1)
        return self.head(h)


class ConvDecoder(nn.Module):
    def __init__(self, out_channels: int, spatial: tuple[int, ...], cond_dim: int, latent_dim: int,
                 width: int = 32, hidden: int = 256):
        super().__init__()
        self.dim = len(spatial)
        self.cond_dim = cond_dim
        conv, conv_t = _conv_cls(self.dim), _conv_t_cls(self.dim)
        self.sizes = plan_sizes(spatial)
        widths = level_widths(width, len(self.sizes) - 1)
        self.bottom_shape = (widths[-1], *self.sizes[-1])
        self.head = nn.Sequential(
            nn.Linear(latent_dim + cond_dim, hidden), nn.SiLU(),
            nn.Linear(hidden, math.prod(self.bottom_shape)), nn.SiLU(),
        )
        n = len(self.sizes) - 1
        # level j upsamples from sizes[n-j] to sizes[n-j-1]
        self.up = nn.ModuleList(
            conv_t(widths[n - j] + cond_dim, widths[n - j - 1], 4, stride=2, padding=1) for j in range(n)
        )
        self.refine = nn.ModuleList(conv(widths[n - j - 1], widths[n - j - 1], 3, padding=1) for j in range(n))
        self.out = conv(widths[0] + cond_dim, out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = torch.cat([z, cond], dim=1) if self.cond_dim else z
        h = self.head(h).view(-1, *self.bottom_shape)  # (B, W_n, *S_n)
        n = len(self.sizes) - 1
        for j, (up, refine) in enumerate(zip(self.up, self.refine)):
            if self.cond_dim:
                h = torch.cat([h, _planes(cond, tuple(h.shape[2:]))], dim=1)
            h = up(h)  # doubles each side; crop odd sizes back to the planned one
            target = self.sizes[n - j - 1]
            h = h[(..., *[slice(0, s) for s in target])]
            h = F.silu(refine(F.silu(h)))
        if self.cond_dim:
            h = torch.cat([h, _planes(cond, tuple(h.shape[2:]))], dim=1)
        return self.out(h)  # (B, out_channels, *spatial)


class MLPEncoder(nn.Module):
    def __init__(self, in_features: int, cond_dim: int, out_features: int, hidden: int = 256):
        super().__init__()
        self.cond_dim = cond_dim
        self.net = nn.Sequential(
            nn.Linear(in_features + cond_dim, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, out_features),
        )

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = x.flatten(1)
        return self.net(torch.cat([h, cond], dim=1) if self.cond_dim else h)


class MLPDecoder(nn.Module):
    def __init__(self, out_features: int, cond_dim: int, latent_dim: int, hidden: int = 256):
        super().__init__()
        self.cond_dim = cond_dim
        self.net = nn.Sequential(
            nn.Linear(latent_dim + cond_dim, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, out_features),
        )

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return self.net(torch.cat([z, cond], dim=1) if self.cond_dim else z)
