"""Parsing the images domain's options. Pure Python: importing this never imports torch."""
from __future__ import annotations

import re
from typing import Any

from gencore.errors import GenError

from .noise import DEFAULT_NOISE, NoiseSpec, parse_noise

MAX_SIDE = 8192  # a --resize side above this is surely a typo

__all__ = ["parse_resize", "parse_channels", "parse_likelihood", "parse_noise", "NoiseSpec",
           "DEFAULT_NOISE", "option"]


def option(options: dict[str, Any] | None, name: str, default: Any = None) -> Any:
    """An option's value; a missing key or None means the default."""
    value = (options or {}).get(name)
    return default if value is None else value


def parse_resize(text: Any) -> tuple[int, int] | None:
    """`--resize H,W` (also `HxW`) -> (H, W); None or "" -> None."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, (list, tuple)) and len(text) == 2:
        text = f"{text[0]},{text[1]}"
    m = re.fullmatch(r"\s*(\d+)\s*[,xX]\s*(\d+)\s*", str(text))
    if not m:
        raise GenError(f"bad size {text!r}: expected two whole numbers H,W", where="--resize",
                       hint="give height and width in pixels, e.g. --resize 28,28")
    h, w = int(m.group(1)), int(m.group(2))
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise GenError(f"bad size {text!r}: each side must be from 1 to {MAX_SIDE} pixels",
                       where="--resize", hint="e.g. --resize 28,28")
    return h, w


def parse_channels(value: Any) -> str:
    text = "auto" if value is None else str(value).strip().lower()
    if text not in ("auto", "1", "3"):
        raise GenError(f"bad channel count {value!r}", where="--channels",
                       hint="use auto, 1 (grayscale) or 3 (RGB), e.g. --channels 3")
    return text


def parse_likelihood(value: Any) -> str:
    text = "bernoulli" if value is None else str(value).strip().lower()
    if text not in ("bernoulli", "gaussian"):
        raise GenError(f"bad likelihood {value!r}", where="--likelihood",
                       hint="use bernoulli or gaussian, e.g. --likelihood gaussian")
    return text
