"""Build a run's model from its config spec: the autoencoder family or the denoiser."""
from __future__ import annotations

from typing import Any

from torch import nn


def build_model(spec: dict[str, Any]) -> nn.Module:
    if spec["arch"] == "denoiser":
        from gencore.models.denoiser import Denoiser

        return Denoiser(spec)
    from gencore.models.autoencoder import AutoEncoder

    return AutoEncoder(spec)
