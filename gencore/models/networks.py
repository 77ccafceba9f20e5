"""Encoder and decoder networks, sized from the item shape.

Three families share one interface: conv for 2-D grids (C, H, W), conv for 1-D sequences (C, L),
and an MLP for feature vectors (D,). Encoders map (item, condition) to a flat vector of
`out_features`; decoders map (latent, condition) to per-position likelihood parameters.

How the condition (B, K) enters is the `conditioning` layout:
- "film" (the default): a learned per-class scale and shift of the channels (FiLM, Perez et al.
  2018) after the encoder's first conv and after each decoder level's upsampling conv, and a
  per-class shift of the first linear layer of each head. Every conv keeps the network's own
  channel counts (multiples of 8 at widths that are), with no concatenation in memory.
- "bias": the same places, a per-class shift alone. Away from the borders this is what
  concatenated constant planes compute, and a linear layer over [h, c] is exactly W_h h + W_c c.
- "concat": format_version 1's layout: constant class planes concatenated to the encoder's input
  and to every decoder level's input (74, 42, 26 channels for 10 classes at width 16), and the
  condition beside the flattened features. Runs of format_version 1 load through it.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from gencore.models import CONDITIONINGS

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


class ClassShift(nn.Module):
    """A condition (B, K) -> a per-channel shift, or with `film` a scale and shift, of a feature
    map (B, C, *S) or a feature vector (B, C)."""

    def __init__(self, cond_dim: int, channels: int, film: bool = False):
        super().__init__()
        self.film = film
        self.proj = nn.Linear(cond_dim, channels * (2 if film else 1), bias=False)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        p = self.proj(cond.to(h.dtype))  # (B, C) or (B, 2C)
        p = p.view(*p.shape, *([1] * (h.dim() - 2))).to(h.dtype)  # (B, C[*2], 1, ...)
        if self.film:
            scale, shift = p.chunk(2, dim=1)
            return torch.addcmul(h + shift, h, scale)  # h * (1 + scale) + shift
        return h + p


def _shifts(conditioning: str, cond_dim: int, channels: list[int]) -> nn.ModuleList | None:
    """One ClassShift per entry of `channels`, or None where the condition is concatenated (or absent)."""
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"unknown conditioning {conditioning!r}")
    if not cond_dim or conditioning == "concat":
        return None
    return nn.ModuleList(ClassShift(cond_dim, c, film=conditioning == "film") for c in channels)


def _linear_shift(cond_dim: int, features: int, conditioning: str) -> nn.Linear | None:
    """The condition's share of a linear layer over [h, c], as its own bias-free layer."""
    return nn.Linear(cond_dim, features, bias=False) if cond_dim and conditioning != "concat" else None


class ConvEncoder(nn.Module):
    """Each level halves every side with a stride-2 conv, then refines with a 3x3 conv. Items too
    small to halve get one stride-1 level. Nothing runs at full resolution but the first conv."""

    def __init__(self, in_channels: int, spatial: tuple[int, ...], cond_dim: int, out_features: int,
                 width: int = 32, hidden: int = 256, conditioning: str = "bias"):
        super().__init__()
        self.dim = len(spatial)
        self.cond_dim = cond_dim
        self.concat = bool(cond_dim) and conditioning == "concat"
        conv = _conv_cls(self.dim)
        sizes = plan_sizes(spatial)
        stride = 2 if len(sizes) > 1 else 1
        widths = level_widths(width, len(sizes) - 1)
        channels = [in_channels + (cond_dim if self.concat else 0), *widths]
        self.levels = nn.ModuleList(
            nn.Sequential(
                conv(channels[i], channels[i + 1], 3, stride=stride, padding=1), nn.SiLU(),
                conv(channels[i + 1], channels[i + 1], 3, padding=1), nn.SiLU(),
            )
            for i in range(len(widths))
        )
        self.cond_in = _shifts(conditioning, cond_dim, widths[:1])
        flat = widths[-1] * math.prod(sizes[-1])
        self.head = nn.Sequential(
            nn.Linear(flat + (cond_dim if self.concat else 0), hidden), nn.SiLU(), nn.Linear(hidden, out_features)
        )
        self.head_cond = _linear_shift(cond_dim, hidden, conditioning)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if self.concat:
            x = torch.cat([x, _planes(cond.to(x.dtype), tuple(x.shape[2:]))], dim=1)  # (B, C+K, *S)
        h = x
        for i, level in enumerate(self.levels):
            if i == 0 and self.cond_in is not None:
                h = self.cond_in[0](level[0](h), cond)  # the first conv, shifted by class
                h = level[1:](h)
            else:
                h = level(h)  # (B, W_i, *S_i)
        h = h.flatten(1)
        if self.concat:
            h = torch.cat([h, cond.to(h.dtype)], dim=1)
        h = self.head[0](h)  # (B, hidden)
        if self.head_cond is not None:
            h = h + self.head_cond(cond.to(h.dtype))
        return self.head[1:](h)


class ConvDecoder(nn.Module):
    """The encoder mirrored: a linear map to the smallest grid, then per level a stride-2
    transposed conv (cropped back to the planned size, so odd sides work) and a 3x3 refinement.
    The last level's transposed conv emits the likelihood parameters directly. The condition
    enters the head and every level's upsampling conv (see the module docstring)."""

    def __init__(self, out_channels: int, spatial: tuple[int, ...], cond_dim: int, latent_dim: int,
                 width: int = 32, hidden: int = 256, conditioning: str = "bias"):
        super().__init__()
        self.dim = len(spatial)
        self.cond_dim = cond_dim
        self.concat = bool(cond_dim) and conditioning == "concat"
        extra = cond_dim if self.concat else 0
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
            nn.Linear(latent_dim + extra, hidden), nn.SiLU(),
            nn.Linear(hidden, math.prod(self.bottom_shape)), nn.SiLU(),
        )
        self.head_cond = _linear_shift(cond_dim, hidden, conditioning)
        outs = [*widths[:-1][::-1], out_channels]  # channels after each decoder level
        ins = widths[::-1]
        self.up = nn.ModuleList(up(ins[j] + extra, outs[j]) for j in range(len(ins)))
        self.up_cond = _shifts(conditioning, cond_dim, outs)
        self.refine = nn.ModuleList(conv(outs[j], outs[j], 3, padding=1) for j in range(len(ins) - 1))

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = self.head[0](torch.cat([z, cond], dim=1) if self.concat else z)  # (B, hidden)
        if self.head_cond is not None:
            h = h + self.head_cond(cond.to(h.dtype))
        h = self.head[1:](h).view(-1, *self.bottom_shape)  # (B, W_n, *S_n)
        n = len(self.up)
        for j, up in enumerate(self.up):
            if self.concat:  # in h's dtype, so bf16 autocast does not widen the planes to fp32
                h = torch.cat([h, _planes(cond.to(h.dtype), tuple(h.shape[2:]))], dim=1)
            target = self.sizes[n - j - 1]
            h = up(h)[(..., *[slice(0, s) for s in target])]  # crop odd sides back to plan
            if self.up_cond is not None:
                h = self.up_cond[j](h, cond)
            if j < n - 1:
                h = F.silu(self.refine[j](F.silu(h)))
        return h  # (B, out_channels, *spatial)


class MLPEncoder(nn.Module):
    def __init__(self, in_features: int, cond_dim: int, out_features: int, hidden: int = 256,
                 conditioning: str = "bias"):
        super().__init__()
        self.concat = bool(cond_dim) and conditioning == "concat"
        self.net = nn.Sequential(
            nn.Linear(in_features + (cond_dim if self.concat else 0), hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, out_features),
        )
        self.cond_in = _linear_shift(cond_dim, hidden, conditioning)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return _mlp(self.net, self.cond_in, x.flatten(1), cond, self.concat)


class MLPDecoder(nn.Module):
    def __init__(self, out_features: int, cond_dim: int, latent_dim: int, hidden: int = 256,
                 conditioning: str = "bias"):
        super().__init__()
        self.concat = bool(cond_dim) and conditioning == "concat"
        self.net = nn.Sequential(
            nn.Linear(latent_dim + (cond_dim if self.concat else 0), hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, out_features),
        )
        self.cond_in = _linear_shift(cond_dim, hidden, conditioning)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return _mlp(self.net, self.cond_in, z, cond, self.concat)


def _mlp(net: nn.Sequential, cond_in: nn.Linear | None, h: torch.Tensor, cond: torch.Tensor | None,
         concat: bool) -> torch.Tensor:
    if concat:
        return net(torch.cat([h, cond.to(h.dtype)], dim=1))
    h = net[0](h)  # (B, hidden)
    if cond_in is not None:
        h = h + cond_in(cond.to(h.dtype))
    return net[1:](h)
