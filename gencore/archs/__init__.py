"""Arch strategies: what each `--arch` builds, how it trains, and what a run of it can do
(sample, encode, export). The core asks the run's arch instead of testing arch names. This
package imports without torch, so the CLI can validate `--arch` at once."""
from __future__ import annotations

from gencore.archs.autoencoder import AUTOENCODER
from gencore.archs.base import Arch
from gencore.archs.denoiser import DENOISER
from gencore.errors import GenError

ARCHS: dict[str, Arch] = {**{name: AUTOENCODER for name in AUTOENCODER.names}, DENOISER.name: DENOISER}
ARCH_NAMES = tuple(ARCHS)


def get_arch(name: str) -> Arch:
    if name not in ARCHS:
        raise GenError(f"unknown arch {name!r}", where="--arch", hint=f"use one of {', '.join(ARCH_NAMES)}")
    return ARCHS[name]
