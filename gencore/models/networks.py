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
    """Channels after each level: `width`, doubling per level, capped."""
    return [min(width * 2**i, MAX_WIDTH) for i in range(max(1, levels))]


def _conv_cls(dim: int):
    return {1: nn.Conv1d, 2: nn.Conv2d}[dim]


def _conv_t_cls(dim: int):
    return {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}[dim]


def _planes(cond: torch.Tensor, spatial: tuple[int, ...]) -> torch.Tensor:
    """(B, K) condition -> (B, K, *spatial) constant planes."""
    return cond.view(*cond.shape, *([1] * len(spatial))).expand(*cond.shape, *spatial)


class ConvEncoder(nn.Module):
    """Each level halves every side with a stride-2 conv, then refines with a 3x3 conv. Items too
    small to halve get one stride-1 level. Nothing runs at full resolution but the first conv."""

    def __init__(self, in_channels: int, spatial: tuple[int, ...], cond_dim: int, out_features: int,
                 width: int = 32, hidden: int = 256):
        super().__init__()
        self.dim = len(spatial)
        self.cond_dim = cond_dim
        conv = _conv_cls(self.dim)
        sizes = plan_sizes(spatial)
        stride = 2 if len(sizes) > 1 else 1
        widths = level_widths(width, len(sizes) - 1)
        channels = [in_channels + cond_dim, *widths]
        self.levels = nn.ModuleList(
            nn.Sequential(
                conv(channels[i], channels[i + 1], 3, stride=stride, padding=1), nn.SiLU(),
                conv(channels[i + 1], channels[i + 1], 3, padding=1), nn.SiLU(),
            )
            for i in range(len(widths))
        )
        flat = widths[-1] * math.prod(sizes[-1])
        self.head = nn.Sequential(
            nn.Linear(flat + cond_dim, hidden), nn.SiLU(), nn.Linear(hidden, out_features)
        )

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = torch.cat([x, _planes(cond, tuple(x.shape[2:]))], dim=1) if self.cond_dim else x  # (B, C+K, *S)
        for level in self.levels:
            h = level(h)  # (B, W_i, *S_i)
        h = h.flatten(1)
        if self.cond_dim:
            h = torch.cat([h, cond.to(h.dtype)], dim=1)
        return self.head(h)


class ConvDecoder(nn.Module):
    """The encoder mirrored: a linear map to the smallest grid, then per level a stride-2
    transposed conv (cropped back to the planned size, so odd sides work) and a 3x3 refinement.
    The last level's transposed conv emits the likelihood parameters directly. The condition
    joins as constant planes before every level."""

    def __init__(self, out_channels: int, spatial: tuple[int, ...], cond_dim: int, latent_dim: int,
                 width: int = 32, hidden: int = 256):
        super().__init__()
        self.dim = len(spatial)
        self.cond_dim = cond_dim
        conv, conv_t = _conv_cls(self.dim), _conv_t_cls(self.dim)
        self.sizes = plan_sizes(spatial)
        if len(self.sizes) == 1:
            self.sizes = [self.sizes[0], self.sizes[0]]  # one stride-1 level
            up = lambda cin, cout: conv(cin, cout, 3, padding=1)  # noqa: E731
        else:
            up = lambda cin, cout: conv_t(cin, cout, 4, stride=2, padding=1)  # noqa: E731
        widths = level_widths(width, len(self.sizes) - 1)
        self.bottom_shape = (widths[-1], *self.sizes[-1])
        self.head = nn.Sequential(
            nn.Linear(latent_dim + cond_dim, hidden), nn.SiLU(),
            nn.Linear(hidden, math.prod(self.bottom_shape)), nn.SiLU(),
        )
        outs = [*widths[:-1][::-1], out_channels]  # channels after each decoder level
        ins = widths[::-1]
        self.up = nn.ModuleList(up(ins[j] + cond_dim, outs[j]) for j in range(len(ins)))
        self.refine = nn.ModuleList(conv(outs[j], outs[j], 3, padding=1) for j in range(len(ins) - 1))

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = torch.cat([z, cond], dim=1) if self.cond_dim else z
        h = self.head(h).view(-1, *self.bottom_shape)  # (B, W_n, *S_n)
        n = len(self.up)
        for j, up in enumerate(self.up):
            if self.cond_dim:  # in h's dtype, so bf16 autocast does not widen the planes to fp32
                h = torch.cat([h, _planes(cond.to(h.dtype), tuple(h.shape[2:]))], dim=1)
            target = self.sizes[n - j - 1]
            h = up(h)[(..., *[slice(0, s) for s in target])]  # crop odd sides back to plan
            if j < n - 1:
                h = F.silu(self.refine[j](F.silu(h)))
        return h  # (B, out_channels, *spatial)


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
