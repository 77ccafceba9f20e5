"""The --noise corruption for --arch dae: parsing (no torch) and applying it (torch, lazily)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gencore.errors import GenError

if TYPE_CHECKING:
    import torch

DEFAULT_NOISE = "gaussian:5-50"
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_FORMS = "gaussian:LO-HI, gaussian:S (sigma in 0-255 pixel units), saltpepper:P or mask:P (P from 0 to 1)"


@dataclass(frozen=True)
class NoiseSpec:
    kind: str  # "gaussian" | "saltpepper" | "mask"
    low: float  # gaussian: sigma range in 0..255 units; the others: the pixel fraction (low == high)
    high: float

    def text(self) -> str:
        """The canonical spelling, stored in the run's data meta."""
        if self.kind == "gaussian":
            if self.low == self.high:
                return f"gaussian:{_fmt(self.low)}"
            return f"gaussian:{_fmt(self.low)}-{_fmt(self.high)}"
        return f"{self.kind}:{_fmt(self.low)}"


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _bad(text: str, why: str) -> GenError:
    return GenError(f"bad noise spec {text!r}: {why}", where="--noise",
                    hint=f"use one of {_FORMS}, e.g. --noise gaussian:5-50")


def parse_noise(text: str | None) -> NoiseSpec:
    """Parse `gaussian:5-50`, `gaussian:25`, `saltpepper:0.1` or `mask:0.3`, strictly."""
    if text is None:
        text = DEFAULT_NOISE
    raw = str(text)
    s = raw.strip().lower()
    kind, sep, arg = s.partition(":")
    if not sep or not arg:
        raise _bad(raw, "expected KIND:VALUE")
    kind = kind.strip()
    arg = arg.strip()
    if kind == "gaussian":
        m = re.fullmatch(rf"{_NUMBER}(?:\s*-\s*{_NUMBER})?", arg)
        if not m:
            raise _bad(raw, "the sigma must be a number S or a range LO-HI")
        low = float(m.group(1))
        high = float(m.group(2)) if m.group(2) is not None else low
        if not (math.isfinite(low) and math.isfinite(high)):
            raise _bad(raw, "the sigma must be finite")
        if low > high:
            raise _bad(raw, f"the range {_fmt(low)}-{_fmt(high)} runs backwards")
        if high > 255:
            raise _bad(raw, "sigma is in 0-255 pixel units, so it cannot exceed 255")
        if high <= 0:
            raise _bad(raw, "sigma must be above 0")
        return NoiseSpec("gaussian", low, high)
    if kind in ("saltpepper", "salt-pepper", "salt_and_pepper", "mask"):
        kind = "mask" if kind == "mask" else "saltpepper"
        if not re.fullmatch(_NUMBER, arg):
            raise _bad(raw, f"{kind} takes one fraction P from 0 to 1")
        p = float(arg)
        if not 0.0 < p <= 1.0:
            raise _bad(raw, f"the fraction {arg} is not in (0, 1]")
        return NoiseSpec(kind, p, p)
    raise _bad(raw, f"unknown noise kind {kind!r}")


def corrupt(items: "torch.Tensor", generator: "torch.Generator | None", noise: NoiseSpec) -> "torch.Tensor":
    """Corrupt a batch (n, C, H, W) in [0, 1]; random numbers come from `generator` (drawn on its
    device, CPU for a CPU generator) and move to the items' device. The result is clipped to [0, 1]."""
    import torch

    n = items.shape[0]
    gen_device = generator.device if generator is not None else torch.device("cpu")
    shape = tuple(items.shape)
    if noise.kind == "gaussian":
        u = torch.rand(n, generator=generator, device=gen_device, dtype=torch.float32)
        sigma = (noise.low + (noise.high - noise.low) * u) / 255.0
        eps = torch.randn(shape, generator=generator, device=gen_device, dtype=torch.float32)
        eps = eps * sigma.view(n, *([1] * (len(shape) - 1)))
        out = items.float() + eps.to(items.device)
    else:
        # one draw per pixel position, shared by its channels
        pix_shape = (shape[0], 1, *shape[2:]) if len(shape) >= 3 else shape
        hit = torch.rand(pix_shape, generator=generator, device=gen_device) < noise.low
        hit = hit.to(items.device)
        if noise.kind == "mask":
            out = items.float().masked_fill(hit, 0.0)
        else:
            salt = (torch.rand(pix_shape, generator=generator, device=gen_device) < 0.5).to(items.device)
            value = salt.float().expand(shape)
            out = torch.where(hit.expand(shape), value, items.float())
    return out.clamp_(0.0, 1.0).to(items.dtype)
